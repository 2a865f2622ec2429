//! The store contract's words that decide what a relay may do with its data: the error codes a
//! client acts on, and the `GET /contract` answer a relay checks before it serves.
//!
//! Only [`code::RESOURCE_DELETED`] ever means "this resource was deleted": a store sends it for a
//! row deleted through the contract (a tombstone) and for nothing else. Every other non-success,
//! `not_found` included, is a failed request and the caller keeps its data.

use serde::{Deserialize, Serialize};

/// The contract version this code speaks (`GET /contract` → `{"contract": 1, ...}`).
pub const CONTRACT_VERSION: u32 = 1;

/// The largest snapshot a store takes and a host sends, unless configured otherwise.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

/// Error codes (`{"error": {"code": ...}}`) that a client of the store acts on.
pub mod code {
    /// The row was deleted through the contract (`DELETE /snapshots/...`); it stays deleted.
    pub const RESOURCE_DELETED: &str = "resource_deleted";
    /// No row with that id. Not a deletion: a wrong id, table or deployment looks the same.
    pub const NOT_FOUND: &str = "not_found";
    /// The row exists but holds no snapshot yet (load only).
    pub const NO_SNAPSHOT: &str = "no_snapshot";
    /// `503`: the row names a snapshot whose blob vanished on each of [`SNAPSHOT_READ_TRIES`]
    /// reads (each read looks at the row again, so a save that replaced the blob is followed).
    /// Retryable: nothing was deleted, the caller keeps its data and tries again later.
    ///
    /// [`SNAPSHOT_READ_TRIES`]: super::SNAPSHOT_READ_TRIES
    pub const SNAPSHOT_UNAVAILABLE: &str = "snapshot_unavailable";
    /// `409`: the save's precondition failed; the body names `currentSnapshotId`.
    pub const CONFLICT: &str = "conflict";
    /// `413`: the body is over the snapshot limit.
    pub const TOO_LARGE: &str = "too_large";
    /// `400`: the body is not a Yjs v1 update.
    pub const BAD_UPDATE: &str = "bad_update";
    /// `400`: a malformed request (headers, JSON body).
    pub const BAD_REQUEST: &str = "bad_request";
    /// `400`: the kind is not `document`, `diagram` or `task`.
    pub const BAD_KIND: &str = "bad_kind";
    /// `400`: the id breaks the id rule.
    pub const BAD_ID: &str = "bad_id";
    /// `401`: missing or wrong credentials.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// `403`: the token does not grant access to this resource.
    pub const FORBIDDEN: &str = "forbidden";
    /// `500`: the detail is in the server's log only.
    pub const INTERNAL: &str = "internal";

    /// Relay only: `404`, the room is not in memory (`GET /rooms/{kind}/{id}/state`).
    pub const NOT_LIVE: &str = "not_live";
    /// Relay only: `400`, the `sv` query is not a state vector.
    pub const BAD_STATE_VECTOR: &str = "bad_state_vector";
    /// Relay only: `503`, a user token cannot be checked now (the store is unavailable).
    pub const UNAVAILABLE: &str = "unavailable";
}

/// The `reason` of a refused `POST /collaboration/verify` (`{"allowed": false, "reason": ...}`).
pub mod reason {
    pub const MALFORMED: &str = "malformed";
    pub const BAD_SIGNATURE: &str = "bad_signature";
    pub const EXPIRED: &str = "expired";
    /// A valid token for another resource: the relay answers `403 forbidden`.
    pub const WRONG_RESOURCE: &str = "wrong_resource";
}

/// How many times a load reads the row and then its blob before it answers `503`
/// [`code::SNAPSHOT_UNAVAILABLE`]: a save that lands between the two reads removes the blob the
/// row named, and the next try finds the new one.
pub const SNAPSHOT_READ_TRIES: u32 = 3;

/// The answer of `GET /contract` (shared secret required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractInfo {
    /// [`CONTRACT_VERSION`] of the store.
    pub contract: u32,
    /// Which implementation answered: `"embedded"` or `"convex"`.
    pub store: String,
}

impl ContractInfo {
    pub fn new(store: impl Into<String>) -> Self {
        ContractInfo {
            contract: CONTRACT_VERSION,
            store: store.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_answer_shape() {
        let json = serde_json::to_value(ContractInfo::new("embedded")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"contract": 1, "store": "embedded"})
        );
        // Unknown fields from a newer store are fine; a missing version is not a ykeep store.
        let newer: ContractInfo =
            serde_json::from_str(r#"{"contract": 1, "store": "convex", "extra": true}"#).unwrap();
        assert_eq!(newer.store, "convex");
        assert!(serde_json::from_str::<ContractInfo>(r#"{"ok": true}"#).is_err());
    }
}
