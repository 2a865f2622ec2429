//! The cache in IndexedDB (through [`crate::indexeddb`]): one `rooms` record per room (compacted
//! state and its marker, folded outbox, remote marker, the store snapshot held) and an
//! append-only `log` keyed `[room, time, random]`, both carrying a format version
//! (`cache::Stored`).
//!
//! Every read checks the version of each value it reads for the room and fails with
//! [`KeepError::Foreign`] on another one, before anything is written: a value of another
//! version is never overwritten or deleted here. Compaction and `clear` delete exactly the
//! keys they read.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbKeyRange, IdbTransactionMode, IdbVersionChangeEvent};

use crate::cache::{self, ForeignRecord, HeldSnapshot, LogEntry, RoomRecord, Stored};
use crate::error::{CacheError, KeepError};
use crate::indexeddb::{self, Store, failed};
pub use crate::indexeddb::{Db, delete_database};
use ykeep_core::DurabilityMarker;

const ROOMS: &str = "rooms";
const LOG: &str = "log";
const DB_VERSION: u32 = 1;

/// Opens the cache's database (version 1, object stores `rooms` and `log`). The connection
/// closes when the returned handle is dropped, or at once when another tab asks (a version
/// change).
pub async fn open(name: &str) -> Result<Db, KeepError> {
    Ok(indexeddb::open(name, DB_VERSION, &[ROOMS, LOG]).await?)
}

/// Why another tab asked every connection to the database to close.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VersionChange {
    /// It opens the database at a later version: a newer cache format.
    /// (IndexedDB versions are whole numbers: `unsigned long long`.)
    Upgrade(u64),
    /// It deletes the database.
    Delete,
}

impl std::fmt::Display for VersionChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionChange::Upgrade(v) => write!(
                f,
                "another tab opened this cache at version {v} (this page reads and writes \
                 version {DB_VERSION}): the page closed it and writes nothing more to it"
            ),
            VersionChange::Delete => write!(
                f,
                "another tab is deleting this cache: the page closed it and writes nothing \
                 more to it"
            ),
        }
    }
}

/// Hears `versionchange` on a second connection that does nothing else, and closes it at once.
/// A tab with a newer cache format opens the database at a later version, and its open waits
/// until every connection of every other tab has closed. The page's own connection closes
/// itself (`indexeddb::Db` registers that handler) but tells no one: without this, the page
/// would learn of it only when its next write failed.
/// The owner drops its own handle in `on_change`. An upgrade between the page's open and this
/// watcher's is still learnt at the next write (which fails, and turns the cache off).
pub struct VersionWatch {
    db: Rc<RefCell<Option<IdbDatabase>>>,
    dropped: Rc<Cell<bool>>,
    on_open: Option<Closure<dyn FnMut(web_sys::Event)>>,
    _on_upgrade: Closure<dyn FnMut(web_sys::Event)>,
    _on_change: Closure<dyn FnMut(IdbVersionChangeEvent)>,
}

pub fn watch_versions(
    name: &str,
    on_change: impl FnOnce(VersionChange) + 'static,
) -> Result<VersionWatch, KeepError> {
    // No version: the one the page's own connection opened (or a later one).
    let request = indexeddb::factory()?
        .open(name)
        .map_err(|e| failed("open", &e))?;
    let db: Rc<RefCell<Option<IdbDatabase>>> = Rc::default();
    let dropped = Rc::new(Cell::new(false));
    let mut on_change = Some(on_change);
    let change = {
        let db = db.clone();
        Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |ev: IdbVersionChangeEvent| {
            if let Some(d) = db.borrow_mut().take() {
                d.close();
            }
            let change = ev
                .new_version()
                .map_or(VersionChange::Delete, |v| VersionChange::Upgrade(v as u64));
            if let Some(f) = on_change.take() {
                f(change);
            }
        })
    };
    let on_open = {
        let (db, dropped, request) = (db.clone(), dropped.clone(), request.clone());
        let handler: JsValue = change.as_ref().clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let Some(d) = request
                .result()
                .ok()
                .and_then(|r| r.dyn_into::<IdbDatabase>().ok())
            else {
                return;
            };
            if dropped.get() {
                d.close();
            } else {
                d.set_onversionchange(Some(handler.unchecked_ref()));
                *db.borrow_mut() = Some(d);
            }
        })
    };
    // The database is gone (deleted meanwhile): create nothing.
    let on_upgrade = {
        let request = request.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(tx) = request.transaction() {
                let _ = tx.abort();
            }
        })
    };
    request.set_onsuccess(Some(on_open.as_ref().unchecked_ref()));
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    Ok(VersionWatch {
        db,
        dropped,
        on_open: Some(on_open),
        _on_upgrade: on_upgrade,
        _on_change: change,
    })
}

