//! The store contract's words that decide what a relay may do with its data: the error codes a
//! client acts on, and the `GET /contract` answer a relay checks before it serves.
//!
//! Only [`code::RESOURCE_DELETED`] ever means "this resource was deleted": a store sends it for a
//! row deleted through the contract (a tombstone) and for nothing else. Every other non-success,
//! `not_found` included, is a failed request and the caller keeps its data.

use serde::{Deserialize, Serialize};

/// The contract version this code speaks (`GET /contract` → `{"contract": 1, ...}`).
pub const CONTRACT_VERSION: u32 = 1;

/// Error codes (`{"error": {"code": ...}}`) that a client of the store acts on.
pub mod code {
    /// The row was deleted through the contract (`DELETE /snapshots/...`); it stays deleted.
    pub const RESOURCE_DELETED: &str = "resource_deleted";
    /// No row with that id. Not a deletion: a wrong id, table or deployment looks the same.
    pub const NOT_FOUND: &str = "not_found";
    /// The row exists but holds no snapshot yet (load only).
    pub const NO_SNAPSHOT: &str = "no_snapshot";
}

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
