//! One connection's outbound queue: the room pushes shared frames, the connection's writer
//! task drains them in bulk.
//!
//! Nothing is ever dropped silently. A reader that falls behind gets its queued updates merged
//! into one update by its own writer task (off the room's task); a reader that stops reading
//! altogether, so that its queue grows past the byte limit, is closed with 1013 (try again
//! later) and its provider reconnects and resyncs from the room's state.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::body::Bytes;
use tokio::sync::Notify;

/// A frame ready to send; `Update` frames keep the offset of their Yjs payload so that a
/// backlog of them can be merged.
#[derive(Debug, Clone)]
pub enum OutFrame {
    Update { frame: Bytes, payload_at: usize },
    Other(Bytes),
}

impl OutFrame {
    pub fn len(&self) -> usize {
        match self {
            OutFrame::Update { frame, .. } | OutFrame::Other(frame) => frame.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<OutFrame>,
    bytes: usize,
    close: Option<Close>,
}

pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    max_bytes: usize,
}

/// What the writer gets from [`Outbox::next`].
pub enum Drained {
    Frames(VecDeque<OutFrame>),
    Close(Close),
}

impl Outbox {
    pub fn new(max_bytes: usize) -> Self {
        Outbox {
            inner: Mutex::default(),
            notify: Notify::new(),
            max_bytes,
        }
    }

    /// Queues frames; returns false (and schedules a 1013 close) when the backlog is over the
    /// limit.
    pub fn push<I: IntoIterator<Item = OutFrame>>(&self, frames: I) -> bool {
        let mut inner = self.inner.lock().expect("outbox lock");
        if inner.close.is_some() {
            return true;
        }
        for frame in frames {
            inner.bytes += frame.len();
            inner.queue.push_back(frame);
        }
        let over = inner.bytes > self.max_bytes;
        if over {
            inner.queue.clear();
            inner.bytes = 0;
            inner.close = Some(Close {
                code: 1013,
                reason: "slow reader: backlog over the limit; reconnect to resync".into(),
            });
        }
        drop(inner);
        self.notify.notify_one();
        !over
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
                    inner.bytes = 0;
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

/// Queued update frames beyond which the writer merges them into one update.
pub const MERGE_THRESHOLD: usize = 256;

/// Merges the update frames of a large backlog into one update frame (placed where the first
/// update was); other frames keep their order. Small backlogs are returned unchanged.
pub fn merge_backlog(frames: VecDeque<OutFrame>) -> (Vec<Bytes>, bool) {
    let updates = frames
        .iter()
        .filter(|f| matches!(f, OutFrame::Update { .. }))
        .count();
    if updates < MERGE_THRESHOLD {
        return (frames.into_iter().map(frame_bytes).collect(), false);
    }
    let payloads: Vec<&[u8]> = frames
        .iter()
        .filter_map(|f| match f {
            OutFrame::Update { frame, payload_at } => Some(&frame[*payload_at..]),
            OutFrame::Other(_) => None,
        })
        .collect();
    let merged = match yrs::merge_updates_v1(payloads) {
        Ok(merged) => Bytes::from(crate::protocol::encode_update(&merged)),
        Err(e) => {
            // Every payload was applied by the room, so this does not happen; if it did, send
            // the frames one by one rather than lose anything.
            tracing::error!(error = %e, "merging a reader's backlog failed");
            return (frames.into_iter().map(frame_bytes).collect(), false);
        }
    };
    let mut out = Vec::with_capacity(frames.len() - updates + 1);
    let mut merged = Some(merged);
    for f in frames {
        match f {
            OutFrame::Update { .. } => {
                if let Some(m) = merged.take() {
                    out.push(m);
                }
            }
            OutFrame::Other(b) => out.push(b),
        }
    }
    (out, true)
}

fn frame_bytes(f: OutFrame) -> Bytes {
    match f {
        OutFrame::Update { frame, .. } | OutFrame::Other(frame) => frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{encode_update, update_payload_offset};
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

    fn update_frames(n: usize) -> (VecDeque<OutFrame>, String) {
        let doc = Doc::with_client_id(5);
        let t = doc.get_or_insert_text("t");
        let mut frames = VecDeque::new();
        for i in 0..n {
            let mut txn = doc.transact_mut();
            t.insert(&mut txn, 0, &format!("{}", i % 10));
            let u = txn.encode_update_v1();
            let payload_at = update_payload_offset(u.len());
            frames.push_back(OutFrame::Update {
                frame: Bytes::from(encode_update(&u)),
                payload_at,
            });
        }
        (frames, t.get_string(&doc.transact()))
    }

    #[test]
    fn large_backlog_merges_into_one_update_that_loses_nothing() {
        let (mut frames, text) = update_frames(MERGE_THRESHOLD + 10);
        frames.insert(3, OutFrame::Other(Bytes::from_static(&[1, 0])));
        let (out, merged) = merge_backlog(frames);
        assert!(merged);
        assert_eq!(out.len(), 2);
        assert_eq!(&out[1][..], &[1, 0]);
        let Ok(crate::protocol::Frame::Update { update, .. }) = crate::protocol::parse(&out[0])
        else {
            panic!("not an update frame")
        };
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(Update::decode_v1(&out[0][update]).unwrap())
            .unwrap();
        let t = doc.get_or_insert_text("t");
        assert_eq!(t.get_string(&doc.transact()), text);
        assert!(
            doc.transact()
                .encode_state_as_update_v1(&StateVector::default())
                .len()
                > 2
        );
    }

    #[test]
    fn small_backlog_passes_through_and_overflow_closes() {
        let (frames, _) = update_frames(3);
        let (out, merged) = merge_backlog(frames.clone());
        assert!(!merged);
        assert_eq!(out.len(), 3);
        let outbox = Outbox::new(10);
        assert!(!outbox.push(frames));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        match rt.block_on(outbox.next()) {
            Drained::Close(c) => assert_eq!(c.code, 1013),
            Drained::Frames(_) => panic!("overflowed outbox must close"),
        }
    }
}
