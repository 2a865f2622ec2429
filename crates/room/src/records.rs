//! What a room keeps in its host's durable log, and how a doc is rebuilt from it.
//!
//! The host stores records in commit order (the relay in SQLite, a Durable Object in its own
//! storage); the room decides what goes in them. A record is either a batch of updates
//! (`[varuint len, Yjs v1 update]*`, one per commit) or the full state written by a compaction
//! after a save.

use ykeep_core::{DurabilityMarker, RoomName};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};

use crate::protocol;

/// The `format` of a log record.
pub mod record_format {
    /// A batch: `[varuint len, Yjs v1 update]*`, as committed by one group commit.
    pub const BATCH: i64 = 1;
    /// One full-state Yjs v1 update (the compacted record written after a save).
    pub const SNAPSHOT: i64 = 2;
}

/// One record as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The record's id in the log: what a compaction names when it must keep a record.
    pub id: i64,
    pub format: i64,
    pub data: Vec<u8>,
}

/// What the log holds for one room.
#[derive(Debug, Default, Clone)]
pub struct RoomRecords {
    /// Sequence number of the last committed record (0 = nothing logged).
    pub seq: u64,
    /// Sequence number captured by the last successful save.
    pub saved_seq: u64,
    pub store_snapshot_id: Option<String>,
    /// Encoded Yjs snapshot of what the store last confirmed.
    pub store_marker: Option<Vec<u8>>,
    pub saved_at: Option<i64>,
    /// The records in commit order.
    pub records: Vec<LogRecord>,
}

/// One record to append: the room's sequence number after it, and the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    pub seq: u64,
    pub format: i64,
    pub data: Vec<u8>,
}

/// A successful save, to be recorded and compacted in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedRecord {
    pub saved_seq: u64,
    pub store_snapshot_id: String,
    pub store_marker: Vec<u8>,
    pub saved_at: i64,
    /// The full state that was saved: replaces every record up to `saved_seq`...
    pub compacted: Vec<u8>,
    /// ...but these (record ids): records the room could not read, so the saved state may lack
    /// them. They stay in the log, never compacted away.
    pub keep: Vec<i64>,
}

/// Applies log records to a doc (cold start, a wake from sleep, `/durable` for a room that is
/// not loaded, the quarantine export). Returns the ids of the records it could not read
/// (another format, undecodable): they are skipped, never dropped from the log.
pub fn apply_records(doc: &Doc, records: &[LogRecord], room: &RoomName) -> Vec<i64> {
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

/// The durability marker of what the records hold (a room's `/durable` while it is not loaded).
pub fn marker_of(records: &[LogRecord], room: &RoomName) -> DurabilityMarker {
    let doc = Doc::new();
    apply_records(&doc, records, room);
    DurabilityMarker::of_txn(&doc.transact())
}
