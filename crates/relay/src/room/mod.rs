//! A room: one task owning the room's `yrs::Doc`, its connections and its save schedule.
//!
//! The task drains whatever messages are waiting (a batch), applies the updates to the doc,
//! commits them to the local log as one record, and only then sends anything: replies,
//! forwarded updates, awareness. Nothing leaves the relay before it is durable.

mod awareness;
pub mod outbox;
mod refresh;
pub mod registry;
pub mod save;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::{mpsc, oneshot};
use ykeep_core::{DurabilityMarker, MergeError, RoomName, SaveAction, SaveEvent, SaveSchedule};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use crate::Shared;
use crate::log::{LogError, LogRecord, SavedRecord, record_format};
use crate::metrics::Metrics;
use crate::protocol::{self, Frame};
use crate::store_client::{StoreError, StoredSnapshot};
use awareness::AwarenessTable;
use outbox::{OutFrame, Outbox};
use save::{SaveError, SaveInput, SaveOutcome, save_room};

pub type ConnId = u64;

/// A `/state` request: the optional state vector and where to send the update.
type StateReply = oneshot::Sender<Result<Vec<u8>, MergeError>>;

/// Most messages handled in one batch (one log commit).
const MAX_BATCH: usize = 4096;

pub enum RoomMsg {
    Join {
        conn: ConnId,
        outbox: Arc<Outbox>,
    },
    Frame {
        conn: ConnId,
        data: Bytes,
    },
    Leave {
        conn: ConnId,
    },
    State {
        sv: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<Vec<u8>, MergeError>>,
    },
    Durable {
        reply: oneshot::Sender<DurableInfo>,
    },
    SaveDone {
        seq: u64,
        result: Box<Result<SaveOutcome, SaveError>>,
    },
    /// The answer to a poll for other relays' saves (`refresh.rs`).
    Polled {
        result: Box<refresh::Polled>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// The `/durable` answer of a room.
#[derive(Debug, Clone)]
pub struct DurableInfo {
    pub relay: DurabilityMarker,
    pub store: Option<Vec<u8>>,
    pub store_snapshot_id: Option<String>,
    pub saved_at: Option<i64>,
}

/// Why the room was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// A client asked for it.
    Client,
    /// Start-up recovery: save what the log holds, then unload.
    Recover,
}

/// What the room knows about the store.
#[derive(Debug, Default, Clone)]
struct StoreView {
    /// The store's snapshot has been fetched and merged at least once.
    synced: bool,
    snapshot_id: Option<String>,
    marker: Option<Vec<u8>>,
    saved_at: Option<i64>,
}

impl StoreView {
    /// The view of a room that has merged `snapshot`, the store's current one.
    fn holding(snapshot: StoredSnapshot) -> Self {
        StoreView {
            synced: true,
            marker: DurabilityMarker::of_update(&snapshot.bytes)
                .ok()
                .map(|m| m.encode()),
            snapshot_id: Some(snapshot.snapshot_id),
            saved_at: snapshot.saved_at,
        }
    }
}

enum Target {
    One(ConnId),
    AllBut(ConnId),
    All,
}

impl Target {
    fn includes(&self, conn: ConnId) -> bool {
        match self {
            Target::One(c) => *c == conn,
            Target::AllBut(c) => *c != conn,
            Target::All => true,
        }
    }
}

/// Everything a batch produced, released after its commit.
#[derive(Default)]
struct Pending {
    deliveries: Vec<(Target, OutFrame)>,
    log: Vec<u8>,
    updates: u64,
    update_bytes: u64,
    states: Vec<(Option<Vec<u8>>, StateReply)>,
    durables: Vec<oneshot::Sender<DurableInfo>>,
    saves_done: Vec<(u64, Box<Result<SaveOutcome, SaveError>>)>,
    polled: Vec<refresh::Polled>,
    actions: Vec<SaveAction>,
}

/// The room failed in a way that leaves its doc ahead of its log: it must go.
#[derive(Debug, thiserror::Error)]
#[error("room {room}: {source}")]
struct Fatal {
    room: RoomName,
    source: LogError,
}

/// Whether the room's doc took a snapshot from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreMerge {
    Merged,
    /// Not a Yjs update, or it does not apply to the room's doc: left out.
    Unreadable,
}

