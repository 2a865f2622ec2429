//! User tokens: `base64url(JSON {sub, kind, id, exp}) "." base64url(HMAC-SHA256(key, first segment))`.
//!
//! `kind` and `id` name the one resource the token opens, or `"*"` for any. `exp` is Unix
//! seconds. The same format is implemented by the Convex verify function.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use ykeep_core::contract::reason;
use ykeep_core::{ResourceId, ResourceKind, b64};

type HmacSha256 = Hmac<Sha256>;

/// What a token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub kind: String,
    pub id: String,
    pub exp: u64,
}

/// Why a token was refused; `reason()` is the verify endpoint's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not of the form payload.signature with a JSON payload")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is for another resource")]
    WrongResource,
}

impl TokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => reason::MALFORMED,
            TokenError::BadSignature => reason::BAD_SIGNATURE,
            TokenError::Expired => reason::EXPIRED,
            TokenError::WrongResource => reason::WRONG_RESOURCE,
        }
    }
}

fn mac(key: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length")
}

/// Signs `claims` with `key`.
pub fn mint(key: &str, claims: &Claims) -> String {
    let payload = b64::encode(&serde_json::to_vec(claims).expect("claims serialize"));
    let mut m = mac(key);
    m.update(payload.as_bytes());
    let signature = b64::encode(&m.finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// Checks signature (constant time), expiry and resource; returns the claims when all hold.
pub fn verify(
    key: &str,
    token: &str,
    kind: ResourceKind,
    id: &ResourceId,
    now_unix: u64,
) -> Result<Claims, TokenError> {
    // The order of checks is the contract's (docs/store-api.md, "Auth"); Convex uses the same.
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    // A signature segment that is not base64url is not of the token's form at all.
    let signature = b64::decode(signature).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(key);
    m.update(payload.as_bytes());
    m.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let json = b64::decode(payload).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now_unix {
        return Err(TokenError::Expired);
    }
    let kind_ok = claims.kind == "*" || claims.kind == kind.as_str();
    let id_ok = claims.id == "*" || claims.id == id.as_str();
    if !(kind_ok && id_ok) {
        return Err(TokenError::WrongResource);
    }
    Ok(claims)
}

/// Seconds since the Unix epoch (the `exp` clock).
pub use crate::clock::now_unix;

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: &str, id: &str, exp: u64) -> Claims {
        Claims {
            sub: "alice".into(),
            kind: kind.into(),
            id: id.into(),
            exp,
        }
    }

    #[test]
    fn mint_then_verify() {
        let id = ResourceId::parse("doc1").unwrap();
        let token = mint("k", &claims("document", "doc1", 2_000));
        let got = verify("k", &token, ResourceKind::Document, &id, 1_000).unwrap();
        assert_eq!(got.sub, "alice");
        let wildcard = mint("k", &claims("*", "*", 2_000));
        assert!(verify("k", &wildcard, ResourceKind::Task, &id, 1_000).is_ok());
    }

    #[test]
    fn refusals_name_their_reason() {
        let id = ResourceId::parse("doc1").unwrap();
        let other = ResourceId::parse("doc2").unwrap();
        let token = mint("k", &claims("document", "doc1", 2_000));
        let v = |key: &str, tok: &str, kind, id: &ResourceId, now| verify(key, tok, kind, id, now);
        assert_eq!(
            v("other", &token, ResourceKind::Document, &id, 1_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            v("k", &token, ResourceKind::Document, &id, 2_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            v("k", &token, ResourceKind::Document, &other, 1_000),
            Err(TokenError::WrongResource)
        );
        assert_eq!(
            v("k", &token, ResourceKind::Diagram, &id, 1_000),
            Err(TokenError::WrongResource)
        );
        assert_eq!(
            v("k", "garbage", ResourceKind::Document, &id, 1_000),
            Err(TokenError::Malformed)
        );
        let (payload, _) = token.split_once('.').unwrap();
        assert_eq!(
            v(
                "k",
                &format!("{payload}.not base64"),
                ResourceKind::Document,
                &id,
                1_000
            ),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            v("k", "a.b.c", ResourceKind::Document, &id, 1_000),
            Err(TokenError::Malformed),
            "the token splits at its first dot; `b.c` is not base64url"
        );
        let forged = format!("{payload}.AAAA");
        assert_eq!(
            v("k", &forged, ResourceKind::Document, &id, 1_000),
            Err(TokenError::BadSignature)
        );
        let mut m = mac("k");
        m.update(b"bm90IGpzb24");
        let sig = b64::encode(&m.finalize().into_bytes());
        let not_json = format!("bm90IGpzb24.{sig}");
        assert_eq!(
            v("k", &not_json, ResourceKind::Document, &id, 1_000),
            Err(TokenError::Malformed)
        );
    }
}
