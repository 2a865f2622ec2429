//! WebSocket connections: refuse bad rooms and tokens with a close code, then pump frames
//! between the socket and the room task.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use ykeep_core::{AddressError, RoomName};

use crate::Shared;
use crate::metrics::Metrics;
use crate::room::outbox::{Drained, OutFrame, Outbox};
use crate::room::{Registry, RoomMsg};

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
    /// `ykeep=acks`: acknowledgements by tier from the first message (`ykeep_core::acks`).
    ykeep: Option<String>,
}

impl WsQuery {
    fn acks(&self) -> Acks {
        match self.ykeep.as_deref() {
            Some(ykeep_core::acks::QUERY_VALUE) => Acks::OptedIn,
            _ => Acks::Off,
        }
    }
}

/// Whether the connection asked for acknowledgements in its URL (it may still ask in-band).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acks {
    Off,
    OptedIn,
}

/// `/rooms/{kind}/{id}` (y-websocket: `serverUrl` = `ws://host/rooms/{kind}`, room = id).
pub async fn rooms(
    State(shared): State<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let acks = q.acks();
    upgrade(shared, RoomName::from_parts(&kind, &id), q.token, acks, ws)
}

/// `/parties/{kind}/{id}` and `/parties/main/{kind}:{id}` (y-partykit).
pub async fn parties(
    State(shared): State<Arc<Shared>>,
    Path((party, room)): Path<(String, String)>,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let name = if party == "main" {
        RoomName::parse(&room)
    } else {
        RoomName::from_parts(&party, &room)
    };
    let acks = q.acks();
    upgrade(shared, name, q.token, acks, ws)
}

fn upgrade(
    shared: Arc<Shared>,
    room: Result<RoomName, AddressError>,
    token: Option<String>,
    acks: Acks,
    ws: WebSocketUpgrade,
) -> Response {
    // Let tungstenite accept a little more than the limit so that the relay itself sees the
    // oversized message and closes with 1009 and a reason.
    let limit = shared.config.max_frame_bytes.saturating_add(64 * 1024);
    // tungstenite allocates its 128 KiB default read buffer up front for every connection: 88%
    // of the heap with 1,000 idle rooms (massif). 16 KiB still reads bulk input in few calls.
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(16 * 1024)
        .on_upgrade(move |mut socket| async move {
            let room = match room {
                Ok(room) => room,
                Err(e) => {
                    Metrics::inc(&shared.metrics.refused_connections_total);
                    return close(&mut socket, 1008, &format!("{}: {e}", e.code())).await;
                }
            };
            if let Err(e) = shared.auth.check(token.as_deref(), &room).await {
                Metrics::inc(&shared.metrics.refused_connections_total);
                tracing::info!(%room, error = %e, "WebSocket refused");
                let refusal = e.close();
                return close(&mut socket, refusal.code, &refusal.reason).await;
            }
            connection(shared, room, acks, socket).await
        })
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
    // Wait briefly for the peer's close reply so the frame is not lost in a reset.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(msg)) = socket.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn connection(shared: Arc<Shared>, room: RoomName, acks: Acks, socket: WebSocket) {
    let conn = shared.next_conn_id();
    let outbox = Arc::new(Outbox::new(shared.config.max_backlog_bytes));
    let join = RoomMsg::Join {
        conn,
        outbox: outbox.clone(),
    };
    let Some(tx) = Registry::open_and_send(&shared, &room, join).await else {
        let mut socket = socket;
        return close(&mut socket, 1011, "the room is not available; reconnect").await;
    };
    // Right behind the Join on the room's channel: before any frame of the connection.
    if acks == Acks::OptedIn && tx.send(RoomMsg::OptIn { conn }).await.is_err() {
        let mut socket = socket;
        return close(&mut socket, 1011, "the room is not available; reconnect").await;
    }
    Metrics::inc(&shared.metrics.connections);
    let (mut sink, mut stream) = socket.split();
    let writer_outbox = outbox.clone();
    let mut writer = tokio::spawn(async move {
        loop {
            match writer_outbox.next().await {
                Drained::Frames(frames) => {
                    for frame in frames {
                        let (OutFrame::Update { frame, .. } | OutFrame::Other(frame)) = frame;
                        if sink.feed(Message::Binary(frame)).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
                Drained::Close(c) => {
                    let frame = CloseFrame {
                        code: c.code,
                        reason: c.reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
            }
        }
    });
    let max = shared.config.max_frame_bytes;
    let mut writer_done = false;
    // Whether the peer's side has ended (close frame, end of stream or a read error).
    let mut peer_done = true;
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            _ = &mut writer => {
                writer_done = true;
                peer_done = false;
                break;
            }
        };
        match msg {
            Some(Ok(Message::Binary(data))) => {
                if data.len() > max {
                    Metrics::inc(&shared.metrics.malformed_frames_total);
                    tracing::warn!(%room, conn, bytes = data.len(), "frame over the limit; closing (1009)");
                    outbox.close(
                        1009,
                        format!(
                            "message of {} bytes is over the {max}-byte limit",
                            data.len()
                        ),
                    );
                    peer_done = false;
                    break;
                }
                if tx.send(RoomMsg::Frame { conn, data }).await.is_err() {
                    outbox.close(1012, "the room restarted; reconnect");
                    peer_done = false;
                    break;
                }
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {} // text, ping, pong: not part of y-sync
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("too long")
                    || text.contains("Space limit")
                    || text.contains("size")
                {
                    Metrics::inc(&shared.metrics.malformed_frames_total);
                    outbox.close(1009, format!("message over the {max}-byte limit"));
                }
                tracing::debug!(%room, conn, error = %text, "socket read ended");
                break;
            }
        }
    }
    let _ = tx.send(RoomMsg::Leave { conn }).await;
    outbox.close(1000, "");
    if !writer_done
        && tokio::time::timeout(Duration::from_secs(5), &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    if !peer_done {
        // The relay closed first (bad frame, slow reader, shutdown). Read on until the peer's
        // close reply: dropping a socket with unread input makes the kernel send a reset, and
        // the peer then loses the close frame and its reason (it sees 1006).
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(msg)) = stream.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    Metrics::dec(&shared.metrics.connections);
}
