//! Acknowledgements by tier, for the connections that opted in (`ykeep_core::acks`).
//!
//! - A mark is answered with `Committed` in the step whose log record holds the batch it came
//!   in: the host releases that delivery only once the record is durable, and every update the
//!   connection sent before the mark is in that record or an earlier one.
//! - The mark is then owed a `Saved`: the first successful save whose captured sequence number
//!   is at or past that record's answers it.
//!
//! A connection is owed at most two `Saved`: one for the marks the save in flight covers, one
//! for the marks after it. Any later save captures the latest sequence number, past every mark
//! committed so far, so marks between two boundaries fold into their latest.

use std::collections::HashMap;

use ykeep_core::acks::{self, Decoded, Message};

use crate::room::Room;
use crate::{ConnId, OutFrame, Target};

/// What one opted-in connection is owed: its mark of the current batch, and its committed
/// marks no save covers yet, `(log sequence number, mark)` in order, at most two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owed {
    batch: Option<u64>,
    unsaved: Vec<(u64, u64)>,
}

impl Owed {
    /// What a host keeps across a loss of memory (see `Room::resume`).
    pub fn unsaved(&self) -> &[(u64, u64)] {
        &self.unsaved
    }

    /// The state a host kept: committed marks no save covered yet.
    pub fn of_unsaved(unsaved: Vec<(u64, u64)>) -> Owed {
        let mut owed = Owed::default();
        for (seq, mark) in unsaved {
            owed.commit(seq, mark, None);
        }
        owed
    }

    /// Records a committed mark, folding it into the last one unless the save in flight
    /// (`boundary`, its captured sequence number) lies between them.
    fn commit(&mut self, seq: u64, mark: u64, boundary: Option<u64>) {
        if let Some(&(last_seq, last_mark)) = self.unsaved.last() {
            let split = boundary.is_some_and(|b| last_seq <= b && seq > b);
            if !split {
                self.unsaved.pop();
                self.unsaved.push((seq, mark.max(last_mark)));
                return self.fold(boundary);
            }
        }
        self.unsaved.push((seq, mark));
        self.fold(boundary);
    }

    /// Keeps at most one entry at or before the boundary and one after it.
    fn fold(&mut self, boundary: Option<u64>) {
        let b = boundary.unwrap_or(u64::MAX);
        let before = self.unsaved.iter().rev().find(|(s, _)| *s <= b).copied();
        let after = self.unsaved.iter().rev().find(|(s, _)| *s > b).copied();
        self.unsaved = before.into_iter().chain(after).collect();
    }
}

/// The opted-in connections of a room.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    conns: HashMap<ConnId, Owed>,
}

impl Acks {
    /// Opts `conn` in (again: it changes nothing owed). Returns the Welcome to send.
    pub fn opt_in(&mut self, conn: ConnId) -> Message {
        self.conns.entry(conn).or_default();
        Message::Welcome
    }

    /// Restores what a host kept for `conn`.
    pub fn adopt(&mut self, conn: ConnId, owed: Owed) {
        self.conns.insert(conn, owed);
    }

    pub fn owed(&self, conn: ConnId) -> Option<&Owed> {
        self.conns.get(&conn)
    }

    /// A mark from `conn`; false when `conn` has not opted in (the mark is ignored).
    pub fn mark(&mut self, conn: ConnId, mark: u64) -> bool {
        match self.conns.get_mut(&conn) {
            Some(owed) => {
                owed.batch = Some(owed.batch.map_or(mark, |m| m.max(mark)));
                true
            }
            None => false,
        }
    }

