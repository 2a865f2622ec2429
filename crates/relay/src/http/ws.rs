//! WebSocket connections: refuse bad rooms and tokens with a close code, then pump frames
//! between the socket and the room task.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use ykeep_core::{AddressError, RoomName};

use crate::Shared;
use crate::http::upgrade::{Socket, WsUpgrade};
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
    ws: WsUpgrade,
) -> Response {
    let acks = q.acks();
    upgrade(shared, RoomName::from_parts(&kind, &id), q.token, acks, ws)
}

/// `/parties/{kind}/{id}` and `/parties/main/{kind}:{id}` (y-partykit).
pub async fn parties(
    State(shared): State<Arc<Shared>>,
    Path((party, room)): Path<(String, String)>,
    Query(q): Query<WsQuery>,
    ws: WsUpgrade,
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
    ws: WsUpgrade,
) -> Response {
    // Let tungstenite accept a little more than the limit so that the relay itself sees the
    // oversized message and closes with 1009 and a reason.
    let limit = shared.config.max_frame_bytes.saturating_add(64 * 1024);
    // tungstenite allocates its read buffer up front for every connection (128 KiB by default:
    // 88% of the heap with 1,000 idle rooms, massif). At 16 KiB an idle room cost 33.2 KB of
    // RSS, at 4 KiB 21.2 KB (`scripts/bench relay --idle 10000`); a raw blast of 100,000
    // updates ran at 150k/s against 147k/s (4.5 against 4.8 µs of CPU per update, within the
    // runs' spread). From 4 KiB to 1 KiB (idle rooms sleeping): 17.0 -> 15.1 KB per idle room;
    // the automerge-paper flood to 2 readers, two runs each, interleaved: 299k and 297k
    // updates/s at 4 KiB, 303k and 289k at 1 KiB (3.4-3.5 against 3.6-3.8 µs of CPU per
    // update; the 3,800 more reads of its 5 MB cost under 1 % of that). A 2 MB message takes
    // some 2,000 reads instead of 500: a few ms against the 100+ ms its apply takes.
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
        .read_buffer_size(1024);
    ws.on_upgrade(config, move |mut socket| async move {
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

async fn close(socket: &mut Socket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: code.into(),
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

async fn connection(shared: Arc<Shared>, room: RoomName, acks: Acks, mut socket: Socket) {
    let conn = shared.next_conn_id();
    let outbox = Arc::new(Outbox::new(shared.config.max_backlog_bytes));
    let join = RoomMsg::Join {
        conn,
        outbox: outbox.clone(),
    };
    let Some(tx) = Registry::open_and_send(&shared, &room, join).await else {
        return close(&mut socket, 1011, "the room is not available; reconnect").await;
    };
    // Right behind the Join on the room's channel: before any frame of the connection.
    if acks == Acks::OptedIn && tx.send(RoomMsg::OptIn { conn }).await.is_err() {
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
                        for part in fragments(frame) {
                            if sink.feed(part).await.is_err() {
                                return;
                            }
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
                Drained::Close(c) => {
                    let frame = CloseFrame {
                        code: c.code.into(),
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

/// Messages above this go out in fragments of this size (`upgrade.rs` says why). 64 KiB: a
/// reply this large is already a large document, and a fragment per write keeps the copy
/// tungstenite makes of it small.
const FRAGMENT_BYTES: usize = 64 * 1024;

/// The WebSocket frames of one binary message: itself, or its fragments (each a slice of the
/// same shared bytes).
fn fragments(message: Bytes) -> impl Iterator<Item = Message> {
    let len = message.len();
    let whole = (len <= FRAGMENT_BYTES).then(|| Message::Binary(message.clone()));
    let parts = (len > FRAGMENT_BYTES).then(move || {
        (0..len).step_by(FRAGMENT_BYTES).map(move |at| {
            let end = (at + FRAGMENT_BYTES).min(len);
            let opcode = if at == 0 {
                Data::Binary
            } else {
                Data::Continue
            };
            Message::Frame(Frame::message(
                message.slice(at..end),
                OpCode::Data(opcode),
                end == len,
            ))
        })
    });
    whole.into_iter().chain(parts.into_iter().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(message: &[u8]) -> Vec<(Data, bool, Vec<u8>)> {
        fragments(Bytes::copy_from_slice(message))
            .map(|m| match m {
                Message::Binary(b) => (Data::Binary, true, b.to_vec()),
                Message::Frame(f) => {
                    let OpCode::Data(d) = f.header().opcode else {
                        panic!("a control frame")
                    };
                    (d, f.header().is_final, f.payload().to_vec())
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_message_up_to_the_fragment_size_goes_whole() {
        let m = vec![7u8; FRAGMENT_BYTES];
        assert_eq!(payloads(&m), vec![(Data::Binary, true, m.clone())]);
        assert_eq!(payloads(&[]), vec![(Data::Binary, true, vec![])]);
    }

    #[test]
    fn a_larger_message_goes_in_fragments_that_rebuild_it() {
        let m: Vec<u8> = (0..(2 * FRAGMENT_BYTES + 5)).map(|i| i as u8).collect();
        let parts = payloads(&m);
        let kinds: Vec<_> = parts
            .iter()
            .map(|(d, fin, p)| (*d, *fin, p.len()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (Data::Binary, false, FRAGMENT_BYTES),
                (Data::Continue, false, FRAGMENT_BYTES),
                (Data::Continue, true, 5),
            ]
        );
        let rebuilt: Vec<u8> = parts.into_iter().flat_map(|(_, _, p)| p).collect();
        assert_eq!(rebuilt, m);
    }
}