/// Why a room task ends while clients may still be connected.
#[derive(Debug)]
enum Stop {
    /// The local log failed (`Fatal`).
    Fatal(Fatal),
    /// The store answered `resource_deleted`: the room's log moves to the quarantine.
    Deleted,
}

impl From<Fatal> for Stop {
    fn from(fatal: Fatal) -> Self {
        Stop::Fatal(fatal)
    }
}

struct Room {
    name: RoomName,
    key: Arc<str>,
    shared: Arc<Shared>,
    tx: mpsc::WeakSender<RoomMsg>,
    doc: Doc,
    conns: HashMap<ConnId, Arc<Outbox>>,
    awareness: AwarenessTable,
    schedule: SaveSchedule,
    seq: u64,
    store: StoreView,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    shutting_down: bool,
    /// When the store was last asked for other relays' saves, or the room last saved
    /// (`refresh.rs`).
    polled_at: u64,
    /// A poll is in flight.
    polling: bool,
    /// Log records (row ids) this relay could not read at cold start: the saved state may lack
    /// them, so compaction keeps them.
    unreadable: Vec<i64>,
}

/// The room task.
pub(crate) async fn run(
    shared: Arc<Shared>,
    name: RoomName,
    tx: mpsc::WeakSender<RoomMsg>,
    mut rx: mpsc::Receiver<RoomMsg>,
    mode: OpenMode,
) {
    Metrics::inc(&shared.metrics.rooms);
    match Room::load(shared.clone(), name.clone(), tx).await {
        Ok(mut room) => {
            let event = match mode {
                OpenMode::Client => SaveEvent::Idle,
                OpenMode::Recover => SaveEvent::Recover,
            };
            let mut pending = Pending::default();
            room.schedule_event(event, &mut pending);
            let served = match room.finish_batch(pending).await {
                Ok(_) => room.serve(&mut rx).await,
                Err(stop) => Err(stop),
            };
            if let Err(stop) = served {
                let conns: Vec<_> = room.conns.drain().map(|(_, outbox)| outbox).collect();
                end(&shared, &name, stop, &conns, &mut rx).await;
                room.answer_shutdown();
            }
        }
        Err(stop) => end(&shared, &name, stop, &[], &mut rx).await,
    }
    Metrics::dec(&shared.metrics.rooms);
}

impl Room {
    /// Cold start: the local log and the store's snapshot, merged (CRDT union).
    async fn load(
        shared: Arc<Shared>,
        name: RoomName,
        tx: mpsc::WeakSender<RoomMsg>,
    ) -> Result<Room, Stop> {
        let key: Arc<str> = name.to_string().into();
        let log = shared.log.clone();
        let log_key = key.clone();
        let room_name = name.clone();
        let from_log = async move {
            let records = log.load(&log_key).await?;
            tokio::task::spawn_blocking(move || {
                let doc = Doc::new();
                let unreadable = apply_records(&doc, &records.records, &room_name);
                (doc, records, unreadable)
            })
            .await
            .map_err(LogError::Join)
        };
        let timeout = shared.config.store_timeout();
        let from_store = tokio::time::timeout(timeout, shared.store.load(&name));
        let (from_log, from_store) = tokio::join!(from_log, from_store);
        let (doc, records, unreadable) = from_log.map_err(|source| Fatal {
            room: name.clone(),
            source,
        })?;
        Metrics::inc(&shared.metrics.cold_starts_total);
        if !unreadable.is_empty() {
            tracing::error!(room = %name, records = unreadable.len(),
                "log records this relay cannot read: they stay in the log and are never \
                 compacted away; the saved state may lack them");
        }
        let policy = shared.policy;
        let shared_now = shared.now_ms();
        let mut room = Room {
            schedule: SaveSchedule::new(policy, records.seq, records.saved_seq),
            seq: records.seq,
            store: StoreView {
                synced: false,
                snapshot_id: records.store_snapshot_id,
                marker: records.store_marker,
                saved_at: records.saved_at,
            },
            name,
            key,
            shared,
            tx,
            doc,
            conns: HashMap::new(),
            awareness: AwarenessTable::default(),
            shutdown_waiters: Vec::new(),
            shutting_down: false,
            polled_at: shared_now,
            polling: false,
            unreadable,
        };
        match from_store {
            Ok(Ok(Some(snapshot))) => {
                let mut pending = Pending::default();
                let merged = room
                    .merge_store_content(&snapshot.bytes, &mut pending)
                    .await?;
                if merged == StoreMerge::Merged {
                    room.store = StoreView::holding(snapshot);
                }
            }
            Ok(Err(StoreError::Deleted)) => return Err(Stop::Deleted),
            Ok(Ok(None)) => {
                room.store = StoreView {
                    synced: true,
                    ..StoreView::default()
                };
            }
            Ok(Err(e)) => {
                tracing::warn!(room = %room.name, error = %e,
                    "store unavailable at cold start: serving from the local log; the store's \
                     snapshot will be merged before the first save");
            }
            Err(_) => {
                tracing::warn!(room = %room.name, ?timeout,
                    "store timed out at cold start: serving from the local log; the store's \
                     snapshot will be merged before the first save");
            }
        }
        Ok(room)
    }

