//! The relay's local durable log: one SQLite database (WAL) under `<data>/relay/`.
//!
//! Every accepted update is committed here before the relay forwards it to anyone. One
//! dedicated thread owns the writing connection and commits whatever requests are waiting in one
//! transaction (group commit across rooms); each room sends one record per batch of updates.
//! Reads (loading a room, listing dirty rooms) run on `spawn_blocking` over one reader
//! connection opened with the log (WAL: they never wait behind the writer).

pub mod schema;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::config::LogSync;
pub use schema::{FORMAT_VERSION, record_format};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("log format version {found} found, this relay reads version {expected}")]
    Version { found: i64, expected: i64 },
    #[error("the log writer thread has stopped")]
    WriterGone,
    #[error("cannot create the log directory: {0}")]
    Dir(#[source] std::io::Error),
    #[error("cannot start the log writer thread: {0}")]
    WriterThread(#[source] std::io::Error),
    /// The group commit this request was in failed (every request in it gets the same error).
    #[error("local log commit failed: {0}")]
    Commit(#[source] Arc<rusqlite::Error>),
    #[error("a blocking log task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub use ykeep_room::{LogRecord, RoomRecords, SavedRecord};

/// A [`LogRecord`] from a row selected as `id, format, data`.
fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogRecord> {
    Ok(LogRecord {
        id: r.get(0)?,
        format: r.get(1)?,
        data: r.get(2)?,
    })
}

/// One room in the quarantine (its resource was deleted from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    pub id: i64,
    pub room: String,
    /// When it was quarantined, milliseconds since the Unix epoch (wall clock: retention spans
    /// restarts).
    pub quarantined_at: i64,
    pub reason: String,
    pub records: u64,
    pub bytes: u64,
}

/// What the writer thread commits, many at a time in one transaction.
enum Write {
    Append {
        room: Arc<str>,
        seq: u64,
        format: i64,
        data: Vec<u8>,
        done: Done,
    },
    Saved {
        room: Arc<str>,
        saved: SavedRecord,
        done: Done,
    },
    Quarantine {
        room: Arc<str>,
        at_ms: i64,
        reason: String,
        done: Done,
    },
}

enum Request {
    Write(Write),
    /// Runs in its own transaction after the batch it arrived with.
    Purge {
        before_ms: i64,
        done: oneshot::Sender<Result<Vec<QuarantineEntry>, LogError>>,
    },
}

type Done = oneshot::Sender<Result<(), Arc<rusqlite::Error>>>;

/// Handle to the log; cheap to clone.
#[derive(Clone)]
pub struct RoomLog {
    tx: mpsc::UnboundedSender<Request>,
    /// The one reader connection, used on the blocking pool.
    reader: Arc<Mutex<Connection>>,
}

impl RoomLog {
    /// Opens `<dir>/log.sqlite3` and starts the writer thread.
    pub fn open(dir: &Path, sync: LogSync) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(LogError::Dir)?;
        let path = dir.join("log.sqlite3");
        let conn = schema::open(&path, sync, true)?;
        // Opened after the writer has created the schema.
        let reader = schema::open(&path, sync, false)?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("ykeep-log-writer".into())
            .spawn(move || writer::writer_loop(conn, rx))
            .map_err(LogError::WriterThread)?;
        Ok(RoomLog {
            tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Commits one record for `room` with sequence number `seq`; returns once it is durable.
    pub async fn append(
        &self,
        room: &Arc<str>,
        seq: u64,
        format: i64,
        data: Vec<u8>,
    ) -> Result<(), LogError> {
        let (done, wait) = oneshot::channel();
        self.send(
            Write::Append {
                room: room.clone(),
                seq,
                format,
                data,
                done,
            },
            wait,
        )
        .await
    }

    /// Records a successful save and compacts the room's records up to it into one.
    pub async fn saved(&self, room: &Arc<str>, saved: SavedRecord) -> Result<(), LogError> {
        let (done, wait) = oneshot::channel();
        self.send(
            Write::Saved {
                room: room.clone(),
                saved,
                done,
            },
            wait,
        )
        .await
    }

    /// Moves everything the log holds for a room into the quarantine, in one transaction (its
    /// resource was deleted from the store). `at_ms`: now, in Unix milliseconds.
    pub async fn quarantine(
        &self,
        room: &Arc<str>,
        at_ms: i64,
        reason: &str,
    ) -> Result<(), LogError> {
        let (done, wait) = oneshot::channel();
        self.send(
            Write::Quarantine {
                room: room.clone(),
                at_ms,
                reason: reason.to_owned(),
                done,
            },
            wait,
        )
        .await
    }

    /// Deletes the quarantined rooms quarantined at or before `before_ms` (Unix ms: now minus
    /// the retention); returns what was deleted.
    pub async fn purge_quarantine(&self, before_ms: i64) -> Result<Vec<QuarantineEntry>, LogError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Purge { before_ms, done })
            .map_err(|_| LogError::WriterGone)?;
        wait.await.map_err(|_| LogError::WriterGone)?
    }

    /// Every quarantined room, oldest first.
    pub async fn quarantined(&self) -> Result<Vec<QuarantineEntry>, LogError> {
        self.read(quarantined).await
    }

    async fn send(
        &self,
        req: Write,
        wait: oneshot::Receiver<Result<(), Arc<rusqlite::Error>>>,
    ) -> Result<(), LogError> {
        self.tx
            .send(Request::Write(req))
            .map_err(|_| LogError::WriterGone)?;
        match wait.await {
            Ok(result) => result.map_err(LogError::Commit),
            Err(_) => Err(LogError::WriterGone),
        }
    }

    /// Reads everything the log holds for `room`.
    pub async fn load(&self, room: &str) -> Result<RoomRecords, LogError> {
        let room = room.to_owned();
        self.read(move |conn| load_room(conn, &room)).await
    }

    /// Rooms whose last committed sequence number is past their last saved one.
    pub async fn dirty_rooms(&self) -> Result<Vec<String>, LogError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT room FROM rooms WHERE seq > saved_seq")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, LogError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, LogError> + Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            // A panic in a read leaves the connection usable (its transaction rolls back).
            let conn = reader.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await?
    }
}

/// Read-only access to a log that a running relay may be writing (`ykeep-relay quarantine`).
pub struct LogReader {
    conn: Connection,
}

impl LogReader {
    /// Opens `<dir>/log.sqlite3` read-only; a missing log is an error, not a new empty one.
    pub fn open(dir: &Path) -> Result<Self, LogError> {
        Ok(LogReader {
            conn: schema::open_read_only(&dir.join("log.sqlite3"))?,
        })
    }

    pub fn quarantined(&self) -> Result<Vec<QuarantineEntry>, LogError> {
        quarantined(&self.conn)
    }

    /// One quarantined room and its records in commit order; None when there is no such id.
    pub fn quarantine_records(
        &self,
        id: i64,
    ) -> Result<Option<(QuarantineEntry, Vec<LogRecord>)>, LogError> {
        let Some(entry) = quarantined(&self.conn)?.into_iter().find(|e| e.id == id) else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare(
            "SELECT id, format, data FROM quarantine_records WHERE quarantine_id = ?1
             ORDER BY seq, id",
        )?;
        let rows = stmt.query_map([id], record_from_row)?;
        let records = rows.collect::<Result<Vec<_>, _>>()?;
        Ok(Some((entry, records)))
    }
}

fn quarantined(conn: &Connection) -> Result<Vec<QuarantineEntry>, LogError> {
    let mut stmt = conn.prepare(
        "SELECT q.id, q.room, q.quarantined_at, q.reason, count(r.id), coalesce(sum(length(r.data)), 0)
         FROM quarantine q LEFT JOIN quarantine_records r ON r.quarantine_id = q.id
         GROUP BY q.id ORDER BY q.quarantined_at, q.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(QuarantineEntry {
            id: r.get(0)?,
            room: r.get(1)?,
            quarantined_at: r.get(2)?,
            reason: r.get(3)?,
            records: r.get::<_, i64>(4)? as u64,
            bytes: r.get::<_, i64>(5)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn purge_quarantine(
    conn: &mut Connection,
    before_ms: i64,
) -> Result<Vec<QuarantineEntry>, LogError> {
    let tx = conn.transaction()?;
    let expired: Vec<QuarantineEntry> = quarantined(&tx)?
        .into_iter()
        .filter(|e| e.quarantined_at <= before_ms)
        .collect();
    for entry in &expired {
        tx.execute(
            "DELETE FROM quarantine_records WHERE quarantine_id = ?1",
            [entry.id],
        )?;
        tx.execute("DELETE FROM quarantine WHERE id = ?1", [entry.id])?;
    }
    tx.commit()?;
    Ok(expired)
}

fn load_room(conn: &Connection, room: &str) -> Result<RoomRecords, LogError> {
    let tx = conn.unchecked_transaction()?;
    let mut out = tx
        .query_row(
            "SELECT seq, saved_seq, store_snapshot_id, store_marker, saved_at FROM rooms
             WHERE room = ?1",
            [room],
            |r| {
                Ok(RoomRecords {
                    seq: r.get::<_, i64>(0)? as u64,
                    saved_seq: r.get::<_, i64>(1)? as u64,
                    store_snapshot_id: r.get(2)?,
                    store_marker: r.get(3)?,
                    saved_at: r.get(4)?,
                    records: Vec::new(),
                })
            },
        )
        .optional()?
        .unwrap_or_default();
    {
        let mut stmt =
            tx.prepare("SELECT id, format, data FROM records WHERE room = ?1 ORDER BY seq, id")?;
        let rows = stmt.query_map([room], record_from_row)?;
        out.records = rows.collect::<Result<Vec<_>, _>>()?;
    }
    tx.commit()?;
    Ok(out)
}

#[cfg(test)]
mod tests;
