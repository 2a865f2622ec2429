//! The room: its doc, its connections, its save schedule and what it knows of the store.
//!
//! Events go in with `now`; a batch ends with [`Room::flush`], which returns the [`Step`]: the
//! log record to append, then, released only once it is durable, the effects. Frames are in
//! `frames.rs`, the store side (saves, fetches, polls, merges) in `saving.rs`.

use std::collections::HashSet;

use bytes::Bytes;
use ykeep_core::wire::{Precondition, SaveReceipt};
use ykeep_core::{DurabilityMarker, MergeError, RoomName, SaveAction, SaveEvent, SaveSchedule};
use ykeep_core::{SchedulePolicy, StateTag, b64, wire::DurableBody};
use yrs::{ReadTxn, Transact};

use crate::acks::{Acks, Owed};
use crate::awareness::AwarenessTable;
use crate::records::{Append, RoomRecords, SavedRecord, apply_records, record_format};
use crate::room_doc::RoomDoc;
use crate::saving::{StoreLink, StoreTask};
use crate::store::{Held, StoreError, StoreView, StoredSnapshot};
use crate::{Close, ConnId, OutFrame, QueryId, Target, close_code};

/// What a room needs to know of its host's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomConfig {
    pub policy: SchedulePolicy,
    /// Ask the store for other hosts' saves this often while the room has clients (0 = never).
    pub poll_every_ms: u64,
    /// The largest snapshot the room sends to the store.
    pub max_snapshot_bytes: usize,
}

/// Why the room was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A client (or a query) asked for it.
    Client,
    /// Start-up recovery: save what the log holds, then unload.
    Recover,
}

/// What happened, as the host saw it.
#[derive(Debug, Clone)]
pub enum Event {
    Join {
        conn: ConnId,
    },
    Leave {
        conn: ConnId,
    },
    /// The connection asked for acknowledgements when it connected (`?ykeep=acks`); the
    /// in-band `OptIn` message does the same.
    OptIn {
        conn: ConnId,
    },
    /// One WebSocket message from a connection.
    Frame {
        conn: ConnId,
        data: Bytes,
    },
    /// `GET /state`: the update the holder of `sv` lacks (the full state without one), or
    /// [`Reply::Unchanged`] when the room's state has the tag `unless` (`If-None-Match`).
    StateQuery {
        query: QueryId,
        sv: Option<Vec<u8>>,
        unless: Option<StateTag>,
    },
    /// `GET /durable`.
    DurableQuery {
        query: QueryId,
    },
    /// The answer to [`Effect::Fetch`].
    Fetched(Result<Option<StoredSnapshot>, StoreError>),
    /// The answer to [`Effect::Save`].
    Saved(Result<SaveReceipt, StoreError>),
    /// The answer to [`Effect::Poll`]: `None` when the snapshot is still the one the room holds.
    Polled(Result<Option<StoredSnapshot>, StoreError>),
    /// The host is stopping: save if dirty, then say [`Effect::Flushed`].
    Shutdown,
}

/// What the host must do, once the step's log record is durable.
#[derive(Debug)]
pub enum Effect {
    Deliver {
        to: Target,
        frame: OutFrame,
    },
    Close {
        conn: ConnId,
        close: Close,
    },
    Reply {
        query: QueryId,
        /// Boxed: a reply is rare, a delivery is not, and every effect is as large as the
        /// largest.
        reply: Box<Reply>,
    },
    /// Load the store's snapshot; answer with [`Event::Fetched`].
    Fetch,
    /// Save `state` under `precondition`; answer with [`Event::Saved`].
    Save {
        state: Bytes,
        precondition: Precondition,
    },
    /// Load the store's snapshot unless it is still `known` (`If-None-Match`); answer with
    /// [`Event::Polled`].
    Poll {
        known: String,
    },
    /// The store says the resource was deleted: move the room's whole log to the host's
    /// quarantine (kept for the retention, exportable), never into nothing. The closes that
    /// follow tell every client.
    Quarantine {
        reason: &'static str,
    },
    /// Shutdown asked and nothing more will be saved (saved, or the save failed and the log
    /// keeps the data): answer whoever waits.
    Flushed,
    /// Nothing left to do: drop the room (or, if a message arrived meanwhile, [`Room::reopen`]
    /// and go on; an ended room answers it and says `Unload` again).
    Unload,
}