    async fn serve(&mut self, rx: &mut mpsc::Receiver<RoomMsg>) -> Result<(), Stop> {
        let mut batch = Vec::with_capacity(64);
        loop {
            let deadline = [self.schedule.next_deadline(), self.poll_due()]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(self.shared.instant_at(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => batch.push(msg),
                    None => return Ok(()),
                },
                _ = sleep => {}
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            let mut pending = Pending::default();
            for msg in batch.drain(..) {
                self.handle(msg, &mut pending);
            }
            self.schedule_event(SaveEvent::Tick, &mut pending);
            self.maybe_poll();
            if self.finish_batch(pending).await? {
                // Unload, unless someone arrived meanwhile.
                if registry::remove_if_idle(&self.shared, &self.name, rx) {
                    self.answer_shutdown();
                    return Ok(());
                }
                self.schedule = SaveSchedule::new(
                    self.shared.policy,
                    self.schedule.latest_seq(),
                    self.schedule.saved_seq(),
                );
                self.schedule.handle(SaveEvent::Idle, self.shared.now_ms());
            }
        }
    }

    fn handle(&mut self, msg: RoomMsg, p: &mut Pending) {
        match msg {
            RoomMsg::Frame { conn, data } => self.handle_frame(conn, data, p),
            RoomMsg::Join { conn, outbox } => {
                self.conns.insert(conn, outbox);
                let sv = self.doc.transact().state_vector();
                let step1 = protocol::encode_step1(&yrs::updates::encoder::Encode::encode_v1(&sv));
                p.deliveries
                    .push((Target::One(conn), OutFrame::Other(step1.into())));
                if let Some(aw) = self.awareness.full_update() {
                    let frame = protocol::encode_awareness(&aw);
                    p.deliveries
                        .push((Target::One(conn), OutFrame::Other(frame.into())));
                }
                self.schedule_event(SaveEvent::Connected, p);
            }
            RoomMsg::Leave { conn } => self.drop_conn(conn, p),
            RoomMsg::State { sv, reply } => p.states.push((sv, reply)),
            RoomMsg::Durable { reply } => p.durables.push(reply),
            RoomMsg::SaveDone { seq, result } => p.saves_done.push((seq, result)),
            RoomMsg::Polled { result } => p.polled.push(*result),
            RoomMsg::Shutdown { done } => {
                self.shutdown_waiters.push(done);
                if !self.shutting_down {
                    self.shutting_down = true;
                    self.schedule_event(SaveEvent::Shutdown, p);
                }
            }
        }
    }

    fn handle_frame(&mut self, conn: ConnId, data: Bytes, p: &mut Pending) {
        if !self.conns.contains_key(&conn) {
            return; // refused or gone: ignore what it still sends
        }
        let frame = match protocol::parse(&data) {
            Ok(frame) => frame,
            Err(e) => return self.refuse(conn, &e.to_string(), p),
        };
        match frame {
            Frame::SyncStep1 { sv } if !protocol::plausible_count(&data[sv.clone()]) => {
                self.refuse(conn, "state vector declares more entries than it holds", p)
            }
            Frame::SyncStep1 { sv } => match StateVector::decode_v1(&data[sv]) {
                Ok(sv) => {
                    let update = self.doc.transact().encode_state_as_update_v1(&sv);
                    let step2 = protocol::encode_step2(&update);
                    p.deliveries
                        .push((Target::One(conn), OutFrame::Other(step2.into())));
                }
                Err(e) => self.refuse(conn, &format!("bad state vector: {e}"), p),
            },
            Frame::SyncStep2 { update: ref range }
            | Frame::Update {
                update: ref range, ..
            } => {
                let range = range.clone();
                let payload = &data[range.clone()];
                let update = match protocol::checked_update(&self.doc, payload) {
                    Ok(u) => u,
                    Err(e) => return self.refuse(conn, &format!("bad Yjs update: {e}"), p),
                };
                if update.is_empty() {
                    return;
                }
                let applied = self.doc.transact_mut().apply_update(update);
                if let Err(e) = applied {
                    return self.refuse(conn, &format!("Yjs update does not apply: {e}"), p);
                }
                protocol::write_len_prefixed(&mut p.log, payload);
                p.updates += 1;
                p.update_bytes += payload.len() as u64;
                let out = match frame {
                    Frame::Update { end, .. } => OutFrame::Update {
                        frame: data.slice(..end),
                        payload_at: range.start,
                    },
                    _ => update_frame(payload),
                };
                p.deliveries.push((Target::AllBut(conn), out));
            }
            Frame::Awareness { payload } => {
                let bytes = &data[payload.clone()];
                if !protocol::plausible_count(bytes) || !self.awareness.apply(conn, bytes) {
                    return self.refuse(conn, "bad awareness update", p);
                }
                let out = OutFrame::Other(data.slice(..payload.end));
                p.deliveries.push((Target::AllBut(conn), out));
            }
            Frame::AwarenessQuery => {
                if let Some(aw) = self.awareness.full_update() {
                    let frame = protocol::encode_awareness(&aw);
                    p.deliveries
                        .push((Target::One(conn), OutFrame::Other(frame.into())));
                }
            }
            Frame::Auth | Frame::Unknown(_) => {}
        }
    }

    fn refuse(&mut self, conn: ConnId, reason: &str, p: &mut Pending) {
        tracing::warn!(room = %self.name, conn, reason, "refusing a client message; closing it");
        Metrics::inc(&self.shared.metrics.malformed_frames_total);
        if let Some(outbox) = self.conns.get(&conn) {
            outbox.close(1008, truncate(reason));
        }
        self.drop_conn(conn, p);
    }

    fn drop_conn(&mut self, conn: ConnId, p: &mut Pending) {
        if self.conns.remove(&conn).is_none() {
            return;
        }
        if let Some(removal) = self.awareness.remove_conn(conn) {
            let frame = protocol::encode_awareness(&removal);
            p.deliveries
                .push((Target::All, OutFrame::Other(frame.into())));
        }
        self.schedule_event(SaveEvent::Disconnected, p);
    }

    fn schedule_event(&mut self, event: SaveEvent, p: &mut Pending) {
        if let Some(action) = self.schedule.handle(event, self.shared.now_ms()) {
            p.actions.push(action);
        }
    }

    /// Commits the batch, then releases everything it produced. Returns true when the room
    /// should unload.
    async fn finish_batch(&mut self, mut p: Pending) -> Result<bool, Stop> {
        if !p.log.is_empty() {
            self.seq += 1;
            let data = std::mem::take(&mut p.log);
            self.append(record_format::BATCH, data).await?;
            let m = &self.shared.metrics;
            Metrics::add(&m.updates_total, p.updates);
            Metrics::add(&m.update_bytes_total, p.update_bytes);
            self.schedule_event(SaveEvent::Updated { seq: self.seq }, &mut p);
        }
        self.deliver(&mut p.deliveries);
        for (sv, reply) in p.states.drain(..) {
            let _ = reply.send(self.state_update(sv.as_deref()));
        }
        for reply in p.durables.drain(..) {
            let _ = reply.send(self.durable_info());
        }
        for (seq, result) in std::mem::take(&mut p.saves_done) {
            self.save_done(seq, *result, &mut p).await?;
        }
        for result in std::mem::take(&mut p.polled) {
            self.poll_done(result, &mut p).await?;
        }
        self.deliver(&mut p.deliveries);
        let mut unload = false;
        // Actions may produce more actions (a save finishing at once is not possible: saves
        // run in their own task), so one pass suffices.
        for action in std::mem::take(&mut p.actions) {
            match action {
                SaveAction::SaveNow { seq } => self.start_save(seq),
                SaveAction::Unload => unload = true,
            }
        }
        if self.shutting_down && !self.schedule.is_dirty() || unload {
            self.answer_shutdown();
        }
        Ok(unload)
    }

    async fn append(&mut self, format: i64, data: Vec<u8>) -> Result<(), Fatal> {
        self.shared
            .log
            .append(&self.key, self.seq, format, data)
            .await
            .map_err(|source| Fatal {
                room: self.name.clone(),
                source,
            })?;
        Metrics::inc(&self.shared.metrics.log_commits_total);
        Ok(())
    }

    fn deliver(&mut self, deliveries: &mut Vec<(Target, OutFrame)>) {
        if deliveries.is_empty() {
            return;
        }
        for (conn, outbox) in &self.conns {
            let frames = deliveries
                .iter()
                .filter(|(t, _)| t.includes(*conn))
                .map(|(_, f)| f.clone());
            if !outbox.push(frames) {
                tracing::warn!(room = %self.name, conn, "slow reader over its backlog limit: closing it (1013)");
                Metrics::inc(&self.shared.metrics.slow_reader_closes_total);
            }
        }
        deliveries.clear();
    }

    fn state_update(&self, sv: Option<&[u8]>) -> Result<Vec<u8>, MergeError> {
        let sv = ykeep_core::merge::decode_state_vector(sv.unwrap_or_default())?;
        Ok(self.doc.transact().encode_state_as_update_v1(&sv))
    }

    fn durable_info(&self) -> DurableInfo {
        DurableInfo {
            relay: DurabilityMarker::of_txn(&self.doc.transact()),
            store: self.store.marker.clone(),
            store_snapshot_id: self.store.snapshot_id.clone(),
            saved_at: self.store.saved_at,
        }
    }

    /// Applies content from the store; what was new is logged and sent to every client.
    /// A snapshot the room cannot apply is left out, and the caller must not count it as held:
    /// a save that named it in `If-Match` would replace it with a state that lacks it.
    async fn merge_store_content(
        &mut self,
        bytes: &[u8],
        p: &mut Pending,
    ) -> Result<StoreMerge, Fatal> {
        let delta = {
            let update = match Update::decode_v1(bytes) {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!(room = %self.name, error = %e,
                        "the store's snapshot is not a Yjs update: not merged, and no save will replace it");
                    return Ok(StoreMerge::Unreadable);
                }
            };
            // The same check as a client's update: yrs fails half-way on a parent that is
            // neither a type nor deleted and leaves the doc partly changed.
            if let Err(e) = ykeep_core::merge::check_parents(&self.doc, bytes) {
                tracing::error!(room = %self.name, error = %e,
                    "the store's snapshot does not apply to the room's doc: not merged, and no save will replace it");
                return Ok(StoreMerge::Unreadable);
            }
            let mut txn = self.doc.transact_mut();
            if let Err(e) = txn.apply_update(update) {
                tracing::error!(room = %self.name, error = %e,
                    "the store's snapshot does not apply: not merged, and no save will replace it");
                return Ok(StoreMerge::Unreadable);
            }
            txn.encode_update_v1()
        };
        if Update::decode_v1(&delta)
            .map(|u| u.is_empty())
            .unwrap_or(true)
        {
            return Ok(StoreMerge::Merged);
        }
        self.seq += 1;
        let mut record = Vec::with_capacity(delta.len() + 5);
        protocol::write_len_prefixed(&mut record, &delta);
        self.append(record_format::BATCH, record).await?;
        let seq = self.seq;
        self.schedule_event(SaveEvent::StoreMerged { seq }, p);
        p.deliveries.push((Target::All, update_frame(&delta)));
        Ok(StoreMerge::Merged)
    }

