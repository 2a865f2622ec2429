//! The store's SQLite schema, its migrations, and the queries the service runs.
//!
//! `PRAGMA user_version` is the schema version. Version 1 is the app's legacy schema, with
//! `documents.content` (ProseMirror JSON) and `diagrams.content` (Excalidraw JSON); version 2
//! moves both into the archive table `legacy_content`, drops the columns and adds `deleted_at`; version 3 adds `blob_sweep`, the detached blob files the
//! store may remove. Every migration runs in one transaction.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use ykeep_core::{ResourceId, ResourceKind};

pub const SCHEMA_VERSION: i64 = 3;

/// The legacy schema (version 1). Kept as code so the migration test can build such a database.
pub const SCHEMA_V1: &str = "
CREATE TABLE blobs (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    state_vector BLOB NOT NULL,
    marker BLOB NOT NULL,
    saved_at INTEGER NOT NULL
);
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    content TEXT,
    yjs_snapshot_id TEXT REFERENCES blobs(id)
);
CREATE TABLE diagrams (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    content TEXT,
    yjs_snapshot_id TEXT REFERENCES blobs(id)
);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    yjs_snapshot_id TEXT REFERENCES blobs(id)
);
PRAGMA user_version = 1;
";

/// Version 2 removes the legacy `content` columns, archive first: every value is copied into
/// `legacy_content` and cleared from its row only where the archive holds it byte for byte, and
/// the columns are dropped only once no row has content left ([`migrate_v1_to_v2`]), all in one
/// transaction. For a row without a Yjs snapshot that JSON is the only copy of the document.
/// Converting it to a snapshot is not done here (the archive keeps it for that).
const ARCHIVE_V1_CONTENT: &str = "
CREATE TABLE IF NOT EXISTS legacy_content (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
INSERT OR IGNORE INTO legacy_content (kind, id, content)
    SELECT 'document', id, content FROM documents WHERE content IS NOT NULL;
INSERT OR IGNORE INTO legacy_content (kind, id, content)
    SELECT 'diagram', id, content FROM diagrams WHERE content IS NOT NULL;
UPDATE documents SET content = NULL WHERE content IN (
    SELECT l.content FROM legacy_content l WHERE l.kind = 'document' AND l.id = documents.id);
UPDATE diagrams SET content = NULL WHERE content IN (
    SELECT l.content FROM legacy_content l WHERE l.kind = 'diagram' AND l.id = diagrams.id);
";

const DROP_V1_CONTENT: &str = "
ALTER TABLE documents DROP COLUMN content;
ALTER TABLE diagrams DROP COLUMN content;
ALTER TABLE documents ADD COLUMN deleted_at INTEGER;
ALTER TABLE diagrams ADD COLUMN deleted_at INTEGER;
ALTER TABLE tasks ADD COLUMN deleted_at INTEGER;
PRAGMA user_version = 2;
";

/// Archives and clears the legacy content, then drops its columns if no row has content left.
/// A row whose value the archive does not hold exactly (an archive entry with another value for
/// the same row, left by an earlier hand-made copy) keeps it, and the migration stops with an
/// error naming the rows: nothing is dropped, and the transaction rolls back.
pub fn migrate_v1_to_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(ARCHIVE_V1_CONTENT)?;
    let left: Vec<String> = tx
        .prepare(
            "SELECT 'document ' || id FROM documents WHERE content IS NOT NULL
             UNION ALL SELECT 'diagram ' || id FROM diagrams WHERE content IS NOT NULL
             ORDER BY 1 LIMIT 20",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if !left.is_empty() {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "schema migration 1 -> 2 stopped: legacy content of {} differs from what legacy_content \
             already holds for the same row; nothing was dropped (compare the two and remove the wrong \
             archive entry)",
            left.join(", ")
        )));
    }
    tx.execute_batch(DROP_V1_CONTENT)
}

/// `blob_sweep` names every blob file the store may remove, and nothing else may be removed
/// (temp files aside: `crate::sweep`): each entry is recorded in the same transaction that
/// detached the blob from its row (a save's row switch or a DELETE). An entry stays until its
/// file's removal is durable: then a later switch or DELETE transaction, or the start-up sweep,
/// drops it.
const MIGRATE_V2_TO_V3: &str = "
CREATE TABLE blob_sweep (
    id TEXT PRIMARY KEY,
    recorded_at INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 3;
";

/// Opens (creating if needed) and migrates the database at `path`.
pub fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a committed row switch survives power loss, so a save the relay was told
    // succeeded is never rolled back under it.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`], one version per transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let step: fn(&Transaction<'_>) -> rusqlite::Result<()> = match version {
            0 => |tx| tx.execute_batch(SCHEMA_V1),
            1 => migrate_v1_to_v2,
            2 => |tx| tx.execute_batch(MIGRATE_V2_TO_V3),
            SCHEMA_VERSION => return Ok(()),
            newer => {
                return Err(rusqlite::Error::InvalidParameterName(format!(
                    "database schema version {newer} is newer than this store ({SCHEMA_VERSION})"
                )));
            }
        };
        let tx = conn.transaction()?;
        step(&tx)?;
        tx.commit()?;
        tracing::info!(from = version, "store schema migrated");
    }
}