#[derive(Debug)]
pub enum Reply {
    State(Result<Vec<u8>, MergeError>),
    /// The room's state has the tag the query named: the asker holds it all (`304`).
    Unchanged(StateTag),
    Durable(DurableInfo),
    /// The room has ended (quarantined, or its log failed): it answers no query.
    Ended,
}

/// A room's `/durable` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableInfo {
    /// What the room's doc (and so its log) holds.
    pub relay: DurabilityMarker,
    pub store: Option<Vec<u8>>,
    pub store_snapshot_id: Option<String>,
    pub saved_at: Option<i64>,
}

impl DurableInfo {
    /// The info of a room that is not loaded, from its log.
    pub fn of_records(records: &RoomRecords, room: &RoomName) -> Self {
        DurableInfo {
            relay: crate::records::marker_of(&records.records, room),
            store: records.store_marker.clone(),
            store_snapshot_id: records.store_snapshot_id.clone(),
            saved_at: records.saved_at,
        }
    }

    pub fn body(&self) -> DurableBody {
        DurableBody {
            relay: self.relay.to_base64(),
            store: self.store.as_deref().map(b64::encode),
            store_snapshot_id: self.store_snapshot_id.clone(),
            saved_at: self.saved_at,
        }
    }
}

/// Counts of one step, for the host's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub updates: u64,
    pub update_bytes: u64,
    pub refused_frames: u64,
    pub saves_ok: u64,
    pub saves_failed: u64,
    pub saves_refused: u64,
    pub saves_too_large: u64,
    pub save_conflicts: u64,
    pub saved_bytes: u64,
    /// Milliseconds the finished saves took, first request to answer.
    pub save_ms: u64,
    pub quarantined: u64,
}

/// The outcome of one batch.
#[derive(Debug, Default)]
pub struct Step {
    /// Append this first.
    pub append: Option<Append>,
    /// Then record this save and compact the log up to it. If that fails the host logs it and
    /// goes on: the store holds the state and the log still holds every record.
    pub compact: Option<SavedRecord>,
    pub tally: Tally,
    /// Quarantine and closes.
    first: Vec<Effect>,
    effects: Vec<Effect>,
}

impl Step {
    /// The effects, to perform in order once [`Step::append`] is durable: a quarantine first,
    /// then closes (a closed connection gets nothing more), then the rest as they came.
    pub fn durable(self) -> Vec<Effect> {
        if self.first.is_empty() {
            return self.effects;
        }
        let mut effects = self.first;
        effects.extend(self.effects);
        effects
    }
}

#[derive(Debug)]
pub(crate) enum Query {
    State {
        sv: Option<Vec<u8>>,
        unless: Option<StateTag>,
    },
    Durable,
}

/// Why a room ends while clients may be connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The store answered `resource_deleted`.
    Deleted,
    /// The host's durable log failed.
    LogFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Life {
    Open,
    ShuttingDown,
    /// Quarantined or its log failed: every client is closed with this, and so is every joiner.
    Ended(Close),
}

/// What the current batch has produced so far.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Update and SyncStep2 frames not yet checked nor applied (`frames.rs`): consecutive ones
    /// are checked as one run, settled before any other event and at the flush.
    pub run: Vec<crate::frames::Pending>,
    /// `[varuint len, update]*` of everything applied to the doc in this batch.
    pub log: Vec<u8>,
    /// Quarantine and closes, performed before `effects`.
    pub first: Vec<Effect>,
    pub effects: Vec<Effect>,
    pub actions: Vec<SaveAction>,
    pub queries: Vec<(QueryId, Query)>,
    pub compact: Option<SavedRecord>,
    pub tally: Tally,
}

pub struct Room {
    pub(crate) name: RoomName,
    pub(crate) config: RoomConfig,
    pub(crate) doc: RoomDoc,
    pub(crate) conns: HashSet<ConnId>,
    pub(crate) awareness: AwarenessTable,
    pub(crate) acks: Acks,
    pub(crate) schedule: SaveSchedule,
    /// Sequence number of the last record this room produced.
    pub(crate) seq: u64,
    pub(crate) store: StoreLink,
    pub(crate) life: Life,
    /// Log records (ids) this room could not read: the saved state may lack them, so
    /// compaction keeps them.
    pub(crate) unreadable: Vec<i64>,
    pub(crate) batch: Batch,
}

