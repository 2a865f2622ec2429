//! The room's doc, and the SyncStep2 reply its joiners share.
//!
//! A join storm: a hundred pages open one room at once, each with a SyncStep1 of the same state
//! vector (empty, for a page with no cache). Encoding the doc's state once per joiner costs a
//! hundred encodes of the same bytes, and a host would hold a hundred copies of them in its
//! sockets' queues. The room encodes the reply once and hands every joiner the same [`Bytes`]
//! (shared by reference), for as long as the doc has not changed.
//!
//! "Not changed" is counted by the doc itself: an observer of its write transactions bumps a
//! counter on each one, whatever made it (an update, the log replay, a merge of the store's
//! snapshot), and a reply is only reused at the count it was made at. The doc and its counter
//! live and are replaced together ([`RoomDoc::new`]), so no path can swap one without the other.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use yrs::{Doc, ReadTxn, StateVector, Transact};

use crate::protocol;

/// Replies smaller than this are not kept: an idle room with a small doc holds no copy of its
/// state beside the doc. A reply this large costs more to encode than a lookup.
pub(crate) const SHARE_FROM_BYTES: usize = 64 * 1024;

pub(crate) struct RoomDoc {
    doc: Doc,
    /// Write transactions committed on `doc` so far.
    writes: Arc<AtomicU64>,
    shared: Option<SharedReply>,
}

struct SharedReply {
    /// `writes` when it was encoded.
    at: u64,
    /// The state vector it answers, as the joiner sent it.
    sv: Vec<u8>,
    frame: Bytes,
}

impl RoomDoc {
    pub(crate) fn new() -> RoomDoc {
        let doc = Doc::new();
        let writes = Arc::new(AtomicU64::new(0));
        let counter = writes.clone();
        doc.observe_after_transaction("ykeep-room-writes", move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .expect("a new doc has no transaction open");
        RoomDoc {
            doc,
            writes,
            shared: None,
        }
    }

    /// What a sleeping room holds in place of its doc: one empty doc shared by every sleeping
    /// room, so that sleep frees the whole doc (a new one per room was 0.9 KB of its 13.4 KB
    /// of heap asleep). Nothing writes to it: a sleeping room is only woken, and
    /// [`SleepingRoom::wake`](crate::SleepingRoom::wake) gives the room a new doc before it
    /// replays.
    pub(crate) fn asleep() -> RoomDoc {
        static ASLEEP: LazyLock<(Doc, Arc<AtomicU64>)> =
            LazyLock::new(|| (Doc::new(), Arc::new(AtomicU64::new(0))));
        RoomDoc {
            doc: ASLEEP.0.clone(),
            writes: ASLEEP.1.clone(),
            shared: None,
        }
    }

    /// The SyncStep2 frame for a SyncStep1 whose state vector is `sv_bytes`, decoded as `sv`.
    pub(crate) fn step2(&mut self, sv_bytes: &[u8], sv: &StateVector) -> Bytes {
        let now = self.writes.load(Ordering::Relaxed);
        if let Some(r) = &self.shared
            && r.at == now
            && r.sv == sv_bytes
        {
            return r.frame.clone();
        }
        let update = self.doc.transact().encode_state_as_update_v1(sv);
        let frame = Bytes::from(protocol::encode_step2(&update));
        self.shared = (frame.len() >= SHARE_FROM_BYTES).then(|| SharedReply {
            at: now,
            sv: sv_bytes.to_vec(),
            frame: frame.clone(),
        });
        frame
    }

    /// Drops a shared reply the doc has moved past, so that a room holds no copy of an old
    /// state until its next joiner. Called at each flush.
    pub(crate) fn forget_stale(&mut self) {
        let now = self.writes.load(Ordering::Relaxed);
        if self.shared.as_ref().is_some_and(|r| r.at != now) {
            self.shared = None;
        }
    }

    #[cfg(test)]
    pub(crate) fn holds_shared_reply(&self) -> bool {
        self.shared.is_some()
    }
}

impl Deref for RoomDoc {
    type Target = Doc;

