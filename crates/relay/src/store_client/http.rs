//! [`SnapshotStore`] over the store's HTTP contract.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use ykeep_core::{CONTRACT_VERSION, ContractInfo, RoomName};
use ykeep_room::store_http::{self, Answer, Request};

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

    /// Sends one request of the contract; the answer's status, headers and body.
    async fn send(&self, request: Request) -> Result<Reply, StoreError> {
        let url = self.url(&request.path);
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        let mut req = self.client.request(method, &url).bearer_auth(&self.secret);
        for (name, value) in request.headers {
            req = req.header(name, value);
        }
        if let Some(body) = request.body {
            req = req.body(body);
        }
        let resp = req.send().await.map_err(unreachable)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, saved_at) = (header("etag"), header("x-ykeep-saved-at"));
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(unreachable)?;
        Ok(Reply {
            url,
            status,
            etag,
            saved_at,
            body,
        })
    }
}

impl HttpStore {
    async fn fetch(
        &self,
        room: &RoomName,
        known: Option<&str>,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let reply = self.send(store_http::load(room, known)).await?;
        store_http::load_answer(&reply.url, reply.answer())
    }
}

/// One answer of the store, read whole.
struct Reply {
    url: String,
    status: u16,
    etag: Option<String>,
    saved_at: Option<String>,
    body: axum::body::Bytes,
}

impl Reply {
    fn answer(&self) -> Answer<'_> {
        Answer {
            status: self.status,
            etag: self.etag.as_deref(),
            saved_at: self.saved_at.as_deref(),
            body: &self.body,
        }
    }
}

fn unreachable(e: reqwest::Error) -> StoreError {
    StoreError::Unreachable(e.to_string())
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
        let body = resp.bytes().await.unwrap_or_default();
        let refusal = match store_http::error_of("GET", &url, status.as_u16(), &body) {
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

    /// `If-None-Match` makes an unchanged snapshot a 304.
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
            let reply = self
                .send(store_http::save(room, state, &precondition))
                .await?;
            store_http::save_answer(&reply.url, reply.status, &reply.body)
        }
        .boxed()
    }

    fn verify<'a>(
        &'a self,
        token: &'a str,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        async move {
            let reply = self.send(store_http::verify(token, room)).await?;
            store_http::verify_answer(&reply.url, reply.status, &reply.body)
        }
        .boxed()
    }
}
