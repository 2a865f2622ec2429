use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ykeep_core::contract::code;
use ykeep_core::{AddressError, ErrorBody};

/// Everything a store operation can fail with. The HTTP mapping shows clients a status and a
/// short message; internal details (`Db`, `Io`) go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error("the body is not a Yjs v1 update: {0}")]
    BadUpdate(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong credentials")]
    Unauthorized,
    #[error("this token does not grant access to this resource")]
    Forbidden,
    /// No row with that id. Not a deletion: a wrong id, table or deployment looks the same.
    #[error("no {kind} with id {id}")]
    NotFound { kind: String, id: String },
    /// The row was deleted through `DELETE /snapshots/{kind}/{id}` (a tombstone); it stays deleted.
    #[error("{kind} {id} was deleted")]
    Deleted { kind: String, id: String },
    #[error("{kind} {id} has no snapshot yet")]
    NoSnapshot { kind: String, id: String },
    /// The row names a snapshot whose file was gone on every one of the contract's
    /// `SNAPSHOT_READ_TRIES` reads. Retryable (`503`); nothing was deleted.
    #[error("the snapshot of {kind} {id} could not be read; retry")]
    SnapshotUnavailable { kind: String, id: String },
    #[error("{message}")]
    Conflict {
        message: String,
        current: Option<String>,
    },
    #[error("the body is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
    /// Start-up refusal: the database names no blob, but the blob folder holds snapshot files
    /// it does not know (a fresh or replaced `store.sqlite3` next to an existing `blobs/`):
    /// `.yjs` files, and `.tmp` files too when there is no `store.sqlite3` at all.
    #[error(
        "refusing to open the store in {}: its database names no snapshot, but {} holds \
         {count} snapshot file(s) (.yjs, or .tmp with no store.sqlite3) it does not know. \
         Is this the store.sqlite3 that belongs to these blobs? Nothing was deleted: put the \
         matching store.sqlite3 back, or move the blobs folder away to start an empty store",
        data_dir.display(),
        blob_dir.display()
    )]
    UnknownBlobFiles {
        data_dir: PathBuf,
        blob_dir: PathBuf,
        count: usize,
    },
}

impl ServiceError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::Address(_) | ServiceError::BadUpdate(_) | ServiceError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ServiceError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden => StatusCode::FORBIDDEN,
            ServiceError::NotFound { .. }
            | ServiceError::Deleted { .. }
            | ServiceError::NoSnapshot { .. } => StatusCode::NOT_FOUND,
            ServiceError::Conflict { .. } => StatusCode::CONFLICT,
            ServiceError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::SnapshotUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Db(_)
            | ServiceError::Io(_)
            | ServiceError::Internal(_)
            | ServiceError::UnknownBlobFiles { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Address(e) => e.code(),
            ServiceError::BadUpdate(_) => code::BAD_UPDATE,
            ServiceError::BadRequest(_) => code::BAD_REQUEST,
            ServiceError::Unauthorized => code::UNAUTHORIZED,
            ServiceError::Forbidden => code::FORBIDDEN,
            ServiceError::NotFound { .. } => code::NOT_FOUND,
            ServiceError::Deleted { .. } => code::RESOURCE_DELETED,
            ServiceError::NoSnapshot { .. } => code::NO_SNAPSHOT,
            ServiceError::SnapshotUnavailable { .. } => code::SNAPSHOT_UNAVAILABLE,
            ServiceError::Conflict { .. } => code::CONFLICT,
            ServiceError::TooLarge { .. } => code::TOO_LARGE,
            ServiceError::Db(_)
            | ServiceError::Io(_)
            | ServiceError::Internal(_)
            | ServiceError::UnknownBlobFiles { .. } => code::INTERNAL,
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "store request failed");
            "the store could not complete the request".to_owned()
        } else {
            if status.is_server_error() {
                tracing::warn!(error = %self, "store request failed; the caller may retry");
            }
            self.to_string()
        };
        let mut body = ErrorBody::new(self.code(), message);
        let conflict = matches!(self, ServiceError::Conflict { .. });
        if let ServiceError::Conflict { current, .. } = self {
            body = body.with_current_snapshot(current);
        }
        let mut json = serde_json::to_value(body).expect("error bodies serialize");
        if conflict && json["error"].get("currentSnapshotId").is_none() {
            // A 409 always names the current snapshot, `null` when there is none.
            json["error"]["currentSnapshotId"] = serde_json::Value::Null;
        }
        let mut response = (status, axum::Json(json)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
