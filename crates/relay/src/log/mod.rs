//! The relay's local durable log: one SQLite database (WAL) under `<data>/relay/`.
//!
//! Every accepted update is committed here before the relay forwards it to anyone. One
//! dedicated thread owns the writing connection and commits whatever requests are waiting in one
//! transaction (group commit across rooms); each room sends one record per batch of updates.
//! Reads (loading a room, listing dirty rooms) run on `spawn_blocking` with their own
//! connection, so they never wait behind the writer.

pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    Dir(std::io::Error),
    #[error("local log commit failed: {0}")]
    Commit(String),
    #[error("a blocking log task failed: {0}")]
    Join(String),
}

/// What the log holds for one room.
#[derive(Debug, Default)]
pub struct RoomRecords {
    /// Sequence number of the last committed record (0 = nothing logged).
    pub seq: u64,
    /// Sequence number captured by the last successful save.
    pub saved_seq: u64,
    pub store_snapshot_id: Option<String>,
    /// Encoded Yjs snapshot of what the store last confirmed.
    pub store_marker: Option<Vec<u8>>,
    pub saved_at: Option<i64>,
    /// `(format, data)` in commit order.
    pub records: Vec<(i64, Vec<u8>)>,
}

/// A successful save, to be recorded and compacted in one transaction.
#[derive(Debug)]
pub struct SavedRecord {
    pub saved_seq: u64,
    pub store_snapshot_id: String,
    pub store_marker: Vec<u8>,
    pub saved_at: i64,
    /// The full state that was saved: replaces every record up to `saved_seq`.
    pub compacted: Vec<u8>,
}

enum Request {
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
    Forget {
        room: Arc<str>,
        done: Done,
    },
}

type Done = oneshot::Sender<Result<(), String>>;

/// Handle to the log; cheap to clone.
#[derive(Clone)]
pub struct RoomLog {
    tx: mpsc::UnboundedSender<Request>,
    path: Arc<PathBuf>,
    sync: LogSync,
}

impl RoomLog {
    /// Opens `<dir>/log.sqlite3` and starts the writer thread.
    pub fn open(dir: &Path, sync: LogSync) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(LogError::Dir)?;
        let path = dir.join("log.sqlite3");
        let conn = schema::open(&path, sync, true)?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("ykeep-log-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(LogError::Dir)?;
        Ok(RoomLog {
            tx,
            path: Arc::new(path),
            sync,
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
            Request::Append {
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
            Request::Saved {
                room: room.clone(),
                saved,
                done,
            },
            wait,
        )
        .await
    }

    /// Drops everything the log holds for a room (its resource was deleted from the store).
    pub async fn forget(&self, room: &Arc<str>) -> Result<(), LogError> {
        let (done, wait) = oneshot::channel();
        self.send(
            Request::Forget {
                room: room.clone(),
                done,
            },
            wait,
        )
        .await
    }

    async fn send(
        &self,
        req: Request,
        wait: oneshot::Receiver<Result<(), String>>,
    ) -> Result<(), LogError> {
        self.tx.send(req).map_err(|_| LogError::WriterGone)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(LogError::Commit(msg)),
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
        let path = self.path.clone();
        let sync = self.sync;
        tokio::task::spawn_blocking(move || {
            let conn = schema::open(&path, sync, false)?;
            f(&conn)
        })
        .await
        .map_err(|e| LogError::Join(e.to_string()))?
    }
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
            tx.prepare("SELECT format, data FROM records WHERE room = ?1 ORDER BY seq, id")?;
        let rows = stmt.query_map([room], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        out.records = rows.collect::<Result<Vec<_>, _>>()?;
    }
    tx.commit()?;
    Ok(out)
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        let result = commit(&mut conn, &batch).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "local log commit failed");
        }
        for req in batch.drain(..) {
            let done = match req {
                Request::Append { done, .. } => done,
                Request::Saved { done, .. } => done,
                Request::Forget { done, .. } => done,
            };
            let _ = done.send(result.clone());
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Request]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    for req in batch {
        match req {
            Request::Append {
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
            Request::Saved { room, saved, .. } => {
                let seq = saved.saved_seq as i64;
                tx.prepare_cached("DELETE FROM records WHERE room = ?1 AND seq <= ?2")?
                    .execute(params![room.as_ref(), seq])?;
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
            Request::Forget { room, .. } => {
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
        let saved = SavedRecord {
            saved_seq: 1,
            store_snapshot_id: "s1".into(),
            store_marker: vec![0],
            saved_at: 5,
            compacted: vec![9],
        };
        log.saved(&room, saved).await.unwrap();
        let got = log.load("document/a").await.unwrap();
        assert_eq!((got.seq, got.saved_seq), (2, 1));
        assert_eq!(
            got.records,
            vec![(record_format::SNAPSHOT, vec![9]), (1, vec![2])]
        );
        assert_eq!(got.store_snapshot_id.as_deref(), Some("s1"));
        drop(log);
        // Reopening keeps everything and checks the format version.
        let log = RoomLog::open(dir.path(), LogSync::Full).unwrap();
        assert_eq!(log.load("document/a").await.unwrap().records.len(), 2);
        log.forget(&room).await.unwrap();
        assert!(log.load("document/a").await.unwrap().records.is_empty());
        assert!(log.dirty_rooms().await.unwrap().is_empty());
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
