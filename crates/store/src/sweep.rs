//! The start-up sweep: finishes or removes only what the store can prove is a leftover of an
//! interrupted save or delete, and refuses to start on a blob folder its database does not
//! describe.
//!
//! - A temp file (`<id>.tmp`) that a blob row names is a committed save whose rename did not
//!   happen (or was lost in a power loss): it is promoted to `<id>.yjs`.
//! - Any other temp file is a save that never committed (only the save path writes them): it is
//!   removed.
//! - A file that `blob_sweep` records as detached, while no blob row names it, is removed, and
//!   then its entry.
//!
//! Every other `.yjs` file stays and is reported: the database not knowing a file proves nothing
//! (a fresh or replaced `store.sqlite3`, a restored backup, a copied-in blob).

use std::path::Path;

use rusqlite::Connection;

use crate::blobs::BlobDir;
use crate::db;
use crate::error::ServiceError;

/// What the sweep did and what it left alone.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Temp files of committed saves renamed into place.
    pub promoted: usize,
    /// Temp files of saves that never committed, removed.
    pub temps: usize,
    /// Blob files replaced or deleted by a committed switch or DELETE, removed.
    pub detached: usize,
    /// `.yjs` files the database does not know: kept.
    pub unknown: usize,
    /// Blob rows no resource points at: kept.
    pub unreferenced_rows: usize,
}

/// Refuses a database that names no blob next to `.yjs` files it does not know; nothing is
/// removed before that decision. With no database at all (`conn` is None) temp files count
/// too: no save of a database that does not exist wrote them, and one may be the only copy of
/// a snapshot another database committed.
pub fn refuse_unknown(
    data_dir: &Path,
    blobs: &BlobDir,
    conn: Option<&Connection>,
) -> Result<(), ServiceError> {
    let listing = blobs.list()?;
    let (rows, detached, temps) = match conn {
        Some(conn) => (db::blob_row_ids(conn)?, db::detached(conn)?, 0),
        None => (Default::default(), Default::default(), listing.temps.len()),
    };
    if !rows.is_empty() {
        return Ok(());
    }
    let unknown = temps
        + listing
            .blobs
            .iter()
            .filter(|id| !detached.contains(*id))
            .count();
    if unknown == 0 {
        return Ok(());
    }
    Err(ServiceError::UnknownBlobFiles {
        data_dir: data_dir.to_path_buf(),
        blob_dir: blobs.dir().to_path_buf(),
        count: unknown,
    })
}

/// Runs the sweep on an open store (after [`refuse_unknown`] passed).
pub fn sweep(conn: &Connection, blobs: &BlobDir) -> Result<SweepReport, ServiceError> {
    let listing = blobs.list()?;
    let rows = db::blob_row_ids(conn)?;
    let detached = db::detached(conn)?;
    let mut report = SweepReport::default();
    for id in &listing.temps {
        if rows.contains(id) {
            blobs.promote(id)?;
            report.promoted += 1;
        } else {
            blobs.remove_temp(id)?;
            report.temps += 1;
        }
    }
    report.unknown = listing
        .blobs
        .iter()
        .filter(|id| !rows.contains(*id) && !detached.contains(*id))
        .count();
    for id in &detached {
        if rows.contains(id) {
            // Never happens through the store's own paths; a blob row wins over the entry.
            tracing::warn!(blob = %id, "a blob listed for removal is named by a blob row; kept");
        } else if listing.blobs.contains(id) {
            blobs.remove(id)?;
            report.detached += 1;
        }
    }
    if report.promoted + report.temps + report.detached > 0 {
        // The removals are durable before their entries go: a power loss cannot bring back a
        // file that no entry names any more.
        blobs.sync()?;
    }
    let tx = conn.unchecked_transaction()?;
    db::forget(&tx, &detached)?;
    tx.commit()?;
    report.unreferenced_rows = db::unreferenced_blob_rows(conn)?;
    Ok(report)
}