    fn start_save(&mut self, seq: u64) {
        let (state, marker) = {
            let txn = self.doc.transact();
            let state = txn.encode_state_as_update_v1(&StateVector::default());
            (state, DurabilityMarker::of_txn(&txn))
        };
        let input = SaveInput {
            state,
            marker,
            known_snapshot: self.store.snapshot_id.clone(),
            store_synced: self.store.synced,
            max_bytes: self.shared.config.max_snapshot_bytes,
        };
        let shared = self.shared.clone();
        let name = self.name.clone();
        let Some(tx) = self.tx.upgrade() else { return };
        tracing::debug!(room = %name, seq, "saving");
        tokio::spawn(async move {
            let result = save_room(shared.store.as_ref(), &name, input).await;
            let _ = tx
                .send(RoomMsg::SaveDone {
                    seq,
                    result: Box::new(result),
                })
                .await;
        });
    }

    async fn save_done(
        &mut self,
        seq: u64,
        result: Result<SaveOutcome, SaveError>,
        p: &mut Pending,
    ) -> Result<(), Stop> {
        let m = self.shared.metrics.clone();
        match result {
            Ok(outcome) => {
                Metrics::inc(&m.saves_ok_total);
                Metrics::add(&m.saved_bytes_total, outcome.saved_state.len() as u64);
                Metrics::add(
                    &m.save_seconds_sum_micros,
                    outcome.elapsed.as_micros() as u64,
                );
                Metrics::inc(&m.save_seconds_count);
                if !outcome.merged_from_store.is_empty() {
                    Metrics::inc(&m.save_conflicts_total);
                }
                let mut all_merged = true;
                for bytes in &outcome.merged_from_store {
                    let merged = self.merge_store_content(bytes, p).await?;
                    all_merged &= merged == StoreMerge::Merged;
                }
                tracing::info!(room = %self.name, seq, bytes = outcome.saved_state.len(),
                    snapshot = %outcome.receipt.snapshot_id, ms = outcome.elapsed.as_millis() as u64,
                    "saved");
                let marker = outcome.saved_marker.encode();
                // A save that passed its precondition proves the room held the store's latest.
                self.polled_at = self.shared.now_ms();
                self.store = StoreView {
                    // The saved state holds store content the room's doc could not take: the
                    // next save merges the store's snapshot again rather than replace it.
                    synced: all_merged,
                    snapshot_id: Some(outcome.receipt.snapshot_id.clone()),
                    marker: Some(marker.clone()),
                    saved_at: Some(outcome.receipt.saved_at),
                };
                let saved = SavedRecord {
                    saved_seq: seq,
                    store_snapshot_id: outcome.receipt.snapshot_id,
                    store_marker: marker,
                    saved_at: outcome.receipt.saved_at,
                    compacted: outcome.saved_state,
                    keep: self.unreadable.clone(),
                };
                if let Err(e) = self.shared.log.saved(&self.key, saved).await {
                    // The save itself succeeded; the log keeps its records and stays "dirty",
                    // so the next trigger saves again. Nothing is lost.
                    tracing::error!(room = %self.name, error = %e, "recording the save in the local log failed");
                    self.schedule_event(SaveEvent::SaveFailed, p);
                    return Ok(());
                }
                self.schedule_event(SaveEvent::SaveOk { seq }, p);
            }
            Err(SaveError::Store(StoreError::Deleted)) => {
                Metrics::inc(&m.saves_failed_total);
                return Err(Stop::Deleted);
            }
            Err(e) => {
                if e.is_too_large() {
                    Metrics::inc(&m.saves_too_large_total);
                }
                Metrics::inc(&m.saves_failed_total);
                Metrics::inc(&m.save_seconds_count);
                if matches!(e, SaveError::Store(StoreError::Refused(_))) {
                    Metrics::inc(&m.saves_refused_total);
                }
                tracing::error!(room = %self.name, seq, error = %e,
                    "save failed; the room stays dirty and its updates stay in the local log");
                self.schedule_event(SaveEvent::SaveFailed, p);
                if self.shutting_down {
                    self.answer_shutdown();
                }
            }
        }
        Ok(())
    }

