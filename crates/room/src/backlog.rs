//! The backlog limit of one connection, as a host's outbound queue applies it.
//!
//! Only forwarded updates count: replies (the SyncStep2 of a large document, awareness) are one
//! per request and must always go out. A reader whose unsent forwarded updates grow past the
//! limit (`--max-backlog-bytes`, default 64 MiB) is closed with 1013 (try again later); its
//! provider reconnects and resyncs from the room's state with SyncStep1/SyncStep2, so nothing is
//! ever dropped silently.

use crate::{Close, OutFrame};

/// Close code of a reader over its backlog limit.
pub const SLOW_READER: u16 = 1013;

/// The unsent bytes of one connection's forwarded updates.
#[derive(Debug, Clone)]
pub struct Backlog {
    bytes: usize,
    limit: usize,
}

impl Backlog {
    pub fn new(limit: usize) -> Self {
        Backlog { bytes: 0, limit }
    }

    /// Counts a queued frame; `Err` with the close to send once the backlog is over the limit.
    pub fn push(&mut self, frame: &OutFrame) -> Result<(), Close> {
        if let OutFrame::Update { frame, .. } = frame {
            self.bytes += frame.len();
        }
        if self.bytes > self.limit {
            self.bytes = 0;
            return Err(Close {
                code: SLOW_READER,
                reason: "slow reader: backlog over the limit; reconnect to resync".into(),
            });
        }
        Ok(())
    }

    /// Everything queued was handed to the socket.
    pub fn drained(&mut self) {
        self.bytes = 0;
    }
}
