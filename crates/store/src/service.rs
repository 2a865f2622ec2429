//! The store's operations, independent of HTTP: save, load, delete, create, verify.
//!
//! SQLite and file work run on the blocking pool. One connection behind a mutex serialises
//! row switches; blob files are written outside the lock and the precondition is checked again
//! inside the switching transaction, so two concurrent saves can never both win.
//!
//! A save costs one SQLite commit: check (a read), write `<id>.tmp` durably, re-check and switch
//! (the commit, which also records the replaced blob as detached), rename `<id>.tmp` to
//! `<id>.yjs`, remove the replaced file. The detached entry of a removed file is dropped in the
//! next switch or DELETE transaction, after a directory fsync has made the removal durable, or
//! by the start-up sweep.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use ykeep_core::contract::SNAPSHOT_READ_TRIES;
use ykeep_core::wire::{Precondition, SaveReceipt};
use ykeep_core::{DurabilityMarker, ResourceId, ResourceKind, b64, load_full_state};
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, Transact};

use crate::blobs::BlobDir;
use crate::clock::unix_ms;
use crate::config::StoreConfig;
use crate::db::{self, BlobRow, Row};
use crate::error::ServiceError;
use crate::{sweep, token};

/// A loaded snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub bytes: Vec<u8>,
    pub saved_at: i64,
}

/// Test hook (feature `test-support` only): `YKEEP_STORE_CRASH_AT` aborts the process at one
/// step of a save, so tests can prove a crash there leaves one valid snapshot. A build without
/// the feature has no abort in it and only warns that the variable is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashPoint {
    /// `<id>.tmp` is durable; nothing is committed.
    BlobWritten,
    /// The switch committed; the new blob is still `<id>.tmp`, the old file still there.
    RowSwitched,
    /// The new blob is `<id>.yjs`; the old file is still there.
    Renamed,
}

impl CrashPoint {
    #[cfg(feature = "test-support")]
    fn from_env() -> Option<Self> {
        match std::env::var("YKEEP_STORE_CRASH_AT").ok()?.as_str() {
            "after_blob_write" => Some(CrashPoint::BlobWritten),
            "after_row_switch" => Some(CrashPoint::RowSwitched),
            "after_rename" => Some(CrashPoint::Renamed),
            other => {
                tracing::warn!(value = other, "unknown YKEEP_STORE_CRASH_AT ignored");
                None
            }
        }
    }

    #[cfg(not(feature = "test-support"))]
    fn from_env() -> Option<Self> {
        if std::env::var_os("YKEEP_STORE_CRASH_AT").is_some() {
            tracing::warn!(
                "YKEEP_STORE_CRASH_AT ignored: this build has no crash hook (cargo feature \
                 test-support)"
            );
        }
        None
    }
}

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: StoreConfig,
    conn: Mutex<Connection>,
    blobs: BlobDir,
    crash_at: Option<CrashPoint>,
    /// Detached blobs whose files this process removed, while `blob_sweep` still lists them.
    /// Each entry is dropped in a later switch or DELETE transaction that follows a directory
    /// fsync, so a power loss can never bring back a file no entry names.
    removed: Mutex<BTreeSet<String>>,
}

impl EmbeddedStore {
    /// Opens the store in `config.data_dir`: creates it, migrates the schema, runs the start-up
    /// sweep (`crate::sweep`). Refuses a database that names no blob next to a blob folder
    /// holding snapshot files it does not know, and then deletes nothing.
    pub async fn open(config: StoreConfig) -> Result<Self, ServiceError> {
        tokio::task::spawn_blocking(move || Self::open_blocking(config))
            .await
            .map_err(join)?
    }