impl Drop for VersionWatch {
    fn drop(&mut self) {
        self.dropped.set(true);
        match self.db.borrow_mut().take() {
            Some(d) => {
                d.set_onversionchange(None);
                d.close();
            }
            // Still opening: the success handler must outlive this to close what it opens.
            None => {
                if let Some(on_open) = self.on_open.take() {
                    on_open.forget();
                }
            }
        }
    }
}

fn set(o: &Object, k: &str, v: &JsValue) {
    let _ = Reflect::set(o, &JsValue::from_str(k), v);
}

fn bytes_field(o: &JsValue, k: &str) -> Vec<u8> {
    Reflect::get(o, &JsValue::from_str(k))
        .ok()
        .and_then(|v| v.dyn_into::<Uint8Array>().ok())
        .map(|a| a.to_vec())
        .unwrap_or_default()
}

/// The stored `v` (None when there is none, or the value is not an object).
fn version_of(o: &JsValue) -> Option<f64> {
    Reflect::get(o, &JsValue::from_str("v")).ok()?.as_f64()
}

fn check(room: &str, what: Stored, v: &JsValue) -> Result<u32, ForeignRecord> {
    cache::check_version(room, what, version_of(v))
}

fn string_field(o: &JsValue, k: &str) -> Option<String> {
    Reflect::get(o, &JsValue::from_str(k)).ok()?.as_string()
}

/// A room record, version 2: `state`, `pending`, `pendingAll`, `marker` as in version 1, plus
/// `stateMarker` (the state's marker) and `storeUrl` + `storeId` (the store snapshot held).
fn record_to_js(r: &RoomRecord) -> JsValue {
    let o = Object::new();
    set(&o, "v", &JsValue::from(Stored::RoomRecord.writes()));
    set(&o, "state", &Uint8Array::from(r.state.as_slice()));
    set(&o, "pending", &Uint8Array::from(r.pending.as_slice()));
    set(&o, "pendingAll", &JsValue::from_bool(r.pending_is_state));
    set(&o, "marker", &Uint8Array::from(r.remote_marker.as_slice()));
    if let Some(m) = &r.state_marker {
        set(&o, "stateMarker", &Uint8Array::from(m.as_slice()));
    }
    if let Some(held) = &r.store_snapshot {
        set(&o, "storeUrl", &JsValue::from_str(&held.store));
        set(&o, "storeId", &JsValue::from_str(&held.id));
    }
    o.into()
}

/// The state marker and the store snapshot of a record of version `v` (version 1 has neither).
fn record_v2_fields(v: u32, r: &JsValue) -> (Option<Vec<u8>>, Option<HeldSnapshot>) {
    if v < 2 {
        return (None, None);
    }
    let marker = Reflect::get(r, &JsValue::from_str("stateMarker"))
        .ok()
        .and_then(|m| m.dyn_into::<Uint8Array>().ok())
        .map(|m| m.to_vec());
    let held = string_field(r, "storeUrl")
        .zip(string_field(r, "storeId"))
        .map(|(store, id)| HeldSnapshot { store, id });
    (marker, held)
}