    fn deref(&self) -> &Doc {
        &self.doc
    }
}

#[cfg(test)]
mod tests {
    use yrs::updates::decoder::Decode;
    use yrs::{GetString, Text, Update};

    use super::*;

    fn big_text(doc: &Doc, n: usize) {
        let t = doc.get_or_insert_text("t");
        t.insert(&mut doc.transact_mut(), 0, &"x".repeat(n));
    }

    fn text_of(frame: &[u8]) -> String {
        let protocol::Frame::SyncStep2 { update } = protocol::parse(frame).unwrap() else {
            panic!("not a SyncStep2")
        };
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(Update::decode_v1(&frame[update]).unwrap())
            .unwrap();
        let t = doc.get_or_insert_text("t");
        t.get_string(&doc.transact())
    }

    #[test]
    fn joiners_with_one_state_vector_share_one_reply_until_the_doc_changes() {
        let mut doc = RoomDoc::new();
        big_text(&doc, 100_000);
        let empty = StateVector::default();
        let a = doc.step2(&[0], &empty);
        let b = doc.step2(&[0], &empty);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same bytes, shared");
        // Any write transaction makes a new reply: the next joiner sees the edit.
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), 0, "new");
        let c = doc.step2(&[0], &empty);
        assert_ne!(a.as_ptr(), c.as_ptr());
        assert!(text_of(&c).starts_with("newx"));
    }

    #[test]
    fn a_delete_or_content_held_pending_also_makes_a_new_reply() {
        // Neither changes the state vector: the counter, not the state vector, decides.
        let mut doc = RoomDoc::new();
        big_text(&doc, 100_000);
        let empty = StateVector::default();
        let a = doc.step2(&[0], &empty);
        doc.get_or_insert_text("t")
            .remove_range(&mut doc.transact_mut(), 0, 10);
        let b = doc.step2(&[0], &empty);
        assert_ne!(a.as_ptr(), b.as_ptr());
        assert_eq!(text_of(&b).len(), 99_990);
        // An update whose predecessor is missing: yrs keeps it pending, the state vector stays.
        let other = Doc::with_client_id(77);
        let t = other.get_or_insert_text("t");
        t.insert(&mut other.transact_mut(), 0, "a");
        let sv = other.transact().state_vector();
        t.insert(&mut other.transact_mut(), 1, "b");
        let later = other.transact().encode_state_as_update_v1(&sv);
        let before = doc.transact().state_vector();
        doc.transact_mut()
            .apply_update(Update::decode_v1(&later).unwrap())
            .unwrap();
        assert_eq!(doc.transact().state_vector(), before, "held pending");
        let c = doc.step2(&[0], &empty);
        assert_ne!(b.as_ptr(), c.as_ptr());
        assert!(c.len() > b.len(), "the reply carries the pending update");
    }

    #[test]
    fn another_state_vector_gets_its_own_reply() {
        let mut doc = RoomDoc::new();
        big_text(&doc, 100_000);
        let full = doc.step2(&[0], &StateVector::default());
        let sv = doc.transact().state_vector();
        let sv_bytes = yrs::updates::encoder::Encode::encode_v1(&sv);
        let diff = doc.step2(&sv_bytes, &sv);
        assert!(
            diff.len() < 100,
            "nothing the joiner lacks: {} bytes",
            diff.len()
        );
        assert!(full.len() > 100_000);
    }

    #[test]
    fn small_replies_are_not_kept_and_a_stale_one_is_dropped_at_flush() {
        let mut doc = RoomDoc::new();
        big_text(&doc, 10);
        doc.step2(&[0], &StateVector::default());
        assert!(
            !doc.holds_shared_reply(),
            "an idle small room keeps no copy"
        );
        big_text(&doc, 100_000);
        doc.step2(&[0], &StateVector::default());
        assert!(doc.holds_shared_reply());
        doc.forget_stale();
        assert!(doc.holds_shared_reply(), "still the doc's state");
        big_text(&doc, 1);
        doc.forget_stale();
        assert!(!doc.holds_shared_reply());
    }
}
