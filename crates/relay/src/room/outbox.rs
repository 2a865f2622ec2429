//! One connection's outbound queue: the room pushes shared frames, the connection's writer
//! task drains them in bulk.
//!
//! Nothing is ever dropped silently. A reader that falls behind gets its whole backlog written
//! in one go (one flush per drain); a reader whose queue grows past the byte limit
//! (`--max-backlog-bytes`, default 64 MiB) is closed with 1013 (try again later) and its
//! provider reconnects and resyncs from the room's state with SyncStep1/SyncStep2.
//!
//! Merging a backlog into one update was tried and dropped: `yrs::merge_updates_v1` over
//! thousands of small updates cost about a second per merge here (3,816 updates/s end to end
//! instead of 112,458), so the relay would fall further behind exactly when a reader is slow.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;
use ykeep_room::Backlog;
pub use ykeep_room::{Close, OutFrame};

struct Inner {
    queue: VecDeque<OutFrame>,
    backlog: Backlog,
    close: Option<Close>,
}

pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
}

/// What the writer gets from [`Outbox::next`].
pub enum Drained {
    Frames(VecDeque<OutFrame>),
    Close(Close),
}

impl Outbox {
    pub fn new(max_bytes: usize) -> Self {
        Outbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                backlog: Backlog::new(max_bytes),
                close: None,
            }),
            notify: Notify::new(),
        }
    }

    /// Queues frames; returns false (and schedules a 1013 close) when the backlog is over the
    /// limit.
    pub fn push<I: IntoIterator<Item = OutFrame>>(&self, frames: I) -> bool {
        let mut inner = self.inner.lock().expect("outbox lock");
        if inner.close.is_some() {
            return true;
        }
        let mut over = None;
        for frame in frames {
            if let Err(close) = inner.backlog.push(&frame) {
                over = Some(close);
                break;
            }
            inner.queue.push_back(frame);
        }
        if let Some(close) = &over {
            inner.queue.clear();
            inner.close = Some(close.clone());
        }
        drop(inner);
        self.notify.notify_one();
        over.is_none()
    }

    /// Asks the writer to send a close frame after what is queued.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let mut inner = self.inner.lock().expect("outbox lock");
        if inner.close.is_none() {
            inner.close = Some(Close {
                code,
                reason: reason.into(),
            });
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// Waits for frames (all queued ones at once) or the close.
    pub async fn next(&self) -> Drained {
        loop {
            {
                let mut inner = self.inner.lock().expect("outbox lock");
                if !inner.queue.is_empty() {
                    inner.backlog.drained();
                    return Drained::Frames(std::mem::take(&mut inner.queue));
                }
                if let Some(close) = inner.close.clone() {
                    return Drained::Close(close);
                }
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    #[test]
    fn frames_pass_in_order_and_overflow_closes() {
        let frame = |b: u8| OutFrame::Update {
            frame: Bytes::from(vec![b; 4]),
            payload_at: 0,
        };
        let outbox = Outbox::new(10);
        assert!(outbox.push([frame(1), frame(2)]));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        match rt.block_on(outbox.next()) {
            Drained::Frames(f) => assert_eq!(f.len(), 2),
            Drained::Close(_) => panic!("frames first"),
        }
        assert!(!outbox.push([frame(3), frame(4), frame(5)]));
        let big = Outbox::new(10);
        let reply = || OutFrame::Other(Bytes::from(vec![0; 100]));
        assert!(
            big.push([reply(), reply()]),
            "replies never count as a backlog"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        match rt.block_on(outbox.next()) {
            Drained::Close(c) => assert_eq!(c.code, 1013),
            Drained::Frames(_) => panic!("overflowed outbox must close"),
        }
    }
}
