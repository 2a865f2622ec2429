//! Plain HTTP routes of the relay.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;
use ykeep_core::wire::{self, DurableBody};
use ykeep_core::{RoomName, StateTag, b64};

use crate::Shared;
use crate::error::ApiError;
use crate::room::{DurableInfo, Reply, RoomMsg, StateAsk};

#[derive(Deserialize)]
pub struct StateQuery {
    sv: Option<String>,
}

/// The user token of `Authorization: Bearer <token>` (any case of the scheme, RFC 9110).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    wire::bearer(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

async fn authorized(
    shared: &Shared,
    headers: &HeaderMap,
    kind: &str,
    id: &str,
) -> Result<RoomName, ApiError> {
    let room = RoomName::from_parts(kind, id)?;
    shared.auth.check(bearer(headers), &room).await?;
    Ok(room)
}

/// `GET /rooms/{kind}/{id}/state[?sv=]`: the live room's state (or the diff against `sv`);
/// `304` when `If-None-Match` names the state's tag ([`StateTag`]: the asker holds it all).
pub async fn state(
    State(shared): State<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<StateQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let room = authorized(&shared, &headers, &kind, &id).await?;
    let sv = match q.sv.as_deref() {
        Some(text) => {
            let sv = b64::decode(text).map_err(|e| ApiError::BadStateVector(e.to_string()))?;
            if !crate::protocol::plausible_count(&sv) {
                return Err(ApiError::BadStateVector(
                    "declares more entries than it holds".into(),
                ));
            }
            Some(sv)
        }
        None => None,
    };
    let unless = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(StateTag::from_if_none_match);
    let tx = shared.rooms.get(&room).ok_or(ApiError::NotLive)?;
    let (reply, wait) = oneshot::channel();
    tx.send(RoomMsg::State(Box::new(StateAsk { sv, unless, reply })))
        .await
        .map_err(|_| ApiError::NotLive)?;
    match wait.await.map_err(|_| ApiError::NotLive)? {
        Reply::Unchanged(tag) => {
            Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag.etag())]).into_response())
        }
        Reply::State(Ok(update)) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], update).into_response())
        }
        Reply::State(Err(e)) => Err(ApiError::BadStateVector(e.to_string())),
        Reply::Durable(_) | Reply::Ended => Err(ApiError::NotLive),
    }
}

/// `GET /rooms/{kind}/{id}/durable`: what the relay's log holds and what the store confirmed.
pub async fn durable(
    State(shared): State<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DurableBody>, ApiError> {
    let room = authorized(&shared, &headers, &kind, &id).await?;
    if let Some(tx) = shared.rooms.get(&room) {
        let (reply, wait) = oneshot::channel();
        if tx.send(RoomMsg::Durable { reply }).await.is_ok()
            && let Ok(info) = wait.await
        {
            return Ok(Json(info.body()));
        }
    }
    // Not in memory: read the log.
    let records = shared
        .log
        .load(&room.to_string())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let info = tokio::task::spawn_blocking(move || DurableInfo::of_records(&records, &room))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(info.body()))
}

pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "ok": true }))
}

pub async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
}
