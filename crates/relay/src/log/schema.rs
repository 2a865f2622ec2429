//! The relay log's SQLite schema and its format version.

use rusqlite::{Connection, OptionalExtension};

use super::LogError;
use crate::config::LogSync;

/// Version of the log's tables and record encodings; a log written by another version is
/// refused rather than misread. (The quarantine tables were added without a version change:
/// they are new tables, and a relay that does not know them leaves them alone.)
pub const FORMAT_VERSION: i64 = 1;

/// Record `format` values.
pub use ykeep_room::record_format;

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
-- Rooms whose resource the store reported deleted (`resource_deleted`): their records, moved
-- here whole, kept for --deleted-retention, listed and exported by `ykeep-relay quarantine`.
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    quarantined_at INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine_records (
    id INTEGER PRIMARY KEY,
    quarantine_id INTEGER NOT NULL REFERENCES quarantine (id),
    seq INTEGER NOT NULL,
    format INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_records_q ON quarantine_records (quarantine_id, seq);
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
        if stored_version(&conn)?.is_none() {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('format_version', ?1)",
                [FORMAT_VERSION],
            )?;
        }
        check_version(&conn)?;
    }
    Ok(conn)
}

fn stored_version(conn: &Connection) -> Result<Option<i64>, LogError> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'format_version'",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

/// Refuses a log of another format version (or of none: not a log this relay wrote).
fn check_version(conn: &Connection) -> Result<(), LogError> {
    match stored_version(conn)? {
        Some(FORMAT_VERSION) => Ok(()),
        found => Err(LogError::Version {
            found: found.unwrap_or(0),
            expected: FORMAT_VERSION,
        }),
    }
}

/// Opens an existing log read-only (for `ykeep-relay quarantine`, beside a running relay) and
/// checks its format version. A missing file is an error: nothing is created.
pub fn open_read_only(path: &std::path::Path) -> Result<Connection, LogError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    check_version(&conn)?;
    Ok(conn)
}
