//! The store side of a room: cold-start merge, saves, conflict merges and polls.
//!
//! Never lose what the store holds:
//! - a save names the snapshot the room holds (`If-Match`, or `If-None-Match: *` when the store
//!   had none); a room that has not heard from the store fetches and merges its snapshot first;
//! - on 409 the room fetches the store's snapshot, merges it, and posts once more;
//! - a store snapshot the room's doc cannot take is never counted as held: the save posts the
//!   union of both, and the next save fetches it again.
//!
//! While the room has clients it polls the store every `poll_every_ms` with the id it holds
//! (`If-None-Match`): another host (a deploy, a failover) may have saved the same room, and a
//! room whose clients stopped editing would otherwise never see that host's edits.
//!
//! One store request at a time: a save that comes due during a poll starts when the poll ends.

use bytes::Bytes;
use ykeep_core::wire::{Precondition, SaveReceipt};
use ykeep_core::{DurabilityMarker, SaveEvent};
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact, Update};

use crate::frames::update_frame;
use crate::records::SavedRecord;
use crate::room::{Effect, Ending, Room};
use crate::store::{Held, StoreError, StoreView, StoredSnapshot};
use crate::{Target, protocol};

/// What the room knows of the store and what it asked it.
#[derive(Debug)]
pub(crate) struct StoreLink {
    pub view: StoreView,
    pub task: StoreTask,
    /// When the store was last asked for other hosts' saves, or the room last saved.
    pub polled_at: u64,
}

impl StoreLink {
    pub fn new(view: StoreView, now: u64) -> Self {
        StoreLink {
            view,
            task: StoreTask::Idle,
            polled_at: now,
        }
    }
}

/// The store request in flight.
#[derive(Debug, Default)]
pub(crate) enum StoreTask {
    #[default]
    Idle,
    /// A poll; a save that came due meanwhile waits in `then_save`.
    Polling {
        then_save: Option<u64>,
    },
    Saving(Save),
}

/// A save that captured `seq` when it started.
#[derive(Debug)]
pub(crate) struct Save {
    seq: u64,
    started_at: u64,
    /// The store already answered 409 once.
    conflicted: bool,
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    Fetching,
    Posting {
        state: Bytes,
        marker: DurabilityMarker,
    },
}

/// Whether the room's doc took a snapshot from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreMerge {
    Merged,
    /// Not a Yjs update, or it does not apply to the room's doc: left out.
    Unreadable,
}

impl Room {
    pub(crate) fn cold_start_merge(&mut self, answer: Result<Option<StoredSnapshot>, StoreError>) {
        match answer {
            Ok(Some(snapshot)) if self.log_holds(&snapshot) => {
                // The log's compacted record is that save (or a later state): the doc holds it
                // already, and the log recorded its marker. Decoding and applying the blob
                // again would add nothing.
                let held = self.store.view.held();
                self.store.view = StoreView::Synced(Held {
                    snapshot_id: Some(snapshot.snapshot_id),
                    marker: held.marker.clone(),
                    saved_at: snapshot.saved_at.or(held.saved_at),
                });
            }
            Ok(Some(snapshot)) => {
                if self.merge_store_content(&snapshot.bytes) == StoreMerge::Merged {
                    self.store.view = StoreView::Synced(Held::of(&snapshot));
                }
            }
            Ok(None) => self.store.view = StoreView::Synced(Held::default()),
            Err(StoreError::Deleted) => self.end(Ending::Deleted),
            Err(e) => tracing::warn!(room = %self.name, error = %e,
                "store unavailable at cold start: serving from the local log; the store's \
                 snapshot will be merged before the first save"),
        }
    }

    /// The store's snapshot is the one this room's log records as its last save, the room read
    /// every log record, and its doc covers the marker recorded with that save. A snapshot id
    /// names one blob for good (each save stores a new one), and a save's full state is the
    /// log's compacted record, so the doc then holds everything the blob holds.
    fn log_holds(&self, snapshot: &StoredSnapshot) -> bool {
        let held = self.store.view.held();
        if !self.unreadable.is_empty()
            || held.snapshot_id.as_deref() != Some(snapshot.snapshot_id.as_str())
        {
            return false;
        }
        let Some(marker) = held.marker.as_deref() else {
            return false;
        };
        match DurabilityMarker::decode(marker) {
            Ok(marker) => DurabilityMarker::of_txn(&self.doc.transact()).covers(&marker),
            Err(_) => false,
        }
    }

