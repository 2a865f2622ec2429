//! The relay's local durable log: one SQLite database (WAL) under `<data>/relay/`.
//!
//! Every accepted update is committed here before the relay forwards it to anyone. One
//! dedicated thread owns the writing connection and commits whatever requests are waiting in one
//! transaction (group commit across rooms); each room sends one record per batch of updates.
//! Reads (loading a room, listing dirty rooms) run on `spawn_blocking` over one reader
//! connection opened with the log (WAL: they never wait behind the writer).

pub mod schema;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
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
            .spawn(move || writer_loop(conn, rx))
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

fn writer_loop(mut conn: Connection, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut batch = Vec::new();
    let mut purges = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Write(w) => batch.push(w),
                Request::Purge { before_ms, done } => purges.push((before_ms, done)),
            }
            if batch.len() < 4096 {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let result = commit(&mut conn, &batch).map_err(Arc::new);
            if let Err(e) = &result {
                tracing::error!(error = %e, "local log commit failed");
            }
            for req in batch.drain(..) {
                let done = match req {
                    Write::Append { done, .. } => done,
                    Write::Saved { done, .. } => done,
                    Write::Quarantine { done, .. } => done,
                };
                let _ = done.send(result.clone());
            }
        }
        for (before_ms, done) in purges.drain(..) {
            let _ = done.send(purge_quarantine(&mut conn, before_ms));
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Write]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    for req in batch {
        match req {
            Write::Append {
                room,
                seq,
                format,
                data,
                ..
            } => {
                tx.prepare_cached(
                    "INSERT INTO records (room, seq, format, data) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![room.as_ref(), *seq as i64, format, data])?;
                tx.prepare_cached(
                    "INSERT INTO rooms (room, seq) VALUES (?1, ?2)
                     ON CONFLICT (room) DO UPDATE SET seq = max(seq, excluded.seq)",
                )?
                .execute(params![room.as_ref(), *seq as i64])?;
            }
            Write::Saved { room, saved, .. } => {
                let seq = saved.saved_seq as i64;
                // Only what the save held: records up to its sequence number, minus those the
                // room could not read.
                let keep = serde_json::to_string(&saved.keep).expect("ids serialize");
                tx.prepare_cached(
                    "DELETE FROM records WHERE room = ?1 AND seq <= ?2
                     AND id NOT IN (SELECT value FROM json_each(?3))",
                )?
                .execute(params![room.as_ref(), seq, keep])?;
                tx.prepare_cached(
                    "INSERT INTO records (room, seq, format, data) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    room.as_ref(),
                    seq,
                    record_format::SNAPSHOT,
                    saved.compacted
                ])?;
                tx.prepare_cached(
                    "INSERT INTO rooms (room, seq, saved_seq, store_snapshot_id, store_marker,
                                        saved_at)
                     VALUES (?1, ?2, ?2, ?3, ?4, ?5)
                     ON CONFLICT (room) DO UPDATE SET
                        saved_seq = max(saved_seq, excluded.saved_seq),
                        store_snapshot_id = excluded.store_snapshot_id,
                        store_marker = excluded.store_marker,
                        saved_at = excluded.saved_at",
                )?
                .execute(params![
                    room.as_ref(),
                    seq,
                    saved.store_snapshot_id,
                    saved.store_marker,
                    saved.saved_at
                ])?;
            }
            Write::Quarantine {
                room,
                at_ms,
                reason,
                ..
            } => {
                let moved = tx
                    .prepare_cached("SELECT count(*) FROM records WHERE room = ?1")?
                    .query_row([room.as_ref()], |r| r.get::<_, i64>(0))?;
                if moved > 0 {
                    tx.prepare_cached(
                        "INSERT INTO quarantine (room, quarantined_at, reason) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![room.as_ref(), at_ms, reason])?;
                    let id = tx.last_insert_rowid();
                    tx.prepare_cached(
                        "INSERT INTO quarantine_records (quarantine_id, seq, format, data)
                         SELECT ?1, seq, format, data FROM records WHERE room = ?2 ORDER BY seq, id",
                    )?
                    .execute(params![id, room.as_ref()])?;
                }
                tx.prepare_cached("DELETE FROM records WHERE room = ?1")?
                    .execute([room.as_ref()])?;
                tx.prepare_cached("DELETE FROM rooms WHERE room = ?1")?
                    .execute([room.as_ref()])?;
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn append_load_compact_and_dirty_list() {
        let dir = tempfile::tempdir().unwrap();
        let log = RoomLog::open(dir.path(), LogSync::Normal).unwrap();
        let room: Arc<str> = "document/a".into();
        log.append(&room, 1, record_format::BATCH, vec![1])
            .await
            .unwrap();
        log.append(&room, 2, record_format::BATCH, vec![2])
            .await
            .unwrap();
        assert_eq!(
            log.dirty_rooms().await.unwrap(),
            vec!["document/a".to_string()]
        );
        log.saved(&room, saved_at_seq(1, vec![9], vec![]))
            .await
            .unwrap();
        let got = log.load("document/a").await.unwrap();
        assert_eq!((got.seq, got.saved_seq), (2, 1));
        assert_eq!(
            contents(&got.records),
            vec![(record_format::SNAPSHOT, vec![9]), (1, vec![2])]
        );
        assert_eq!(got.store_snapshot_id.as_deref(), Some("s1"));
        drop(log);
        // Reopening keeps everything and checks the format version.
        let log = RoomLog::open(dir.path(), LogSync::Full).unwrap();
        assert_eq!(log.load("document/a").await.unwrap().records.len(), 2);
    }

    fn saved_at_seq(saved_seq: u64, compacted: Vec<u8>, keep: Vec<i64>) -> SavedRecord {
        SavedRecord {
            saved_seq,
            store_snapshot_id: "s1".into(),
            store_marker: vec![0],
            saved_at: 5,
            compacted,
            keep,
        }
    }

    fn contents(records: &[LogRecord]) -> Vec<(i64, Vec<u8>)> {
        records.iter().map(|r| (r.format, r.data.clone())).collect()
    }

    #[tokio::test]
    async fn compaction_replaces_only_what_the_save_held_in_its_own_room() {
        let dir = tempfile::tempdir().unwrap();
        let log = RoomLog::open(dir.path(), LogSync::Normal).unwrap();
        let a: Arc<str> = "document/a".into();
        let other: Arc<str> = "document/ab".into();
        for seq in 1..=3 {
            log.append(&a, seq, record_format::BATCH, vec![seq as u8])
                .await
                .unwrap();
            log.append(&other, seq, record_format::BATCH, vec![10 + seq as u8])
                .await
                .unwrap();
        }
        // A record this relay cannot read (a newer relay's format), inside the saved range.
        log.append(&a, 2, 77, vec![0xee]).await.unwrap();
        let loaded = log.load("document/a").await.unwrap();
        let unreadable = loaded.records.iter().find(|r| r.format == 77).unwrap().id;

        log.saved(&a, saved_at_seq(2, vec![9], vec![unreadable]))
            .await
            .unwrap();
        let got = log.load("document/a").await.unwrap();
        assert_eq!(
            contents(&got.records),
            vec![
                (77, vec![0xee]),
                (record_format::SNAPSHOT, vec![9]),
                (record_format::BATCH, vec![3]),
            ],
            "records 1-2 replaced; record 3 (after the save began) and the unreadable one kept"
        );
        assert_eq!(
            log.load("document/ab").await.unwrap().records.len(),
            3,
            "another room is untouched"
        );
    }

    #[tokio::test]
    async fn quarantine_moves_a_room_whole_and_the_purge_takes_only_expired_entries() {
        let dir = tempfile::tempdir().unwrap();
        let log = RoomLog::open(dir.path(), LogSync::Normal).unwrap();
        let gone: Arc<str> = "document/gone".into();
        let later: Arc<str> = "diagram/later".into();
        let live: Arc<str> = "task/live".into();
        for room in [&gone, &later, &live] {
            log.append(room, 1, record_format::BATCH, vec![1])
                .await
                .unwrap();
            log.append(room, 2, record_format::BATCH, vec![2])
                .await
                .unwrap();
        }
        log.quarantine(&gone, 1_000, "test").await.unwrap();
        log.quarantine(&later, 5_000, "test").await.unwrap();
        // A room with nothing logged leaves no empty entry.
        log.quarantine(&"task/empty".into(), 1_000, "test")
            .await
            .unwrap();

        for room in ["document/gone", "diagram/later"] {
            let left = log.load(room).await.unwrap();
            assert!(
                left.records.is_empty() && left.seq == 0,
                "{room} left the log"
            );
        }
        assert_eq!(
            log.dirty_rooms().await.unwrap(),
            vec!["task/live".to_string()]
        );
        let entries = log.quarantined().await.unwrap();
        let summary: Vec<_> = entries
            .iter()
            .map(|e| (e.room.as_str(), e.quarantined_at, e.records, e.bytes))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("document/gone", 1_000, 2, 2),
                ("diagram/later", 5_000, 2, 2)
            ]
        );
        let reader = LogReader::open(dir.path()).unwrap();
        let (_, records) = reader.quarantine_records(entries[0].id).unwrap().unwrap();
        assert_eq!(
            contents(&records),
            vec![
                (record_format::BATCH, vec![1]),
                (record_format::BATCH, vec![2])
            ]
        );

        // Not yet expired: nothing goes.
        assert!(log.purge_quarantine(999).await.unwrap().is_empty());
        assert_eq!(log.quarantined().await.unwrap().len(), 2);
        // The first has expired, the second has not.
        let purged = log.purge_quarantine(1_000).await.unwrap();
        assert_eq!(
            purged.iter().map(|e| e.room.as_str()).collect::<Vec<_>>(),
            ["document/gone"]
        );
        let left = log.quarantined().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].room, "diagram/later");
        assert!(reader.quarantine_records(entries[0].id).unwrap().is_none());
        assert_eq!(
            reader
                .quarantine_records(left[0].id)
                .unwrap()
                .unwrap()
                .1
                .len(),
            2
        );
        // The purge never touches the live log.
        assert_eq!(log.load("task/live").await.unwrap().records.len(), 2);
    }

    #[tokio::test]
    async fn a_failed_commit_keeps_the_sqlite_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let log = RoomLog::open(dir.path(), LogSync::Normal).unwrap();
        Connection::open(dir.path().join("log.sqlite3"))
            .unwrap()
            .execute_batch("DROP TABLE records")
            .unwrap();
        let room: Arc<str> = "document/a".into();
        let err = log
            .append(&room, 1, record_format::BATCH, vec![1])
            .await
            .unwrap_err();
        assert!(matches!(err, LogError::Commit(_)), "{err:?}");
        let source = std::error::Error::source(&err).expect("the sqlite error");
        assert!(source.to_string().contains("no such table"), "{source}");
        // The reader connection is still the same one and still reads.
        assert_eq!(log.dirty_rooms().await.unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_reader_never_creates_a_log() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LogReader::open(dir.path()).is_err());
        assert!(!dir.path().join("log.sqlite3").exists());
    }

    #[test]
    fn other_format_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite3");
        drop(schema::open(&path, LogSync::Normal, true).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE meta SET value = 99 WHERE key = 'format_version'",
            [],
        )
        .unwrap();
        drop(conn);
        assert!(matches!(
            schema::open(&path, LogSync::Normal, true),
            Err(LogError::Version { found: 99, .. })
        ));
    }
}
