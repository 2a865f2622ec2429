//! WebSocket connections: refuse bad rooms and tokens with a close code, then pump frames
//! between the socket and the room task.

use std::collections::VecDeque;
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
use crate::http::upgrade::{Sink, Stream, WsUpgrade};
use crate::metrics::Metrics;
use crate::room::channel::{Closed, Sender, TrySendError};
use crate::room::outbox::{Close, Drained, OutFrame, Outbox};
use crate::room::{ConnId, Registry, RoomMsg};

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
    ws.on_upgrade(config, move |mut sink, mut stream| async move {
        match Box::pin(admit(&shared, room, token.as_deref())).await {
            Ok(room) => {
                tokio::spawn(connection(shared, room, acks, sink, stream));
            }
            Err(refusal) => {
                Box::pin(close(&mut sink, &mut stream, refusal.code, &refusal.reason)).await
            }
        }
    })
}

/// The room, or the close that refuses the connection.
async fn admit(
    shared: &Shared,
    room: Result<RoomName, AddressError>,
    token: Option<&str>,
) -> Result<RoomName, Close> {
    let room = match room {
        Ok(room) => room,
        Err(e) => {
            Metrics::inc(&shared.metrics.refused_connections_total);
            return Err(Close {
                code: 1008,
                reason: format!("{}: {e}", e.code()),
            });
        }
    };
    if let Err(e) = shared.auth.check(token, &room).await {
        Metrics::inc(&shared.metrics.refused_connections_total);
        tracing::info!(%room, error = %e, "WebSocket refused");
        return Err(e.close());
    }
    Ok(room)
}

/// Refuses the connection: sends the close and waits for the peer's reply.
async fn close(sink: &mut Sink, stream: &mut Stream, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.to_owned().into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    close_reply(stream).await;
}

/// Waits briefly for the peer's close reply: dropping a socket with unread input makes the
/// kernel send a reset, and the peer then loses the close frame and its reason (it sees 1006).
async fn close_reply(stream: &mut Stream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Joins the room (and opts in to acknowledgements right behind the `Join` on the room's
/// channel: before any frame of the connection). None: the room is not available.
async fn join(
    shared: &Arc<Shared>,
    room: &RoomName,
    conn: ConnId,
    outbox: &Arc<Outbox>,
    acks: Acks,
) -> Option<Sender<RoomMsg>> {
    let join = RoomMsg::Join {
        conn,
        outbox: outbox.clone(),
    };
    let tx = Registry::open_and_send(shared, room, join).await?;
    if acks == Acks::OptedIn && tx.send(RoomMsg::OptIn { conn }).await.is_err() {
        return None;
    }
    Some(tx)
}

/// A connection's life, in a task of its own: every connection has one for as long as it is
/// open, so what its future holds is paid per idle room (`scripts/bench relay --idle`). The
/// upgrade and admission are another task that ends here. The join, a wait for room in the
/// room's channel, a write and the close handshake are boxed and exist only while they run,
/// and the writer is a future of the same task that borrows the sink. Not an `async fn` (nor
/// are [`read`] and [`send`]): that keeps a copy of every argument beside the one it uses.
/// Before, the upgrade task ran the connection (a 2,416-byte future) and the writer had a task
/// of its own (632 bytes); now this future is 632 bytes in a 768-byte task cell
/// (`-Zprint-type-sizes`). With the room's channel (`room/channel.rs`) and the doc sleeping
/// rooms share, an idle room went from 16.8 to 13.3 KB of RSS (2,000 rooms, `--idle-wait-s 40`).
#[allow(clippy::manual_async_fn)] // on purpose, see above
fn connection(
    shared: Arc<Shared>,
    room: RoomName,
    acks: Acks,
    mut sink: Sink,
    mut stream: Stream,
) -> impl Future<Output = ()> + Send {
    async move {
        let conn = shared.next_conn_id();
        let outbox = Arc::new(Outbox::new(shared.config.max_backlog_bytes));
        let Some(tx) = Box::pin(join(&shared, &room, conn, &outbox, acks)).await else {
            let reason = "the room is not available; reconnect";
            return Box::pin(close(&mut sink, &mut stream, 1011, reason)).await;
        };
        Metrics::inc(&shared.metrics.connections);
        let mut writer = std::pin::pin!(write(&mut sink, &outbox));
        let reader = read(&shared, &room, conn, &tx, &outbox, &mut stream);
        let ended = tokio::select! {
            ended = reader => ended,
            () = &mut writer => Ended::Writer,
        };
        let _ = send(&tx, RoomMsg::Leave { conn }).await;
        outbox.close(1000, "");
        Box::pin(finish(ended, writer, &mut stream)).await;
        Metrics::dec(&shared.metrics.connections);
    }
}

/// Which side ended the connection.
enum Ended {
    /// The peer: a close frame, the end of the stream or a read error.
    Peer,
    /// The relay, with a close frame queued (a bad frame, the room gone).
    Relay,
    /// The writer: it sent the relay's close (slow reader, shutdown) or could not write.
    Writer,
}

/// Pumps the peer's frames into the room until one side ends. (Not an `async fn`, nor is
/// [`send`]: see [`connection`].)
#[allow(clippy::manual_async_fn)]
fn read<'a>(
    shared: &'a Shared,
    room: &'a RoomName,
    conn: ConnId,
    tx: &'a Sender<RoomMsg>,
    outbox: &'a Outbox,
    stream: &'a mut Stream,
) -> impl Future<Output = Ended> + Send + 'a {
    async move {
        let max = shared.config.max_frame_bytes;
        loop {
            match stream.next().await {
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
                        return Ended::Relay;
                    }
                    if send(tx, RoomMsg::Frame { conn, data }).await.is_err() {
                        outbox.close(1012, "the room restarted; reconnect");
                        return Ended::Relay;
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Ended::Peer,
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
                    return Ended::Peer;
                }
            }
        }
    }
}

/// Queues `msg` in the room's channel; waits (boxed) only when the channel is full.
#[allow(clippy::manual_async_fn)]
fn send(
    tx: &Sender<RoomMsg>,
    msg: RoomMsg,
) -> impl Future<Output = Result<(), Closed<RoomMsg>>> + Send + '_ {
    async move {
        match tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(msg)) => Err(Closed(msg)),
            Err(TrySendError::Full(msg)) => Box::pin(tx.send(msg)).await,
        }
    }
}

/// Writes what the room queues for the connection, until its close.
async fn write(sink: &mut Sink, outbox: &Outbox) {
    loop {
        match outbox.next().await {
            Drained::Frames(frames) => {
                if Box::pin(write_out(sink, frames)).await.is_err() {
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
}

/// Writes frames (each in fragments when large) and flushes.
async fn write_out(
    sink: &mut Sink,
    frames: VecDeque<OutFrame>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    for frame in frames {
        let (OutFrame::Update { frame, .. } | OutFrame::Other(frame)) = frame;
        for part in fragments(frame) {
            sink.feed(part).await?;
        }
    }
    sink.flush().await
}

/// The close handshake: the writer sends what is queued and the close (5 s at most), and when
/// the relay closed first, the peer's close reply is awaited.
async fn finish(
    ended: Ended,
    writer: std::pin::Pin<&mut impl Future<Output = ()>>,
    stream: &mut Stream,
) {
    if !matches!(ended, Ended::Writer) {
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
    if !matches!(ended, Ended::Peer) {
        // The relay closed first (bad frame, slow reader, shutdown).
        close_reply(stream).await;
    }
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