    /// When the next poll is due (None when polling is off, the room has no client, the room
    /// is closing, or a store request is in flight).
    pub(crate) fn poll_due(&self) -> Option<u64> {
        let every = self.config.poll_every_ms;
        let idle = matches!(self.store.task, StoreTask::Idle);
        if every == 0 || !idle || self.conns.is_empty() || self.life != crate::room::Life::Open {
            return None;
        }
        Some(self.store.polled_at + every)
    }

    pub(crate) fn maybe_poll(&mut self, now: u64) {
        let Some(due) = self.poll_due() else { return };
        if now < due {
            return;
        }
        self.store.polled_at = now;
        let Some(known) = self.store.view.held().snapshot_id.clone() else {
            // No snapshot known: the first save (If-None-Match: *) meets any other host's.
            return;
        };
        self.store.task = StoreTask::Polling { then_save: None };
        self.batch.effects.push(Effect::Poll { known });
    }

    pub(crate) fn polled(&mut self, result: Result<Option<StoredSnapshot>, StoreError>, now: u64) {
        let StoreTask::Polling { then_save } = std::mem::take(&mut self.store.task) else {
            return tracing::error!(room = %self.name, "a poll answer with no poll in flight; ignored");
        };
        match result {
            Ok(Some(current)) => self.merge_polled(current),
            Ok(None) => {}
            Err(e) => tracing::warn!(room = %self.name, error = %e,
                "asking the store for other hosts' saves failed; next try in one poll interval"),
        }
        if let Some(seq) = then_save {
            self.start_save(seq, now);
        }
    }

    fn merge_polled(&mut self, current: StoredSnapshot) {
        if self.store.view.held().snapshot_id.as_deref() == Some(current.snapshot_id.as_str()) {
            return; // our own save landed while the poll was in flight
        }
        if let Err(e) = ykeep_core::validate_update(&current.bytes) {
            return tracing::error!(room = %self.name, error = %e,
                "the store's snapshot is not a valid Yjs update; not merged");
        }
        tracing::info!(room = %self.name, snapshot = %current.snapshot_id,
            "merging a save made elsewhere (another host)");
        if self.merge_store_content(&current.bytes) == StoreMerge::Merged {
            // The room now contains that snapshot: the next save names it in If-Match.
            self.store.view = StoreView::Synced(Held::of(&current));
        }
    }

    /// The sequence number the save in flight captured.
    pub(crate) fn saving_seq(&self) -> Option<u64> {
        match &self.store.task {
            StoreTask::Saving(save) => Some(save.seq),
            _ => None,
        }
    }

    /// The schedule says save what `seq` covers.
    pub(crate) fn start_save(&mut self, seq: u64, now: u64) {
        match &mut self.store.task {
            StoreTask::Polling { then_save } => *then_save = Some(seq),
            StoreTask::Saving(_) => {
                tracing::error!(room = %self.name, seq, "a save was due while one is in flight");
            }
            StoreTask::Idle => {
                tracing::debug!(room = %self.name, seq, "saving");
                let save = Save {
                    seq,
                    started_at: now,
                    conflicted: false,
                    stage: Stage::Fetching,
                };
                if self.store.view.must_fetch() {
                    self.fetch(save);
                } else {
                    self.post(save, None, now);
                }
            }
        }
    }

    fn fetch(&mut self, mut save: Save) {
        save.stage = Stage::Fetching;
        self.store.task = StoreTask::Saving(save);
        self.batch.effects.push(Effect::Fetch);
    }

