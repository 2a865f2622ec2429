//! The y-sync side of a room: joins, leaves and the frames of its connections.
//!
//! - A joiner gets the room's SyncStep1 and the awareness of everyone.
//! - A SyncStep1 gets the SyncStep2 the sender lacks.
//! - A SyncStep2 or Update is checked before it touches the doc, applied, logged, and forwarded
//!   to every other connection as an Update (a SyncStep2 is a reply to one peer, the others need
//!   an Update).
//! - Awareness is kept per client id with the connection that announced it; when a connection
//!   leaves, everyone hears a removal for each of its client ids.
//! - Anything the room refuses closes that connection with 1008 and changes nothing.

use bytes::Bytes;
use ykeep_core::SaveEvent;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Transact};

use crate::protocol::{self, Frame};
use crate::room::{Effect, Room};
use crate::{Close, ConnId, OutFrame, Target, close_code};

impl Room {
    pub(crate) fn join(&mut self, conn: ConnId, now: u64) {
        self.conns.insert(conn);
        let sv = self.doc.transact().state_vector().encode_v1();
        self.deliver(Target::One(conn), other(protocol::encode_step1(&sv)));
        if let Some(aw) = self.awareness.full_update() {
            self.deliver(Target::One(conn), other(protocol::encode_awareness(&aw)));
        }
        self.schedule_event(SaveEvent::Connected, now);
    }

    pub(crate) fn drop_conn(&mut self, conn: ConnId, now: u64) {
        if !self.conns.remove(&conn) {
            return;
        }
        self.acks.leave(conn);
        if let Some(removal) = self.awareness.remove_conn(conn) {
            self.deliver(Target::All, other(protocol::encode_awareness(&removal)));
        }
        self.schedule_event(SaveEvent::Disconnected, now);
    }

    pub(crate) fn handle_frame(&mut self, conn: ConnId, data: Bytes, now: u64) {
        if !self.conns.contains(&conn) {
            return; // refused or gone: ignore what it still sends
        }
        let frame = match protocol::parse(&data) {
            Ok(frame) => frame,
            Err(e) => return self.refuse(conn, &e.to_string(), now),
        };
        match frame {
            Frame::SyncStep1 { sv } if !protocol::plausible_count(&data[sv.clone()]) => self
                .refuse(
                    conn,
                    "state vector declares more entries than it holds",
                    now,
                ),
            Frame::SyncStep1 { sv: range } => match StateVector::decode_v1(&data[range.clone()]) {
                Ok(sv) => {
                    // Shared by every joiner with this state vector while the doc is unchanged.
                    let reply = self.doc.step2(&data[range], &sv);
                    self.deliver(Target::One(conn), OutFrame::Other(reply));
                }
                Err(e) => self.refuse(conn, &format!("bad state vector: {e}"), now),
            },
            Frame::SyncStep2 { ref update } | Frame::Update { ref update, .. } => {
                let range = update.clone();
                let payload = &data[range.clone()];
                let update = match protocol::checked_update(&self.doc, payload) {
                    Ok(u) => u,
                    Err(e) => return self.refuse(conn, &format!("bad Yjs update: {e}"), now),
                };
                if update.is_empty() {
                    return;
                }
                let applied = self.doc.transact_mut().apply_update(update);
                if let Err(e) = applied {
                    return self.refuse(conn, &format!("Yjs update does not apply: {e}"), now);
                }
                protocol::write_len_prefixed(&mut self.batch.log, payload);
                self.batch.tally.updates += 1;
                self.batch.tally.update_bytes += payload.len() as u64;
                let out = match frame {
                    Frame::Update { end, .. } => OutFrame::Update {
                        frame: data.slice(..end),
                        payload_at: range.start,
                    },
                    _ => update_frame(payload),
                };
                self.deliver(Target::AllBut(conn), out);
            }
            Frame::Awareness { payload } => {
                let bytes = &data[payload.clone()];
                if !protocol::plausible_count(bytes) || !self.awareness.apply(conn, bytes) {
                    return self.refuse(conn, "bad awareness update", now);
                }
                self.deliver(
                    Target::AllBut(conn),
                    OutFrame::Other(data.slice(..payload.end)),
                );
            }
            Frame::AwarenessQuery => {
                if let Some(aw) = self.awareness.full_update() {
                    self.deliver(Target::One(conn), other(protocol::encode_awareness(&aw)));
                }
            }
            Frame::Ykeep => self.ykeep_message(conn, &data, now),
            Frame::Auth | Frame::Unknown(_) => {}
        }
    }

    pub(crate) fn refuse(&mut self, conn: ConnId, reason: &str, now: u64) {
        tracing::warn!(room = %self.name, conn, reason, "refusing a client message; closing it");
        self.batch.tally.refused_frames += 1;
        let close = Close {
            code: close_code::POLICY,
            reason: truncate(reason),
        };
        self.batch.first.push(Effect::Close { conn, close });
        self.drop_conn(conn, now);
    }

    pub(crate) fn deliver(&mut self, to: Target, frame: OutFrame) {
        self.batch.effects.push(Effect::Deliver { to, frame });
    }
}

fn other(frame: Vec<u8>) -> OutFrame {
    OutFrame::Other(frame.into())
}

/// The Update frame of a Yjs update.
pub(crate) fn update_frame(payload: &[u8]) -> OutFrame {
    OutFrame::Update {
        frame: protocol::encode_update(payload).into(),
        payload_at: protocol::update_payload_offset(payload.len()),
    }
}

/// Close reasons are limited to 123 bytes.
fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
