//! A stand-in snapshot store on a real socket (the store contract over `MemoryStore`), for
//! tests of the real binary: it can be read directly and taken down.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ykeep_core::{ErrorBody, RoomName};
use ykeep_relay::store_client::{MemoryStore, Precondition, SnapshotStore, StoreError};

pub const SECRET: &str = "test-secret";

pub struct FakeStore {
    pub store: Arc<MemoryStore>,
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStore {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeStore {
    pub async fn start() -> FakeStore {
        let store = Arc::new(MemoryStore::new());
        let app = Router::new()
            .route("/snapshots/{kind}/{id}", get(load).post(save))
            .route("/collaboration/verify", post(verify))
            .route("/contract", get(contract))
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeStore { store, url, server }
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(ErrorBody::new(code, code))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {SECRET}"))
}

async fn load(
    State(store): State<Arc<MemoryStore>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let room = RoomName::from_parts(&kind, &id).unwrap();
    match store.load(&room).await {
        Ok(Some(s)) => ([("etag", format!("\"{}\"", s.snapshot_id))], s.bytes).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no_snapshot"),
        Err(StoreError::Deleted) => error(StatusCode::NOT_FOUND, "resource_deleted"),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "down"),
    }
}

async fn save(
    State(store): State<Arc<MemoryStore>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let room = RoomName::from_parts(&kind, &id).unwrap();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let pre = match (header("if-match"), header("if-none-match")) {
        (Some(id), _) => Precondition::IfMatch(id.trim_matches('"').to_owned()),
        (None, Some(_)) => Precondition::IfNoneMatch,
        (None, None) => return error(StatusCode::BAD_REQUEST, "bad_request"),
    };
    let size = body.len();
    match store.save(&room, body.to_vec(), pre).await {
        Ok(r) => axum::Json(serde_json::json!({
            "snapshotId": r.snapshot_id, "size": size, "stateVector": "", "savedAt": 1
        }))
        .into_response(),
        Err(StoreError::Conflict { current }) => (
            StatusCode::CONFLICT,
            axum::Json(ErrorBody::new("conflict", "changed").with_current_snapshot(current)),
        )
            .into_response(),
        Err(StoreError::Deleted) => error(StatusCode::NOT_FOUND, "resource_deleted"),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "down"),
    }
}

async fn contract(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    axum::Json(ykeep_core::ContractInfo::new("fake")).into_response()
}

async fn verify(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    axum::Json(serde_json::json!({"allowed": true, "userId": "u"})).into_response()
}
