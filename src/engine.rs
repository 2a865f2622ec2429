//! The client engine (wasm32 only): runs the load chain over `fetch` and IndexedDB, writes the
//! page's updates to the cache log, compacts it in one IndexedDB transaction and tells the
//! room's other tabs, reads the relay's durability markers. Plain Rust: the `#[wasm_bindgen]`
//! surface is in `bindings/`.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use futures_util::future::{Either, join, select};
use gloo_timers::future::TimeoutFuture;
use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AbortController, BroadcastChannel, MessageEvent};
use ykeep_core::compaction::CompactionPolicy;
use ykeep_core::wire::DurableBody;
use ykeep_core::{DurabilityMarker, Holding, wire};
use yrs::Update;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

use crate::cache::{self, ForeignRecord, HeldSnapshot};
use crate::durability::{DurabilityView, bad_durable, best_marker, parse_durable};
use crate::error::{CacheError, KeepError};
use crate::http::{Ask, BrowserFetch, Fetch, Reply, describe};
use crate::idb::{self, CachedState, Compacted, Db, StoredBytes, VersionChange, VersionWatch};
use crate::js;
use crate::load::{Fetched, Merged, Source, merge_sources};
use crate::options::Options;
use crate::tiers::{Origin, Out, Report, Tier, Tiers};

/// What the engine tells the page (the bindings forward these as `status` / `durability` events).
#[derive(Debug, Clone)]
pub enum Event {
    Warning(String),
    Compacted {
        log_bytes_before: u64,
        state_bytes: u64,
        by_other_tab: bool,
    },
    /// The durability report changed: the tier of the page's latest edit, or the unsaved tiers
    /// (`crate::tiers`).
    Durability(Report),
}

/// What [`Engine::load_for_page`] resolves to.
pub struct Loaded {
    pub merged: Merged,
    /// The cache record to hand over as it is, when `merged.cache_as_is` (then `merged.update`
    /// is empty).
    pub held: Option<Uint8Array>,
}

/// The engine of one `YKeep`. Cloning shares it.
#[derive(Clone)]
pub struct Engine {
    inner: Rc<Inner>,
}

struct Inner {
    opts: Options,
    room: String,
    fetch: Rc<dyn Fetch>,
    policy: CompactionPolicy,
    db: RefCell<Option<Rc<Db>>>,
    /// Hears another tab's version change of the database (`idb::watch_versions`).
    versions: RefCell<Option<VersionWatch>>,
    cache_off: RefCell<Option<String>>,
    /// The record of another format version that turned the cache off, once one was met.
    foreign: RefCell<Option<ForeignRecord>>,
    /// Updates waiting for IndexedDB, with their sequence numbers in `tiers`.
    queue: RefCell<Vec<(u64, Vec<u8>)>>,
    tiers: RefCell<Tiers>,
    /// Sends a ykeep message on the page's provider socket (`KeepCore.attach`).
    sender: RefCell<Option<Function>>,
    /// `whenSaved` promises: resolve, reject.
    waits: RefCell<Vec<(u64, Function, Function)>>,
    writing: Cell<bool>,
    state_bytes: Cell<u64>,
    log_bytes: Cell<u64>,
    destroyed: Cell<bool>,
    listener: RefCell<Option<Box<dyn Fn(Event)>>>,
    channel: RefCell<Option<(BroadcastChannel, Closure<dyn FnMut(MessageEvent)>)>>,
}