    pub fn leave(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    pub fn clear(&mut self) {
        self.conns.clear();
    }

    /// The batch's log record `seq` is about to be appended: each mark of the batch gets its
    /// Committed (sent once the record is durable) and is owed a Saved. `boundary` is the
    /// sequence number the save in flight captured.
    pub fn commit(&mut self, seq: u64, boundary: Option<u64>) -> Vec<(ConnId, Message)> {
        let mut out = Vec::new();
        for (conn, owed) in &mut self.conns {
            if let Some(mark) = owed.batch.take() {
                owed.commit(seq, mark, boundary);
                out.push((*conn, Message::Committed(mark)));
            }
        }
        out.sort_unstable_by_key(|(conn, _)| *conn);
        out
    }

    /// A save that captured `saved_seq` succeeded: each mark it covers gets its Saved.
    pub fn saved(&mut self, saved_seq: u64) -> Vec<(ConnId, Message)> {
        let mut out = Vec::new();
        for (conn, owed) in &mut self.conns {
            let covered = owed.unsaved.iter().filter(|(s, _)| *s <= saved_seq);
            if let Some(mark) = covered.map(|(_, m)| *m).max() {
                owed.unsaved.retain(|(s, _)| *s > saved_seq);
                out.push((*conn, Message::Saved(mark)));
            }
        }
        out.sort_unstable_by_key(|(conn, _)| *conn);
        out
    }
}

impl Room {
    pub(crate) fn opt_in(&mut self, conn: ConnId) {
        if !self.conns.contains(&conn) {
            return;
        }
        let welcome = self.acks.opt_in(conn);
        self.send_ack(conn, welcome);
    }

    /// A message of type `ykeep_core::acks::MESSAGE_TYPE` from `conn`.
    pub(crate) fn ykeep_message(&mut self, conn: ConnId, data: &[u8], now: u64) {
        match acks::decode(data) {
            Ok(Decoded::Message(Message::OptIn)) => self.opt_in(conn),
            Ok(Decoded::Message(Message::Mark(mark))) => {
                if !self.acks.mark(conn, mark) {
                    tracing::debug!(room = %self.name, conn, "a mark before OptIn; ignored");
                }
            }
            Ok(Decoded::Message(m)) => self.refuse(
                conn,
                &format!("ykeep message {m} is one only a relay sends"),
                now,
            ),
            Ok(Decoded::UnknownKind(kind)) => {
                tracing::debug!(room = %self.name, conn, kind, "unknown ykeep message kind; ignored")
            }
            Err(e) => self.refuse(conn, &e.to_string(), now),
        }
    }

    /// The batch's marks are committed with the record `self.seq` (appended by this step, or
    /// already durable when the batch appends nothing).
    pub(crate) fn commit_marks(&mut self) {
        let boundary = self.saving_seq();
        let committed = self.acks.commit(self.seq, boundary);
        if committed.is_empty() {
            return;
        }
        for (conn, ack) in committed {
            self.send_ack(conn, ack);
        }
        // A mark on a record a save already covers (a page that only loaded, or reconnected, in
        // a room with nothing unsaved) is saved too: no later save would come to say so.
        let saved = self.schedule.saved_seq();
        if saved >= self.seq {
            self.acknowledge_save(saved);
        }
    }

    /// A save that captured `seq` succeeded.
    pub(crate) fn acknowledge_save(&mut self, seq: u64) {
        for (conn, ack) in self.acks.saved(seq) {
            self.send_ack(conn, ack);
        }
    }

    fn send_ack(&mut self, conn: ConnId, ack: Message) {
        self.deliver(Target::One(conn), OutFrame::Other(ack.encode().into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_fold_unless_a_save_in_flight_lies_between() {
        let mut owed = Owed::default();
        owed.commit(3, 10, None);
        owed.commit(4, 11, None);
        assert_eq!(owed.unsaved(), [(4, 11)]);
        // A save captured 4: later marks are owed by a later save.
        owed.commit(5, 12, Some(4));
        owed.commit(6, 13, Some(4));
        assert_eq!(owed.unsaved(), [(4, 11), (6, 13)]);
        assert_eq!(Owed::of_unsaved(vec![(1, 1), (2, 2)]).unsaved(), [(2, 2)]);
    }

    #[test]
    fn a_save_answers_only_the_marks_it_covers() {
        let mut acks = Acks::default();
        assert_eq!(acks.opt_in(1), Message::Welcome);
        acks.opt_in(2);
        assert!(
            !acks.mark(9, 1),
            "a connection that did not opt in gets nothing"
        );
        assert!(acks.mark(1, 5) && acks.mark(1, 6) && acks.mark(2, 1));
        assert_eq!(
            acks.commit(7, None),
            [(1, Message::Committed(6)), (2, Message::Committed(1))]
        );
        acks.mark(1, 7);
        assert_eq!(acks.commit(8, Some(7)), [(1, Message::Committed(7))]);
        assert_eq!(
            acks.saved(7),
            [(1, Message::Saved(6)), (2, Message::Saved(1))]
        );
        assert_eq!(acks.saved(7), []);
        assert_eq!(acks.saved(8), [(1, Message::Saved(7))]);
    }
}
