//! The wire contract shared by the relay, the snapshot store and the client: the bodies and
//! headers that cross HTTP between them, written once.
//!
//! `docs/store-api.md` and `docs/relay-api.md` describe them; `tests/contract/` pins them for
//! both stores (the Convex code in `convex/` follows the same cases).

use serde::{Deserialize, Serialize};

/// What a save must find before it may replace the current snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No header: the new state must contain the current snapshot (the store checks).
    Contains,
    /// `If-Match: "<id>"`: the row must point at this snapshot.
    IfMatch(String),
    /// `If-None-Match: *`: the row must have no snapshot.
    IfNoneMatch,
}

/// The store's reply to a successful save (`200`, JSON, with `ETag: "<snapshotId>"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveReceipt {
    pub snapshot_id: String,
    pub size: u64,
    /// base64url of the v1 state vector of the saved state.
    pub state_vector: String,
    /// Milliseconds since the Unix epoch.
    pub saved_at: i64,
}

/// The relay's `GET /rooms/{kind}/{id}/durable` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurableBody {
    /// base64url durability marker of what the relay's log holds.
    pub relay: String,
    /// base64url durability marker of what the store confirmed, if anything.
    pub store: Option<String>,
    pub store_snapshot_id: Option<String>,
    /// Milliseconds since the Unix epoch of the store's last confirmed save.
    pub saved_at: Option<i64>,
}

/// An entity tag for a snapshot id: `"<id>"`.
pub fn etag(snapshot_id: &str) -> String {
    format!("\"{snapshot_id}\"")
}

/// The snapshot id inside an entity tag: strips a weak `W/` prefix and the quotes. A bare id
/// (some proxies drop the quotes) is taken as it is.
pub fn unquote_etag(tag: &str) -> &str {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag)
}

/// The ids of an `If-None-Match` list (`"a", "b"`); `None` for `*`.
pub fn etag_list(header: &str) -> Option<Vec<&str>> {
    if header.trim() == "*" {
        return None;
    }
    Some(
        header
            .split(',')
            .map(unquote_etag)
            .filter(|t| !t.is_empty())
            .collect(),
    )
}

/// The credentials of an `Authorization: Bearer <token>` header. The scheme is matched without
/// regard to case (RFC 9110 §11.1); `None` for another scheme or an empty token.
pub fn bearer(header: &str) -> Option<&str> {
    let header = header.trim_start();
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_and_accept_weak_and_bare_tags() {
        assert_eq!(unquote_etag(&etag("abc")), "abc");
        assert_eq!(unquote_etag("W/\"abc\""), "abc");
        assert_eq!(unquote_etag(" abc "), "abc");
        assert_eq!(etag_list("\"a\", W/\"b\""), Some(vec!["a", "b"]));
        assert_eq!(etag_list(" * "), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("BEARER  s3cret "), Some("s3cret"));
        assert_eq!(bearer("Basic s3cret"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn receipts_and_durable_bodies_use_the_contract_field_names() {
        let receipt: SaveReceipt = serde_json::from_str(
            r#"{"snapshotId":"s","size":3,"stateVector":"AA","savedAt":1700000000000}"#,
        )
        .unwrap();
        assert_eq!(receipt.saved_at, 1_700_000_000_000);
        let body = DurableBody {
            relay: "AA".into(),
            store: None,
            store_snapshot_id: Some("s".into()),
            saved_at: Some(5),
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"relay":"AA","store":null,"storeSnapshotId":"s","savedAt":5}"#
        );
    }
}