/// The room's record (the default when there is none).
fn record_from_js(room: &str, v: Option<JsValue>) -> Result<RoomRecord, ForeignRecord> {
    let Some(v) = v else {
        return Ok(RoomRecord::default());
    };
    let version = check(room, Stored::RoomRecord, &v)?;
    let (state_marker, store_snapshot) = record_v2_fields(version, &v);
    Ok(RoomRecord {
        state: bytes_field(&v, "state"),
        pending: bytes_field(&v, "pending"),
        pending_is_state: Reflect::get(&v, &JsValue::from_str("pendingAll"))
            .ok()
            .and_then(|b| b.as_bool())
            .unwrap_or(false),
        remote_marker: bytes_field(&v, "marker"),
        state_marker,
        store_snapshot,
    })
}

fn entry_to_js(e: &LogEntry) -> JsValue {
    let o = Object::new();
    set(&o, "v", &JsValue::from(Stored::LogEntry.writes()));
    set(&o, "u", &Uint8Array::from(e.update.as_slice()));
    set(&o, "local", &JsValue::from_bool(e.local));
    o.into()
}

fn entry_from_js(room: &str, v: &JsValue) -> Result<LogEntry, ForeignRecord> {
    check(room, Stored::LogEntry, v)?;
    let local = Reflect::get(v, &JsValue::from_str("local"))
        .ok()
        .and_then(|l| l.as_bool())
        .unwrap_or(false);
    Ok(LogEntry {
        update: bytes_field(v, "u"),
        local,
    })
}

fn entries_from_js(room: &str, values: &[JsValue]) -> Result<Vec<LogEntry>, ForeignRecord> {
    values.iter().map(|v| entry_from_js(room, v)).collect()
}

fn log_key(room: &str) -> JsValue {
    let a = Array::new();
    a.push(&JsValue::from_str(room));
    a.push(&JsValue::from_f64(js_sys::Date::now()));
    a.push(&JsValue::from_f64(
        (js_sys::Math::random() * 4_294_967_296.0).floor(),
    ));
    a.into()
}

fn log_range(room: &str) -> Result<IdbKeyRange, CacheError> {
    let lower = Array::of1(&JsValue::from_str(room));
    let upper = Array::of2(&JsValue::from_str(room), &Array::new());
    IdbKeyRange::bound_with_lower_open_and_upper_open(&lower, &upper, false, false)
        .map_err(|e| failed("IDBKeyRange.bound", &e))
}

/// What the cache holds for a room, read in one transaction.
#[derive(Debug, Default)]
pub struct RoomData {
    pub record: RoomRecord,
    pub log: Vec<LogEntry>,
}

impl RoomData {
    pub fn log_bytes(&self) -> u64 {
        self.log.iter().map(|e| e.update.len() as u64).sum()
    }
}

/// The room's record and log values as IndexedDB returned them, read in one transaction. Both
/// requests go out together (a request is made when its method is called, before any await)
/// and the read-only transaction is not waited for: it commits by itself, and every round trip
/// to the IndexedDB backend counts on a repeat visit.
async fn read_raw(db: &Db, room: &str) -> Result<(Option<JsValue>, Vec<JsValue>), KeepError> {
    let tx = db.transaction(&[ROOMS, LOG], IdbTransactionMode::Readonly)?;
    let (rooms, log) = (tx.store(ROOMS)?, tx.store(LOG)?);
    let range = log_range(room)?;
    let record = rooms.get(&JsValue::from_str(room));
    let values = log.get_all(Some(&range));
    let (record, values) = (record.await, values.await);
    Ok((record?, values?))
}

pub async fn read(db: &Db, room: &str) -> Result<RoomData, KeepError> {
    let (record, values) = read_raw(db, room).await?;
    Ok(RoomData {
        record: record_from_js(room, record)?,
        log: entries_from_js(room, &values)?,
    })
}