    fn open_blocking(config: StoreConfig) -> Result<Self, ServiceError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let blobs = BlobDir::open(config.data_dir.join("blobs"))?;
        let db_path = config.data_dir.join("store.sqlite3");
        if !db_path.try_exists()? {
            // Decided before a fresh database is created beside the blobs.
            sweep::refuse_unknown(&config.data_dir, &blobs, None)?;
        }
        let conn = db::open(&db_path)?;
        sweep::refuse_unknown(&config.data_dir, &blobs, Some(&conn))?;
        sweep::sweep(&conn, &blobs)?.log(&blobs);
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                config,
                conn: Mutex::new(conn),
                blobs,
                crash_at: CrashPoint::from_env(),
                removed: Mutex::new(BTreeSet::new()),
            }),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Saves `body` (a full-state Yjs v1 update) as the resource's snapshot.
    pub async fn save(
        &self,
        kind: ResourceKind,
        id: ResourceId,
        body: Vec<u8>,
        precondition: Precondition,
    ) -> Result<SaveReceipt, ServiceError> {
        let inner = self.inner.clone();
        blocking(move || inner.save(kind, &id, &body, &precondition)).await
    }

    pub async fn load(&self, kind: ResourceKind, id: ResourceId) -> Result<Snapshot, ServiceError> {
        let inner = self.inner.clone();
        blocking(move || inner.load(kind, &id, None))
            .await?
            .ok_or_else(|| {
                ServiceError::Internal("a load with no known id found it unchanged".into())
            })
    }

    /// The snapshot unless its id is `known`: then `Ok(None)`, from a row read without reading
    /// the file (what `If-None-Match` and a 304 are over HTTP). Errors as [`Self::load`].
    pub async fn load_if_changed(
        &self,
        kind: ResourceKind,
        id: ResourceId,
        known: String,
    ) -> Result<Option<Snapshot>, ServiceError> {
        let inner = self.inner.clone();
        blocking(move || inner.load(kind, &id, Some(&known))).await
    }

    /// Marks the resource gone and removes its blob.
    pub async fn delete(&self, kind: ResourceKind, id: ResourceId) -> Result<(), ServiceError> {
        let inner = self.inner.clone();
        blocking(move || inner.delete(kind, &id)).await
    }

    /// Creates a resource row; `Conflict` when the id is taken.
    pub async fn create(&self, kind: ResourceKind, id: ResourceId) -> Result<(), ServiceError> {
        let inner = self.inner.clone();
        blocking(move || {
            let conn = inner.lock();
            if db::create(&conn, kind, &id, unix_ms())? {
                Ok(())
            } else {
                Err(ServiceError::Conflict {
                    message: format!("{kind} {id} already exists"),
                    current: None,
                })
            }
        })
        .await
    }

    /// Checks a user token for a resource, as `POST /collaboration/verify` does.
    pub fn verify_token(
        &self,
        token: &str,
        kind: ResourceKind,
        id: &ResourceId,
    ) -> Result<token::Claims, token::TokenError> {
        token::verify(
            &self.inner.config.token_key,
            token,
            kind,
            id,
            token::now_unix(),
        )
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(
        &self,
        kind: ResourceKind,
        id: &ResourceId,
        body: &[u8],
        precondition: &Precondition,
    ) -> Result<SaveReceipt, ServiceError> {
        let limit = self.config.max_snapshot_bytes;
        if body.len() > limit {
            return Err(ServiceError::TooLarge {
                size: body.len(),
                limit,
            });
        }
        if body.is_empty() {
            return Err(ServiceError::BadUpdate("the body is empty".into()));
        }
        let doc = load_full_state(body).map_err(|e| ServiceError::BadUpdate(e.to_string()))?;
        let (marker, state_vector) = {
            let txn = doc.transact();
            (
                DurabilityMarker::of_txn(&txn),
                txn.state_vector().encode_v1(),
            )
        };

        // 1. Check early (a read, no commit) so a refused save writes nothing.
        {
            let conn = self.lock();
            let row = self.existing_row(&conn, kind, id, false)?;
            check(&row, precondition, &marker)?;
        }

        // 2. Write `<id>.tmp` durably, with nothing in the database yet: a crash from here to
        // the commit leaves a temp file no blob row names, which the start-up sweep removes.
        // The directory fsync also makes the removals listed in `settled` durable.
        let new = BlobRow {
            id: self.new_snapshot_id(),
            size: body.len() as i64,
            state_vector,
            marker: marker.encode(),
            saved_at: unix_ms(),
        };
        let settled = self.removed_so_far();
        if let Err(e) = self.blobs.write_temp(&new.id, body) {
            self.remove_own_temp(&new.id);
            return Err(e.into());
        }
        self.crash_if(CrashPoint::BlobWritten);

        // 3. Re-check and switch in one transaction (the save's one commit), then rename.
        let old = match self.switch(kind, id, &new, precondition, &marker, &settled) {
            Ok(old) => old,
            Err(e) => {
                self.discard_unswitched(&new.id);
                return Err(e);
            }
        };
        self.crash_if(CrashPoint::Renamed);

        // 4. Only now is the replaced blob removable.
        if let Some(old) = old {
            self.remove_detached(&old);
        }
        Ok(SaveReceipt {
            snapshot_id: new.id,
            size: body.len() as u64,
            state_vector: b64::encode(&new.state_vector),
            saved_at: new.saved_at,
        })
    }

    /// The row switch: re-checks the precondition, points the row at `new`, records the old
    /// blob as detached and drops the `settled` entries, atomically; then renames the new blob
    /// into place.
    fn switch(
        &self,
        kind: ResourceKind,
        id: &ResourceId,
        new: &BlobRow,
        precondition: &Precondition,
        marker: &DurabilityMarker,
        settled: &BTreeSet<String>,
    ) -> Result<Option<String>, ServiceError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let row = self.existing_row(&tx, kind, id, true)?;
        check(&row, precondition, marker)?;
        let old = row.snapshot.map(|b| b.id);
        db::switch(&tx, kind, id, new, old.as_deref())?;
        db::forget(&tx, settled)?;
        tx.commit()?;
        self.forgotten(settled);
        self.crash_if(CrashPoint::RowSwitched);
        // Renamed under the lock, so no later switch or DELETE detaches (and removes) the blob
        // before its rename. Not fsynced: the next blob write's directory fsync makes it
        // durable, and a rename that is lost leaves a temp file that loads read and the
        // start-up sweep promotes.
        if let Err(e) = self.blobs.promote(&new.id) {
            tracing::warn!(
                error = %e,
                blob = %new.id,
                "new blob not renamed into place; read from its temp file until the start-up sweep renames it"
            );
        }
        Ok(old)
    }

    /// The live row; deleted rows stay deleted. Under `--auto-create` a missing row is an empty
    /// one, created in `conn` when `create` (the switch transaction) and not otherwise (the
    /// early check, a read).
    fn existing_row(
        &self,
        conn: &Connection,
        kind: ResourceKind,
        id: &ResourceId,
        create: bool,
    ) -> Result<Row, ServiceError> {
        let not_found = || ServiceError::NotFound {
            kind: kind.to_string(),
            id: id.to_string(),
        };
        let row = match db::row(conn, kind, id)? {
            Some(row) => row,
            None if self.config.auto_create && !create => Row {
                deleted: false,
                snapshot: None,
            },
            None if self.config.auto_create => {
                db::create(conn, kind, id, unix_ms())?;
                db::row(conn, kind, id)?.ok_or_else(not_found)?
            }
            None => return Err(not_found()),
        };
        if row.deleted {
            Err(deleted(kind, id))
        } else {
            Ok(row)
        }
    }

    /// `Ok(None)` only when the current snapshot is `known`.
    fn load(
        &self,
        kind: ResourceKind,
        id: &ResourceId,
        known: Option<&str>,
    ) -> Result<Option<Snapshot>, ServiceError> {
        self.load_with(kind, id, known, |blob| self.blobs.read(blob))
    }

    /// [`Self::load`] with the blob read passed in, so tests can make the file vanish.
    fn load_with(
        &self,
        kind: ResourceKind,
        id: &ResourceId,
        known: Option<&str>,
        mut read: impl FnMut(&str) -> std::io::Result<Vec<u8>>,
    ) -> Result<Option<Snapshot>, ServiceError> {
        // A save that lands between reading the row and reading the file removes the old
        // file; read the row again then, up to the contract's number of tries.
        for _ in 0..SNAPSHOT_READ_TRIES {
            let blob = {
                let conn = self.lock();
                let row = db::row(&conn, kind, id)?.ok_or_else(|| ServiceError::NotFound {
                    kind: kind.to_string(),
                    id: id.to_string(),
                })?;
                if row.deleted {
                    return Err(deleted(kind, id));
                }
                row.snapshot.ok_or_else(|| ServiceError::NoSnapshot {
                    kind: kind.to_string(),
                    id: id.to_string(),
                })?
            };
            if known == Some(blob.id.as_str()) {
                return Ok(None);
            }
            match read(&blob.id) {
                Ok(bytes) => {
                    return Ok(Some(Snapshot {
                        id: blob.id,
                        bytes,
                        saved_at: blob.saved_at,
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::SnapshotUnavailable {
            kind: kind.to_string(),
            id: id.to_string(),
        })
    }

    fn delete(&self, kind: ResourceKind, id: &ResourceId) -> Result<(), ServiceError> {
        // No blob write here: fsync the directory first if entries are to go with the tombstone.
        let mut settled = self.removed_so_far();
        if !settled.is_empty() {
            if let Err(e) = self.blobs.sync() {
                tracing::warn!(error = %e, "blob folder not synced; detached entries kept for now");
                settled.clear();
            }
        }
        let old = {
            let mut conn = self.lock();
            let tx = conn.transaction()?;
            match db::row(&tx, kind, id)? {
                Some(row) if row.deleted => return Err(deleted(kind, id)),
                Some(_) => {}
                None => {
                    return Err(ServiceError::NotFound {
                        kind: kind.to_string(),
                        id: id.to_string(),
                    });
                }
            }
            let old = db::mark_deleted(&tx, kind, id, unix_ms())?;
            db::forget(&tx, &settled)?;
            tx.commit()?;
            self.forgotten(&settled);
            old
        };
        // The tombstone is committed; the file goes now, or at the next start-up sweep.
        if let Some(old) = old {
            self.remove_detached(&old);
        }
        Ok(())
    }

    /// Removes the file of a blob this process's own committed transaction detached; its entry
    /// is dropped later (`removed`). A failure leaves file and entry to the start-up sweep.
    fn remove_detached(&self, blob: &str) {
        match self.blobs.remove(blob) {
            Ok(()) => {
                self.removed_lock().insert(blob.to_owned());
            }
            Err(e) => tracing::warn!(
                error = %e,
                blob,
                "detached blob file not removed; the start-up sweep removes it"
            ),
        }
    }

    /// After a failed switch: removes the save's own temp file, unless a blob row names it
    /// after all (a commit that reported an error but happened; the start-up sweep promotes
    /// it then). A failure leaves the file to the start-up sweep.
    fn discard_unswitched(&self, blob: &str) {
        let named = db::names_blob(&self.lock(), blob);
        match named {
            Ok(false) => self.remove_own_temp(blob),
            Ok(true) => tracing::warn!(
                blob,
                "the switch of a failed save committed after all; its blob file is kept"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                blob,
                "temp file of a failed save kept; the start-up sweep decides"
            ),
        }
    }

    /// Removes the temp file of a save that never switched a row to it.
    fn remove_own_temp(&self, blob: &str) {
        if let Err(e) = self.blobs.remove_temp(blob) {
            tracing::warn!(
                error = %e,
                blob,
                "temp file of a failed save not removed; the start-up sweep removes it"
            );
        }
    }

    fn removed_lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.removed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The detached blobs removed so far, whose entries a transaction after the next directory
    /// fsync may drop.
    fn removed_so_far(&self) -> BTreeSet<String> {
        self.removed_lock().clone()
    }

    /// `settled` entries were dropped in a committed transaction.
    fn forgotten(&self, settled: &BTreeSet<String>) {
        if !settled.is_empty() {
            self.removed_lock().retain(|id| !settled.contains(id));
        }
    }

    /// 128 random bits: ids never repeat across processes, restarts or equal bodies.
    fn new_snapshot_id(&self) -> String {
        crate::random::hex(16)
    }

    fn crash_if(&self, point: CrashPoint) {
        #[cfg(feature = "test-support")]
        if self.crash_at == Some(point) {
            tracing::error!(
                ?point,
                "YKEEP_STORE_CRASH_AT: aborting the process (test hook)"
            );
            std::process::abort();
        }
        #[cfg(not(feature = "test-support"))]
        let _ = (point, self.crash_at);
    }
}

fn deleted(kind: ResourceKind, id: &ResourceId) -> ServiceError {
    ServiceError::Deleted {
        kind: kind.to_string(),
        id: id.to_string(),
    }
}

/// The compare-and-set rule of the contract.
fn check(
    row: &Row,
    precondition: &Precondition,
    marker: &DurabilityMarker,
) -> Result<(), ServiceError> {
    let current = row.snapshot.as_ref();
    let current_id = current.map(|b| b.id.clone());
    let conflict = |message: String| {
        Err(ServiceError::Conflict {
            message,
            current: current_id.clone(),
        })
    };
    match precondition {
        Precondition::IfMatch(want) if current.map(|b| &b.id) != Some(want) => conflict(format!(
            "If-Match {want:?} does not match the current snapshot"
        )),
        Precondition::IfNoneMatch if current.is_some() => {
            conflict("If-None-Match: * but a snapshot exists".into())
        }
        Precondition::Contains => match current {
            None => Ok(()),
            Some(blob) => {
                let stored = DurabilityMarker::decode(&blob.marker).map_err(|e| {
                    ServiceError::Internal(format!("stored marker of {}: {e}", blob.id))
                })?;
                if marker.covers(&stored) {
                    Ok(())
                } else {
                    conflict("the new state does not contain the current snapshot; merge it and retry with If-Match".into())
                }
            }
        },
        _ => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f).await.map_err(join)?
}

fn join(e: tokio::task::JoinError) -> ServiceError {
    ServiceError::Internal(format!("store task failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

    fn state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    fn marker(update: &[u8]) -> DurabilityMarker {
        DurabilityMarker::of_update(update).unwrap()
    }

    fn row_at(id: &str, update: &[u8]) -> Row {
        Row {
            deleted: false,
            snapshot: Some(BlobRow {
                id: id.into(),
                size: update.len() as i64,
                state_vector: ykeep_core::state_vector_of(update).unwrap(),
                marker: marker(update).encode(),
                saved_at: 0,
            }),
        }
    }

    fn conflict_id(r: Result<(), ServiceError>) -> Option<String> {
        match r {
            Err(ServiceError::Conflict { current, .. }) => current,
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    async fn store_with_snapshot() -> (tempfile::TempDir, EmbeddedStore, ResourceId, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(StoreConfig {
            data_dir: dir.path().to_path_buf(),
            secret: "s".into(),
            token_key: "k".into(),
            auto_create: true,
            max_snapshot_bytes: StoreConfig::DEFAULT_MAX_SNAPSHOT_BYTES,
        })
        .await
        .unwrap();
        let doc = Doc::with_client_id(1);
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), 0, "kept");
        let id = ResourceId::parse("doc1").unwrap();
        let receipt = store
            .save(
                ResourceKind::Document,
                id.clone(),
                state(&doc),
                Precondition::Contains,
            )
            .await
            .unwrap();
        (dir, store, id, receipt.snapshot_id)
    }

    fn vanished() -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[tokio::test]
    async fn a_vanishing_blob_is_read_the_contract_number_of_times_then_unavailable() {
        let (_dir, store, id, snapshot_id) = store_with_snapshot().await;
        let mut reads = Vec::new();
        let err = store
            .inner
            .load_with(ResourceKind::Document, &id, None, |blob| {
                reads.push(blob.to_owned());
                vanished()
            })
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::SnapshotUnavailable { .. }),
            "{err:?}"
        );
        assert_eq!(reads.len(), SNAPSHOT_READ_TRIES as usize);
        assert!(reads.iter().all(|b| *b == snapshot_id));
        assert_eq!(err.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code(), ykeep_core::contract::code::SNAPSHOT_UNAVAILABLE);

        // A blob that is back on the last try (a save replaced it meanwhile) is served.
        let mut tries = 0;
        let snapshot = store
            .inner
            .load_with(ResourceKind::Document, &id, None, |blob| {
                tries += 1;
                if tries < SNAPSHOT_READ_TRIES {
                    vanished()
                } else {
                    store.inner.blobs.read(blob)
                }
            })
            .unwrap()
            .expect("no known id: never unchanged");
        assert_eq!(snapshot.id, snapshot_id);
        assert_eq!(tries, SNAPSHOT_READ_TRIES);

        // Another read error is not retried.
        let mut tries = 0;
        let err = store
            .inner
            .load_with(ResourceKind::Document, &id, None, |_| {
                tries += 1;
                Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
            })
            .unwrap_err();
        assert!(matches!(err, ServiceError::Io(_)), "{err:?}");
        assert_eq!(tries, 1);
    }

    #[test]
    fn contains_rule_follows_inserts_and_deletes() {
        let doc = Doc::with_client_id(1);
        let t = doc.get_or_insert_text("t");
        t.insert(&mut doc.transact_mut(), 0, "hello world");
        let saved = state(&doc);
        let row = row_at("s1", &saved);

        // Same state, a superset, and a delete-only change all contain the snapshot.
        assert!(check(&row, &Precondition::Contains, &marker(&saved)).is_ok());
        t.remove_range(&mut doc.transact_mut(), 0, 6);
        let deleted = state(&doc);
        assert!(check(&row, &Precondition::Contains, &marker(&deleted)).is_ok());

        // Once the delete is saved, the old state (same state vector) no longer contains it.
        let row = row_at("s2", &deleted);
        assert_eq!(
            conflict_id(check(&row, &Precondition::Contains, &marker(&saved))),
            Some("s2".into())
        );
        // Nor does a fresh doc that never saw it.
        let other = Doc::with_client_id(2);
        other
            .get_or_insert_text("t")
            .insert(&mut other.transact_mut(), 0, "x");
        assert!(check(&row, &Precondition::Contains, &marker(&state(&other))).is_err());
    }

    #[test]
    fn if_match_and_if_none_match() {
        let doc = Doc::with_client_id(1);
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), 0, "a");
        let body = state(&doc);
        let m = marker(&body);
        let empty = Row {
            deleted: false,
            snapshot: None,
        };
        let row = row_at("s1", &body);
        assert!(check(&empty, &Precondition::IfNoneMatch, &m).is_ok());
        assert!(check(&empty, &Precondition::Contains, &m).is_ok());
        assert_eq!(
            conflict_id(check(&empty, &Precondition::IfMatch("s1".into()), &m)),
            None
        );
        assert!(check(&row, &Precondition::IfMatch("s1".into()), &m).is_ok());
        assert_eq!(
            conflict_id(check(&row, &Precondition::IfMatch("s0".into()), &m)),
            Some("s1".into())
        );
        assert_eq!(
            conflict_id(check(&row, &Precondition::IfNoneMatch, &m)),
            Some("s1".into())
        );
    }
}
