//! [`SnapshotStore`] over the store's HTTP contract.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;
use ykeep_core::wire;
use ykeep_core::{CONTRACT_VERSION, ContractInfo, ErrorBody, RoomName};

use super::{
    Precondition, Refusal, SaveReceipt, SnapshotStore, StoreError, StoredSnapshot, Verdict,
    body_head,
};

/// Client of a store at `base_url` (no trailing slash needed).
#[derive(Clone)]
pub struct HttpStore {
    client: reqwest::Client,
    base: String,
    secret: String,
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

/// Maps a non-success reply to a typed error. Only the contract's `resource_deleted` code
/// means the resource was deleted; anything else (no body, an HTML page from a wrong URL, an
/// unknown code, `not_found`) is a [`Refusal`] that keeps the URL, status and body head.
async fn error_of(method: &'static str, url: &str, resp: reqwest::Response) -> StoreError {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let detail: Option<ErrorBody> = serde_json::from_slice(&body).ok();
    let code = detail.as_ref().map(|b| b.error.code.as_str());
    let refusal = Refusal {
        method,
        url: url.to_owned(),
        status: status.as_u16(),
        code: code.map(str::to_owned),
        body_head: body_head(&body),
    };
    StoreError::of_answer(refusal, detail.and_then(|b| b.error.current_snapshot_id))
}

impl HttpStore {
    /// GET of the snapshot; with `known`, `If-None-Match` makes an unchanged one a 304 (`None`).
    async fn fetch(
        &self,
        room: &RoomName,
        known: Option<&str>,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let url = self.snapshot_url(room);
        let mut req = self.client.get(&url).bearer_auth(&self.secret);
        if let Some(id) = known {
            req = req.header("if-none-match", wire::etag(id));
        }
        let resp = req.send().await.map_err(unreachable)?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return match error_of("GET", &url, resp).await {
                e if e.is_nothing_to_merge() => Ok(None),
                e => Err(e),
            };
        }
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|v| wire::unquote_etag(v).to_owned())
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

/// Why `GET /contract` did not confirm a ykeep store at the configured URL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ContractCheckError {
    /// No answer, or a server error (5xx): the store may come back; not a reason to refuse.
    #[error("the store at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the store at {url} refused the shared secret (--secret / YKEEP_SECRET): {refusal}")]
    WrongSecret { url: String, refusal: Refusal },
    #[error(
        "{url} is not a ykeep store: {what} (check --store-url; a Convex deployment serves \
         HTTP actions on its .convex.site host, not .convex.cloud)"
    )]
    NotAStore { url: String, what: String },
    #[error(
        "the store at {url} speaks store contract {found}; this relay speaks contract \
         {CONTRACT_VERSION}"
    )]
    OtherVersion { url: String, found: u32 },
}

impl ContractCheckError {
    /// True when the relay may still serve from its log (the store is only unreachable).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ContractCheckError::Unreachable { .. })
    }
}

impl HttpStore {
    /// The store URL as configured (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /contract` with the shared secret: is this a ykeep store that takes our secret?
    pub async fn check_contract(&self) -> Result<ContractInfo, ContractCheckError> {
        let url = self.url("/contract");
        let resp = self
            .client
            .get(&url)
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(|e| ContractCheckError::Unreachable {
                url: self.base.clone(),
                reason: e.to_string(),
            })?;
        let status = resp.status();
        if status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            let info: ContractInfo =
                serde_json::from_slice(&body).map_err(|_| ContractCheckError::NotAStore {
                    url: self.base.clone(),
                    what: format!(
                        "GET {url} answered {} with {:?}, not the contract's {{\"contract\": N}}",
                        status.as_u16(),
                        body_head(&body)
                    ),
                })?;
            if info.contract != CONTRACT_VERSION {
                return Err(ContractCheckError::OtherVersion {
                    url: self.base.clone(),
                    found: info.contract,
                });
            }
            return Ok(info);
        }
        let refusal = match error_of("GET", &url, resp).await {
            StoreError::Refused(r) => r,
            other => Refusal {
                method: "GET",
                url: url.clone(),
                status: status.as_u16(),
                code: None,
                body_head: other.to_string(),
            },
        };
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ContractCheckError::WrongSecret {
                url: self.base.clone(),
                refusal,
            },
            s if s.is_server_error() => ContractCheckError::Unreachable {
                url: self.base.clone(),
                reason: refusal.to_string(),
            },
            _ => ContractCheckError::NotAStore {
                url: self.base.clone(),
                what: refusal.to_string(),
            },
        })
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
            let url = self.snapshot_url(room);
            let mut req = self
                .client
                .post(&url)
                .bearer_auth(&self.secret)
                .header("content-type", "application/octet-stream");
            req = match &precondition {
                Precondition::IfMatch(id) => req.header("if-match", wire::etag(id)),
                Precondition::IfNoneMatch => req.header("if-none-match", "*"),
                // No header: the store refuses (409) a state that lacks its snapshot.
                Precondition::Contains => req,
            };
            let resp = req.body(state).send().await.map_err(unreachable)?;
            if !resp.status().is_success() {
                return Err(error_of("POST", &url, resp).await);
            }
            resp.json::<SaveReceipt>().await.map_err(unreachable)
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
            let url = self.url("/collaboration/verify");
            let resp = self
                .client
                .post(&url)
                .bearer_auth(&self.secret)
                .json(&body)
                .send()
                .await
                .map_err(unreachable)?;
            if !resp.status().is_success() {
                return Err(error_of("POST", &url, resp).await);
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
