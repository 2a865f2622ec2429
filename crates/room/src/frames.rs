//! The y-sync side of a room: joins, leaves and the frames of its connections.
//!
//! - A joiner gets the room's SyncStep1 and the awareness of everyone.
//! - A SyncStep1 gets the SyncStep2 the sender lacks.
//! - A SyncStep2 or Update is checked before it touches the doc, applied, logged, and forwarded
//!   to every other connection as an Update (a SyncStep2 is a reply to one peer, the others need
//!   an Update). Consecutive ones (from any connections) are held as a run and checked as one
//!   on one scratch doc when any other event or the flush comes, so every effect keeps its
//!   order; a run that fails is checked one update at a time to find the culprits.
//! - Awareness is kept per client id with the connection that announced it; when a connection
//!   leaves, everyone hears a removal for each of its client ids.
//! - Anything the room refuses closes that connection with 1008 and changes nothing.

use std::ops::Range;

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
        let frame = protocol::parse(&data);
        let held = match &frame {
            Ok(Frame::SyncStep2 { update }) => Some((update.clone(), None)),
            Ok(Frame::Update { update, end }) => Some((update.clone(), Some(*end))),
            _ => None,
        };
        if let Some((payload, end)) = held {
            return self
                .batch
                .run
                .push(Pending::new(conn, data, payload, end, now));
        }
        self.settle_run();
        let frame = match frame {
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
            Frame::SyncStep2 { .. } | Frame::Update { .. } => {} // held in the run above
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

    /// Checks and applies the run of update frames held since the last other event, in arrival
    /// order: [`RUN_CHECK`] at a time on one scratch doc, and only when that fails one at a
    /// time, to find the culprits. Each one's parent check reads the doc just before its own apply (an
    /// earlier update of the run may bring the parent). A refused update closes only its
    /// sender, whose later frames in the run are dropped as they were before; the others apply.
    pub(crate) fn settle_run(&mut self) {
        if self.batch.run.is_empty() {
            return;
        }
        // Not kept for the next run: after a flood it would hold room for thousands of frames
        // in a room that may then stay idle.
        let run = std::mem::take(&mut self.batch.run);
        for chunk in run.chunks(RUN_CHECK) {
            if let [pending] = chunk {
                let checked = protocol::checked_alone(pending.payload());
                self.apply_pending(pending, checked);
                continue;
            }
            let payloads: Vec<&[u8]> = chunk.iter().map(Pending::payload).collect();
            match protocol::checked_run(&payloads) {
                Ok(updates) => {
                    for (pending, update) in chunk.iter().zip(updates) {
                        self.apply_pending(pending, Ok(update));
                    }
                }
                Err(_) => {
                    for pending in chunk {
                        if self.conns.contains(&pending.conn) {
                            let checked = protocol::checked_alone(pending.payload());
                            self.apply_pending(pending, checked);
                        }
                    }
                }
            }
        }
    }

    /// One update of a run, checked on the scratch doc (`checked`): the parent check on the
    /// doc as it is now, the apply, the log record, the forward.
    fn apply_pending(
        &mut self,
        pending: &Pending,
        checked: Result<yrs::Update, protocol::ProtocolError>,
    ) {
        let (conn, now) = (pending.conn, pending.now);
        if !self.conns.contains(&conn) {
            return; // refused earlier in this run
        }
        let payload = pending.payload();
        let update =
            match checked.and_then(|u| protocol::check_parents(&self.doc, payload).map(|()| u)) {
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
        let out = match pending.end {
            Some(end) => OutFrame::Update {
                frame: pending.data.slice(..end),
                payload_at: pending.payload.start,
            },
            None => update_frame(payload),
        };
        self.deliver(Target::AllBut(conn), out);
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

/// The most updates checked together on one scratch doc. yrs' merge of decoded updates re-sorts
/// its inputs for every block it writes, so a run's check grows with the square of its length:
/// a flood drains thousands of frames per batch, which are checked in chunks of this many
/// (`scripts/bench cpu`: 8 per batch costs less than 32 or 256).
const RUN_CHECK: usize = 8;

/// An Update or SyncStep2 frame held in the room's run until it is settled.
#[derive(Debug)]
pub(crate) struct Pending {
    conn: ConnId,
    data: Bytes,
    /// The Yjs update's range in `data`.
    payload: Range<usize>,
    /// An Update frame's end (it is forwarded as it came); `None` for a SyncStep2.
    end: Option<usize>,
    /// When it arrived (a refusal's disconnect is scheduled at that time).
    now: u64,
}

impl Pending {
    fn new(conn: ConnId, data: Bytes, payload: Range<usize>, end: Option<usize>, now: u64) -> Self {
        Pending {
            conn,
            data,
            payload,
            end,
            now,
        }
    }

    fn payload(&self) -> &[u8] {
        &self.data[self.payload.clone()]
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