/// A resource row as the service sees it.
#[derive(Debug, Clone)]
pub struct Row {
    pub deleted: bool,
    pub snapshot: Option<BlobRow>,
}

/// The metadata of the blob a row points at.
#[derive(Debug, Clone)]
pub struct BlobRow {
    pub id: String,
    pub size: i64,
    pub state_vector: Vec<u8>,
    pub marker: Vec<u8>,
    pub saved_at: i64,
}

pub fn row(tx: &Connection, kind: ResourceKind, id: &ResourceId) -> rusqlite::Result<Option<Row>> {
    let sql = format!(
        "SELECT r.deleted_at IS NOT NULL, b.id, b.size, b.state_vector, b.marker, b.saved_at
         FROM {} r LEFT JOIN blobs b ON b.id = r.yjs_snapshot_id WHERE r.id = ?1",
        kind.table()
    );
    tx.query_row(&sql, params![id.as_str()], |r| {
        let blob_id: Option<String> = r.get(1)?;
        Ok(Row {
            deleted: r.get(0)?,
            snapshot: match blob_id {
                None => None,
                Some(id) => Some(BlobRow {
                    id,
                    size: r.get(2)?,
                    state_vector: r.get(3)?,
                    marker: r.get(4)?,
                    saved_at: r.get(5)?,
                }),
            },
        })
    })
    .optional()
}

/// Inserts a resource row; false when it already exists.
pub fn create(
    tx: &Connection,
    kind: ResourceKind,
    id: &ResourceId,
    now: i64,
) -> rusqlite::Result<bool> {
    let sql = format!(
        "INSERT OR IGNORE INTO {} (id, created_at) VALUES (?1, ?2)",
        kind.table()
    );
    Ok(tx.execute(&sql, params![id.as_str(), now])? == 1)
}

/// Points the row at a new blob row and removes the old blob row, in the caller's transaction;
/// the old blob is recorded as detached (its file removable).
pub fn switch(
    tx: &Transaction<'_>,
    kind: ResourceKind,
    id: &ResourceId,
    new: &BlobRow,
    old: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO blobs (id, size, state_vector, marker, saved_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new.id, new.size, new.state_vector, new.marker, new.saved_at],
    )?;
    let sql = format!(
        "UPDATE {} SET yjs_snapshot_id = ?1 WHERE id = ?2",
        kind.table()
    );
    tx.execute(&sql, params![new.id, id.as_str()])?;
    if let Some(old) = old {
        detach(tx, old, new.saved_at)?;
    }
    Ok(())
}

/// Drops a blob row and records its file as removable, in the caller's transaction.
fn detach(tx: &Transaction<'_>, blob: &str, now: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM blobs WHERE id = ?1", params![blob])?;
    tx.execute(
        "INSERT OR REPLACE INTO blob_sweep (id, recorded_at) VALUES (?1, ?2)",
        params![blob, now],
    )?;
    Ok(())
}

/// Whether a blob row names `blob`: then its file is a snapshot, never removed.
pub fn names_blob(conn: &Connection, blob: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM blobs WHERE id = ?1)",
        params![blob],
        |r| r.get(0),
    )
}

/// Drops the `blob_sweep` entries of `blobs` (their files' removal is durable, or a blob row
/// names them).
pub fn forget<'a>(
    conn: &Connection,
    blobs: impl IntoIterator<Item = &'a String>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM blob_sweep WHERE id = ?1")?;
    for blob in blobs {
        stmt.execute(params![blob])?;
    }
    Ok(())
}

/// Every blob `blob_sweep` records as detached.
pub fn detached(conn: &Connection) -> rusqlite::Result<BTreeSet<String>> {
    let mut stmt = conn.prepare("SELECT id FROM blob_sweep")?;
    let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
    ids.collect()
}

