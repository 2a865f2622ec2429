//! The IndexedDB cache's pure half: record shapes, the outbox rule and the compaction fold.
//!
//! Per room the cache holds one [`RoomRecord`] (compacted state and its marker, the outbox
//! folded at the last compaction, the best remote durability marker seen, the store snapshot it
//! holds) and an append-only log of [`LogEntry`]s written since. The wasm-only `idb` module
//! moves these to and from IndexedDB.

use ykeep_core::merge::apply_to;
use ykeep_core::{DurabilityMarker, MergeError};
use yrs::{Doc, ReadTxn, StateVector, Transact};

use crate::error::KeepError;

/// Which kind of stored value a [`ForeignRecord`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    RoomRecord,
    LogEntry,
}

impl Stored {
    /// The format version this code writes into every stored value of this kind (its `v`).
    ///
    /// Room records are at 2 (issue 16: the state's marker and the store snapshot the cache
    /// holds, so that a repeat open computes its state vector without decoding the state and
    /// asks the store with `If-None-Match`). Version 1 records (without those two) are still
    /// read, and written back as 2 once this code changes them. Log entries stay at 1: a tab of
    /// the previous version can still read every entry a tab of this one appends.
    pub fn writes(self) -> u32 {
        match self {
            Stored::RoomRecord => 2,
            Stored::LogEntry => 1,
        }
    }

    /// The format versions this code reads. A value of any other version (older or newer code
    /// in another tab) is never misread, overwritten or deleted: the tab that finds one for its
    /// room stops writing to that room's cache and reports it unavailable ([`ForeignRecord`]).
    pub fn reads(self) -> &'static [u32] {
        match self {
            Stored::RoomRecord => &[1, 2],
            Stored::LogEntry => &[1],
        }
    }
}

impl std::fmt::Display for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stored::RoomRecord => "room record",
            Stored::LogEntry => "log entry",
        })
    }
}

/// A stored value of a room whose format version is not one [`Stored::reads`]: this code cannot
/// read it, so it leaves it (and the rest of the room's cache) as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the cache holds a {what} for room {room} of {found}, and this tab reads {what}s of {reads}: \
     this tab will not write to the cache for this room",
    found = describe_version(*.found),
    reads = describe_reads(*.what)
)]
pub struct ForeignRecord {
    pub room: String,
    pub what: Stored,
    /// The record's `v` (None: it has no numeric `v`).
    pub found: Option<f64>,
}

fn describe_version(found: Option<f64>) -> String {
    match found.map(whole_number) {
        Some(Some(v)) => format!("format version {v}"),
        Some(None) => "a format version that is not a safe integer".into(),
        None => "no format version".into(),
    }
}

/// `v` as an integer when it is a safe integer (`Number.isSafeInteger`). Messages print versions
/// through this rather than `f64`'s `Display`, whose float formatting costs the wasm build
/// 10 KB raw, 5 KB gzip.
pub fn whole_number(v: f64) -> Option<i64> {
    const MAX_EXACT: f64 = 9_007_199_254_740_991.0;
    (v.fract() == 0.0 && v.abs() <= MAX_EXACT).then_some(v as i64)
}

fn describe_reads(what: Stored) -> String {
    let versions: Vec<String> = what.reads().iter().map(u32::to_string).collect();
    match versions.as_slice() {
        [one] => format!("format version {one}"),
        _ => format!("format versions {}", versions.join(" and ")),
    }
}

/// Accepts a stored value whose `v` is one [`Stored::reads`]; anything else is a
/// [`ForeignRecord`]. Returns the version.
pub fn check_version(room: &str, what: Stored, found: Option<f64>) -> Result<u32, ForeignRecord> {
    if let Some(v) = what.reads().iter().find(|v| found == Some(f64::from(**v))) {
        return Ok(*v);
    }
    Err(ForeignRecord {
        room: room.to_string(),
        what,
        found,
    })
}

