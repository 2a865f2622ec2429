//! [`SnapshotStore`] over the store's HTTP contract.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;
use ykeep_core::{ErrorBody, RoomName};

use super::{Precondition, SaveReceipt, SnapshotStore, StoreError, StoredSnapshot, Verdict};

/// Client of a store at `base_url` (no trailing slash needed).
#[derive(Clone)]
pub struct HttpStore {
    client: reqwest::Client,
    base: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SaveReply {
    snapshot_id: String,
    saved_at: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReply {
    allowed: bool,
    user_id: Option<String>,
    reason: Option<String>,
}

impl HttpStore {
    pub fn new(base_url: &str, secret: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        Ok(HttpStore {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            secret: secret.to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn snapshot_url(&self, room: &RoomName) -> String {
        self.url(&format!("/snapshots/{}/{}", room.kind, room.id))
    }
}

fn unreachable(e: reqwest::Error) -> StoreError {
    StoreError::Unreachable(e.to_string())
}

/// Maps a non-success reply to a typed error, reading the contract's JSON error body.
async fn error_of(resp: reqwest::Response) -> StoreError {
    let status = resp.status();
    let body: Option<ErrorBody> = resp.json().await.ok();
    let (code, message, current) = match body {
        Some(b) => (b.error.code, b.error.message, b.error.current_snapshot_id),
        None => (String::new(), String::new(), None),
    };
    match status {
        StatusCode::CONFLICT => StoreError::Conflict { current },
        StatusCode::PAYLOAD_TOO_LARGE => StoreError::TooLarge,
        StatusCode::NOT_FOUND if code != "no_snapshot" => StoreError::NotFound,
        _ => StoreError::Status {
            status: status.as_u16(),
            code,
            message,
        },
    }
}

impl HttpStore {
    /// GET of the snapshot; with `known`, `If-None-Match` makes an unchanged one a 304 (`None`).
    async fn fetch(
        &self,
        room: &RoomName,
        known: Option<&str>,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let mut req = self
            .client
            .get(self.snapshot_url(room))
            .bearer_auth(&self.secret);
        if let Some(id) = known {
            req = req.header("if-none-match", format!("\"{id}\""));
        }
        let resp = req.send().await.map_err(unreachable)?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return match error_of(resp).await {
                StoreError::Status { status: 404, .. } => Ok(None),
                e => Err(e),
            };
        }
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default();
        let saved_at = resp
            .headers()
            .get("x-ykeep-saved-at")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = resp.bytes().await.map_err(unreachable)?.to_vec();
        Ok(Some(StoredSnapshot {
            bytes,
            snapshot_id: etag,
            saved_at,
        }))
    }
}

impl SnapshotStore for HttpStore {
    fn load<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, StoreError>> {
        self.fetch(room, None).boxed()
    }

    fn load_if_changed<'a>(
        &'a self,
        room: &'a RoomName,
        known: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, StoreError>> {
        self.fetch(room, Some(known)).boxed()
    }

    fn save<'a>(
        &'a self,
        room: &'a RoomName,
        state: Vec<u8>,
        precondition: Precondition,
    ) -> BoxFuture<'a, Result<SaveReceipt, StoreError>> {
        async move {
            let mut req = self
                .client
                .post(self.snapshot_url(room))
                .bearer_auth(&self.secret)
                .header("content-type", "application/octet-stream");
            req = match &precondition {
                Precondition::IfMatch(id) => req.header("if-match", format!("\"{id}\"")),
                Precondition::IfNoneMatch => req.header("if-none-match", "*"),
            };
            let resp = req.body(state).send().await.map_err(unreachable)?;
            if !resp.status().is_success() {
                return Err(error_of(resp).await);
            }
            let reply: SaveReply = resp.json().await.map_err(unreachable)?;
            Ok(SaveReceipt {
                snapshot_id: reply.snapshot_id,
                saved_at: reply.saved_at,
            })
        }
        .boxed()
    }

    fn verify<'a>(
        &'a self,
        token: &'a str,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        async move {
            let body = serde_json::json!({
                "token": token,
                "kind": room.kind.as_str(),
                "id": room.id.as_str(),
            });
            let resp = self
                .client
                .post(self.url("/collaboration/verify"))
                .bearer_auth(&self.secret)
                .json(&body)
                .send()
                .await
                .map_err(unreachable)?;
            if !resp.status().is_success() {
                return Err(error_of(resp).await);
            }
            let reply: VerifyReply = resp.json().await.map_err(unreachable)?;
            Ok(if reply.allowed {
                Verdict::Allowed {
                    user_id: reply.user_id,
                }
            } else {
                Verdict::Denied {
                    reason: reply.reason.unwrap_or_else(|| "denied".into()),
                }
            })
        }
        .boxed()
    }
}