pub fn now_ms() -> f64 {
    let perf = Reflect::get(&js_sys::global(), &JsValue::from_str("performance")).ok();
    perf.and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// The relay's `/durable` body, parsed by the browser's `JSON.parse`, into the wire struct.
fn durable_body(bytes: &[u8]) -> Result<DurableBody, KeepError> {
    let v = js_sys::JSON::parse(&String::from_utf8_lossy(bytes))
        .map_err(|e| bad_durable(describe(&e)))?;
    Ok(DurableBody {
        relay: js::string(&v, "relay").map_err(bad_durable)?,
        store: js::opt_string(&v, "store").map_err(bad_durable)?,
        store_snapshot_id: js::opt_string(&v, "storeSnapshotId").map_err(bad_durable)?,
        saved_at: js::opt_integer(&v, "savedAt", true, js::MAX_SAFE_INTEGER)
            .map_err(bad_durable)?
            .map(|t| t as i64),
    })
}

impl Engine {
    pub fn new(opts: Options) -> Engine {
        Engine::with_fetch(opts, Rc::new(BrowserFetch))
    }

    /// An engine whose HTTP goes through `fetch` (tests plug in fakes here).
    pub fn with_fetch(opts: Options, fetch: Rc<dyn Fetch>) -> Engine {
        let policy = CompactionPolicy {
            floor_bytes: opts.compaction_floor_bytes,
        };
        let inner = Rc::new(Inner {
            room: opts.room.to_string(),
            opts,
            fetch,
            policy,
            db: RefCell::new(None),
            cache_off: RefCell::new(None),
            foreign: RefCell::new(None),
            versions: RefCell::new(None),
            queue: RefCell::new(Vec::new()),
            tiers: RefCell::new(Tiers::new(None)),
            sender: RefCell::new(None),
            waits: RefCell::new(Vec::new()),
            writing: Cell::new(false),
            state_bytes: Cell::new(0),
            log_bytes: Cell::new(0),
            destroyed: Cell::new(false),
            listener: RefCell::new(None),
            channel: RefCell::new(None),
        });
        Engine { inner }
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    pub fn set_listener(&self, f: Box<dyn Fn(Event)>) {
        *self.inner.listener.borrow_mut() = Some(f);
    }

    fn emit(&self, e: Event) {
        if let Some(f) = self.inner.listener.borrow().as_ref() {
            f(e);
        }
    }

    fn warn(&self, message: String) {
        web_sys::console::warn_1(&JsValue::from_str(&format!("ykeep: {message}")));
        self.emit(Event::Warning(message));
    }

    /// Why there is no cache (None = the cache is in use).
    pub fn cache_disabled_reason(&self) -> Option<String> {
        self.inner.cache_off.borrow().clone()
    }

    fn db(&self) -> Option<Rc<Db>> {
        self.inner.db.borrow().clone()
    }

    /// Opens IndexedDB (once); on failure warns and turns the cache off.
    async fn ensure_db(&self) -> Option<Rc<Db>> {
        if let Some(db) = self.db() {
            return Some(db);
        }
        if self.inner.cache_off.borrow().is_some() {
            return None;
        }
        if !self.inner.opts.indexeddb {
            *self.inner.cache_off.borrow_mut() = Some("disabled by options".into());
            self.lose_browser_tier("disabled by options".into());
            return None;
        }
        let has_idb = Reflect::get(&js_sys::global(), &JsValue::from_str("indexedDB"))
            .map(|v| !v.is_undefined() && !v.is_null())
            .unwrap_or(false);
        let opened = if has_idb {
            idb::open(&self.inner.opts.db_name).await
        } else {
            Err(CacheError::Unavailable.into())
        };
        match opened {
            Ok(db) => {
                let db = Rc::new(db);
                *self.inner.db.borrow_mut() = Some(db.clone());
                self.watch_versions();
                self.listen_to_other_tabs_soon();
                Some(db)
            }
            Err(e) => {
                *self.inner.cache_off.borrow_mut() = Some(e.to_string());
                self.warn(format!("working without a local cache ({e})"));
                self.lose_browser_tier(e.to_string());
                None
            }
        }
    }

    /// The room's cache holds a record of another format version: leave the whole room's cache
    /// as it is from now on (no write, no compaction, no delete) and tell the page, once.
    fn stop_at_foreign(&self, found: ForeignRecord) {
        if self.inner.foreign.borrow().is_some() {
            return;
        }
        let message = KeepError::from(found.clone()).to_string();
        *self.inner.foreign.borrow_mut() = Some(found);
        self.close_cache(message);
    }

    /// Another tab opens the database at a later version (a newer cache format) or deletes it:
    /// the connection is closed (`indexeddb::Db` closes it, so that tab's open is not blocked),
    /// and nothing more is written, even through a later open. What this page wrote stays for
    /// the newer format to read; edits from now on reach the relay only, and the page is told
    /// at once.
    fn close_for_other_tab(&self, change: VersionChange) {
        if self.inner.cache_off.borrow().is_none() {
            self.close_cache(change.to_string());
        }
    }

    /// Turns the cache off for good: drops the connection (it closes once the transactions in
    /// flight let go of it), and the browser tier becomes unavailable.
    fn close_cache(&self, message: String) {
        *self.inner.cache_off.borrow_mut() = Some(message.clone());
        self.inner.db.borrow_mut().take();
        self.inner.versions.borrow_mut().take();
        self.lose_browser_tier(message.clone());
        self.warn(message);
    }

    fn watch_versions(&self) {
        if self.inner.versions.borrow().is_some() {
            return;
        }
        let weak: Weak<Inner> = Rc::downgrade(&self.inner);
        let watch = idb::watch_versions(&self.inner.opts.db_name, move |change| {
            if let Some(inner) = weak.upgrade() {
                Engine { inner }.close_for_other_tab(change);
            }
        });
        match watch {
            Ok(w) => *self.inner.versions.borrow_mut() = Some(w),
            Err(e) => self.warn(format!(
                "cannot hear other tabs' cache upgrades ({e}); a newer tab waits for this one to close"
            )),
        }
    }

    /// Passes `result` on; a record of another format version in it turns the cache off
    /// ([`Engine::stop_at_foreign`]) and becomes `Ok(None)`, what a call without a cache gets.
    fn unless_foreign<T>(&self, result: Result<T, KeepError>) -> Result<Option<T>, KeepError> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(KeepError::Foreign(found)) => {
                self.stop_at_foreign(found);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Drops the handle and opens the database again (after an unexpected close, or a
    /// version change from another tab made a transaction fail).
    async fn reopen(&self) -> Option<Rc<Db>> {
        self.inner.db.borrow_mut().take();
        self.ensure_db().await
    }

    fn channel_name(&self) -> String {
        format!("ykeep:{}", self.inner.opts.db_name)
    }

    /// Opens the channel in a later task: creating a BroadcastChannel costs about half a
    /// millisecond, which a repeat visit's load does not need to wait for.
    fn listen_to_other_tabs_soon(&self) {
        let weak: Weak<Inner> = Rc::downgrade(&self.inner);
        wasm_bindgen_futures::spawn_local(async move {
            TimeoutFuture::new(0).await;
            if let Some(inner) = weak.upgrade() {
                Engine { inner }.listen_to_other_tabs();
            }
        });
    }

    /// Listens for other tabs' compaction notices (channel `ykeep:<dbName>`). They are not
    /// about safety: `idb::compact` (read, fold, write, delete the keys read) and `idb::append`
    /// are each one read-write transaction, their scopes overlap (`log`), and IndexedDB runs
    /// such transactions one at a time across every tab of the origin, so tabs appending and
    /// compacting at once lose no entry without any lock. The notice keeps the compaction
    /// policy's count right: another tab's compaction folds this tab's log entries too, and the
    /// notice resets `log_bytes` (and takes the new `state_bytes`); without it this tab keeps
    /// counting entries that are gone and rewrites the full state long before its log is due.
    /// Both are shown in tests/e2e/tabs.test.mjs.
    fn listen_to_other_tabs(&self) {
        if self.inner.channel.borrow().is_some() || self.inner.destroyed.get() {
            return;
        }
        let Ok(channel) = BroadcastChannel::new(&self.channel_name()) else {
            return;
        };
        let weak: Weak<Inner> = Rc::downgrade(&self.inner);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(inner) = weak.upgrade() else { return };
            let data = ev.data();
            let field = |k: &str| {
                Reflect::get(&data, &JsValue::from_str(k))
                    .ok()
                    .and_then(|v| v.as_string())
            };
            if field("type").as_deref() == Some("compacted")
                && field("room").as_deref() == Some(inner.room.as_str())
            {
                let state = Reflect::get(&data, &JsValue::from_str("stateBytes"))
                    .ok()
                    .and_then(|v| v.as_f64());
                inner.log_bytes.set(0);
                if let Some(s) = state {
                    inner.state_bytes.set(s as u64);
                }
                let engine = Engine { inner };
                engine.emit(Event::Compacted {
                    log_bytes_before: 0,
                    state_bytes: state.unwrap_or(0.0) as u64,
                    by_other_tab: true,
                });
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        *self.inner.channel.borrow_mut() = Some((channel, on_message));
    }

    fn note_other_tabs(&self, c: &Compacted) {
        self.listen_to_other_tabs();
        if let Some((channel, _)) = self.inner.channel.borrow().as_ref() {
            let msg = js_sys::Object::new();
            let _ = Reflect::set(&msg, &"type".into(), &"compacted".into());
            let _ = Reflect::set(&msg, &"room".into(), &JsValue::from_str(&self.inner.room));
            let _ = Reflect::set(
                &msg,
                &"stateBytes".into(),
                &JsValue::from_f64(c.state_bytes as f64),
            );
            let _ = channel.post_message(&msg);
        }
    }

    /// GET with the token and the per-source timeout (the request is aborted when it fires).
    async fn get(
        &self,
        url: String,
        if_none_match: Option<String>,
    ) -> (Result<Reply, Fetched>, f64) {
        let start = now_ms();
        let controller = match AbortController::new() {
            Ok(c) => c,
            Err(e) => return (Err(Fetched::Failed(describe(&e))), 0.0),
        };
        let ask = Ask {
            token: self.inner.opts.token.clone(),
            if_none_match,
        };
        let request = self.inner.fetch.get(url, ask, controller.signal());
        let timer = TimeoutFuture::new(self.inner.opts.timeout_ms);
        let out = match select(request, timer).await {
            Either::Left((Ok(reply), _)) => Ok(reply),
            Either::Left((Err(e), _)) => Err(Fetched::Failed(e)),
            Either::Right(_) => {
                controller.abort();
                Err(Fetched::TimedOut)
            }
        };
        (out, now_ms() - start)
    }

    /// One remote source: what it gave, the `ETag` of a `200`, and the time taken. With
    /// `if_none_match`, a `304` is [`Fetched::Unchanged`].
    async fn fetch_source(
        &self,
        url: Option<String>,
        if_none_match: Option<String>,
    ) -> (Fetched, Option<String>, f64) {
        let Some(url) = url else {
            return (Fetched::Skipped("no URL configured".into()), None, 0.0);
        };
        let conditional = if_none_match.is_some();
        let (reply, ms) = self.get(url, if_none_match).await;
        let mut etag = None;
        let fetched = match reply {
            Err(f) => f,
            Ok(r) if r.status == 200 => {
                etag = r.etag;
                Fetched::Data(vec![r.body])
            }
            Ok(r) if r.status == 304 && conditional => Fetched::Unchanged,
            Ok(r) if r.status == 404 => Fetched::Missing,
            Ok(r) => {
                let text = String::from_utf8_lossy(&r.body[..r.body.len().min(300)]).into_owned();
                Fetched::Failed(format!("HTTP {}: {}", r.status, text))
            }
        };
        (fetched, etag, ms)
    }

    /// The load chain: IndexedDB first (its state vector goes to the relay), then relay and store
    /// concurrently, each with its timeout; everything merged into one update. Anything remote
    /// that the cache lacks is appended to the cache; an unchanged state is never re-appended.
    pub async fn load(&self) -> Result<Merged, KeepError> {
        let Loaded { mut merged, held } = self.load_for_page().await?;
        if let Some(state) = held {
            merged.update = state.to_vec();
        }
        Ok(merged)
    }

    /// [`Engine::load`] as the page needs it: when the cache's compacted record is the whole
    /// state (nothing remote, empty log), it stays the `Uint8Array` IndexedDB returned and goes
    /// to the page as it is, never copied into wasm memory and back.
    pub async fn load_for_page(&self) -> Result<Loaded, KeepError> {
        if self.inner.destroyed.get() {
            return Err(KeepError::Destroyed);
        }
        let start = now_ms();
        let cached = match self.ensure_db().await {
            None => Err(Fetched::Skipped(
                self.cache_disabled_reason().unwrap_or_default(),
            )),
            Some(db) => match idb::read_state(&db, &self.inner.room).await {
                Ok(data) => {
                    self.inner.state_bytes.set(data.state_len() as u64);
                    self.inner.log_bytes.set(data.log_bytes());
                    Ok(data)
                }
                Err(KeepError::Foreign(found)) => {
                    let message = KeepError::from(found.clone()).to_string();
                    self.stop_at_foreign(found);
                    Err(Fetched::Failed(message))
                }
                Err(e) => {
                    self.warn(format!("could not read the cache: {e}"));
                    Err(Fetched::Failed(e.to_string()))
                }
            },
        };
        let cache_ms = now_ms() - start;
        // What the cache holds, for the relay: its state vector (`?sv=`) and its state tag
        // (`If-None-Match`), from the record's stored marker and the log. A version 1 record
        // has no marker: its state is copied into wasm memory and decoded for one, and the copy
        // is kept for the merge.
        let mut state_bytes: Option<Vec<u8>> = None;
        let holding = match &cached {
            Ok(c) if self.inner.opts.relay_url.is_some() => {
                let (holding, copied) = holding_of(c);
                state_bytes = copied;
                holding
            }
            _ => None,
        };
        let sv = holding
            .as_ref()
            .map(|h| ykeep_core::b64::encode(&h.state_vector().encode_v1()));
        let relay_tag = holding.as_ref().and_then(Holding::tag).map(|t| t.etag());
        // For the store: the snapshot the cache holds, if it came from this store URL.
        let store_url = self.inner.opts.store_snapshot_url();
        let store_held = cached
            .as_ref()
            .ok()
            .and_then(|c| c.store_snapshot.clone())
            .filter(|h| store_url.as_ref() == Some(&h.store));
        let store_tag = store_held.as_ref().map(|h| wire::etag(&h.id));
        let relay = self.fetch_source(self.inner.opts.relay_state_url(sv.as_deref()), relay_tag);
        let store = self.fetch_source(store_url.clone(), store_tag);
        let ((relay, _, relay_ms), (store, store_etag, store_ms)) = join(relay, store).await;
        // The store snapshot this load downloads, to be recorded as held once the cache has it.
        let downloaded = match (&store, store_etag, store_url) {
            (Fetched::Data(_), Some(tag), Some(store)) => Some(HeldSnapshot {
                store,
                id: wire::unquote_etag(&tag).to_string(),
            }),
            _ => None,
        };
        let remote_data = [&relay, &store]
            .iter()
            .any(|f| matches!(f, Fetched::Data(_)));
        let mut held = None;
        let cache_outcome = match cached {
            Err(f) => f,
            Ok(c) if c.state.is_none() && c.log.is_empty() => Fetched::Missing,
            Ok(c) if !remote_data && c.log.is_empty() => {
                let len = c.state_len();
                held = c.state;
                Fetched::Held(len)
            }
            Ok(c) => {
                let state = state_bytes.or_else(|| c.state.as_ref().map(Uint8Array::to_vec));
                Fetched::Data(
                    state
                        .into_iter()
                        .chain(c.log.into_iter().map(|e| e.update))
                        .collect(),
                )
            }
        };
        let mut merged = merge_sources(vec![
            (Source::Relay, relay, relay_ms),
            (Source::Store, store, store_ms),
            (Source::Indexeddb, cache_outcome, cache_ms),
        ]);
        let new = merged.new_for_cache.take().map(|update| cache::LogEntry {
            update,
            local: false,
        });
        // The downloaded snapshot is held once it merged (its source still `ok`, not `corrupt`)
        // and what it added is in the cache: both go in one transaction.
        let merged_store = merged
            .report
            .sources
            .iter()
            .any(|r| r.source == Source::Store && r.status == "ok");
        let newly_held = downloaded.filter(|d| merged_store && store_held.as_ref() != Some(d));
        match (new, newly_held) {
            (entry, Some(snapshot)) => self.take_remote_now(entry, snapshot).await,
            (Some(entry), None) => {
                self.append_now(vec![entry]).await;
            }
            (None, None) => {}
        }
        merged.report.total_ms = now_ms() - start;
        let held = held.filter(|_| merged.cache_as_is);
        Ok(Loaded { merged, held })
    }

    /// Appends what a load brought (if anything) and records `snapshot` as held, in one
    /// transaction (reopening once if the database went away).
    async fn take_remote_now(&self, entry: Option<cache::LogEntry>, snapshot: HeldSnapshot) {
        let Some(db) = self.ensure_db().await else {
            return;
        };
        let room = &self.inner.room;
        let mut result = idb::take_remote(&db, room, entry.as_ref(), &snapshot).await;
        if matches!(&result, Err(e) if !matches!(e, KeepError::Foreign(_))) {
            drop(db);
            if let Some(db) = self.reopen().await {
                result = idb::take_remote(&db, room, entry.as_ref(), &snapshot).await;
            }
        }
        let bytes = entry.as_ref().map_or(0, |e| e.update.len() as u64);
        match self.unless_foreign(result) {
            Ok(Some(())) => self.inner.log_bytes.set(self.inner.log_bytes.get() + bytes),
            // Another format version: the cache is off for this room, and the page was told.
            Ok(None) => {}
            Err(e) => {
                self.warn(format!("could not write to the cache: {e}"));
                self.lose_browser_tier(format!("a write failed: {e}"));
            }
        }
    }

    /// Appends entries to the log (reopening once if the database went away). False when they
    /// are not in the cache.
    async fn append_now(&self, entries: Vec<cache::LogEntry>) -> bool {
        let Some(db) = self.ensure_db().await else {
            return false;
        };
        let bytes: u64 = entries.iter().map(|e| e.update.len() as u64).sum();
        let mut result = idb::append(&db, &self.inner.room, &entries).await;
        if result.is_err() {
            drop(db);
            if let Some(db) = self.reopen().await {
                result = idb::append(&db, &self.inner.room, &entries).await;
            }
        }
        match result {
            Ok(()) => {
                self.inner.log_bytes.set(self.inner.log_bytes.get() + bytes);
                true
            }
            Err(e) => {
                self.warn(format!("could not write to the cache: {e}"));
                // Those updates are not in the cache and never will be: the tier is lost, not
                // "reached" by a later write.
                self.lose_browser_tier(format!("a write failed: {e}"));
                false
            }
        }
    }

    /// Queues an update the page made; a background writer appends queued updates to the log
    /// (one merged entry per batch, or one entry per update when they do not merge; one
    /// transaction) and compacts by bytes.
    pub fn store_update(&self, update: Vec<u8>, seq: u64) -> Result<(), KeepError> {
        if self.inner.destroyed.get() {
            return Err(KeepError::Destroyed);
        }
        Update::decode_v1(&update).map_err(|e| ykeep_core::MergeError::Decode(e.to_string()))?;
        self.inner.queue.borrow_mut().push((seq, update));
        self.spawn_writer();
        Ok(())
    }

    fn spawn_writer(&self) {
        if self.inner.writing.replace(true) {
            return;
        }
        let engine = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let queued: Vec<(u64, Vec<u8>)> =
                    std::mem::take(&mut *engine.inner.queue.borrow_mut());
                if queued.is_empty() {
                    break;
                }
                let (seqs, batch): (Vec<u64>, Vec<Vec<u8>>) = queued.into_iter().unzip();
                let count = batch.len();
                let (entries, merge_error) = cache::local_entries(batch);
                if let Some(e) = merge_error {
                    engine.warn(format!(
                        "could not merge {count} queued updates, storing them one by one: {e}"
                    ));
                }
                if engine.append_now(entries).await {
                    engine.inner.tiers.borrow_mut().written(&seqs);
                    engine.settle_tiers();
                }
                let (state, log) = (engine.inner.state_bytes.get(), engine.inner.log_bytes.get());
                if engine.inner.policy.should_compact(state, log) {
                    if let Err(e) = engine.compact_now().await {
                        engine.warn(format!("compaction failed: {e}"));
                    }
                }
            }
            engine.inner.writing.set(false);
        });
    }

    /// Resolves once every queued update is in IndexedDB.
    pub async fn flush(&self) {
        while self.inner.writing.get() || !self.inner.queue.borrow().is_empty() {
            if !self.inner.writing.get() {
                self.spawn_writer();
            }
            TimeoutFuture::new(1).await;
        }
    }

    async fn compact_now(&self) -> Result<Option<Compacted>, KeepError> {
        let Some(db) = self.ensure_db().await else {
            return Ok(None);
        };
        let compacted = idb::compact(&db, &self.inner.room).await;
        drop(db);
        let Some(compacted) = self.unless_foreign(compacted)? else {
            return Ok(None);
        };
        self.inner.state_bytes.set(compacted.state_bytes);
        self.inner.log_bytes.set(0);
        self.note_other_tabs(&compacted);
        self.emit(Event::Compacted {
            log_bytes_before: compacted.log_bytes_before,
            state_bytes: compacted.state_bytes,
            by_other_tab: false,
        });
        Ok(Some(compacted))
    }

    /// Flushes, then folds the log into the compacted record (one read-write transaction).
    pub async fn compact(&self) -> Result<Option<Compacted>, KeepError> {
        self.flush().await;
        self.compact_now().await
    }

    /// Asks the relay what is durable and compares it with `local_state` (the page's full
    /// state); a marker newer than the cached one is stored, shrinking the outbox.
    pub async fn durability(&self, local_state: &[u8]) -> Result<DurabilityView, KeepError> {
        let held = self.inner.tiers.borrow().held();
        self.flush().await;
        let local_marker = DurabilityMarker::of_update(local_state)?;
        let db = self.db();
        let mut view = DurabilityView {
            local: db.is_some(),
            relay: None,
            store: None,
            store_snapshot_id: None,
            saved_at: None,
            pending_updates: 0,
            pending_bytes: 0,
            error: None,
        };
        let mut best = None;
        if let Some(url) = self.inner.opts.relay_durable_url() {
            match self.get(url, None).await.0 {
                Ok(r) if r.status == 200 => match durable_body(&r.body).and_then(parse_durable) {
                    Ok(p) => {
                        view.relay = Some(p.relay.covers(&local_marker));
                        view.store =
                            Some(p.store.as_ref().is_some_and(|m| m.covers(&local_marker)));
                        view.store_snapshot_id = p.store_snapshot_id.clone();
                        view.saved_at = p.saved_at;
                        best = Some(best_marker(&p).clone());
                    }
                    Err(e) => view.error = Some(e.to_string()),
                },
                Ok(r) => view.error = Some(format!("relay /durable: HTTP {}", r.status)),
                Err(Fetched::Failed(why)) => view.error = Some(format!("relay /durable: {why}")),
                // `get` fails with `Failed` or `TimedOut` only.
                Err(_) => view.error = Some("relay /durable: timeout".into()),
            }
        }
        if let Some(db) = db {
            match self.settle_and_count(&db, best.as_ref()).await? {
                Some((updates, bytes)) => {
                    view.pending_updates = updates;
                    view.pending_bytes = bytes;
                }
                None => view.local = false,
            }
        }
        let mut tiers = self.inner.tiers.borrow_mut();
        if view.store == Some(true) {
            tiers.confirmed(Tier::Store, held);
        } else if view.relay == Some(true) {
            tiers.confirmed(Tier::Relay, held);
        }
        drop(tiers);
        self.settle_tiers();
        Ok(view)
    }

    /// Stores `marker` in the cache when it is newer, then counts the outbox: `(updates,
    /// bytes)`, or None when the room's cache turned out to hold another format version.
    async fn settle_and_count(
        &self,
        db: &Db,
        marker: Option<&DurabilityMarker>,
    ) -> Result<Option<(usize, usize)>, KeepError> {
        let record = match marker {
            Some(m) => match self.unless_foreign(idb::settle(db, &self.inner.room, m).await)? {
                Some(record) => Some(record),
                None => return Ok(None),
            },
            None => None,
        };
        let Some(mut data) = self.unless_foreign(idb::read(db, &self.inner.room).await)? else {
            return Ok(None);
        };
        if let Some(record) = record {
            data.record = record;
        }
        let waiting = cache::outbox(&data.record, &data.log)?;
        Ok(Some((waiting.len(), waiting.iter().map(|u| u.len()).sum())))
    }

    /// Takes a durability marker reported by other means (e.g. an app's own channel) into the
    /// cache. Returns the number of outbox updates left.
    pub async fn settle(&self, marker: &DurabilityMarker) -> Result<usize, KeepError> {
        let Some(db) = self.ensure_db().await else {
            return Ok(0);
        };
        let counted = self.settle_and_count(&db, Some(marker)).await?;
        Ok(counted.map_or(0, |(updates, _)| updates))
    }

    /// The outbox: updates made here that no remote marker covers yet.
    pub async fn outbox(&self) -> Result<Vec<Vec<u8>>, KeepError> {
        self.flush().await;
        let Some(db) = self.ensure_db().await else {
            return Ok(Vec::new());
        };
        let Some(data) = self.unless_foreign(idb::read(&db, &self.inner.room).await)? else {
            return Ok(Vec::new());
        };
        Ok(cache::outbox(&data.record, &data.log)?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect())
    }

    pub async fn stored_bytes(&self) -> Result<StoredBytes, KeepError> {
        self.flush().await;
        let Some(db) = self.ensure_db().await else {
            return Ok(StoredBytes::default());
        };
        Ok(self
            .unless_foreign(idb::stored_bytes(&db, &self.inner.room).await)?
            .unwrap_or_default())
    }

    /// Deletes this room's cache (record and log). Fails, deleting nothing, when the room's
    /// cache holds a record of another format version.
    pub async fn clear_data(&self) -> Result<(), KeepError> {
        self.inner.queue.borrow_mut().clear();
        self.flush().await;
        if let Some(found) = self.inner.foreign.borrow().clone() {
            return Err(found.into());
        }
        let Some(db) = self.ensure_db().await else {
            return Ok(());
        };
        if let Err(e) = idb::clear(&db, &self.inner.room).await {
            if let KeepError::Foreign(found) = &e {
                self.stop_at_foreign(found.clone());
            }
            return Err(e);
        }
        self.inner.state_bytes.set(0);
        self.inner.log_bytes.set(0);
        Ok(())
    }

    /// Flushes and closes. Later calls fail with `Destroyed`.
    pub async fn destroy(&self) {
        if self.inner.destroyed.get() {
            return;
        }
        self.flush().await;
        self.inner.destroyed.set(true);
        self.inner.tiers.borrow_mut().abandon("ykeep: destroyed");
        self.settle_tiers();
        self.inner.sender.borrow_mut().take();
        if let Some((channel, _)) = self.inner.channel.borrow_mut().take() {
            channel.close();
        }
        self.inner.db.borrow_mut().take();
        self.inner.versions.borrow_mut().take();
        self.inner.listener.borrow_mut().take();
    }

    /// The browser tier cannot be reached any more (no cache, a failed write, another format).
    fn lose_browser_tier(&self, why: String) {
        self.inner.tiers.borrow_mut().browser_lost(why);
        self.settle_tiers();
    }

    /// Performs what the tiers decided: messages to the relay, settled waits, the report.
    fn settle_tiers(&self) {
        let out = self.inner.tiers.borrow_mut().drain();
        for o in out {
            match o {
                Out::Send(bytes) => {
                    if let Some(send) = self.inner.sender.borrow().as_ref() {
                        let _ = send.call1(&JsValue::NULL, &Uint8Array::from(bytes.as_slice()));
                    }
                }
                Out::Resolve(id) => {
                    if let Some((resolve, _)) = self.take_wait(id) {
                        let _ = resolve.call0(&JsValue::NULL);
                    }
                }
                Out::Reject(id, why) => {
                    if let Some((_, reject)) = self.take_wait(id) {
                        let error = js_sys::Error::new(&why);
                        let _ = reject.call1(&JsValue::NULL, &error);
                    }
                }
                Out::Durability(report) => self.emit(Event::Durability(report)),
            }
        }
    }

    /// The resolve and reject functions of the `whenSaved` promise `id`.
    fn take_wait(&self, id: u64) -> Option<(Function, Function)> {
        let mut waits = self.inner.waits.borrow_mut();
        let at = waits.iter().position(|(w, _, _)| *w == id)?;
        let (_, resolve, reject) = waits.swap_remove(at);
        Some((resolve, reject))
    }

    /// The doc took an update; returns its sequence number.
    pub fn note_update(&self, origin: Origin) -> u64 {
        let seq = self.inner.tiers.borrow_mut().update(origin);
        self.settle_tiers();
        seq
    }

    /// Sends a ykeep message on the page's provider socket from now on (None: detached).
    pub fn set_sender(&self, send: Option<Function>) {
        *self.inner.sender.borrow_mut() = send;
    }

    /// The provider's socket opened (true) or closed (false).
    pub fn link(&self, open: bool) {
        let mut tiers = self.inner.tiers.borrow_mut();
        if open {
            tiers.opened();
        } else {
            tiers.closed();
        }
        drop(tiers);
        self.settle_tiers();
    }

    /// A ykeep message the page's provider received.
    pub fn ack_message(&self, frame: &[u8]) -> Result<(), KeepError> {
        let result = self.inner.tiers.borrow_mut().message(frame);
        self.settle_tiers();
        result.map_err(|e| KeepError::Source {
            source_name: "relay",
            message: e.to_string(),
        })
    }

    /// Marks what the provider has sent (call after the doc's update handlers ran).
    pub fn mark(&self) {
        self.inner.tiers.borrow_mut().mark();
        self.settle_tiers();
    }

    /// Whether the relay acknowledges on the socket now open.
    pub fn acknowledged(&self) -> bool {
        self.inner.tiers.borrow().acknowledged()
    }

    pub fn unsaved(&self) -> Vec<Tier> {
        self.inner.tiers.borrow().unsaved()
    }

    /// Resolves once `tier` holds everything the page holds now; rejects on destroy, or at once
    /// (and later) when the tier is unavailable.
    pub fn when_saved(&self, tier: Tier) -> Promise {
        if self.inner.destroyed.get() {
            return Promise::reject(&js_sys::Error::new("ykeep: destroyed").into());
        }
        let wait = self.inner.tiers.borrow_mut().when_saved(tier);
        let promise = match wait {
            Ok(None) => Promise::resolve(&JsValue::UNDEFINED),
            Err(why) => Promise::reject(&js_sys::Error::new(&why).into()),
            Ok(Some(id)) => Promise::new(&mut |resolve, reject| {
                self.inner.waits.borrow_mut().push((id, resolve, reject));
            }),
        };
        self.settle_tiers();
        promise
    }

    /// Simulates a crash for tests: forget the handles without flushing or closing anything.
    pub fn abandon(&self) {
        self.inner.destroyed.set(true);
        self.inner.queue.borrow_mut().clear();
    }
}

/// What the cache holds: the record's state marker (computed from the state when the record
/// has none: the state's copy in wasm memory comes back too), then each log entry. None when
/// the cache is empty or something in it does not decode: the relay then sends its full state.
fn holding_of(c: &CachedState) -> (Option<Holding>, Option<Vec<u8>>) {
    if c.state.is_none() && c.log.is_empty() {
        return (None, None);
    }
    let mut copied = None;
    let marker = match (&c.state_marker, &c.state) {
        (Some(m), _) => DurabilityMarker::decode(m).ok(),
        (None, Some(state)) => {
            let bytes = state.to_vec();
            let marker = DurabilityMarker::of_update(&bytes).ok();
            copied = Some(bytes);
            marker
        }
        (None, None) => Some(DurabilityMarker::default()),
    };
    let Some(marker) = marker else {
        return (None, copied);
    };
    let mut holding = Holding::new(marker);
    for e in &c.log {
        match Update::decode_v1(&e.update) {
            Ok(u) => holding.add(&u),
            Err(_) => return (None, copied),
        }
    }
    (Some(holding), copied)
}