/// The compacted part of a room's cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomRecord {
    /// Full state (a Yjs v1 update) as of the last compaction; empty when never compacted.
    pub state: Vec<u8>,
    /// Edits made in this browser, folded at the last compaction, that no remote marker
    /// covered yet (one merged Yjs v1 update; empty = none).
    pub pending: Vec<u8>,
    /// True when the whole `state` is pending (nothing was ever confirmed remotely): `pending`
    /// is then left empty instead of storing a second copy of the state.
    pub pending_is_state: bool,
    /// The latest durability marker (encoded Yjs snapshot) reported by the relay or the store.
    pub remote_marker: Vec<u8>,
    /// The marker (encoded Yjs snapshot: state vector + delete set) of `state`, written by the
    /// compaction that wrote `state`. `None` when unknown (a version 1 record): then it is
    /// computed from `state`.
    pub state_marker: Option<Vec<u8>>,
    /// The latest store snapshot the cache (record and log together) holds all of. The cache
    /// only grows, so this stays true until the room's cache is cleared.
    pub store_snapshot: Option<HeldSnapshot>,
}

/// A store snapshot, by the store's URL and the snapshot's id (its `ETag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSnapshot {
    pub store: String,
    pub id: String,
}

/// One appended update. `local` = made in this browser (outbox candidate); `false` = loaded
/// from the relay or the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub update: Vec<u8>,
    pub local: bool,
}

impl RoomRecord {
    pub fn marker(&self) -> Result<Option<DurabilityMarker>, KeepError> {
        if self.remote_marker.is_empty() {
            return Ok(None);
        }
        Ok(Some(DurabilityMarker::decode(&self.remote_marker)?))
    }

    /// Bytes this record stores (values only).
    pub fn bytes(&self) -> usize {
        let held = self
            .store_snapshot
            .as_ref()
            .map_or(0, |h| h.store.len() + h.id.len());
        self.state.len()
            + self.pending.len()
            + self.remote_marker.len()
            + self.state_marker.as_ref().map_or(0, Vec::len)
            + held
    }

    /// The marker of `state`: the stored one, or (version 1 records) computed from `state`.
    pub fn state_marker(&self) -> Result<DurabilityMarker, KeepError> {
        match &self.state_marker {
            Some(m) => Ok(DurabilityMarker::decode(m)?),
            None => Ok(DurabilityMarker::of_update(&self.state)?),
        }
    }
}

/// The log entries for a batch of updates the page made: one merged entry, or, when yrs cannot
/// merge them, one entry per update, so that a failed merge never drops an edit. The merge
/// error comes back for the caller to report.
pub fn local_entries(batch: Vec<Vec<u8>>) -> (Vec<LogEntry>, Option<MergeError>) {
    let local = |update| LogEntry {
        update,
        local: true,
    };
    if batch.len() <= 1 {
        return (batch.into_iter().map(local).collect(), None);
    }
    match yrs::merge_updates_v1(&batch) {
        Ok(merged) => (vec![local(merged)], None),
        Err(e) => (
            batch.into_iter().map(local).collect(),
            Some(MergeError::Decode(e.to_string())),
        ),
    }
}

/// The updates still waiting for a remote durability marker: the folded `pending` and every
/// local log entry, minus those the record's marker covers.
pub fn outbox<'a>(record: &'a RoomRecord, log: &'a [LogEntry]) -> Result<Vec<&'a [u8]>, KeepError> {
    let marker = record.marker()?;
    let covered = |u: &[u8]| -> Result<bool, KeepError> {
        Ok(match &marker {
            Some(m) => m.covers_update(u)?,
            None => false,
        })
    };
    let mut out = Vec::new();
    let pending = if record.pending_is_state {
        &record.state
    } else {
        &record.pending
    };
    if !pending.is_empty() && !covered(pending)? {
        out.push(pending.as_slice());
    }
    for e in log.iter().filter(|e| e.local) {
        if !covered(&e.update)? {
            out.push(e.update.as_slice());
        }
    }
    Ok(out)
}

