//! Who is calling: the relay (shared secret) or a browser (user token, loads only).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;
use ykeep_core::{ResourceId, ResourceKind, wire};

use crate::error::ServiceError;
use crate::token;

/// The bearer credential of a request, if any (`ykeep_core::wire::bearer`: any case of the
/// scheme, no empty token).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    wire::bearer(headers.get(AUTHORIZATION)?.to_str().ok()?)
}

/// Constant-time comparison of the presented secret with ours.
pub fn is_secret(presented: &str, secret: &str) -> bool {
    !secret.is_empty() && bool::from(presented.as_bytes().ct_eq(secret.as_bytes()))
}

/// Server-to-server calls: the shared secret or 401.
pub fn require_secret(headers: &HeaderMap, secret: &str) -> Result<(), ServiceError> {
    match bearer(headers) {
        Some(p) if is_secret(p, secret) => Ok(()),
        _ => Err(ServiceError::Unauthorized),
    }
}

/// Loads: the shared secret, or a user token for this resource.
pub fn require_reader(
    headers: &HeaderMap,
    secret: &str,
    token_key: &str,
    kind: ResourceKind,
    id: &ResourceId,
) -> Result<(), ServiceError> {
    let presented = bearer(headers).ok_or(ServiceError::Unauthorized)?;
    if is_secret(presented, secret) {
        return Ok(());
    }
    match token::verify(token_key, presented, kind, id, token::now_unix()) {
        Ok(_) => Ok(()),
        Err(token::TokenError::WrongResource) => Err(ServiceError::Forbidden),
        Err(_) => Err(ServiceError::Unauthorized),
    }
}
