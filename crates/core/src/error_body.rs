//! The one JSON error shape of the contract: `{"error": {"code": "...", "message": "..."}}`.

use serde::{Deserialize, Serialize};

/// `{"error": {...}}`, sent with the HTTP status by the relay and the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable `code`, a human `message`, and for 409 the current snapshot id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_snapshot_id: Option<String>,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                current_snapshot_id: None,
            },
        }
    }

    pub fn with_current_snapshot(mut self, id: Option<String>) -> Self {
        self.error.current_snapshot_id = id;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_contract() {
        let body = ErrorBody::new("bad_id", "id too long");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"bad_id","message":"id too long"}}"#
        );
        let conflict =
            ErrorBody::new("conflict", "changed").with_current_snapshot(Some("s1".into()));
        let json = serde_json::to_value(&conflict).unwrap();
        assert_eq!(json["error"]["currentSnapshotId"], "s1");
    }
}
