//! The WebSocket upgrade, done here rather than by axum: the relay drives tokio-tungstenite's
//! stream itself, because it sends large messages in fragments (`ws::send`) and axum's
//! `Message` has no raw frames.
//!
//! Why fragments: tungstenite copies a whole frame into the connection's write buffer, and that
//! buffer keeps its capacity for the connection's life. A SyncStep2 of a 2.2 MB document, sent
//! as one frame to 100 joiners, made 100 copies (+210 MB of RSS in `scripts/bench storm`), and
//! each connection then held 2.2 MB until it closed. In fragments, a connection holds one
//! fragment at a time; every client reassembles them (RFC 6455, section 5.4).

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream::{SplitSink, SplitStream};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::ApiError;

/// A relay connection's socket.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;
/// Its sending half.
pub type Sink = SplitSink<Socket, Message>;
/// Its receiving half.
pub type Stream = SplitStream<Socket>;

/// Why a request to a room's address is not a WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotWebSocket {
    #[error("a WebSocket upgrade must be a GET")]
    NotGet,
    #[error(
        "this address is a WebSocket: the request has no `Connection: upgrade` and `Upgrade: websocket`"
    )]
    NoUpgrade,
    #[error("only WebSocket version 13 is spoken here (Sec-WebSocket-Version)")]
    Version,
    #[error("the WebSocket upgrade has no Sec-WebSocket-Key")]
    NoKey,
    #[error("this connection cannot be upgraded")]
    NotUpgradable,
}

impl NotWebSocket {
    pub fn status(self) -> StatusCode {
        match self {
            NotWebSocket::NotGet => StatusCode::METHOD_NOT_ALLOWED,
            NotWebSocket::NoUpgrade | NotWebSocket::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            NotWebSocket::Version | NotWebSocket::NoKey => StatusCode::BAD_REQUEST,
        }
    }
}

/// The extractor: a valid WebSocket upgrade request (RFC 6455, section 4.2.1).
pub struct WsUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn has_token(
    headers: &HeaderMap,
    name: impl axum::http::header::AsHeaderName,
    token: &str,
) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if parts.method != Method::GET {
            return Err(NotWebSocket::NotGet.into());
        }
        let h = &parts.headers;
        if !has_token(h, CONNECTION, "upgrade") || !has_token(h, UPGRADE, "websocket") {
            return Err(NotWebSocket::NoUpgrade.into());
        }
        if h.get(SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(NotWebSocket::Version.into());
        }
        let key = h
            .get(SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(NotWebSocket::NoKey)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotWebSocket::NotUpgradable)?;
        Ok(WsUpgrade { key, on_upgrade })
    }
}

impl WsUpgrade {
    /// Answers 101 and runs `serve` on the socket's halves once the upgrade completes.
    ///
    /// Split here, before `serve`: a future keeps its arguments for its whole life, and the
    /// socket is 328 bytes where its halves are 72 (the socket itself goes behind a lock that
    /// both share).
    pub fn on_upgrade<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Sink, Stream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let socket =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                    let (sink, stream) = socket.split();
                    serve(sink, stream).await
                }
                Err(e) => tracing::debug!(error = %e, "WebSocket upgrade did not complete"),
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty())
            .expect("a valid response")
    }
}
