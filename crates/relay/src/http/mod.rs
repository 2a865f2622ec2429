//! The relay's routes: WebSocket rooms, room state, durability markers, health and metrics.

mod routes;
pub(crate) mod upgrade;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, Method};
use axum::routing::get;
use tower_http::cors::{Any, CorsLayer};

use crate::Shared;

/// The relay's router (the store's routes are mounted beside it by `serve`).
pub fn router(shared: Arc<Shared>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::OPTIONS])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::header::IF_NONE_MATCH,
        ])
        .expose_headers([HeaderName::from_static("etag")]);
    Router::new()
        .route("/rooms/{kind}/{id}", get(ws::rooms))
        .route("/parties/{party}/{room}", get(ws::parties))
        .route("/rooms/{kind}/{id}/state", get(routes::state))
        .route("/rooms/{kind}/{id}/durable", get(routes::durable))
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .layer(cors)
        .with_state(shared)
}