/// What a host kept of one connection across a loss of memory (see [`Room::resume`]).
#[derive(Debug, Clone, Default)]
pub struct KeptConn {
    pub conn: ConnId,
    /// The awareness client ids it announced, with their clocks ([`Room::awareness_of`]).
    pub awareness: Vec<(u64, u32)>,
    /// What it is owed in acknowledgements ([`Room::owed`]).
    pub owed: Option<Owed>,
}

/// A room whose doc was dropped while idle; [`SleepingRoom::wake`] rebuilds it from the log.
pub struct SleepingRoom(Room);

impl Room {
    /// Cold start: the room's log records and the store's answer (fetched concurrently by the
    /// host), merged by CRDT union so that neither can erase the other. Flush before anything
    /// else: the step holds what the merge added, or the quarantine.
    pub fn open(
        name: RoomName,
        config: RoomConfig,
        records: RoomRecords,
        store: Result<Option<StoredSnapshot>, StoreError>,
        purpose: Purpose,
        now: u64,
    ) -> Room {
        let mut room = Room::of_log(name, config, records, now);
        room.cold_start_merge(store);
        if room.life == Life::Open {
            let event = match purpose {
                Purpose::Client => SaveEvent::Idle,
                Purpose::Recover => SaveEvent::Recover,
            };
            room.schedule_event(event, now);
        }
        room
    }

    /// A room rebuilt by a host that lost its memory while its connections stayed open (a
    /// Durable Object woken from hibernation): the log as at a cold start, and each connection
    /// with the awareness client ids it had announced ([`Room::awareness_of`]). The store is not
    /// asked: the log records the snapshot the room last held, so the next save fetches and
    /// merges the store's snapshot before it replaces it. A log past its saved sequence is
    /// saved at once: the deadline the lost room had armed is gone with it. Nothing is sent to
    /// the connections: they are in sync.
    pub fn resume(
        name: RoomName,
        config: RoomConfig,
        records: RoomRecords,
        conns: &[KeptConn],
        now: u64,
    ) -> Room {
        let mut room = Room::of_log(name, config, records, now);
        for kept in conns {
            room.conns.insert(kept.conn);
            room.awareness.adopt(kept.conn, &kept.awareness);
            if let Some(owed) = &kept.owed {
                room.acks.adopt(kept.conn, owed.clone());
            }
            room.schedule_event(SaveEvent::Connected, now);
        }
        if conns.is_empty() {
            room.schedule_event(SaveEvent::Idle, now);
        } else {
            room.schedule_event(SaveEvent::Resumed, now);
        }
        room
    }

    /// The doc rebuilt from the log; the store unheard of since.
    fn of_log(name: RoomName, config: RoomConfig, records: RoomRecords, now: u64) -> Room {
        let doc = RoomDoc::new();
        let unreadable = apply_records(&doc, &records.records, &name);
        if !unreadable.is_empty() {
            tracing::error!(room = %name, records = unreadable.len(),
                "log records this host cannot read: they stay in the log and are never \
                 compacted away; the saved state may lack them");
        }
        let from_log = Held {
            snapshot_id: records.store_snapshot_id,
            marker: records.store_marker,
            saved_at: records.saved_at,
        };
        Room {
            schedule: SaveSchedule::new(config.policy, records.seq, records.saved_seq),
            seq: records.seq,
            store: StoreLink::new(StoreView::Unheard(from_log), now),
            name,
            config,
            doc,
            conns: HashSet::new(),
            awareness: AwarenessTable::default(),
            acks: Acks::default(),
            life: Life::Open,
            unreadable,
            batch: Batch::default(),
        }
    }

