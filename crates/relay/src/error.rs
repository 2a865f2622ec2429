//! HTTP errors of the relay: a status and the contract's JSON body; details go to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ykeep_core::contract::code;
use ykeep_core::{AddressError, ErrorBody};

use crate::auth::AuthError;
use crate::http::upgrade::NotWebSocket;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the room is not live on this relay")]
    NotLive,
    #[error("bad state vector: {0}")]
    BadStateVector(String),
    #[error(transparent)]
    NotWebSocket(#[from] NotWebSocket),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            ApiError::Address(e) => (StatusCode::BAD_REQUEST, e.code(), e.to_string()),
            ApiError::Auth(e) => (
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                e.code(),
                e.to_string(),
            ),
            ApiError::NotLive => (StatusCode::NOT_FOUND, code::NOT_LIVE, self.to_string()),
            ApiError::BadStateVector(_) => (
                StatusCode::BAD_REQUEST,
                code::BAD_STATE_VECTOR,
                self.to_string(),
            ),
            ApiError::NotWebSocket(e) => (e.status(), code::BAD_REQUEST, e.to_string()),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::INTERNAL,
                    "internal error".to_owned(),
                )
            }
        };
        (status, Json(ErrorBody::new(code, message))).into_response()
    }
}
