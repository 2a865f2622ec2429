//! ykeep-room: the rules of one collaborative room, as a sans-IO state machine.
//!
//! A host (the tokio relay in `crates/relay`, a Durable Object in `party/`) owns the sockets, the
//! durable log, the store client and the clock. It feeds the [`Room`] [`Event`]s with the current
//! time in milliseconds, ends each batch with [`Room::flush`], and performs the [`Step`] that
//! comes out in this order:
//! 1. write [`Step::append`] (then [`Step::compact`]) to its durable log;
//! 2. only once that write is durable, take the effects with [`Step::durable`]: closes first, then
//!    deliveries in order, replies, the store requests, quarantine, unload. If the append fails,
//!    drop the step and call [`Room::log_failed`]: nothing in the doc may leave unless durable.
//!
//! Each store request ([`Effect::Fetch`], [`Effect::Save`], [`Effect::Poll`]) is answered with
//! the matching event ([`Event::Fetched`], [`Event::Saved`], [`Event::Polled`]); the room has at
//! most one in flight. [`Room::next_deadline`] says when to flush again with no event.
//!
//! A host that loses its memory while its connections stay open (a Durable Object woken from
//! hibernation) rebuilds the room with [`Room::resume`] from the log and what each connection
//! kept ([`Room::awareness_of`]).
//!
//! No async runtime, no sockets, no SQLite: this crate compiles natively and to `wasm32`.

pub mod access;
pub mod acks;
pub mod awareness;
pub mod backlog;
mod frames;
pub mod protocol;
pub mod records;
mod room;
mod room_doc;
mod saving;
pub mod store;
pub mod store_http;
#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use acks::Owed;
pub use backlog::Backlog;
pub use records::{Append, LogRecord, RoomRecords, SavedRecord, apply_records, record_format};
pub use room::{
    DurableInfo, Effect, Event, KeptConn, Purpose, Reply, Room, RoomConfig, SleepingRoom, Step,
    Tally,
};
pub use store::{Refusal, StoreError, StoredSnapshot, body_head};

/// The hosts' defaults, written only here: the relay's flags and the Durable Object's bindings
/// of the same names default to them.
pub mod defaults {
    /// `YKEEP_STORE_POLL_MS`: ask the store for other hosts' saves this often.
    pub const STORE_POLL_MS: u64 = 30_000;
    /// `YKEEP_STORE_TIMEOUT_MS`.
    pub const STORE_TIMEOUT_MS: u64 = 10_000;
    /// `YKEEP_MAX_FRAME_BYTES`: a larger WebSocket message is refused with 1009.
    pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
    /// `YKEEP_AUTH_CACHE_MS`: how long a token's verdict is reused.
    pub const AUTH_CACHE_MS: u64 = 30_000;
    /// `YKEEP_MAX_SNAPSHOT_BYTES`: the largest snapshot a room sends (the store's own limit).
    pub const MAX_SNAPSHOT_BYTES: usize = ykeep_core::contract::DEFAULT_MAX_SNAPSHOT_BYTES;
}

/// A connection, numbered by the host.
pub type ConnId = u64;
/// A `/state` or `/durable` query, numbered by the host so that it can route the reply.
pub type QueryId = u64;

/// Who a delivery goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    One(ConnId),
    AllBut(ConnId),
    All,
}

impl Target {
    pub fn includes(&self, conn: ConnId) -> bool {
        match self {
            Target::One(c) => *c == conn,
            Target::AllBut(c) => *c != conn,
            Target::All => true,
        }
    }
}

/// A frame ready to send; `Update` frames keep the offset of their Yjs payload and count
/// toward the reader's [`Backlog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutFrame {
    Update { frame: Bytes, payload_at: usize },
    Other(Bytes),
}

impl OutFrame {
    pub fn bytes(&self) -> &Bytes {
        match self {
            OutFrame::Update { frame, .. } | OutFrame::Other(frame) => frame,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A WebSocket close code and reason (at most 123 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

/// Close codes a room sends.
pub mod close_code {
    /// A message the room refuses (malformed, or an update that does not apply), and a resource
    /// the store says was deleted (the reason starts with `resource_deleted`).
    pub const POLICY: u16 = 1008;
    /// The host's durable log failed: reconnect and resync.
    pub const LOG_FAILED: u16 = 1011;
    pub use crate::backlog::SLOW_READER;
}

impl Close {
    /// The host's durable log failed: nothing the doc holds may be sent.
    pub fn log_failed() -> Close {
        Close {
            code: close_code::LOG_FAILED,
            reason: "the relay's durable log failed; reconnect".into(),
        }
    }
}
