//! The relay log's SQLite schema and its format version.

use rusqlite::{Connection, OptionalExtension};

use super::LogError;
use crate::config::LogSync;

/// Version of the log's tables and record encodings; a log written by another version is
/// refused rather than misread.
pub const FORMAT_VERSION: i64 = 1;

/// Record `format` values.
pub mod record_format {
    /// A batch: `[varuint len, Yjs v1 update]*`, as committed by one group commit.
    pub const BATCH: i64 = 1;
    /// One full-state Yjs v1 update (the compacted record written after a save).
    pub const SNAPSHOT: i64 = 2;
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
    room TEXT PRIMARY KEY,
    seq INTEGER NOT NULL DEFAULT 0,
    saved_seq INTEGER NOT NULL DEFAULT 0,
    store_snapshot_id TEXT,
    store_marker BLOB,
    saved_at INTEGER
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    format INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_room_seq ON records (room, seq);
";

/// Opens (creating if needed) the log database with WAL and the chosen sync level.
pub fn open(path: &std::path::Path, sync: LogSync, write: bool) -> Result<Connection, LogError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    if write {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    let level = match sync {
        LogSync::Normal => "NORMAL",
        LogSync::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", level)?;
    if write {
        conn.execute_batch(SCHEMA)?;
        let found: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'format_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match found {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('format_version', ?1)",
                    [FORMAT_VERSION],
                )?;
            }
            Some(v) if v == FORMAT_VERSION => {}
            Some(v) => {
                return Err(LogError::Version {
                    found: v,
                    expected: FORMAT_VERSION,
                });
            }
        }
    }
    Ok(conn)
}
