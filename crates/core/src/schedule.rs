//! The save-scheduling policy of one relay room, as a pure state machine.
//!
//! Events (an accepted update with its sequence number, a connection opening or closing, a clock
//! tick, a save finishing) go in with the current time in milliseconds; actions (save now,
//! unload) come out. No clock, no I/O: the relay's room task feeds it and sleeps until
//! [`SaveSchedule::next_deadline`].
//!
//! "Changed since the last save" compares sequence numbers, never a boolean: a save captures the
//! room's latest sequence number when it starts, and only that number is marked saved when it
//! succeeds. An edit made while the save is in flight therefore keeps the room dirty, and a
//! delete-only edit counts like any other (it has a sequence number; a state vector would not
//! move).

/// Intervals of the policy, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulePolicy {
    /// While clients are connected, a changed room is saved this long after its first unsaved
    /// edit (default: [`SchedulePolicy::DEFAULT`]).
    pub save_interval_ms: u64,
    /// After the last client leaves, wait this long before saving and unloading (default:
    /// [`SchedulePolicy::DEFAULT`]); a reconnect inside the window cancels it.
    pub debounce_ms: u64,
}

impl SchedulePolicy {
    /// The defaults, written only here (the relay's `--save-interval-ms` and
    /// `--save-debounce-ms` default to them): save every 30 s while active, 7 s after the last
    /// client leaves.
    pub const DEFAULT: SchedulePolicy = SchedulePolicy {
        save_interval_ms: 30_000,
        debounce_ms: 7_000,
    };
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What happened to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A client update was committed to the local log with this sequence number.
    Updated { seq: u64 },
    /// Content that came from the store (and is therefore already saved there) was committed
    /// with this sequence number: it makes the room dirty only if it was dirty already.
    StoreMerged { seq: u64 },
    /// A client connected.
    Connected,
    /// A client disconnected.
    Disconnected,
    /// The room is open with no client (nobody joined yet, or it was opened for a query):
    /// start the debounce so that it unloads if nobody comes.
    Idle,
    /// Time passed; `now` is in the call.
    Tick,
    /// The host lost its memory while its clients stayed connected (a Durable Object woken
    /// from hibernation) and rebuilt the room: the periodic deadline it had armed is lost, and
    /// re-arming a whole interval at each wake would put the save off for as long as the
    /// clients stay idle. A dirty room saves now.
    Resumed,
    /// The save that captured `seq` succeeded.
    SaveOk { seq: u64 },
    /// The save in flight failed (logged by the caller); the room stays dirty.
    SaveFailed,
    /// The room was opened only to save what its log holds (start-up recovery): save if dirty,
    /// then unload.
    Recover,
    /// The process is shutting down: save if dirty, then unload.
    Shutdown,
}

/// What the room must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Encode the full state and save it; report [`Event::SaveOk`] with this `seq` (the
    /// sequence number captured now) or [`Event::SaveFailed`].
    SaveNow { seq: u64 },
    /// Nothing left to do: drop the room from memory.
    Unload,
}

/// Per-room scheduler state.
#[derive(Debug, Clone)]
pub struct SaveSchedule {
    policy: SchedulePolicy,
    connections: usize,
    latest_seq: u64,
    saved_seq: u64,
    in_flight: Option<u64>,
    /// When the periodic save is due (set while connected and dirty).
    periodic_due: Option<u64>,
    /// When the last-disconnect debounce ends.
    debounce_due: Option<u64>,
    /// The room is winding down (debounce over, recovery or shutdown): save if dirty, then
    /// unload; no new connections are expected.
    closing: bool,
    unloaded: bool,
}

impl SaveSchedule {
    /// A room whose log holds updates up to `latest_seq`, of which `saved_seq` were saved.
    pub fn new(policy: SchedulePolicy, latest_seq: u64, saved_seq: u64) -> Self {
        SaveSchedule {
            policy,
            connections: 0,
            latest_seq,
            saved_seq: saved_seq.min(latest_seq),
            in_flight: None,
            periodic_due: None,
            debounce_due: None,
            closing: false,
            unloaded: false,
        }
    }

    /// True when the room holds updates that no successful save has captured.
    pub fn is_dirty(&self) -> bool {
        self.latest_seq > self.saved_seq
    }

    pub fn latest_seq(&self) -> u64 {
        self.latest_seq
    }

    pub fn saved_seq(&self) -> u64 {
        self.saved_seq
    }

    pub fn connections(&self) -> usize {
        self.connections
    }