impl SweepReport {
    /// Logs what was removed (info) and what was left alone (warnings).
    pub fn log(&self, blobs: &BlobDir) {
        if self.promoted + self.temps + self.detached > 0 {
            tracing::info!(
                promoted = self.promoted,
                temps = self.temps,
                detached = self.detached,
                "finished or removed the leftovers of interrupted saves and deletes"
            );
        }
        if self.unknown > 0 {
            tracing::warn!(
                count = self.unknown,
                folder = %blobs.dir().display(),
                "blob files the database does not know were left in place (not removed)"
            );
        }
        if self.unreferenced_rows > 0 {
            tracing::warn!(
                count = self.unreferenced_rows,
                "blob rows no resource points at were left in place (not removed)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn insert_blob_row(conn: &Connection, id: &str) {
        conn.execute(
            "INSERT INTO blobs VALUES (?1, 1, x'00', x'0000', 3)",
            rusqlite::params![id],
        )
        .unwrap();
    }

    fn record_detached(conn: &Connection, id: &str) {
        conn.execute(
            "INSERT INTO blob_sweep (id, recorded_at) VALUES (?1, 1)",
            rusqlite::params![id],
        )
        .unwrap();
    }

    /// `<id>.yjs` (or `<id>.tmp` when `temp`) holding the id.
    fn put(blobs: &BlobDir, id: &str, temp: bool) {
        blobs.write_temp(id, id.as_bytes()).unwrap();
        if !temp {
            blobs.promote(id).unwrap();
        }
    }

    #[test]
    fn promotes_named_temps_removes_other_temps_and_detached_only() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("store.sqlite3")).unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        for id in ["live", "detached", "unknown", "unref"] {
            put(&blobs, id, false);
        }
        // A committed save whose rename did not happen, a save that never committed, and the
        // temp file of a blob detached before its rename.
        for id in ["committed", "uncommitted", "detached-temp"] {
            put(&blobs, id, true);
        }
        fs::write(dir.path().join("blobs/notes.txt"), b"not ours").unwrap();
        for id in ["live", "unref", "committed"] {
            insert_blob_row(&conn, id);
        }
        conn.execute_batch(
            "INSERT INTO documents (id, created_at, yjs_snapshot_id) VALUES ('d1', 1, 'live');
             INSERT INTO documents (id, created_at, yjs_snapshot_id) VALUES ('d2', 1, 'committed');",
        )
        .unwrap();
        // Entries whose file a crash already removed, and a stale one a blob row names.
        for id in ["detached", "detached-temp", "gone", "live"] {
            record_detached(&conn, id);
        }

        refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap();
        let report = sweep(&conn, &blobs).unwrap();
        assert_eq!(
            report,
            SweepReport {
                promoted: 1,
                temps: 2,
                detached: 1,
                unknown: 1,
                unreferenced_rows: 1,
            }
        );
        assert_eq!(
            names(&dir.path().join("blobs")),
            [
                "committed.yjs",
                "live.yjs",
                "notes.txt",
                "unknown.yjs",
                "unref.yjs"
            ]
        );
        assert_eq!(blobs.read("committed").unwrap(), b"committed");
        assert!(db::detached(&conn).unwrap().is_empty());
        assert_eq!(db::blob_row_ids(&conn).unwrap().len(), 3, "blob rows kept");

        // A second sweep finds nothing more to do and still reports what it keeps.
        let again = sweep(&conn, &blobs).unwrap();
        assert_eq!(
            (again.promoted, again.temps, again.detached),
            (0, 0, 0),
            "{again:?}"
        );
        assert_eq!((again.unknown, again.unreferenced_rows), (1, 1));
    }

    #[test]
    fn refuses_a_database_that_names_no_blob_beside_unknown_files() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        // No database at all, an empty folder: fine.
        refuse_unknown(dir.path(), &blobs, None).unwrap();
        put(&blobs, "a", false);
        put(&blobs, "b", false);
        match refuse_unknown(dir.path(), &blobs, None) {
            Err(ServiceError::UnknownBlobFiles { count, .. }) => assert_eq!(count, 2),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // With no database, a temp file may be another database's committed snapshot.
        put(&blobs, "t", true);
        match refuse_unknown(dir.path(), &blobs, None) {
            Err(ServiceError::UnknownBlobFiles { count, .. }) => assert_eq!(count, 3),
            other => panic!("expected a refusal, got {other:?}"),
        }
        blobs.remove_temp("t").unwrap();

        let conn = db::open(&dir.path().join("store.sqlite3")).unwrap();
        let err = refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains(" 2 snapshot file"), "{message}");

        // Files the database records as detached are its own: the last resource deleted and
        // the store stopped before the files went.
        record_detached(&conn, "a");
        record_detached(&conn, "b");
        refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap();
        db::forget(&conn, &["b".to_string()]).unwrap();
        assert!(refuse_unknown(dir.path(), &blobs, Some(&conn)).is_err());

        // Once the database names a blob, unknown files are kept and reported, not refused.
        insert_blob_row(&conn, "a");
        refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap();
        assert_eq!(names(&dir.path().join("blobs")), ["a.yjs", "b.yjs"]);
    }

    #[test]
    fn a_database_naming_no_blob_removes_the_temp_file_of_its_first_save() {
        // The first save of a store was interrupted before its row switch committed.
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("store.sqlite3")).unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        put(&blobs, "first", true);
        refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap();
        assert_eq!(sweep(&conn, &blobs).unwrap().temps, 1);
        assert!(names(&dir.path().join("blobs")).is_empty());
    }
}