    fn answer_shutdown(&mut self) {
        for done in self.shutdown_waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Ends a room task that must stop while clients may be connected (`conns`, and joins still
/// waiting in `rx`).
/// - The log failed: the doc may hold updates that are not durable, so nothing of it may be
///   sent. Close every client with 1011 (they resync on reconnect).
/// - The store answered `resource_deleted`: move the room's log to the quarantine (kept for
///   `--deleted-retention`, exportable), then close every client with 1008.
async fn end(
    shared: &Arc<Shared>,
    name: &RoomName,
    stop: Stop,
    conns: &[Arc<Outbox>],
    rx: &mut mpsc::Receiver<RoomMsg>,
) {
    let (code, reason) = match stop {
        Stop::Fatal(fatal) => {
            tracing::error!(error = %fatal, "room stopped: local log failure");
            (1011, "the relay's durable log failed; reconnect")
        }
        Stop::Deleted => {
            Metrics::inc(&shared.metrics.rooms_quarantined_total);
            let key: Arc<str> = name.to_string().into();
            let reason = "the store answered resource_deleted";
            match shared.log.quarantine(&key, unix_ms(), reason).await {
                Ok(()) => tracing::warn!(room = %name,
                    retention = %crate::config::DisplayDuration(shared.config.deleted_retention),
                    "the store says this resource was deleted: the room's local log moved to \
                     the quarantine (`ykeep-relay quarantine list` shows it)"),
                Err(e) => tracing::error!(room = %name, error = %e,
                    "the store says this resource was deleted, but moving the room's log to \
                     the quarantine failed: it stays in the log"),
            }
            (
                1008,
                "resource_deleted: this resource was deleted from the store",
            )
        }
    };
    registry::remove(shared, name);
    rx.close();
    for outbox in conns {
        outbox.close(code, reason);
    }
    while let Ok(msg) = rx.try_recv() {
        match msg {
            RoomMsg::Join { outbox, .. } => outbox.close(code, reason),
            RoomMsg::Shutdown { done } => {
                let _ = done.send(());
            }
            _ => {}
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch (quarantine times outlive the process).
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn update_frame(payload: &[u8]) -> OutFrame {
    OutFrame::Update {
        frame: protocol::encode_update(payload).into(),
        payload_at: protocol::update_payload_offset(payload.len()),
    }
}

/// Applies log records to a doc (used by cold start, by `/durable` for unloaded rooms and by
/// the quarantine export). Returns the ids of the records it could not read (another format,
/// undecodable): they are skipped, never dropped from the log.
pub(crate) fn apply_records(doc: &Doc, records: &[LogRecord], room: &RoomName) -> Vec<i64> {
    let mut unreadable = Vec::new();
    // One transaction per update: one huge transaction was ~4x slower to apply in yrs.
    for record in records {
        let parts = match record.format {
            record_format::BATCH => match protocol::read_len_prefixed(&record.data) {
                Ok(parts) => parts,
                Err(e) => {
                    tracing::error!(%room, record = record.id, error = %e, "unreadable log record skipped");
                    unreadable.push(record.id);
                    continue;
                }
            },
            record_format::SNAPSHOT => vec![record.data.as_slice()],
            other => {
                tracing::error!(%room, record = record.id, format = other, "log record of unknown format skipped");
                unreadable.push(record.id);
                continue;
            }
        };
        let mut readable = true;
        for part in parts {
            match Update::decode_v1(part) {
                Ok(u) => {
                    if let Err(e) = doc.transact_mut().apply_update(u) {
                        tracing::error!(%room, record = record.id, error = %e, "log update does not apply; skipped");
                        readable = false;
                    }
                }
                Err(e) => {
                    tracing::error!(%room, record = record.id, error = %e, "log update does not decode; skipped");
                    readable = false;
                }
            }
        }
        if !readable {
            unreadable.push(record.id);
        }
    }
    unreadable
}

fn truncate(reason: &str) -> String {
    // Close reasons are limited to 123 bytes.
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