    pub fn save_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The earliest time at which a [`Event::Tick`] may produce an action.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.unloaded || self.in_flight.is_some() {
            return None;
        }
        match (self.periodic_due, self.debounce_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feeds one event at time `now` (milliseconds, any monotonic origin).
    pub fn handle(&mut self, event: Event, now: u64) -> Option<Action> {
        if self.unloaded {
            return None;
        }
        match event {
            Event::Updated { seq } => {
                self.latest_seq = self.latest_seq.max(seq);
                self.arm_periodic(now);
            }
            Event::StoreMerged { seq } => {
                let was_dirty = self.is_dirty();
                self.latest_seq = self.latest_seq.max(seq);
                if !was_dirty && self.in_flight.is_none() {
                    self.saved_seq = self.latest_seq;
                }
                self.arm_periodic(now);
            }
            Event::Connected => {
                self.connections += 1;
                self.debounce_due = None;
                self.closing = false;
                self.arm_periodic(now);
            }
            Event::Disconnected => {
                self.connections = self.connections.saturating_sub(1);
                if self.connections == 0 {
                    self.periodic_due = None;
                    self.debounce_due = Some(now + self.policy.debounce_ms);
                }
            }
            Event::Idle => {
                if self.connections == 0 && self.debounce_due.is_none() && !self.closing {
                    self.debounce_due = Some(now + self.policy.debounce_ms);
                }
            }
            Event::Tick => {}
            Event::Resumed => {
                if self.connections > 0 && self.is_dirty() {
                    self.periodic_due = Some(now);
                }
            }
            Event::SaveOk { seq } => {
                self.in_flight = None;
                self.saved_seq = self.saved_seq.max(seq.min(self.latest_seq));
                self.periodic_due = None;
                self.arm_periodic(now);
            }
            Event::SaveFailed => {
                self.in_flight = None;
                self.periodic_due = None;
                self.arm_periodic(now);
                if self.closing && self.connections == 0 {
                    // No retry loop: the data waits in the local log; recovery at start-up or
                    // the room's next use saves it.
                    self.unloaded = true;
                    return Some(Action::Unload);
                }
            }
            Event::Recover | Event::Shutdown => {
                self.closing = true;
                self.debounce_due = None;
                self.periodic_due = None;
            }
        }
        self.decide(now)
    }

    fn arm_periodic(&mut self, now: u64) {
        if self.connections > 0 && self.is_dirty() && self.periodic_due.is_none() {
            self.periodic_due = Some(now + self.policy.save_interval_ms);
        }
    }

    fn decide(&mut self, now: u64) -> Option<Action> {
        if self.in_flight.is_some() {
            return None;
        }
        if let Some(due) = self.debounce_due
            && now >= due
        {
            self.debounce_due = None;
            self.closing = true;
        }
        if self.closing && self.connections == 0 {
            if self.is_dirty() {
                return Some(self.start_save());
            }
            self.unloaded = true;
            return Some(Action::Unload);
        }
        if self.closing && self.is_dirty() {
            // Shutdown with clients still attached: flush anyway.
            return Some(self.start_save());
        }
        if let Some(due) = self.periodic_due
            && now >= due
        {
            self.periodic_due = None;
            if self.connections > 0 && self.is_dirty() {
                return Some(self.start_save());
            }
        }
        None
    }

    fn start_save(&mut self) -> Action {
        self.in_flight = Some(self.latest_seq);
        Action::SaveNow {
            seq: self.latest_seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: SchedulePolicy = SchedulePolicy {
        save_interval_ms: 30_000,
        debounce_ms: 7_000,
    };

    fn fresh() -> SaveSchedule {
        SaveSchedule::new(P, 0, 0)
    }

    #[test]
    fn a_room_resumed_with_its_clients_saves_an_unsaved_log_at_once() {
        // The log is past its last save; the host lost the deadline it had armed.
        let mut s = SaveSchedule::new(P, 4, 2);
        assert_eq!(s.handle(Event::Connected, 100), None);
        assert_eq!(s.next_deadline(), Some(100 + P.save_interval_ms));
        assert_eq!(
            s.handle(Event::Resumed, 100),
            Some(Action::SaveNow { seq: 4 })
        );
        // Clean, or with no client: nothing to do at once.
        let mut clean = SaveSchedule::new(P, 4, 4);
        clean.handle(Event::Connected, 100);
        assert_eq!(clean.handle(Event::Resumed, 100), None);
        let mut alone = SaveSchedule::new(P, 4, 2);
        assert_eq!(alone.handle(Event::Resumed, 100), None);
    }

    #[test]
    fn last_client_leaves_then_exactly_one_save_after_debounce() {
        let mut s = fresh();
        assert_eq!(s.handle(Event::Connected, 0), None);
        assert_eq!(s.handle(Event::Updated { seq: 1 }, 100), None);
        assert_eq!(s.handle(Event::Disconnected, 1_000), None);
        assert_eq!(s.next_deadline(), Some(8_000));
        assert_eq!(s.handle(Event::Tick, 7_999), None);
        assert_eq!(
            s.handle(Event::Tick, 8_000),
            Some(Action::SaveNow { seq: 1 })
        );
        assert_eq!(
            s.handle(Event::Tick, 9_000),
            None,
            "one save in flight at a time"
        );
        assert_eq!(s.next_deadline(), None);
        assert_eq!(
            s.handle(Event::SaveOk { seq: 1 }, 9_500),
            Some(Action::Unload)
        );
        assert_eq!(s.handle(Event::Tick, 100_000), None);
    }

    #[test]
    fn reconnect_inside_the_window_cancels_the_save() {
        let mut s = fresh();
        s.handle(Event::Connected, 0);
        s.handle(Event::Updated { seq: 1 }, 10);
        s.handle(Event::Disconnected, 1_000);
        assert_eq!(s.handle(Event::Connected, 5_000), None);
        assert_eq!(s.handle(Event::Tick, 8_000), None);
        // The periodic save still applies to the changed room, one interval after the reconnect.
        assert_eq!(s.next_deadline(), Some(35_000));
        assert_eq!(
            s.handle(Event::Tick, 35_000),
            Some(Action::SaveNow { seq: 1 })
        );
    }

    #[test]
    fn idle_room_unloads_after_the_debounce_unless_someone_joins() {
        let mut s = SaveSchedule::new(P, 2, 2);
        assert_eq!(s.handle(Event::Idle, 0), None);
        assert_eq!(s.handle(Event::Tick, 7_000), Some(Action::Unload));
        let mut joined = SaveSchedule::new(P, 2, 2);
        joined.handle(Event::Idle, 0);
        joined.handle(Event::Connected, 10);
        assert_eq!(joined.handle(Event::Tick, 7_000), None);
    }

    #[test]
    fn clean_room_unloads_without_saving() {
        let mut s = SaveSchedule::new(P, 5, 5);
        s.handle(Event::Connected, 0);
        s.handle(Event::Disconnected, 10);
        assert_eq!(s.handle(Event::Tick, 7_010), Some(Action::Unload));
    }

    #[test]
    fn periodic_only_when_changed() {
        let mut s = fresh();
        s.handle(Event::Connected, 0);
        assert_eq!(s.next_deadline(), None, "clean room: nothing scheduled");
        assert_eq!(s.handle(Event::Tick, 60_000), None);
        s.handle(Event::Updated { seq: 1 }, 60_000);
        assert_eq!(s.handle(Event::Tick, 89_999), None);
        assert_eq!(
            s.handle(Event::Tick, 90_000),
            Some(Action::SaveNow { seq: 1 })
        );
        assert_eq!(s.handle(Event::SaveOk { seq: 1 }, 90_100), None);
        assert_eq!(s.next_deadline(), None);
        assert_eq!(
            s.handle(Event::Tick, 200_000),
            None,
            "unchanged: no periodic save"
        );
    }

    #[test]
    fn edit_during_in_flight_save_is_saved_by_the_next_trigger() {
        let mut s = fresh();
        s.handle(Event::Connected, 0);
        s.handle(Event::Updated { seq: 1 }, 0);
        assert_eq!(
            s.handle(Event::Tick, 30_000),
            Some(Action::SaveNow { seq: 1 })
        );
        s.handle(Event::Updated { seq: 2 }, 30_001);
        assert_eq!(s.handle(Event::SaveOk { seq: 1 }, 30_050), None);
        assert!(s.is_dirty(), "seq 2 arrived during the save");
        assert_eq!(s.next_deadline(), Some(60_050));
        assert_eq!(
            s.handle(Event::Tick, 60_050),
            Some(Action::SaveNow { seq: 2 })
        );
        s.handle(Event::SaveOk { seq: 2 }, 60_060);
        assert!(!s.is_dirty());
    }

    #[test]
    fn edit_during_the_final_save_is_saved_before_unload() {
        let mut s = fresh();
        s.handle(Event::Connected, 0);
        s.handle(Event::Updated { seq: 1 }, 0);
        s.handle(Event::Disconnected, 0);
        assert_eq!(
            s.handle(Event::Tick, 7_000),
            Some(Action::SaveNow { seq: 1 })
        );
        s.handle(Event::StoreMerged { seq: 2 }, 7_001);
        assert_eq!(
            s.handle(Event::SaveOk { seq: 1 }, 7_002),
            Some(Action::SaveNow { seq: 2 })
        );
        assert_eq!(
            s.handle(Event::SaveOk { seq: 2 }, 7_003),
            Some(Action::Unload)
        );
    }

    #[test]
    fn delete_only_edit_counts() {
        // The relay gives every accepted update a sequence number, deletions included.
        let mut s = SaveSchedule::new(P, 10, 10);
        s.handle(Event::Connected, 0);
        s.handle(Event::Updated { seq: 11 }, 5);
        assert!(s.is_dirty());
        s.handle(Event::Disconnected, 6);
        assert_eq!(
            s.handle(Event::Tick, 7_006),
            Some(Action::SaveNow { seq: 11 })
        );
    }

    #[test]
    fn failed_save_keeps_the_room_dirty_without_a_retry_loop() {
        let mut s = fresh();
        s.handle(Event::Connected, 0);
        s.handle(Event::Updated { seq: 3 }, 0);
        assert_eq!(
            s.handle(Event::Tick, 30_000),
            Some(Action::SaveNow { seq: 3 })
        );
        assert_eq!(s.handle(Event::SaveFailed, 30_010), None);
        assert!(s.is_dirty());
        // The next trigger is the next periodic save, one full interval later.
        assert_eq!(s.handle(Event::Tick, 30_011), None);
        assert_eq!(s.next_deadline(), Some(60_010));
        assert_eq!(
            s.handle(Event::Tick, 60_010),
            Some(Action::SaveNow { seq: 3 })
        );
        assert_eq!(s.handle(Event::SaveOk { seq: 3 }, 60_020), None);
        assert!(!s.is_dirty());
    }

    #[test]
    fn failed_final_save_unloads_and_leaves_the_data_in_the_log() {
        let mut s = fresh();
        s.handle(Event::Connected, 0);
        s.handle(Event::Updated { seq: 1 }, 0);
        s.handle(Event::Disconnected, 0);
        assert_eq!(
            s.handle(Event::Tick, 7_000),
            Some(Action::SaveNow { seq: 1 })
        );
        assert_eq!(s.handle(Event::SaveFailed, 7_001), Some(Action::Unload));
        assert!(s.is_dirty());
    }

    #[test]
    fn recovery_saves_then_unloads() {
        let mut s = SaveSchedule::new(P, 9, 4);
        assert_eq!(
            s.handle(Event::Recover, 0),
            Some(Action::SaveNow { seq: 9 })
        );
        assert_eq!(s.handle(Event::SaveOk { seq: 9 }, 1), Some(Action::Unload));
        let mut clean = SaveSchedule::new(P, 4, 4);
        assert_eq!(clean.handle(Event::Recover, 0), Some(Action::Unload));
    }

    #[test]
    fn shutdown_flushes_even_with_clients_attached() {
        let mut s = fresh();
        s.handle(Event::Connected, 0);
        s.handle(Event::Updated { seq: 2 }, 1);
        assert_eq!(
            s.handle(Event::Shutdown, 2),
            Some(Action::SaveNow { seq: 2 })
        );
        assert_eq!(s.handle(Event::SaveOk { seq: 2 }, 3), None);
        assert!(!s.is_dirty());
    }

    #[test]
    fn shutdown_waits_for_the_save_in_flight() {
        let mut s = fresh();
        s.handle(Event::Connected, 0);
        s.handle(Event::Updated { seq: 1 }, 0);
        assert_eq!(
            s.handle(Event::Tick, 30_000),
            Some(Action::SaveNow { seq: 1 })
        );
        s.handle(Event::Updated { seq: 2 }, 30_001);
        s.handle(Event::Disconnected, 30_002);
        assert_eq!(s.handle(Event::Shutdown, 30_003), None);
        assert_eq!(
            s.handle(Event::SaveOk { seq: 1 }, 30_004),
            Some(Action::SaveNow { seq: 2 })
        );
        assert_eq!(
            s.handle(Event::SaveOk { seq: 2 }, 30_005),
            Some(Action::Unload)
        );
    }

    #[test]
    fn store_content_alone_does_not_make_a_room_dirty() {
        let mut s = SaveSchedule::new(P, 3, 3);
        s.handle(Event::StoreMerged { seq: 4 }, 0);
        assert!(!s.is_dirty());
        s.handle(Event::Updated { seq: 5 }, 0);
        s.handle(Event::StoreMerged { seq: 6 }, 0);
        assert!(s.is_dirty());
        assert_eq!(s.latest_seq(), 6);
    }
}