    pub fn name(&self) -> &RoomName {
        &self.name
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The log holds records no successful save has covered.
    pub fn unsaved(&self) -> bool {
        self.schedule.is_dirty()
    }

    /// The awareness client ids `conn` announced, with their clocks (see [`Room::resume`]).
    pub fn awareness_of(&self, conn: ConnId) -> Vec<(u64, u32)> {
        self.awareness.owned_by(conn)
    }

    /// What `conn` is owed in acknowledgements (None: it did not opt in); a host that may lose
    /// its memory keeps it with the connection (see [`Room::resume`]).
    pub fn owed(&self, conn: ConnId) -> Option<&Owed> {
        self.acks.owed(conn)
    }

    /// When to flush again if no event comes first.
    pub fn next_deadline(&self) -> Option<u64> {
        [self.schedule.next_deadline(), self.poll_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds one event of the current batch.
    pub fn handle(&mut self, event: Event, now: u64) {
        if !matches!(event, Event::Frame { .. }) {
            // Every effect keeps its order: the updates before this event first.
            self.settle_run();
        }
        if let Life::Ended(close) = &self.life {
            match event {
                Event::Join { conn } => {
                    let close = close.clone();
                    self.batch.first.push(Effect::Close { conn, close });
                }
                Event::Shutdown => self.batch.effects.push(Effect::Flushed),
                Event::StateQuery { query, .. } | Event::DurableQuery { query } => {
                    let reply = Box::new(Reply::Ended);
                    self.batch.effects.push(Effect::Reply { query, reply });
                }
                _ => {}
            }
            return;
        }
        match event {
            Event::Join { conn } => self.join(conn, now),
            Event::Leave { conn } => self.drop_conn(conn, now),
            Event::OptIn { conn } => self.opt_in(conn),
            Event::Frame { conn, data } => self.handle_frame(conn, data, now),
            Event::StateQuery { query, sv, unless } => self
                .batch
                .queries
                .push((query, Query::State { sv, unless })),
            Event::DurableQuery { query } => self.batch.queries.push((query, Query::Durable)),
            Event::Fetched(result) => self.fetched(result, now),
            Event::Saved(result) => self.saved(result, now),
            Event::Polled(result) => self.polled(result, now),
            Event::Shutdown => {
                if self.life == Life::Open {
                    self.life = Life::ShuttingDown;
                    self.schedule_event(SaveEvent::Shutdown, now);
                }
            }
        }
    }

    /// Ends the batch at time `now` (also the tick: call it at [`Room::next_deadline`]).
    pub fn flush(&mut self, now: u64) -> Step {
        self.settle_run();
        self.doc.forget_stale();
        let mut append = None;
        if !self.batch.log.is_empty() {
            self.seq += 1;
            let seq = self.seq;
            append = Some(Append {
                seq,
                format: record_format::BATCH,
                data: std::mem::take(&mut self.batch.log),
            });
            if matches!(self.life, Life::Ended(_)) {
                // The record still goes to the log, then to the quarantine with it.
            } else if self.batch.tally.updates > 0 {
                self.schedule_event(SaveEvent::Updated { seq }, now);
            } else {
                self.schedule_event(SaveEvent::StoreMerged { seq }, now);
            }
        }
        if !matches!(self.life, Life::Ended(_)) {
            self.commit_marks();
        }
        let mut unload = false;
        if !matches!(self.life, Life::Ended(_)) {
            self.schedule_event(SaveEvent::Tick, now);
            // A save that fails at once (too large) feeds the schedule again: drain until quiet.
            while !self.batch.actions.is_empty() {
                for action in std::mem::take(&mut self.batch.actions) {
                    match action {
                        SaveAction::SaveNow { seq } => self.start_save(seq, now),
                        SaveAction::Unload => unload = true,
                    }
                }
            }
            // After the save: a save that passes its precondition is as good as a poll.
            self.maybe_poll(now);
        }
        for (query, kind) in std::mem::take(&mut self.batch.queries) {
            let reply = Box::new(match kind {
                Query::State { sv, unless } => self.state_reply(sv.as_deref(), unless),
                Query::Durable => Reply::Durable(self.durable_info()),
            });
            self.batch.effects.push(Effect::Reply { query, reply });
        }
        // Shutdown waits for nothing more once the room is clean or its save failed (the log
        // keeps the data).
        let flushed = !self.schedule.is_dirty() || self.batch.tally.saves_failed > 0;
        if self.life == Life::ShuttingDown && flushed {
            self.batch.effects.push(Effect::Flushed);
        }
        if unload || matches!(self.life, Life::Ended(_)) {
            self.batch.effects.push(Effect::Unload);
        }
        let batch = std::mem::take(&mut self.batch);
        Step {
            append,
            compact: batch.compact,
            tally: batch.tally,
            first: batch.first,
            effects: batch.effects,
        }
    }

    /// The host's log failed on this room's last append: the doc may hold updates that are not
    /// durable, so nothing of it may be sent. Every client is closed with 1011 (they resync on
    /// reconnect) and the room must be dropped.
    pub fn log_failed(&mut self) -> Vec<Effect> {
        self.batch = Batch::default();
        self.end(Ending::LogFailed);
        let mut effects = std::mem::take(&mut self.batch.first);
        effects.push(Effect::Unload);
        effects
    }

    /// The host could not unload the room (a client arrived meanwhile): it stays, with a fresh
    /// schedule.
    pub fn reopen(&mut self, now: u64) {
        if matches!(self.life, Life::Ended(_)) {
            return; // it unloads once its channel is empty
        }
        let (latest, saved) = (self.schedule.latest_seq(), self.schedule.saved_seq());
        self.schedule = SaveSchedule::new(self.config.policy, latest, saved);
        if self.life == Life::ShuttingDown {
            self.schedule_event(SaveEvent::Shutdown, now);
        } else {
            self.schedule_event(SaveEvent::Idle, now);
        }
    }

    /// Drops the doc of an idle room (nothing unsaved, nothing in flight, nothing batched):
    /// everything it holds is in the log, which [`SleepingRoom::wake`] replays.
    #[allow(clippy::result_large_err)] // the room is handed back, moved
    pub fn sleep(self) -> Result<SleepingRoom, Room> {
        let idle = self.life == Life::Open
            && !self.schedule.is_dirty()
            && matches!(self.store.task, StoreTask::Idle)
            && self.batch.is_empty();
        if !idle {
            return Err(self);
        }
        let mut room = self;
        room.doc = RoomDoc::asleep();
        room.unreadable.clear();
        Ok(SleepingRoom(room))
    }

    pub(crate) fn schedule_event(&mut self, event: SaveEvent, now: u64) {
        if let Some(action) = self.schedule.handle(event, now) {
            self.batch.actions.push(action);
        }
    }

    /// Every client is closed, and so is every later joiner. A deleted resource's log goes to
    /// the quarantine first.
    pub(crate) fn end(&mut self, ending: Ending) {
        let close = match ending {
            Ending::Deleted => {
                self.batch.tally.quarantined += 1;
                self.batch.first.push(Effect::Quarantine {
                    reason: "the store answered resource_deleted",
                });
                Close {
                    code: close_code::POLICY,
                    reason: "resource_deleted: this resource was deleted from the store".into(),
                }
            }
            Ending::LogFailed => Close::log_failed(),
        };
        let mut conns: Vec<_> = self.conns.drain().collect();
        conns.sort_unstable();
        for conn in conns {
            let close = close.clone();
            self.batch.first.push(Effect::Close { conn, close });
        }
        self.batch.actions.clear();
        self.acks.clear();
        self.life = Life::Ended(close);
    }

    fn state_reply(&self, sv: Option<&[u8]>, unless: Option<StateTag>) -> Reply {
        if let Some(tag) = unless {
            let current = StateTag::of(&DurabilityMarker::of_txn(&self.doc.transact()));
            if current == tag {
                return Reply::Unchanged(current);
            }
        }
        Reply::State(self.state_update(sv))
    }

    fn state_update(&self, sv: Option<&[u8]>) -> Result<Vec<u8>, MergeError> {
        let sv = ykeep_core::merge::decode_state_vector(sv.unwrap_or_default())?;
        Ok(self.doc.transact().encode_state_as_update_v1(&sv))
    }

    fn durable_info(&self) -> DurableInfo {
        let held = self.store.view.held();
        DurableInfo {
            relay: DurabilityMarker::of_txn(&self.doc.transact()),
            store: held.marker.clone(),
            store_snapshot_id: held.snapshot_id.clone(),
            saved_at: held.saved_at,
        }
    }
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.run.is_empty()
            && self.log.is_empty()
            && self.first.is_empty()
            && self.effects.is_empty()
            && self.actions.is_empty()
            && self.queries.is_empty()
            && self.compact.is_none()
    }
}

impl SleepingRoom {
    /// When to wake the room with no event (a poll of the store while clients stay).
    pub fn next_deadline(&self) -> Option<u64> {
        self.0.next_deadline()
    }

    /// Rebuilds the doc from the room's log records.
    pub fn wake(self, records: &RoomRecords) -> Room {
        let mut room = self.0;
        if records.seq != room.seq {
            tracing::error!(room = %room.name, log = records.seq, room_seq = room.seq,
                "the log's sequence differs from the sleeping room's; rebuilding from the log");
            room.seq = room.seq.max(records.seq);
        }
        room.doc = RoomDoc::new();
        room.unreadable = apply_records(&room.doc, &records.records, &room.name);
        room
    }
}