/// Marks the resource gone and detaches its blob row (recording it as removable); returns the
/// detached blob id.
pub fn mark_deleted(
    tx: &Transaction<'_>,
    kind: ResourceKind,
    id: &ResourceId,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    let table = kind.table();
    let old: Option<String> = tx
        .query_row(
            &format!("SELECT yjs_snapshot_id FROM {table} WHERE id = ?1"),
            params![id.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    tx.execute(
        &format!("UPDATE {table} SET deleted_at = ?1, yjs_snapshot_id = NULL WHERE id = ?2"),
        params![now, id.as_str()],
    )?;
    if let Some(old) = &old {
        detach(tx, old, now)?;
    }
    Ok(old)
}

/// Every blob id the `blobs` table names: their files are never removed.
pub fn blob_row_ids(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    let mut stmt = conn.prepare("SELECT id FROM blobs")?;
    for id in stmt.query_map([], |r| r.get::<_, String>(0))? {
        ids.insert(id?);
    }
    Ok(ids)
}

/// How many blob rows no resource points at. Nothing in normal operation leaves one, so nothing
/// proves one is garbage: they and their files are kept and reported.
pub fn unreferenced_blob_rows(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row(
        "SELECT count(*) FROM blobs WHERE id NOT IN (
            SELECT yjs_snapshot_id FROM documents WHERE yjs_snapshot_id IS NOT NULL
            UNION SELECT yjs_snapshot_id FROM diagrams WHERE yjs_snapshot_id IS NOT NULL
            UNION SELECT yjs_snapshot_id FROM tasks WHERE yjs_snapshot_id IS NOT NULL)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(conn: &Connection, table: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_fresh_database_reaches_the_current_version_without_legacy_columns() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("s.sqlite3")).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(!columns(&conn, "documents").contains(&"content".into()));
        assert!(!columns(&conn, "diagrams").contains(&"content".into()));
        assert!(columns(&conn, "tasks").contains(&"deleted_at".into()));
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        drop(conn);
        // Opening again is a no-op.
        open(&dir.path().join("s.sqlite3")).unwrap();
    }

    #[test]
    fn legacy_columns_are_dropped_only_once_the_archive_holds_every_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        let legacy = |conn: &Connection| {
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute_batch(
                r#"INSERT INTO documents (id, created_at, content) VALUES ('d1', 1, '{"type":"doc","v":"é"}'), ('d2', 2, NULL);
                   INSERT INTO diagrams (id, created_at, content) VALUES ('g1', 3, '{"elements":[]}');"#,
            )
            .unwrap();
        };
        // An archive entry made by hand earlier, with another value for d1: d1's content is not
        // in the archive, so nothing may be dropped.
        {
            let conn = Connection::open(&path).unwrap();
            legacy(&conn);
            conn.execute_batch(
                "CREATE TABLE legacy_content (kind TEXT NOT NULL, id TEXT NOT NULL, content TEXT NOT NULL, PRIMARY KEY (kind, id));
                 INSERT INTO legacy_content VALUES ('document', 'd1', 'an older copy');",
            )
            .unwrap();
        }
        let err = open(&path).unwrap_err().to_string();
        assert!(
            err.contains("document d1") && err.contains("nothing was dropped"),
            "{err}"
        );
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
        let d1: String = conn
            .query_row("SELECT content FROM documents WHERE id = 'd1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(d1, r#"{"type":"doc","v":"é"}"#);
        let g1: String = conn
            .query_row("SELECT content FROM diagrams WHERE id = 'g1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            g1, r#"{"elements":[]}"#,
            "the rolled-back migration cleared nothing"
        );
        // Once the wrong entry is gone, the migration archives every value exactly and drops the columns.
        conn.execute("DELETE FROM legacy_content", []).unwrap();
        drop(conn);
        let conn = open(&path).unwrap();
        assert!(!columns(&conn, "documents").contains(&"content".into()));
        let archived: Vec<(String, String, String)> = conn
            .prepare("SELECT kind, id, content FROM legacy_content ORDER BY kind, id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let row = |k: &str, i: &str, c: &str| (k.to_string(), i.to_string(), c.to_string());
        assert_eq!(
            archived,
            [
                row("diagram", "g1", r#"{"elements":[]}"#),
                row("document", "d1", r#"{"type":"doc","v":"é"}"#)
            ]
        );
    }

    #[test]
    fn a_newer_schema_is_refused_not_downgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(open(&path).is_err());
    }

    fn blob(name: &str) -> BlobRow {
        BlobRow {
            id: name.into(),
            size: 1,
            state_vector: vec![0],
            marker: vec![0, 0],
            saved_at: 3,
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn switch_points_the_row_at_the_new_blob_and_records_the_old_one_as_detached() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("s.sqlite3")).unwrap();
        let id = ResourceId::parse("d1").unwrap();
        assert!(create(&conn, ResourceKind::Document, &id, 1).unwrap());
        assert!(!create(&conn, ResourceKind::Document, &id, 2).unwrap());
        for (new, old) in [("b1", None), ("b2", Some("b1"))] {
            assert!(!names_blob(&conn, new).unwrap());
            let tx = conn.transaction().unwrap();
            switch(&tx, ResourceKind::Document, &id, &blob(new), old).unwrap();
            tx.commit().unwrap();
            // The switch made it current: a blob row names it.
            assert!(names_blob(&conn, new).unwrap());
        }
        let current = row(&conn, ResourceKind::Document, &id).unwrap().unwrap();
        assert_eq!(current.snapshot.unwrap().id, "b2");
        assert_eq!(blob_row_ids(&conn).unwrap(), ["b2".to_string()].into());
        assert!(!names_blob(&conn, "b1").unwrap());
        assert_eq!(detached(&conn).unwrap(), set(&["b1"]));

        // A DELETE detaches the current blob; forgetting leaves the other entries alone.
        let tx = conn.transaction().unwrap();
        let old = mark_deleted(&tx, ResourceKind::Document, &id, 4).unwrap();
        tx.commit().unwrap();
        assert_eq!(old.as_deref(), Some("b2"));
        assert!(blob_row_ids(&conn).unwrap().is_empty());
        assert_eq!(detached(&conn).unwrap(), set(&["b1", "b2"]));
        forget(&conn, &set(&["b1", "never-recorded"])).unwrap();
        assert_eq!(detached(&conn).unwrap(), set(&["b2"]));
        assert!(
            row(&conn, ResourceKind::Document, &id)
                .unwrap()
                .unwrap()
                .deleted
        );
    }

    #[test]
    fn a_switch_rolled_back_detaches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("s.sqlite3")).unwrap();
        let id = ResourceId::parse("d1").unwrap();
        create(&conn, ResourceKind::Document, &id, 1).unwrap();
        let tx = conn.transaction().unwrap();
        switch(&tx, ResourceKind::Document, &id, &blob("b1"), None).unwrap();
        tx.commit().unwrap();

        for rollback_delete in [false, true] {
            let tx = conn.transaction().unwrap();
            if rollback_delete {
                mark_deleted(&tx, ResourceKind::Document, &id, 4).unwrap();
            } else {
                switch(&tx, ResourceKind::Document, &id, &blob("b2"), Some("b1")).unwrap();
            }
            drop(tx); // not committed
            // The row still names b1; nothing is recorded as detached; b2 has no blob row.
            let current = row(&conn, ResourceKind::Document, &id).unwrap().unwrap();
            assert_eq!(current.snapshot.unwrap().id, "b1");
            assert!(detached(&conn).unwrap().is_empty());
            assert!(!names_blob(&conn, "b2").unwrap());
        }
    }

    #[test]
    fn version_2_migrates_to_3_keeping_rows_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        let v2 = |conn: &Connection| {
            conn.execute_batch(SCHEMA_V1).unwrap();
            let tx = conn.unchecked_transaction().unwrap();
            migrate_v1_to_v2(&tx).unwrap();
            tx.commit().unwrap();
            conn.execute_batch(
                "INSERT INTO blobs VALUES ('b1', 1, x'00', x'0000', 3);
                 INSERT INTO documents (id, created_at, yjs_snapshot_id) VALUES ('d1', 1, 'b1');
                 INSERT INTO tasks (id, created_at, deleted_at) VALUES ('t1', 2, 9);",
            )
            .unwrap();
        };
        v2(&Connection::open(&path).unwrap());
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 3);
        let d1 = row(
            &conn,
            ResourceKind::Document,
            &ResourceId::parse("d1").unwrap(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(d1.snapshot.unwrap().id, "b1");
        let t1 = row(&conn, ResourceKind::Task, &ResourceId::parse("t1").unwrap())
            .unwrap()
            .unwrap();
        assert!(t1.deleted);
        assert!(detached(&conn).unwrap().is_empty());
        drop(conn);

        // A step that fails leaves the database at version 2, rows intact.
        let path = dir.path().join("broken.sqlite3");
        let conn = Connection::open(&path).unwrap();
        v2(&conn);
        conn.execute_batch("CREATE TABLE blob_sweep (x INTEGER);")
            .unwrap();
        drop(conn);
        assert!(open(&path).is_err());
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
        assert_eq!(blob_row_ids(&conn).unwrap(), ["b1".to_string()].into());
    }

    #[test]
    fn unreferenced_blob_rows_are_counted_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("s.sqlite3")).unwrap();
        conn.execute_batch(
            "INSERT INTO blobs VALUES ('b1', 1, x'00', x'0000', 3), ('b2', 1, x'00', x'0000', 3);
             INSERT INTO documents (id, created_at, yjs_snapshot_id) VALUES ('d1', 1, 'b1');",
        )
        .unwrap();
        assert_eq!(unreferenced_blob_rows(&conn).unwrap(), 1);
        assert_eq!(unreferenced_blob_rows(&conn).unwrap(), 1);
        assert_eq!(blob_row_ids(&conn).unwrap().len(), 2);
    }
}
