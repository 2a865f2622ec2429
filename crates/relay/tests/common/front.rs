#![allow(dead_code)]
//! Something in front of (or instead of) a store, on a real socket: a wrong URL, a proxy that
//! answers its own 404 pages, a server that is not a store at all. Each request goes to one
//! closure that decides the answer; `forward` passes a request on to a real store.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

pub type Answer = Arc<dyn Fn(Seen) -> BoxFuture<'static, Response> + Send + Sync>;

/// One request as the front saw it.
pub struct Seen {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct Front {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Front {
    pub async fn start(
        answer: impl Fn(Seen) -> BoxFuture<'static, Response> + Send + Sync + 'static,
    ) -> Front {
        let answer: Answer = Arc::new(answer);
        let app = Router::new().fallback(handle).with_state(answer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Front { url, server }
    }
}

async fn handle(State(answer): State<Answer>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    answer(Seen {
        method: parts.method,
        path,
        headers: parts.headers,
        body,
    })
    .await
}

/// A fixed answer: status, content type and body.
pub fn fixed(status: u16, content_type: &str, body: &str) -> BoxFuture<'static, Response> {
    let response = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", content_type.to_owned())],
        body.to_owned(),
    )
        .into_response();
    async move { response }.boxed()
}

/// The page a web server or proxy answers for a path it does not know.
pub const HTML_404: &str = "<!DOCTYPE html><html><head><title>404 Not Found</title></head>\
    <body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>";

/// Passes the request on to `upstream` (a real store) and returns its answer.
pub fn forward(upstream: &str, seen: Seen) -> BoxFuture<'static, Response> {
    let url = format!("{upstream}{}", seen.path);
    async move {
        let client = reqwest::Client::new();
        let mut req = client.request(seen.method, &url).body(seen.body);
        for (name, value) in &seen.headers {
            if name != "host" && name != "content-length" {
                req = req.header(name, value);
            }
        }
        let Ok(resp) = req.send().await else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        let mut out = Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            if name != "content-length" && name != "transfer-encoding" {
                out = out.header(name, value);
            }
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        out.body(Body::from(bytes)).unwrap()
    }
    .boxed()
}