    /// Posts the doc's full state (with `store_content` the doc could not take, if any).
    fn post(&mut self, mut save: Save, store_content: Option<&[u8]>, now: u64) {
        let (state, marker) = {
            let txn = self.doc.transact();
            let state = txn.encode_state_as_update_v1(&StateVector::default());
            (state, DurabilityMarker::of_txn(&txn))
        };
        let (state, marker) = match store_content {
            None => (state, marker),
            Some(content) => {
                let merged = ykeep_core::merge_updates([state.as_slice(), content])
                    .map_err(|e| e.to_string())
                    .and_then(|s| match DurabilityMarker::of_update(&s) {
                        Ok(marker) => Ok((marker, s)),
                        Err(e) => Err(e.to_string()),
                    });
                match merged {
                    Ok((marker, state)) => (state, marker),
                    Err(e) => {
                        return self.fail_save(
                            save,
                            &format!("merging the store's snapshot failed: {e}"),
                            Failure::Other,
                            now,
                        );
                    }
                }
            }
        };
        if state.len() > self.config.max_snapshot_bytes {
            let why = format!(
                "snapshot of {} bytes is over the {}-byte limit",
                state.len(),
                self.config.max_snapshot_bytes
            );
            return self.fail_save(save, &why, Failure::TooLarge, now);
        }
        let precondition = match &self.store.view.held().snapshot_id {
            Some(id) => Precondition::IfMatch(id.clone()),
            None => Precondition::IfNoneMatch,
        };
        let state = Bytes::from(state);
        save.stage = Stage::Posting {
            state: state.clone(),
            marker,
        };
        self.store.task = StoreTask::Saving(save);
        self.batch.effects.push(Effect::Save {
            state,
            precondition,
        });
    }

    pub(crate) fn fetched(&mut self, result: Result<Option<StoredSnapshot>, StoreError>, now: u64) {
        let save = match std::mem::take(&mut self.store.task) {
            StoreTask::Saving(
                save @ Save {
                    stage: Stage::Fetching,
                    ..
                },
            ) => save,
            other => {
                self.store.task = other;
                return tracing::error!(room = %self.name, "a fetch answer with no fetch in flight; ignored");
            }
        };
        match result {
            Ok(Some(current)) => match self.merge_store_content(&current.bytes) {
                StoreMerge::Merged => {
                    self.store.view = StoreView::Synced(Held::of(&current));
                    self.post(save, None, now);
                }
                StoreMerge::Unreadable => {
                    self.store.view = StoreView::Unmergeable(Held::of(&current));
                    self.post(save, Some(&current.bytes), now);
                }
            },
            Ok(None) => {
                self.store.view = StoreView::Synced(Held::default());
                self.post(save, None, now);
            }
            Err(StoreError::Deleted) => {
                self.batch.tally.saves_failed += 1;
                self.end(Ending::Deleted);
            }
            Err(e) => self.fail_save(save, &e.to_string(), Failure::of(&e), now),
        }
    }

    pub(crate) fn saved(&mut self, result: Result<SaveReceipt, StoreError>, now: u64) {
        let save = match std::mem::take(&mut self.store.task) {
            StoreTask::Saving(
                save @ Save {
                    stage: Stage::Posting { .. },
                    ..
                },
            ) => save,
            other => {
                self.store.task = other;
                return tracing::error!(room = %self.name, "a save answer with no save in flight; ignored");
            }
        };
        match result {
            Ok(receipt) => self.save_ok(save, receipt, now),
            Err(StoreError::Conflict { .. }) if !save.conflicted => {
                tracing::info!(room = %self.name, "save met a conflict: merging the store's snapshot");
                self.batch.tally.save_conflicts += 1;
                self.fetch(Save {
                    conflicted: true,
                    ..save
                });
            }
            Err(StoreError::Conflict { .. }) => {
                self.fail_save(save, "the store answered 409 twice", Failure::Other, now)
            }
            Err(StoreError::Deleted) => {
                self.batch.tally.saves_failed += 1;
                self.end(Ending::Deleted);
            }
            Err(e) => self.fail_save(save, &e.to_string(), Failure::of(&e), now),
        }
    }