/// What the load needs from the cache: the compacted state left as the `Uint8Array` IndexedDB
/// returned (it reaches wasm memory only when something has to be merged with it), its marker,
/// the store snapshot held, and the log.
#[derive(Debug, Default)]
pub struct CachedState {
    /// The compacted state (None when never compacted).
    pub state: Option<Uint8Array>,
    /// The state's marker, when the record has one (version 2).
    pub state_marker: Option<Vec<u8>>,
    pub store_snapshot: Option<HeldSnapshot>,
    pub log: Vec<LogEntry>,
}

impl CachedState {
    pub fn state_len(&self) -> usize {
        self.state.as_ref().map_or(0, |a| a.length() as usize)
    }

    pub fn log_bytes(&self) -> u64 {
        self.log.iter().map(|e| e.update.len() as u64).sum()
    }
}

pub async fn read_state(db: &Db, room: &str) -> Result<CachedState, KeepError> {
    let (record, values) = read_raw(db, room).await?;
    let (state_marker, store_snapshot) = match &record {
        Some(r) => record_v2_fields(check(room, Stored::RoomRecord, r)?, r),
        None => (None, None),
    };
    let state = record
        .and_then(|r| Reflect::get(&r, &JsValue::from_str("state")).ok())
        .and_then(|v| v.dyn_into::<Uint8Array>().ok())
        .filter(|a| a.length() > 0);
    Ok(CachedState {
        state,
        state_marker,
        store_snapshot,
        log: entries_from_js(room, &values)?,
    })
}

/// Takes what a load brought from the remote sources, in ONE read-write transaction: appends
/// `entry` (what they held that the cache lacked, if anything) and records `held` as the store
/// snapshot the cache holds. The record is read, checked and rewritten in the same transaction,
/// so a compaction in another tab is never undone; if anything fails, neither is written.
pub async fn take_remote(
    db: &Db,
    room: &str,
    entry: Option<&LogEntry>,
    held: &HeldSnapshot,
) -> Result<(), KeepError> {
    let tx = db.transaction(&[ROOMS, LOG], IdbTransactionMode::Readwrite)?;
    let rooms = tx.store(ROOMS)?;
    let mut record = record_from_js(room, rooms.get(&JsValue::from_str(room)).await?)?;
    if let Some(e) = entry {
        let log = tx.store(LOG)?;
        log.add(&entry_to_js(e), &log_key(room)).await?;
    }
    if record.store_snapshot.as_ref() != Some(held) {
        record.store_snapshot = Some(held.clone());
        rooms
            .put(&record_to_js(&record), &JsValue::from_str(room))
            .await?;
    }
    tx.done().await?;
    Ok(())
}

pub async fn append(db: &Db, room: &str, entries: &[LogEntry]) -> Result<(), KeepError> {
    let tx = db.transaction(&[LOG], IdbTransactionMode::Readwrite)?;
    let store = tx.store(LOG)?;
    for e in entries {
        store.add(&entry_to_js(e), &log_key(room)).await?;
    }
    tx.done().await?;
    Ok(())
}

/// Sizes after a compaction (log bytes before, state bytes after).
#[derive(Debug, Clone, Copy)]
pub struct Compacted {
    pub log_bytes_before: u64,
    pub log_entries_before: usize,
    pub state_bytes: u64,
}

/// The room's record, log keys and log values, read in the caller's read-write transaction
/// (keys and values come in the same key order; the three requests go out together).
async fn read_for_write(
    rooms: &Store,
    log: &Store,
    room: &str,
) -> Result<(Option<JsValue>, Vec<JsValue>, Vec<JsValue>), KeepError> {
    let range = log_range(room)?;
    let record = rooms.get(&JsValue::from_str(room));
    let keys = log.get_all_keys(Some(&range));
    let values = log.get_all(Some(&range));
    let (record, keys, values) = (record.await, keys.await, values.await);
    let (keys, values) = (keys?, values?);
    if keys.len() != values.len() {
        return Err(CacheError::LogMismatch {
            room: room.to_string(),
            keys: keys.len(),
            values: values.len(),
        }
        .into());
    }
    Ok((record?, keys, values))
}