/// Folds the log into the record: state = union of state and log; pending = the outbox merged
/// into one update. Content is unchanged by construction (CRDT union of the same updates).
/// Anything that does not merge (in the state or in the outbox) fails the whole fold: the
/// caller then writes nothing and the log stays as it was.
pub fn compact(record: &RoomRecord, log: &[LogEntry]) -> Result<RoomRecord, KeepError> {
    let doc = Doc::new();
    for update in std::iter::once(record.state.as_slice()).chain(log.iter().map(|e| &e.update[..]))
    {
        if !update.is_empty() {
            apply_to(&doc, update)?;
        }
    }
    let (state, state_marker) = {
        let txn = doc.transact();
        let state = txn.encode_state_as_update_v1(&StateVector::default());
        (state, DurabilityMarker::of_txn(&txn))
    };
    drop(doc);
    let waiting = outbox(record, log)?;
    let pending = match waiting.len() {
        0 => Vec::new(),
        1 => waiting[0].to_vec(),
        _ => yrs::merge_updates_v1(waiting).map_err(|e| MergeError::Decode(e.to_string()))?,
    };
    // Everything pending (the usual case before any remote marker): keep one copy, the state.
    let nothing_remote = record.remote_marker.is_empty()
        && log.iter().all(|e| e.local)
        && (record.state.is_empty() || record.pending_is_state);
    let pending_is_state = !pending.is_empty()
        && (nothing_remote || DurabilityMarker::of_update(&pending)?.covers(&state_marker));
    Ok(RoomRecord {
        pending: if pending_is_state {
            Vec::new()
        } else {
            pending
        },
        pending_is_state,
        state,
        remote_marker: record.remote_marker.clone(),
        state_marker: Some(state_marker.encode()),
        store_snapshot: record.store_snapshot.clone(),
    })
}

