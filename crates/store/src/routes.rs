//! The HTTP face of the store: the routes of `docs/store-api.md`.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD,
    CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use ykeep_core::wire::{self, Precondition};
use ykeep_core::{ContractInfo, ResourceId, ResourceKind};

use crate::auth;
use crate::error::ServiceError;
use crate::service::EmbeddedStore;

const SAVED_AT: HeaderName = HeaderName::from_static("x-ykeep-saved-at");
/// The `store` of the `GET /contract` answer.
const STORE_NAME: &str = "embedded";

impl EmbeddedStore {
    /// The contract's routes with CORS, for mounting beside the relay's (`serve`).
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/snapshots/{kind}/{id}",
                get(load).post(save).delete(delete),
            )
            .route("/contract", get(contract))
            .route("/resources/{kind}", post(create))
            .route("/collaboration/verify", post(verify))
            .layer(middleware::from_fn(cors))
            .with_state(self.clone())
    }

    /// [`Self::router`] plus `/healthz`, for the store running alone.
    pub fn standalone_router(&self) -> Router {
        self.router().route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
    }
}

/// CORS for every route: any origin may load with a bearer token; preflights get 204.
async fn cors(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    let any = HeaderValue::from_static("*");
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, any.clone());
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("etag, x-ykeep-saved-at"),
    );
    if preflight {
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, if-match, if-none-match"),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response
}

/// `GET /contract`: which contract version this store speaks (shared secret only), so a relay
/// can tell a ykeep store with the right secret from a wrong URL before it serves.
async fn contract(
    State(store): State<EmbeddedStore>,
    headers: HeaderMap,
) -> Result<Json<ContractInfo>, ServiceError> {
    auth::require_secret(&headers, &store.config().secret)?;
    Ok(Json(ContractInfo::new(STORE_NAME)))
}

fn address(kind: &str, id: &str) -> Result<(ResourceKind, ResourceId), ServiceError> {
    Ok((kind.parse()?, ResourceId::parse(id)?))
}

fn precondition(headers: &HeaderMap) -> Result<Precondition, ServiceError> {
    let text = |name| {
        headers
            .get(&name)
            .map(|v: &HeaderValue| {
                v.to_str()
                    .map_err(|_| ServiceError::BadRequest(format!("{name} is not text")))
            })
            .transpose()
    };
    match (text(IF_MATCH)?, text(IF_NONE_MATCH)?) {
        (Some(_), Some(_)) => Err(ServiceError::BadRequest(
            "send If-Match or If-None-Match, not both".into(),
        )),
        (Some(tag), None) => {
            let tag = wire::unquote_etag(tag);
            if tag.is_empty() {
                return Err(ServiceError::BadRequest("If-Match is empty".into()));
            }
            Ok(Precondition::IfMatch(tag.to_owned()))
        }
        (None, Some(tag)) if wire::etag_list(tag).is_none() => Ok(Precondition::IfNoneMatch),
        (None, Some(_)) => Err(ServiceError::BadRequest(
            "If-None-Match accepts only *".into(),
        )),
        (None, None) => Ok(Precondition::Contains),
    }
}

/// Reads at most `limit` bytes; larger bodies are refused before they are buffered whole.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ServiceError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|&s| s > limit) {
        return Err(ServiceError::TooLarge { size, limit });
    }
    axum::body::to_bytes(body, limit)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| ServiceError::TooLarge {
            size: limit + 1,
            limit,
        })
}

fn etag(id: &str) -> HeaderValue {
    HeaderValue::from_str(&wire::etag(id)).expect("snapshot ids are hex")
}

async fn save(
    State(store): State<EmbeddedStore>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ServiceError> {
    let (kind, id) = address(&kind, &id)?;
    auth::require_secret(&headers, &store.config().secret)?;
    let precondition = precondition(&headers)?;
    let bytes = read_body(&headers, body, store.config().max_snapshot_bytes).await?;
    let receipt = store.save(kind, id, bytes, precondition).await?;
    let tag = etag(&receipt.snapshot_id);
    Ok(([(ETAG, tag)], Json(receipt)).into_response())
}

async fn load(
    State(store): State<EmbeddedStore>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ServiceError> {
    let (kind, id) = address(&kind, &id)?;
    let config = store.config();
    auth::require_reader(&headers, &config.secret, &config.token_key, kind, &id)?;
    let snapshot = store.load(kind, id).await?;
    if not_modified(&headers, &snapshot.id) {
        // The caller holds this snapshot already (a relay checking for other relays' saves).
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag(&snapshot.id))]).into_response());
    }
    let headers = [
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (ETAG, etag(&snapshot.id)),
        (SAVED_AT, HeaderValue::from(snapshot.saved_at)),
    ];
    Ok((headers, snapshot.bytes).into_response())
}

/// Whether a load's `If-None-Match` names the current snapshot (one tag, quoted or not).
fn not_modified(headers: &HeaderMap, current: &str) -> bool {
    headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(wire::etag_list)
        .is_some_and(|tags| tags.contains(&current))
}

async fn delete(
    State(store): State<EmbeddedStore>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ServiceError> {
    let (kind, id) = address(&kind, &id)?;
    auth::require_secret(&headers, &store.config().secret)?;
    store.delete(kind, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct CreateBody {
    id: Option<String>,
}

async fn create(
    State(store): State<EmbeddedStore>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ServiceError> {
    let kind: ResourceKind = kind.parse()?;
    auth::require_secret(&headers, &store.config().secret)?;
    let bytes = read_body(&headers, body, 64 * 1024).await?;
    let request: CreateBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateBody { id: None }
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ServiceError::BadRequest(format!("bad JSON body: {e}")))?
    };
    let id = match request.id {
        Some(id) => ResourceId::parse(&id)?,
        None => ResourceId::parse(&random_id())?,
    };
    store.create(kind, id.clone()).await?;
    let body = serde_json::json!({"kind": kind, "id": id});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
struct VerifyBody {
    token: String,
    kind: String,
    id: String,
}

async fn verify(
    State(store): State<EmbeddedStore>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ServiceError> {
    auth::require_secret(&headers, &store.config().secret)?;
    let bytes = read_body(&headers, body, 64 * 1024).await?;
    let request: VerifyBody = serde_json::from_slice(&bytes)
        .map_err(|e| ServiceError::BadRequest(format!("bad JSON body: {e}")))?;
    let (kind, id) = address(&request.kind, &request.id)?;
    let body = match store.verify_token(&request.token, kind, &id) {
        Ok(claims) => serde_json::json!({"allowed": true, "userId": claims.sub}),
        Err(e) => serde_json::json!({"allowed": false, "userId": null, "reason": e.reason()}),
    };
    Ok(Json(body).into_response())
}

fn random_id() -> String {
    crate::random::hex(12)
}
