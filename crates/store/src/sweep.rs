//! The start-up sweep: removes only what the store can prove is a leftover of an interrupted
//! save or delete, and refuses to start on a blob folder its database does not describe.
//!
//! Removable: temp files (`<id>.tmp`, a write that never reached its rename) and blob files
//! that `blob_sweep` records as `pending` or `detached` while no blob row names them. Every
//! other `.yjs` file stays and is reported: the database not knowing a file proves nothing (a
//! fresh or replaced `store.sqlite3`, a restored backup, a copied-in blob).

use std::path::Path;

use rusqlite::Connection;

use crate::blobs::BlobDir;
use crate::db::{self, SweepReason};
use crate::error::StoreError;

/// What the sweep did and what it left alone.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Temp files removed.
    pub temps: usize,
    /// Blob files of saves that never switched a row to them, removed.
    pub pending: usize,
    /// Blob files replaced or deleted by a committed switch or DELETE, removed.
    pub detached: usize,
    /// `.yjs` files the database does not know: kept.
    pub unknown: usize,
    /// Blob rows no resource points at: kept.
    pub unreferenced_rows: usize,
}

/// Refuses a database that names no blob next to `.yjs` files it does not know; nothing is
/// removed before that decision.
pub fn refuse_unknown(
    data_dir: &Path,
    blobs: &BlobDir,
    conn: Option<&Connection>,
) -> Result<(), StoreError> {
    let listing = blobs.list()?;
    let (rows, entries) = match conn {
        Some(conn) => (db::blob_row_ids(conn)?, db::sweep_entries(conn)?),
        None => Default::default(),
    };
    if !rows.is_empty() {
        return Ok(());
    }
    let unknown = listing
        .blobs
        .iter()
        .filter(|id| !entries.contains_key(*id))
        .count();
    if unknown == 0 {
        return Ok(());
    }
    Err(StoreError::UnknownBlobFiles {
        data_dir: data_dir.to_path_buf(),
        blob_dir: blobs.dir().to_path_buf(),
        count: unknown,
    })
}

/// Runs the sweep on an open store (after [`refuse_unknown`] passed).
pub fn sweep(conn: &Connection, blobs: &BlobDir) -> Result<SweepReport, StoreError> {
    let listing = blobs.list()?;
    let rows = db::blob_row_ids(conn)?;
    let mut report = SweepReport::default();
    for id in &listing.temps {
        blobs.remove_temp(id)?;
        report.temps += 1;
    }
    let entries = db::sweep_entries(conn)?;
    report.unknown = listing
        .blobs
        .iter()
        .filter(|id| !rows.contains(*id) && !entries.contains_key(*id))
        .count();
    for (id, reason) in entries {
        if rows.contains(&id) {
            // Never happens through the store's own paths; a blob row wins over the entry.
            tracing::warn!(blob = %id, "a blob listed for removal is named by a blob row; kept");
            db::forget(conn, &id)?;
            continue;
        }
        if listing.blobs.contains(&id) {
            blobs.remove(&id)?;
            match reason {
                SweepReason::Pending => report.pending += 1,
                SweepReason::Detached => report.detached += 1,
            }
        }
        db::forget(conn, &id)?;
    }
    report.unreferenced_rows = db::unreferenced_blob_rows(conn)?;
    Ok(report)
}

impl SweepReport {
    /// Logs what was removed (info) and what was left alone (warnings).
    pub fn log(&self, blobs: &BlobDir) {
        if self.temps + self.pending + self.detached > 0 {
            tracing::info!(
                temps = self.temps,
                pending = self.pending,
                detached = self.detached,
                "removed the leftovers of interrupted saves and deletes"
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

    #[test]
    fn removes_temps_pending_and_detached_only() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("store.sqlite3")).unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        for id in ["live", "pending", "detached", "unknown", "unref"] {
            blobs.write(id, id.as_bytes()).unwrap();
        }
        fs::write(dir.path().join("blobs/half.tmp"), b"partial").unwrap();
        fs::write(dir.path().join("blobs/notes.txt"), b"not ours").unwrap();
        insert_blob_row(&conn, "live");
        insert_blob_row(&conn, "unref");
        conn.execute(
            "INSERT INTO documents (id, created_at, yjs_snapshot_id) VALUES ('d1', 1, 'live')",
            [],
        )
        .unwrap();
        db::record(&conn, "pending", SweepReason::Pending, 1).unwrap();
        db::record(&conn, "detached", SweepReason::Detached, 1).unwrap();
        // An entry whose file a crash already removed, and a stale one a blob row names.
        db::record(&conn, "gone", SweepReason::Detached, 1).unwrap();
        db::record(&conn, "live", SweepReason::Detached, 1).unwrap();

        refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap();
        let report = sweep(&conn, &blobs).unwrap();
        assert_eq!(
            report,
            SweepReport {
                temps: 1,
                pending: 1,
                detached: 1,
                unknown: 1,
                unreferenced_rows: 1,
            }
        );
        assert_eq!(
            names(&dir.path().join("blobs")),
            ["live.yjs", "notes.txt", "unknown.yjs", "unref.yjs"]
        );
        assert!(db::sweep_entries(&conn).unwrap().is_empty());
        assert_eq!(db::blob_row_ids(&conn).unwrap().len(), 2, "blob rows kept");

        // A second sweep finds nothing more to remove and still reports what it keeps.
        let again = sweep(&conn, &blobs).unwrap();
        assert_eq!((again.temps, again.pending, again.detached), (0, 0, 0));
        assert_eq!((again.unknown, again.unreferenced_rows), (1, 1));
    }

    #[test]
    fn refuses_a_database_that_names_no_blob_beside_unknown_files() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        // No database at all, an empty folder: fine.
        refuse_unknown(dir.path(), &blobs, None).unwrap();
        blobs.write("a", b"a").unwrap();
        blobs.write("b", b"b").unwrap();
        match refuse_unknown(dir.path(), &blobs, None) {
            Err(StoreError::UnknownBlobFiles { count, .. }) => assert_eq!(count, 2),
            other => panic!("expected a refusal, got {other:?}"),
        }

        let conn = db::open(&dir.path().join("store.sqlite3")).unwrap();
        let err = refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains(" 2 snapshot file"), "{message}");

        // Files the database records as pending are its own: a first save that crashed.
        db::record(&conn, "a", SweepReason::Pending, 1).unwrap();
        db::record(&conn, "b", SweepReason::Pending, 1).unwrap();
        refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap();
        db::forget(&conn, "b").unwrap();
        assert!(refuse_unknown(dir.path(), &blobs, Some(&conn)).is_err());

        // Once the database names a blob, unknown files are kept and reported, not refused.
        insert_blob_row(&conn, "a");
        refuse_unknown(dir.path(), &blobs, Some(&conn)).unwrap();
        assert_eq!(names(&dir.path().join("blobs")), ["a.yjs", "b.yjs"]);
    }
}