/// Takes a newly reported remote marker into the record. Returns true when the record changed.
/// A marker that the stored one already covers changes nothing; the pending fold is dropped
/// once the marker covers it.
pub fn settle(record: &mut RoomRecord, marker: &DurabilityMarker) -> Result<bool, KeepError> {
    let newer = match record.marker()? {
        Some(old) => !old.covers(marker),
        None => true,
    };
    if !newer {
        return Ok(false);
    }
    record.remote_marker = marker.encode();
    if !record.pending.is_empty() && marker.covers_update(&record.pending)? {
        record.pending.clear();
    }
    if record.pending_is_state && marker.covers_update(&record.state)? {
        record.pending_is_state = false;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

    fn edit(doc: &Doc, f: impl FnOnce(&yrs::TextRef, &mut yrs::TransactionMut)) -> Vec<u8> {
        let t = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        f(&t, &mut txn);
        txn.encode_update_v1()
    }
    fn text_of(update: &[u8]) -> String {
        let d = Doc::new();
        d.transact_mut()
            .apply_update(Update::decode_v1(update).unwrap())
            .unwrap();
        d.get_or_insert_text("t").get_string(&d.transact())
    }
    fn marker(doc: &Doc) -> DurabilityMarker {
        DurabilityMarker::of_txn(&doc.transact())
    }

    #[test]
    fn compaction_keeps_content_and_folds_the_outbox() {
        let doc = Doc::with_client_id(1);
        let mut log = Vec::new();
        for i in 0..50 {
            log.push(LogEntry {
                update: edit(&doc, |t, x| t.insert(x, i, "a")),
                local: true,
            });
        }
        log.push(LogEntry {
            update: edit(&doc, |t, x| t.remove_range(x, 0, 10)),
            local: true,
        });
        let rec = compact(&RoomRecord::default(), &log).unwrap();
        let want = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert_eq!(text_of(&rec.state), text_of(&want));
        assert!(
            rec.pending_is_state && rec.pending.is_empty(),
            "all pending, stored once"
        );
        assert_eq!(outbox(&rec, &[]).unwrap(), vec![rec.state.as_slice()]);
        let again = compact(&rec, &[]).unwrap();
        assert_eq!(text_of(&again.state), text_of(&want));
    }

    #[test]
    fn delete_only_edit_waits_for_a_marker_with_its_deletion() {
        let doc = Doc::with_client_id(2);
        let insert = edit(&doc, |t, x| t.insert(x, 0, "hello"));
        let before_delete = marker(&doc);
        let delete = edit(&doc, |t, x| t.remove_range(x, 0, 2));
        let mut rec = RoomRecord::default();
        let log = vec![
            LogEntry {
                update: insert,
                local: true,
            },
            LogEntry {
                update: delete.clone(),
                local: true,
            },
        ];
        assert_eq!(outbox(&rec, &log).unwrap().len(), 2);
        assert!(settle(&mut rec, &before_delete).unwrap());
        assert_eq!(
            outbox(&rec, &log).unwrap(),
            vec![delete.as_slice()],
            "same state vector, delete not covered"
        );
        assert!(settle(&mut rec, &marker(&doc)).unwrap());
        assert!(outbox(&rec, &log).unwrap().is_empty());
        assert!(
            !settle(&mut rec, &before_delete).unwrap(),
            "an older marker changes nothing"
        );
    }

    #[test]
    fn settle_drops_a_covered_pending_fold() {
        let doc = Doc::with_client_id(3);
        let u = edit(&doc, |t, x| t.insert(x, 0, "x"));
        let mut rec = compact(
            &RoomRecord::default(),
            &[LogEntry {
                update: u,
                local: true,
            }],
        )
        .unwrap();
        assert_eq!(outbox(&rec, &[]).unwrap().len(), 1);
        settle(&mut rec, &marker(&doc)).unwrap();
        assert!(rec.pending.is_empty() && !rec.pending_is_state);
        assert!(outbox(&rec, &[]).unwrap().is_empty());
        let again = compact(&rec, &[]).unwrap();
        assert!(again.pending.is_empty() && !again.pending_is_state);
    }

    #[test]
    fn remote_entries_are_never_pending() {
        let doc = Doc::with_client_id(4);
        let u = edit(&doc, |t, x| t.insert(x, 0, "from relay"));
        let log = [LogEntry {
            update: u,
            local: false,
        }];
        assert!(outbox(&RoomRecord::default(), &log).unwrap().is_empty());
        assert!(
            compact(&RoomRecord::default(), &log)
                .unwrap()
                .pending
                .is_empty()
        );
    }

    /// Bytes that are not a Yjs update (a stored value gone bad, or an update yrs refuses).
    const GARBAGE: &[u8] = b"\xff\xff\xff\xff\x7fnot a yjs update";

    #[test]
    fn a_batch_is_stored_as_one_merged_entry() {
        let doc = Doc::with_client_id(5);
        let batch: Vec<Vec<u8>> = ["a", "b", "c"]
            .iter()
            .map(|w| edit(&doc, |t, x| t.push(x, w)))
            .collect();
        let (entries, error) = local_entries(batch);
        assert!(error.is_none());
        assert_eq!(entries.len(), 1);
        assert!(entries[0].local);
        assert_eq!(text_of(&entries[0].update), "abc");
        assert!(local_entries(Vec::new()).0.is_empty());
    }

    #[test]
    fn a_batch_that_does_not_merge_is_stored_update_by_update() {
        let doc = Doc::with_client_id(6);
        let first = edit(&doc, |t, x| t.push(x, "kept "));
        let second = edit(&doc, |t, x| t.push(x, "too"));
        let batch = vec![first.clone(), GARBAGE.to_vec(), second.clone()];
        let (entries, error) = local_entries(batch);
        assert!(
            matches!(error, Some(MergeError::Decode(_))),
            "the merge error is reported: {error:?}"
        );
        let stored: Vec<&[u8]> = entries.iter().map(|e| e.update.as_slice()).collect();
        assert_eq!(stored, [first.as_slice(), GARBAGE, second.as_slice()]);
        assert!(entries.iter().all(|e| e.local), "all in the outbox");
    }

    #[test]
    fn compaction_fails_rather_than_drop_a_pending_fold_that_does_not_merge() {
        let doc = Doc::with_client_id(7);
        let state = edit(&doc, |t, x| t.push(x, "state"));
        let record = RoomRecord {
            state,
            pending: GARBAGE.to_vec(),
            pending_is_state: false,
            ..Default::default()
        };
        let log = [LogEntry {
            update: edit(&doc, |t, x| t.push(x, " more")),
            local: true,
        }];
        assert!(
            matches!(compact(&record, &log), Err(KeepError::Update(_))),
            "the fold of the outbox fails, so the compaction does"
        );
        let bad_log = [
            log[0].clone(),
            LogEntry {
                update: GARBAGE.to_vec(),
                local: true,
            },
        ];
        assert!(compact(&RoomRecord::default(), &bad_log).is_err());
    }

    #[test]
    fn room_records_of_versions_1_and_2_and_log_entries_of_1_are_readable() {
        let ok = |what, v| check_version("document/a", what, Some(v));
        assert_eq!(ok(Stored::LogEntry, 1.0), Ok(1));
        assert_eq!(ok(Stored::RoomRecord, 1.0), Ok(1));
        assert_eq!(ok(Stored::RoomRecord, 2.0), Ok(2));
        for (what, found, says, reads) in [
            (
                Stored::RoomRecord,
                Some(3.0),
                "of format version 3,",
                "versions 1 and 2",
            ),
            (
                Stored::RoomRecord,
                Some(0.0),
                "of format version 0,",
                "versions 1 and 2",
            ),
            (
                Stored::RoomRecord,
                Some(1.5),
                "of a format version that is not a safe integer,",
                "versions 1 and 2",
            ),
            (
                Stored::RoomRecord,
                Some(1e300),
                "of a format version that is not a safe integer,",
                "versions 1 and 2",
            ),
            (
                Stored::RoomRecord,
                Some(-7.0),
                "of format version -7,",
                "versions 1 and 2",
            ),
            (
                Stored::RoomRecord,
                None,
                "of no format version,",
                "versions 1 and 2",
            ),
            (
                Stored::LogEntry,
                Some(2.0),
                "of format version 2,",
                "version 1:",
            ),
        ] {
            let e = check_version("document/a", what, found).unwrap_err();
            let message = e.to_string();
            assert!(message.contains(says), "{message}");
            assert!(
                message.contains(&format!("{what} for room document/a"))
                    && message.contains(&format!("this tab reads {what}s of format {reads}"))
                    && message.contains("will not write to the cache for this room"),
                "{message}"
            );
        }
        for what in [Stored::RoomRecord, Stored::LogEntry] {
            assert!(what.reads().contains(&what.writes()));
        }
    }

    #[test]
    fn compaction_writes_the_states_marker_and_keeps_the_held_snapshot() {
        let doc = Doc::with_client_id(12);
        let a = edit(&doc, |t, txn| t.insert(txn, 0, "abc"));
        let b = edit(&doc, |t, txn| t.remove_range(txn, 0, 1));
        let held = HeldSnapshot {
            store: "http://store".into(),
            id: "s1".into(),
        };
        let v1 = RoomRecord {
            state: a.clone(),
            store_snapshot: Some(held.clone()),
            ..Default::default()
        };
        assert_eq!(
            v1.state_marker().unwrap(),
            DurabilityMarker::of_update(&a).unwrap(),
            "a record without a marker computes it"
        );
        let log = [LogEntry {
            update: b,
            local: true,
        }];
        let folded = compact(&v1, &log).unwrap();
        let want = DurabilityMarker::of_txn(&doc.transact());
        assert_eq!(folded.state_marker, Some(want.encode()));
        assert_eq!(folded.state_marker().unwrap(), want);
        assert_eq!(folded.store_snapshot, Some(held));
    }
}