/// Deletes exactly `keys` (every request goes out at once, inside the caller's transaction;
/// they complete in order, and the first that fails fails the whole).
async fn delete_keys(store: &Store, keys: &[JsValue]) -> Result<(), KeepError> {
    let deletes: Vec<_> = keys.iter().map(|k| store.delete(k)).collect();
    for delete in deletes {
        delete.await?;
    }
    Ok(())
}

/// Folds the log into the record in ONE read-write transaction: read record and log, write the
/// new record, delete exactly the log keys read. A value of another format version (or a fold
/// that fails) stops it before anything is written.
pub async fn compact(db: &Db, room: &str) -> Result<Compacted, KeepError> {
    let tx = db.transaction(&[ROOMS, LOG], IdbTransactionMode::Readwrite)?;
    let rooms = tx.store(ROOMS)?;
    let log = tx.store(LOG)?;
    let (record, keys, values) = read_for_write(&rooms, &log, room).await?;
    let record = record_from_js(room, record)?;
    let entries = entries_from_js(room, &values)?;
    let folded = cache::compact(&record, &entries)?;
    rooms
        .put(&record_to_js(&folded), &JsValue::from_str(room))
        .await?;
    delete_keys(&log, &keys).await?;
    tx.done().await?;
    Ok(Compacted {
        log_bytes_before: entries.iter().map(|e| e.update.len() as u64).sum(),
        log_entries_before: entries.len(),
        state_bytes: folded.state.len() as u64,
    })
}

/// Stores a newer remote marker (and drops the folded outbox it covers). Returns the record.
pub async fn settle(
    db: &Db,
    room: &str,
    marker: &DurabilityMarker,
) -> Result<RoomRecord, KeepError> {
    let tx = db.transaction(&[ROOMS], IdbTransactionMode::Readwrite)?;
    let rooms = tx.store(ROOMS)?;
    let mut record = record_from_js(room, rooms.get(&JsValue::from_str(room)).await?)?;
    if cache::settle(&mut record, marker)? {
        rooms
            .put(&record_to_js(&record), &JsValue::from_str(room))
            .await?;
    }
    tx.done().await?;
    Ok(record)
}

/// Deletes the room's record and log entries, exactly the keys read in the same transaction;
/// nothing at all when any of them is of another format version.
pub async fn clear(db: &Db, room: &str) -> Result<(), KeepError> {
    let tx = db.transaction(&[ROOMS, LOG], IdbTransactionMode::Readwrite)?;
    let rooms = tx.store(ROOMS)?;
    let log = tx.store(LOG)?;
    let (record, keys, values) = read_for_write(&rooms, &log, room).await?;
    if let Some(r) = &record {
        check(room, Stored::RoomRecord, r)?;
    }
    entries_from_js(room, &values)?;
    if record.is_some() {
        rooms.delete(&JsValue::from_str(room)).await?;
    }
    delete_keys(&log, &keys).await?;
    tx.done().await?;
    Ok(())
}

/// Bytes a room occupies: keys (UTF-8 room name; log keys + 16 for the two numbers) plus the
/// byte arrays stored as values.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredBytes {
    pub record_bytes: u64,
    pub log_bytes: u64,
    pub log_entries: u64,
    pub total: u64,
}

pub async fn stored_bytes(db: &Db, room: &str) -> Result<StoredBytes, KeepError> {
    let data = read(db, room).await?;
    let key = room.len() as u64;
    let record_bytes = if data.record == RoomRecord::default() {
        0
    } else {
        key + data.record.bytes() as u64
    };
    let log_bytes: u64 = data
        .log
        .iter()
        .map(|e| key + 16 + e.update.len() as u64)
        .sum();
    Ok(StoredBytes {
        record_bytes,
        log_bytes,
        log_entries: data.log.len() as u64,
        total: record_bytes + log_bytes,
    })
}