    fn save_ok(&mut self, save: Save, receipt: SaveReceipt, now: u64) {
        let Stage::Posting { state, marker } = save.stage else {
            return;
        };
        let tally = &mut self.batch.tally;
        tally.saves_ok += 1;
        tally.saved_bytes += state.len() as u64;
        tally.save_ms += now.saturating_sub(save.started_at);
        tracing::info!(room = %self.name, seq = save.seq, bytes = state.len(),
            snapshot = %receipt.snapshot_id, ms = now.saturating_sub(save.started_at), "saved");
        let marker = marker.encode();
        let held = Held {
            snapshot_id: Some(receipt.snapshot_id.clone()),
            marker: Some(marker.clone()),
            saved_at: Some(receipt.saved_at),
        };
        // A state posted with store content the doc could not take (the view says so since the
        // fetch) keeps the next save fetching first; no poll runs while a save is in flight.
        self.store.view = match self.store.view {
            StoreView::Unmergeable(_) => StoreView::Unmergeable(held),
            _ => StoreView::Synced(held),
        };
        // A save that passed its precondition proves the room held the store's latest.
        self.store.polled_at = now;
        self.batch.compact = Some(SavedRecord {
            saved_seq: save.seq,
            store_snapshot_id: receipt.snapshot_id,
            store_marker: marker,
            saved_at: receipt.saved_at,
            compacted: state.to_vec(),
            keep: self.unreadable.clone(),
        });
        self.acknowledge_save(save.seq);
        self.schedule_event(SaveEvent::SaveOk { seq: save.seq }, now);
    }

    fn fail_save(&mut self, save: Save, error: &str, failure: Failure, now: u64) {
        let tally = &mut self.batch.tally;
        tally.saves_failed += 1;
        match failure {
            Failure::TooLarge => tally.saves_too_large += 1,
            Failure::Refused => tally.saves_refused += 1,
            Failure::Other => {}
        }
        tracing::error!(room = %self.name, seq = save.seq, error,
            "save failed; the room stays dirty and its updates stay in the local log");
        self.store.task = StoreTask::Idle;
        self.schedule_event(SaveEvent::SaveFailed, now);
    }

    /// Applies content from the store; what was new is logged and sent to every client.
    /// A snapshot the room cannot apply is left out, and the caller must not count it as held:
    /// a save that named it in `If-Match` would replace it with a state that lacks it.
    fn merge_store_content(&mut self, bytes: &[u8]) -> StoreMerge {
        let update = match Update::decode_v1(bytes) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(room = %self.name, error = %e,
                    "the store's snapshot is not a Yjs update: not merged, and no save will replace it");
                return StoreMerge::Unreadable;
            }
        };
        // The same check as a client's update: yrs fails half-way on a parent that is neither a
        // type nor deleted and leaves the doc partly changed.
        if let Err(e) = ykeep_core::merge::check_parents(&self.doc, bytes) {
            tracing::error!(room = %self.name, error = %e,
                "the store's snapshot does not apply to the room's doc: not merged, and no save will replace it");
            return StoreMerge::Unreadable;
        }
        let delta = {
            let mut txn = self.doc.transact_mut();
            if let Err(e) = txn.apply_update(update) {
                tracing::error!(room = %self.name, error = %e,
                    "the store's snapshot does not apply: not merged, and no save will replace it");
                return StoreMerge::Unreadable;
            }
            txn.encode_update_v1()
        };
        let empty = Update::decode_v1(&delta)
            .map(|u| u.is_empty())
            .unwrap_or(true);
        if !empty {
            protocol::write_len_prefixed(&mut self.batch.log, &delta);
            self.deliver(Target::All, update_frame(&delta));
        }
        StoreMerge::Merged
    }
}

/// How a failed save is counted.
#[derive(Debug, Clone, Copy)]
enum Failure {
    TooLarge,
    Refused,
    Other,
}

impl Failure {
    fn of(e: &StoreError) -> Self {
        match e {
            StoreError::TooLarge => Failure::TooLarge,
            StoreError::Refused(_) => Failure::Refused,
            _ => Failure::Other,
        }
    }
}
