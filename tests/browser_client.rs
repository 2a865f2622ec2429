//! The client engine in headless Chromium on real IndexedDB (wasm-bindgen-test).
//! HTTP sources are in-test fakes behind the engine's `Fetch` trait: up, down, slow, corrupt.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, JSON, Object, Reflect, Uint8Array};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{AbortSignal, IdbTransactionMode};
use ykeep::cache::LogEntry;
use ykeep::core::DurabilityMarker;
use ykeep::engine::{Engine, Event};
use ykeep::http::{Ask, Fetch, LocalFuture, Reply};
use ykeep::idb;
use ykeep::options::{Options, RawOptions};
use ykeep::tiers::Origin;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

wasm_bindgen_test_configure!(run_in_browser);

const RELAY: &str = "http://relay.test";
const STORE: &str = "http://store.test";

#[derive(Clone)]
enum Fake {
    Reply(u16, Vec<u8>),
    /// `200` with this `ETag` (quoted) and body, or `304` to an `If-None-Match` naming it.
    Tagged(String, Vec<u8>),
    Down,
    Hang,
}

/// Routes: relay `/state`, relay `/durable`, store `/snapshots`. Records the URLs asked and the
/// `If-None-Match` of each.
struct FakeNet {
    relay: RefCell<Fake>,
    durable: RefCell<Fake>,
    store: RefCell<Fake>,
    asked: RefCell<Vec<String>>,
    conditions: RefCell<Vec<(String, Option<String>)>>,
}

impl FakeNet {
    fn new() -> Rc<FakeNet> {
        Rc::new(FakeNet {
            relay: RefCell::new(Fake::Reply(404, b"{}".to_vec())),
            durable: RefCell::new(Fake::Reply(404, b"{}".to_vec())),
            store: RefCell::new(Fake::Reply(404, b"{}".to_vec())),
            asked: RefCell::new(Vec::new()),
            conditions: RefCell::new(Vec::new()),
        })
    }

    /// The `If-None-Match` the last request to `base` carried (None: none sent).
    fn last_condition(&self, base: &str) -> Option<String> {
        let conditions = self.conditions.borrow();
        let (_, tag) = conditions
            .iter()
            .rev()
            .find(|(url, _)| url.starts_with(base) && !url.ends_with("/durable"))
            .expect("asked");
        tag.clone()
    }
}

impl Fetch for FakeNet {
    fn get(
        &self,
        url: String,
        ask: Ask,
        _signal: AbortSignal,
    ) -> LocalFuture<Result<Reply, String>> {
        self.asked.borrow_mut().push(url.clone());
        self.conditions
            .borrow_mut()
            .push((url.clone(), ask.if_none_match.clone()));
        let fake = if url.ends_with("/durable") {
            self.durable.borrow().clone()
        } else if url.starts_with(RELAY) {
            self.relay.borrow().clone()
        } else {
            self.store.borrow().clone()
        };
        Box::pin(async move {
            match fake {
                Fake::Reply(status, body) => Ok(Reply {
                    status,
                    etag: None,
                    body,
                }),
                Fake::Tagged(tag, _) if ask.if_none_match.as_deref() == Some(tag.as_str()) => {
                    Ok(Reply {
                        status: 304,
                        etag: Some(tag),
                        body: Vec::new(),
                    })
                }
                Fake::Tagged(tag, body) => Ok(Reply {
                    status: 200,
                    etag: Some(tag),
                    body,
                }),
                Fake::Down => Err("connection refused".into()),
                Fake::Hang => std::future::pending().await,
            }
        })
    }
}

fn opts(db: &str, id: &str) -> Options {
    Options::parse(RawOptions {
        kind: "document".into(),
        id: id.into(),
        relay_url: Some(RELAY.into()),
        store_url: Some(STORE.into()),
        timeout_ms: Some(300),
        compaction_floor_bytes: Some(1 << 30),
        db_name: Some(db.into()),
        ..Default::default()
    })
    .unwrap()
}

async fn fresh_db(name: &str) {
    idb::delete_database(name).await.unwrap();
}

fn engine(db: &str, net: &Rc<FakeNet>) -> Engine {
    Engine::with_fetch(opts(db, "room1"), net.clone())
}

fn text_of(update: &[u8]) -> String {
    let d = Doc::new();
    if !update.is_empty() {
        d.transact_mut()
            .apply_update(Update::decode_v1(update).unwrap())
            .unwrap();
    }
    d.get_or_insert_text("t").get_string(&d.transact())
}

fn full(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Types `words` into `doc` one transaction each; returns the updates.
/// Queues `update` as the page's own edit (what `YKeep` does: a sequence number, then the write).
fn store(engine: &Engine, update: Vec<u8>) -> Result<(), ykeep::KeepError> {
    let seq = engine.note_update(Origin::Own);
    engine.store_update(update, seq)
}

fn type_words(doc: &Doc, words: &[&str]) -> Vec<Vec<u8>> {
    let t = doc.get_or_insert_text("t");
    words
        .iter()
        .map(|w| {
            let mut txn = doc.transact_mut();
            let len = t.len(&txn);
            t.insert(&mut txn, len, w);
            txn.encode_update_v1()
        })
        .collect()
}

#[wasm_bindgen_test]
async fn cache_round_trip() {
    let db = "t-round-trip";
    fresh_db(db).await;
    let net = FakeNet::new();
    let a = engine(db, &net);
    assert!(a.load().await.unwrap().update.is_empty());
    let doc = Doc::with_client_id(1);
    for u in type_words(&doc, &["hello ", "from ", "IndexedDB"]) {
        store(&a, u).unwrap();
    }
    a.destroy().await;

    let b = engine(db, &net);
    let m = b.load().await.unwrap();
    assert_eq!(text_of(&m.update), "hello from IndexedDB");
    let cache = &m.report.sources[2];
    assert_eq!((cache.status, cache.bytes > 0), ("ok", true));
    b.destroy().await;
}

/// A compacted cache with nothing remote goes to the page as the array IndexedDB returned
/// (no copy into wasm memory, no decode); a log entry or remote data puts it through the merge.
#[wasm_bindgen_test]
async fn compacted_cache_alone_is_handed_over_as_read() {
    let db = "t-held";
    fresh_db(db).await;
    let net = FakeNet::new();
    let a = engine(db, &net);
    a.load().await.unwrap();
    let doc = Doc::with_client_id(7);
    for u in type_words(&doc, &["held ", "as ", "read"]) {
        store(&a, u).unwrap();
    }
    a.compact().await.unwrap();
    a.destroy().await;

    let b = engine(db, &net);
    let l = b.load_for_page().await.unwrap();
    assert!(l.merged.cache_as_is && l.merged.update.is_empty());
    let held = l.held.expect("the compacted record, as read");
    assert_eq!(text_of(&held.to_vec()), "held as read");
    assert_eq!(l.merged.report.sources[2].bytes, held.length() as usize);
    assert_eq!(l.merged.report.merged_bytes, held.length() as usize);
    // Relay data next to it: merged in wasm, nothing held.
    let relay_doc = Doc::with_client_id(8);
    type_words(&relay_doc, &["+relay"]);
    *net.relay.borrow_mut() = Fake::Reply(200, full(&relay_doc));
    let l = b.load_for_page().await.unwrap();
    assert!(l.held.is_none() && !l.merged.cache_as_is);
    let text = text_of(&l.merged.update);
    assert!(
        text.contains("held as read") && text.contains("+relay"),
        "{text}"
    );
    b.destroy().await;
}

#[wasm_bindgen_test]
async fn reopen_after_a_drop_without_flush_keeps_every_stored_update() {
    let db = "t-crash";
    fresh_db(db).await;
    let net = FakeNet::new();
    let a = engine(db, &net);
    a.load().await.unwrap();
    let doc = Doc::with_client_id(2);
    let words: Vec<String> = (0..40).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    for (i, u) in type_words(&doc, &refs).into_iter().enumerate() {
        store(&a, u).unwrap();
        if i % 7 == 0 {
            // Wait for the writer now and then, so the log holds several entries.
            a.flush().await;
        }
    }
    a.flush().await; // every update handed over is now stored...
    let stored = a.stored_bytes().await.unwrap();
    assert!(stored.log_entries >= 2, "{stored:?}");
    a.abandon(); // ...and the "tab" dies: no destroy, no compaction, no close.

    let b = engine(db, &net);
    let m = b.load().await.unwrap();
    assert_eq!(text_of(&m.update), words.concat());
    b.destroy().await;
}

#[wasm_bindgen_test]
async fn compaction_keeps_content_identical_and_shrinks_the_log() {
    let db = "t-compact";
    fresh_db(db).await;
    let net = FakeNet::new();
    let a = engine(db, &net);
    a.load().await.unwrap();
    let doc = Doc::with_client_id(3);
    let t = doc.get_or_insert_text("t");
    for i in 0..300u32 {
        let u = {
            let mut txn = doc.transact_mut();
            if i % 5 == 4 {
                t.remove_range(&mut txn, 0, 2);
            } else {
                let len = t.len(&txn);
                t.insert(&mut txn, len, &format!("{i};"));
            }
            txn.encode_update_v1()
        };
        store(&a, u).unwrap();
        a.flush().await;
    }
    let before = a.stored_bytes().await.unwrap();
    let c = a.compact().await.unwrap().expect("cache in use");
    let after = a.stored_bytes().await.unwrap();
    assert_eq!(after.log_entries, 0);
    assert!(after.total < before.total, "{before:?} -> {after:?}");
    assert_eq!(c.log_entries_before as u64, before.log_entries);
    a.destroy().await;

    let b = engine(db, &net);
    let m = b.load().await.unwrap();
    assert_eq!(text_of(&m.update), t.get_string(&doc.transact()));
    assert_eq!(
        m.update,
        full_of_text_doc(&m.update),
        "compacted state is one full update"
    );
    b.destroy().await;
}

fn full_of_text_doc(update: &[u8]) -> Vec<u8> {
    let d = Doc::new();
    d.transact_mut()
        .apply_update(Update::decode_v1(update).unwrap())
        .unwrap();
    full(&d)
}

#[wasm_bindgen_test]
async fn compaction_by_bytes_runs_by_itself() {
    let db = "t-auto-compact";
    fresh_db(db).await;
    let net = FakeNet::new();
    let mut o = opts(db, "room1");
    o.compaction_floor_bytes = 2_000;
    let a = Engine::with_fetch(o, net.clone());
    a.load().await.unwrap();
    let doc = Doc::with_client_id(4);
    for i in 0..400 {
        store(&a, type_words(&doc, &[&format!("{i:04}")]).remove(0)).unwrap();
        a.flush().await;
    }
    let s = a.stored_bytes().await.unwrap();
    // The log never exceeds max(state, floor) by more than one batch.
    assert!(s.record_bytes > 0, "{s:?}");
    let key_bytes = s.log_entries * ("document/room1".len() as u64 + 16);
    assert!(
        s.log_bytes - key_bytes <= 2_000 + 20 + s.record_bytes,
        "{s:?}"
    );
    a.destroy().await;
}

#[wasm_bindgen_test]
async fn merges_three_sources_that_each_hold_edits_the_others_lack() {
    let db = "t-three";
    fresh_db(db).await;
    let net = FakeNet::new();
    let base = Doc::with_client_id(10);
    type_words(&base, &["base|"]);
    let (relay_doc, store_doc, cache_doc) = (
        Doc::with_client_id(11),
        Doc::with_client_id(12),
        Doc::with_client_id(13),
    );
    for d in [&relay_doc, &store_doc, &cache_doc] {
        d.transact_mut()
            .apply_update(Update::decode_v1(&full(&base)).unwrap())
            .unwrap();
    }
    type_words(&relay_doc, &["relay|"]);
    type_words(&store_doc, &["store|"]);
    type_words(&cache_doc, &["cache|"]);

    let seed = engine(db, &net);
    seed.load().await.unwrap();
    store(&seed, full(&cache_doc)).unwrap();
    seed.destroy().await;

    *net.relay.borrow_mut() = Fake::Reply(200, full(&relay_doc));
    *net.store.borrow_mut() = Fake::Reply(200, full(&store_doc));
    let a = engine(db, &net);
    let m = a.load().await.unwrap();
    let text = text_of(&m.update);
    for part in ["base|", "relay|", "store|", "cache|"] {
        assert!(text.contains(part), "{text:?} lacks {part}");
    }
    assert_eq!(text.len(), "base|relay|store|cache|".len());
    let order: Vec<_> = m
        .report
        .sources
        .iter()
        .map(|s| (s.source.name(), s.status))
        .collect();
    assert_eq!(
        order,
        [("relay", "ok"), ("store", "ok"), ("indexeddb", "ok")]
    );
    // The relay was sent the cache's state vector.
    assert!(
        net.asked.borrow().iter().any(|u| u.contains("/state?sv=")),
        "{:?}",
        net.asked.borrow()
    );
    a.destroy().await;

    // What came from the network is now in the cache: offline, all four parts load.
    *net.relay.borrow_mut() = Fake::Down;
    *net.store.borrow_mut() = Fake::Down;
    let b = engine(db, &net);
    let offline = text_of(&b.load().await.unwrap().update);
    assert_eq!(offline.len(), text.len());
    b.destroy().await;
}

#[wasm_bindgen_test]
async fn each_source_down_or_corrupt_in_turn() {
    let garbage = b"\xff\xff\xff\xff\x7fnot a yjs update".to_vec();
    for (case, broken) in [
        "relay-down",
        "relay-slow",
        "relay-corrupt",
        "store-down",
        "store-500",
        "store-corrupt",
        "cache-off",
        "cache-corrupt",
    ]
    .into_iter()
    .enumerate()
    {
        let db = format!("t-broken-{case}");
        fresh_db(&db).await;
        let net = FakeNet::new();
        let (relay_doc, store_doc, cache_doc) = (
            Doc::with_client_id(21),
            Doc::with_client_id(22),
            Doc::with_client_id(23),
        );
        type_words(&relay_doc, &["R"]);
        type_words(&store_doc, &["S"]);
        type_words(&cache_doc, &["C"]);
        let seed = engine(&db, &net);
        seed.load().await.unwrap();
        store(&seed, full(&cache_doc)).unwrap();
        seed.destroy().await;
        *net.relay.borrow_mut() = Fake::Reply(200, full(&relay_doc));
        *net.store.borrow_mut() = Fake::Reply(200, full(&store_doc));

        let mut o = opts(&db, "room1");
        let (which, want_status) = match broken {
            "relay-down" => (0, "error"),
            "relay-slow" => (0, "timeout"),
            "relay-corrupt" => (0, "corrupt"),
            "store-down" => (1, "error"),
            "store-500" => (1, "error"),
            "store-corrupt" => (1, "corrupt"),
            "cache-off" => (2, "skipped"),
            _ => (2, "corrupt"),
        };
        match broken {
            "relay-down" => *net.relay.borrow_mut() = Fake::Down,
            "relay-slow" => *net.relay.borrow_mut() = Fake::Hang,
            "relay-corrupt" => *net.relay.borrow_mut() = Fake::Reply(200, garbage.clone()),
            "store-down" => *net.store.borrow_mut() = Fake::Down,
            "store-500" => *net.store.borrow_mut() = Fake::Reply(500, b"{\"error\":{}}".to_vec()),
            "store-corrupt" => *net.store.borrow_mut() = Fake::Reply(200, garbage.clone()),
            "cache-off" => o.indexeddb = false,
            _ => {
                let handle = idb::open(&db).await.unwrap();
                idb::append(
                    &handle,
                    "document/room1",
                    &[LogEntry {
                        update: garbage.clone(),
                        local: true,
                    }],
                )
                .await
                .unwrap();
                drop(handle);
            }
        }
        let a = Engine::with_fetch(o, net.clone());
        let m = a.load().await.unwrap();
        let statuses: Vec<&str> = m.report.sources.iter().map(|s| s.status).collect();
        assert_eq!(statuses[which], want_status, "{broken}: {:?}", m.report);
        for (i, s) in statuses.iter().enumerate() {
            if i != which {
                assert_eq!(*s, "ok", "{broken}: others still load: {:?}", m.report);
            }
        }
        let text = text_of(&m.update);
        for (i, part) in ["R", "S", "C"].into_iter().enumerate() {
            assert_eq!(text.contains(part), i != which, "{broken}: text {text:?}");
        }
        assert!(m.report.sources[which].error.is_some() || want_status == "skipped");
        a.destroy().await;
    }
}

#[wasm_bindgen_test]
async fn opening_a_stored_room_twice_more_adds_zero_bytes() {
    let db = "t-zero";
    fresh_db(db).await;
    let net = FakeNet::new();
    let doc = Doc::with_client_id(30);
    let a = engine(db, &net);
    a.load().await.unwrap();
    for u in type_words(&doc, &["some ", "stored ", "edits"]) {
        store(&a, u).unwrap();
    }
    a.destroy().await;
    // The relay and the store now serve the same state (no live diff, full snapshot).
    *net.relay.borrow_mut() = Fake::Reply(200, Vec::new());
    *net.store.borrow_mut() = Fake::Reply(200, full(&doc));
    let mut sizes = Vec::new();
    for _ in 0..3 {
        let e = engine(db, &net);
        let m = e.load().await.unwrap();
        assert_eq!(text_of(&m.update), "some stored edits");
        sizes.push(e.stored_bytes().await.unwrap().total);
        e.destroy().await;
    }
    assert_eq!(sizes[0], sizes[1]);
    assert_eq!(sizes[1], sizes[2]);
}

/// The relay's `ETag` for a room holding `doc` (what `ykeep_core::StateTag` makes of its state).
fn relay_tag(doc: &Doc) -> String {
    ykeep::core::StateTag::of(&DurabilityMarker::of_txn(&doc.transact())).etag()
}

fn statuses(m: &ykeep::load::Merged) -> Vec<&'static str> {
    m.report.sources.iter().map(|s| s.status).collect()
}

/// Issue 16, target 6: a repeat open with a warm cache and a live relay sends the cache's state
/// tag to the relay and the store snapshot it holds to the store; both answer 304 and the
/// cache record goes to the page as it was read. A changed source is downloaded and merged, and
/// then held in its turn. With a log (edits since the last compaction) and after compacting.
#[wasm_bindgen_test]
async fn a_repeat_open_with_nothing_changed_downloads_nothing() {
    let db = "t-repeat";
    fresh_db(db).await;
    let net = FakeNet::new();
    let doc = Doc::with_client_id(40);
    type_words(&doc, &["saved ", "text"]);
    *net.store.borrow_mut() = Fake::Tagged("\"s1\"".into(), full(&doc));
    let first = engine(db, &net);
    let m = first.load().await.unwrap();
    assert_eq!(statuses(&m), ["missing", "ok", "missing"]);
    assert_eq!(net.last_condition(STORE), None, "nothing held yet");
    // The page edits (a log entry), then opens again with the relay live on the same state.
    let edit = type_words(&doc, &[" and more"]).remove(0);
    store(&first, edit).unwrap();
    first.destroy().await;
    for round in ["with a log", "compacted"] {
        *net.relay.borrow_mut() = Fake::Tagged(relay_tag(&doc), b"not read".to_vec());
        let e = engine(db, &net);
        let m = e.load().await.unwrap();
        assert_eq!(
            statuses(&m),
            ["unchanged", "unchanged", "ok"],
            "{round}: {:?}",
            m.report
        );
        assert_eq!(text_of(&m.update), "saved text and more", "{round}");
        assert_eq!(net.last_condition(RELAY), Some(relay_tag(&doc)), "{round}");
        assert_eq!(
            net.last_condition(STORE).as_deref(),
            Some("\"s1\""),
            "{round}"
        );
        if round == "compacted" {
            assert!(
                m.cache_as_is,
                "{round}: the record goes over as it was read"
            );
        }
        e.compact().await.unwrap().expect("cache in use");
        e.destroy().await;
    }
    // Someone else edits and the store saves it as s2: downloaded and merged once, then held.
    let other = Doc::with_client_id(41);
    other
        .transact_mut()
        .apply_update(Update::decode_v1(&full(&doc)).unwrap())
        .unwrap();
    other
        .get_or_insert_text("t")
        .remove_range(&mut other.transact_mut(), 0, "saved ".len() as u32);
    *net.store.borrow_mut() = Fake::Tagged("\"s2\"".into(), full(&other));
    let e = engine(db, &net);
    let m = e.load().await.unwrap();
    assert_eq!(
        statuses(&m),
        ["unchanged", "ok", "ok"],
        "the relay still holds what the cache holds: {:?}",
        m.report
    );
    e.destroy().await;
    *net.relay.borrow_mut() = Fake::Tagged(relay_tag(&other), b"not read".to_vec());
    let e = engine(db, &net);
    let m = e.load().await.unwrap();
    assert_eq!(
        statuses(&m),
        ["unchanged", "unchanged", "ok"],
        "{:?}",
        m.report
    );
    assert_eq!(text_of(&m.update), "text and more");
    assert_eq!(net.last_condition(STORE).as_deref(), Some("\"s2\""));
    e.destroy().await;
    // Another store URL never gets this store's snapshot id.
    let mut o = opts(db, "room1");
    o.store_url = Some("http://other-store.test".into());
    let e = Engine::with_fetch(o, net.clone());
    e.load().await.unwrap();
    assert_eq!(net.last_condition("http://other-store.test"), None);
    e.destroy().await;
}

/// A store snapshot that does not decode is not recorded as held: the next open downloads it
/// again rather than trust a 304 for a snapshot the cache never took.
#[wasm_bindgen_test]
async fn a_corrupt_store_snapshot_is_never_held() {
    let db = "t-repeat-corrupt";
    fresh_db(db).await;
    let net = FakeNet::new();
    *net.store.borrow_mut() = Fake::Tagged("\"bad\"".into(), b"\xff\xffjunk".to_vec());
    for _ in 0..2 {
        let e = engine(db, &net);
        let m = e.load().await.unwrap();
        assert_eq!(m.report.sources[1].status, "corrupt");
        assert_eq!(net.last_condition(STORE), None);
        e.destroy().await;
    }
}

/// A record of format version 1 (what the previous release wrote: no state marker, no store
/// snapshot) loads as before: its state is decoded for the state vector and tag. Compacting
/// rewrites it as version 2, with the marker; its version 1 log entries are read as they are.
#[wasm_bindgen_test]
async fn a_version_1_record_is_read_and_rewritten_as_version_2_by_a_compaction() {
    let db = "t-v1-record";
    fresh_db(db).await;
    let doc = Doc::with_client_id(44);
    let words = type_words(&doc, &["old ", "format"]);
    {
        let handle = idb::open(db).await.unwrap();
        let tx = handle
            .transaction(&["rooms", "log"], IdbTransactionMode::Readwrite)
            .unwrap();
        let record = Object::new();
        let state = words[0].clone();
        Reflect::set(&record, &"v".into(), &1.0.into()).unwrap();
        Reflect::set(
            &record,
            &"state".into(),
            &Uint8Array::from(state.as_slice()),
        )
        .unwrap();
        Reflect::set(&record, &"pending".into(), &Uint8Array::new_with_length(0)).unwrap();
        Reflect::set(&record, &"pendingAll".into(), &true.into()).unwrap();
        Reflect::set(&record, &"marker".into(), &Uint8Array::new_with_length(0)).unwrap();
        tx.store("rooms")
            .unwrap()
            .put(&record, &"document/room1".into())
            .await
            .unwrap();
        let entry = Object::new();
        Reflect::set(&entry, &"v".into(), &1.0.into()).unwrap();
        Reflect::set(&entry, &"u".into(), &Uint8Array::from(words[1].as_slice())).unwrap();
        Reflect::set(&entry, &"local".into(), &true.into()).unwrap();
        let key = Array::of3(&"document/room1".into(), &1.0.into(), &2.0.into());
        tx.store("log")
            .unwrap()
            .put(&entry, &key.into())
            .await
            .unwrap();
        tx.done().await.unwrap();
    }
    let net = FakeNet::new();
    *net.relay.borrow_mut() = Fake::Tagged(relay_tag(&doc), b"not read".to_vec());
    let e = engine(db, &net);
    let m = e.load().await.unwrap();
    assert_eq!(text_of(&m.update), "old format");
    assert_eq!(
        statuses(&m),
        ["unchanged", "missing", "ok"],
        "{:?}",
        m.report
    );
    assert_eq!(
        e.outbox().await.unwrap().len(),
        2,
        "both edits still wait for a marker"
    );
    e.compact().await.unwrap().expect("cache in use");
    e.destroy().await;
    let rows = dump(db).await;
    let record = rows.iter().find(|r| r.store == "rooms").unwrap();
    assert_eq!(record.v, Some(2.0));
    assert!(record.value.contains("stateMarker"), "{}", record.value);
    let e = engine(db, &net);
    let m = e.load().await.unwrap();
    assert_eq!(statuses(&m), ["unchanged", "missing", "ok"]);
    assert_eq!(text_of(&m.update), "old format");
    assert_eq!(
        e.outbox().await.unwrap().len(),
        1,
        "folded into one pending update"
    );
    e.destroy().await;
}

#[wasm_bindgen_test]
async fn a_delete_only_edit_stays_in_the_outbox_until_a_marker_covers_it() {
    let db = "t-outbox";
    fresh_db(db).await;
    let net = FakeNet::new();
    let doc = Doc::with_client_id(40);
    let a = engine(db, &net);
    a.load().await.unwrap();
    for u in type_words(&doc, &["abcdef"]) {
        store(&a, u).unwrap();
    }
    let after_insert = DurabilityMarker::of_txn(&doc.transact());
    let durable = |relay: &DurabilityMarker| {
        format!(
            r#"{{"relay":"{}","store":null,"storeSnapshotId":null,"savedAt":null}}"#,
            relay.to_base64()
        )
        .into_bytes()
    };
    *net.durable.borrow_mut() = Fake::Reply(200, durable(&after_insert));
    let view = a.durability(&full(&doc)).await.unwrap();
    assert_eq!(
        (view.relay, view.pending_updates),
        (Some(true), 0),
        "{view:?}"
    );

    let delete = {
        let t = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        t.remove_range(&mut txn, 1, 3);
        txn.encode_update_v1()
    };
    store(&a, delete.clone()).unwrap();
    assert_eq!(a.outbox().await.unwrap(), vec![delete.clone()]);
    // Same state vector, but the relay's snapshot lacks the deletion: not covered.
    let view = a.durability(&full(&doc)).await.unwrap();
    assert_eq!(
        (view.relay, view.pending_updates),
        (Some(false), 1),
        "{view:?}"
    );
    // Survives a compaction (folded into the pending record).
    a.compact().await.unwrap();
    assert_eq!(a.outbox().await.unwrap().len(), 1);
    let after_delete = DurabilityMarker::of_txn(&doc.transact());
    *net.durable.borrow_mut() = Fake::Reply(200, durable(&after_delete));
    let view = a.durability(&full(&doc)).await.unwrap();
    assert_eq!(
        (view.relay, view.pending_updates),
        (Some(true), 0),
        "{view:?}"
    );
    assert!(a.outbox().await.unwrap().is_empty());
    a.destroy().await;
}

/// A `/durable` answer that is not JSON, or not the wire struct, is reported in the view (the
/// body is parsed by the browser's `JSON.parse`), not thrown.
#[wasm_bindgen_test]
async fn a_bad_durable_body_is_reported_in_the_view() {
    let db = "t-bad-durable";
    fresh_db(db).await;
    let net = FakeNet::new();
    let doc = Doc::with_client_id(41);
    let a = engine(db, &net);
    a.load().await.unwrap();
    let marker = DurabilityMarker::default().to_base64();
    let bodies = [
        ("{".to_string(), "relay: bad /durable JSON"),
        (
            r#"{"relay":null,"store":null,"storeSnapshotId":null,"savedAt":null}"#.to_string(),
            "relay: bad /durable JSON",
        ),
        (
            format!(r#"{{"relay":"{marker}","savedAt":1.5}}"#),
            "relay: bad /durable JSON",
        ),
        (
            r#"{"relay":"%%"}"#.to_string(),
            "durability marker is not base64url",
        ),
    ];
    for (body, why) in bodies {
        *net.durable.borrow_mut() = Fake::Reply(200, body.clone().into_bytes());
        let view = a.durability(&full(&doc)).await.unwrap();
        let error = view.error.clone().unwrap_or_default();
        assert!(error.starts_with(why), "{body}: {view:?}");
        assert_eq!(view.relay, None, "{view:?}");
    }
    *net.durable.borrow_mut() = Fake::Reply(200, durable_body(&DurabilityMarker::default()));
    let view = a.durability(&full(&doc)).await.unwrap();
    assert_eq!(view.error, None, "{view:?}");
    a.destroy().await;
}

/// One stored value as IndexedDB holds it, for before/after comparisons.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    store: &'static str,
    room: String,
    key: String,
    value: String,
    /// The value's `v`.
    v: Option<f64>,
}

/// Every value in both object stores, read straight through IndexedDB.
async fn dump(db: &str) -> Vec<Row> {
    let handle = idb::open(db).await.unwrap();
    let tx = handle
        .transaction(&["rooms", "log"], IdbTransactionMode::Readonly)
        .unwrap();
    let mut rows = Vec::new();
    for name in ["rooms", "log"] {
        let store = tx.store(name).unwrap();
        let keys = store.get_all_keys(None).await.unwrap();
        let values = store.get_all(None).await.unwrap();
        assert_eq!(keys.len(), values.len());
        for (key, value) in keys.into_iter().zip(values) {
            let room = match key.as_string() {
                Some(room) => room,
                None => Array::from(&key).get(0).as_string().unwrap(),
            };
            rows.push(Row {
                store: name,
                room,
                key: JSON::stringify(&key).unwrap().into(),
                value: JSON::stringify(&value).unwrap().into(),
                v: Reflect::get(&value, &"v".into()).unwrap().as_f64(),
            });
        }
    }
    drop(tx);
    drop(handle);
    rows
}

fn of_room<'a>(rows: &'a [Row], room: &str) -> Vec<&'a Row> {
    rows.iter().filter(|r| r.room == room).collect()
}

/// Values this code does not read: room records other than versions 1 and 2, log entries other
/// than version 1.
fn foreign(rows: &[Row]) -> Vec<&Row> {
    rows.iter()
        .filter(|r| match r.store {
            "rooms" => r.v != Some(1.0) && r.v != Some(2.0),
            _ => r.v != Some(1.0),
        })
        .collect()
}

/// What another version of this module might have stored for `room`: a room record or a log
/// entry with format version `v`, holding real content under its own field names.
#[derive(Clone, Copy)]
enum Raw {
    Record(f64),
    Entry(f64),
}

async fn write_raw(db: &str, room: &str, raws: &[Raw], client: u64) {
    let handle = idb::open(db).await.unwrap();
    let tx = handle
        .transaction(&["rooms", "log"], IdbTransactionMode::Readwrite)
        .unwrap();
    for (i, raw) in raws.iter().enumerate() {
        let content = type_words(&Doc::with_client_id(client + i as u64), &["other version"]);
        let o = Object::new();
        let (store, key, v) = match *raw {
            Raw::Record(v) => ("rooms", JsValue::from_str(room), v),
            Raw::Entry(v) => {
                let key = Array::of3(
                    &room.into(),
                    &js_sys::Date::now().into(),
                    &JsValue::from_f64(i as f64),
                );
                ("log", key.into(), v)
            }
        };
        Reflect::set(&o, &"v".into(), &v.into()).unwrap();
        Reflect::set(&o, &"blob".into(), &Uint8Array::from(content[0].as_slice())).unwrap();
        Reflect::set(&o, &"u".into(), &Uint8Array::from(content[0].as_slice())).unwrap();
        Reflect::set(&o, &"local".into(), &true.into()).unwrap();
        tx.store(store).unwrap().put(&o, &key).await.unwrap();
    }
    tx.done().await.unwrap();
    drop(handle);
}

fn warnings_of(e: &Engine) -> Rc<RefCell<Vec<String>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    e.set_listener(Box::new(move |event| {
        if let Event::Warning(m) = event {
            sink.borrow_mut().push(m);
        }
    }));
    seen
}

fn says_foreign(message: &str, version: &str) -> bool {
    message.contains(&format!("of format version {version},"))
        && message.contains("document/room1")
        && message.contains("this tab will not write to the cache for this room")
}

fn durable_body(marker: &DurabilityMarker) -> Vec<u8> {
    format!(
        r#"{{"relay":"{}","store":null,"storeSnapshotId":null,"savedAt":null}}"#,
        marker.to_base64()
    )
    .into_bytes()
}

#[wasm_bindgen_test]
async fn records_of_our_format_version_round_trip_through_compaction() {
    let db = "t-version";
    fresh_db(db).await;
    let net = FakeNet::new();
    let a = engine(db, &net);
    a.load().await.unwrap();
    store(&a, type_words(&Doc::with_client_id(50), &["v1"]).remove(0)).unwrap();
    a.compact().await.unwrap().expect("cache in use");
    a.destroy().await;
    let rows = dump(db).await;
    assert!(rows.iter().any(|r| r.store == "rooms"));
    for r in &rows {
        let want = if r.store == "rooms" { 2.0 } else { 1.0 };
        assert_eq!(r.v, Some(want), "{r:?}");
    }
    let b = engine(db, &net);
    assert_eq!(text_of(&b.load().await.unwrap().update), "v1");
    assert!(b.cache_disabled_reason().is_none());
    b.destroy().await;
}

/// An older and a newer format next to this tab's own records: the tab that opens the room
/// reports its cache unavailable, naming the version it found, and then writes, compacts and
/// deletes nothing of that room; another room in the same database works as before.
#[wasm_bindgen_test]
async fn a_tab_that_loads_a_room_with_another_format_version_writes_nothing_there() {
    let cases: [(&str, &[Raw], &str); 4] = [
        ("older", &[Raw::Entry(0.0)], "0"),
        ("newer", &[Raw::Record(3.0), Raw::Entry(2.0)], "3"),
        ("newer-entry", &[Raw::Entry(2.0)], "2"),
        (
            "both",
            &[Raw::Entry(0.0), Raw::Record(3.0), Raw::Entry(2.0)],
            "3",
        ),
    ];
    for (case, raws, version) in cases {
        let db = format!("t-foreign-load-{case}");
        fresh_db(&db).await;
        let net = FakeNet::new();
        let doc = Doc::with_client_id(60);
        let own = engine(&db, &net);
        own.load().await.unwrap();
        store(&own, type_words(&doc, &["own "]).remove(0)).unwrap();
        own.compact().await.unwrap().expect("cache in use");
        store(&own, type_words(&doc, &["edits"]).remove(0)).unwrap();
        own.destroy().await;
        let other_room = Engine::with_fetch(opts(&db, "other"), net.clone());
        other_room.load().await.unwrap();
        store(
            &other_room,
            type_words(&Doc::with_client_id(61), &["other room"]).remove(0),
        )
        .unwrap();
        other_room.destroy().await;
        write_raw(&db, "document/room1", raws, 70).await;
        let before = dump(&db).await;
        assert_eq!(foreign(&before).len(), raws.len(), "{case}");

        let b = engine(&db, &net);
        let warnings = warnings_of(&b);
        let m = b.load().await.unwrap();
        let cache = &m.report.sources[2];
        assert_eq!(cache.status, "error", "{case}: {:?}", m.report);
        let error = cache.error.clone().unwrap_or_default();
        assert!(says_foreign(&error, version), "{case}: {error}");
        assert_eq!(b.cache_disabled_reason().as_deref(), Some(error.as_str()));
        assert_eq!(*warnings.borrow(), [error.clone()], "{case}: warned once");
        // Every write path of the tab: edits, flush, compaction, a durability marker, clearData.
        for u in type_words(&Doc::with_client_id(62), &["new ", "edits"]) {
            store(&b, u).unwrap();
        }
        b.flush().await;
        assert!(b.compact().await.unwrap().is_none(), "{case}");
        let marker = DurabilityMarker::of_txn(&Doc::with_client_id(62).transact());
        *net.durable.borrow_mut() = Fake::Reply(200, durable_body(&marker));
        let view = b.durability(&full(&doc)).await.unwrap();
        assert!(!view.local, "{case}: {view:?}");
        assert_eq!(b.settle(&marker).await.unwrap(), 0);
        let refused = b.clear_data().await.unwrap_err().to_string();
        assert!(says_foreign(&refused, version), "{case}: {refused}");
        assert_eq!(
            warnings.borrow().len(),
            1,
            "{case}: {:?}",
            warnings.borrow()
        );
        b.destroy().await;
        assert_eq!(
            dump(&db).await,
            before,
            "{case}: nothing written or deleted"
        );

        // The same database's other room still has a working cache.
        let o = Engine::with_fetch(opts(&db, "other"), net.clone());
        let m = o.load().await.unwrap();
        assert_eq!(text_of(&m.update), "other room", "{case}");
        assert!(o.cache_disabled_reason().is_none(), "{case}");
        assert!(o.compact().await.unwrap().is_some(), "{case}");
        o.destroy().await;
        let after = dump(&db).await;
        assert_eq!(
            of_room(&after, "document/room1"),
            of_room(&before, "document/room1"),
            "{case}"
        );
    }
}

/// A tab that loaded before another version wrote to its room meets those records on its next
/// compaction (asked for or by bytes), durability check, marker, outbox or size read, or
/// clearData: each leaves them as they are, turns the room's cache off and says so once.
#[wasm_bindgen_test]
async fn a_running_tab_leaves_records_of_another_format_version_alone() {
    let raws = [Raw::Record(3.0), Raw::Entry(0.0), Raw::Entry(2.0)];
    for op in [
        "compact",
        "compact-by-bytes",
        "durability",
        "settle",
        "outbox",
        "stored-bytes",
        "clear",
    ] {
        let db = format!("t-foreign-running-{op}");
        fresh_db(&db).await;
        let net = FakeNet::new();
        let mut o = opts(&db, "room1");
        o.compaction_floor_bytes = 1;
        let a = Engine::with_fetch(o, net.clone());
        let warnings = warnings_of(&a);
        a.load().await.unwrap();
        let doc = Doc::with_client_id(80);
        for u in type_words(&doc, &["written ", "before"]) {
            store(&a, u).unwrap();
            a.flush().await;
        }
        assert!(a.cache_disabled_reason().is_none(), "{op}");
        // A tab of another version compacts over this room's record and appends entries.
        write_raw(&db, "document/room1", &raws, 90).await;
        let before = dump(&db).await;
        assert_eq!(foreign(&before).len(), raws.len(), "{op}");

        let marker = DurabilityMarker::of_txn(&doc.transact());
        match op {
            "compact" => assert!(a.compact().await.unwrap().is_none()),
            "compact-by-bytes" => {
                let long = "x".repeat(4_000);
                store(&a, type_words(&doc, &[&long]).remove(0)).unwrap();
                a.flush().await;
            }
            "durability" => {
                *net.durable.borrow_mut() = Fake::Reply(200, durable_body(&marker));
                let view = a.durability(&full(&doc)).await.unwrap();
                assert!(!view.local, "{view:?}");
            }
            "settle" => assert_eq!(a.settle(&marker).await.unwrap(), 0),
            "outbox" => assert!(a.outbox().await.unwrap().is_empty()),
            "stored-bytes" => assert_eq!(a.stored_bytes().await.unwrap().total, 0),
            _ => {
                let e = a.clear_data().await.unwrap_err().to_string();
                assert!(says_foreign(&e, "3"), "{e}");
            }
        }
        let reason = a.cache_disabled_reason().unwrap_or_default();
        assert!(says_foreign(&reason, "3"), "{op}: {reason}");
        assert_eq!(*warnings.borrow(), [reason.clone()], "{op}");
        let after_op = dump(&db).await;
        if op == "compact-by-bytes" {
            // The writer appended its entry, then the compaction met the other versions.
            assert_eq!(after_op.len(), before.len() + 1, "{op}");
        } else {
            assert_eq!(after_op, before, "{op}: nothing written or deleted");
        }
        assert_eq!(foreign(&after_op), foreign(&before), "{op}");

        // From now on the tab writes nothing to this room.
        for u in type_words(&doc, &[" and after"]) {
            store(&a, u).unwrap();
        }
        a.flush().await;
        assert!(a.compact().await.unwrap().is_none(), "{op}");
        assert!(a.clear_data().await.is_err(), "{op}");
        assert_eq!(dump(&db).await, after_op, "{op}");
        assert_eq!(warnings.borrow().len(), 1, "{op}: {:?}", warnings.borrow());
        a.destroy().await;
    }
}

/// clearData deletes its own room's record and log, and nothing of a room whose name it is a
/// prefix of (or any other room).
#[wasm_bindgen_test]
async fn clear_data_deletes_only_its_own_room() {
    let db = "t-clear-rooms";
    fresh_db(db).await;
    let net = FakeNet::new();
    let ids = ["a", "ab", "a-", "b"];
    for (i, id) in ids.into_iter().enumerate() {
        let e = Engine::with_fetch(opts(db, id), net.clone());
        e.load().await.unwrap();
        let doc = Doc::with_client_id(100 + i as u64);
        store(
            &e,
            type_words(&doc, &[&format!("{id} compacted ")]).remove(0),
        )
        .unwrap();
        e.compact().await.unwrap().expect("cache in use");
        for u in type_words(&doc, &["and ", "logged"]) {
            store(&e, u).unwrap();
            e.flush().await;
        }
        e.destroy().await;
    }
    let before = dump(db).await;
    for id in ids {
        let rows = of_room(&before, &format!("document/{id}"));
        assert!(rows.iter().any(|r| r.store == "rooms"), "{id}: {rows:?}");
        assert!(
            rows.iter().filter(|r| r.store == "log").count() >= 2,
            "{id}"
        );
    }

    let a = Engine::with_fetch(opts(db, "a"), net.clone());
    a.load().await.unwrap();
    a.clear_data().await.unwrap();
    a.destroy().await;
    let after = dump(db).await;
    assert!(of_room(&after, "document/a").is_empty(), "{after:?}");
    let others = |rows: &[Row]| -> Vec<Row> {
        rows.iter()
            .filter(|r| r.room != "document/a")
            .cloned()
            .collect()
    };
    assert_eq!(others(&after), others(&before));
    for id in ["ab", "a-", "b"] {
        let e = Engine::with_fetch(opts(db, id), net.clone());
        let text = text_of(&e.load().await.unwrap().update);
        assert_eq!(text, format!("{id} compacted and logged"));
        e.destroy().await;
    }
    let e = Engine::with_fetch(opts(db, "a"), net.clone());
    assert!(e.load().await.unwrap().update.is_empty());
    e.destroy().await;
}

/// A log entry that does not merge fails the compaction before anything is written: the
/// record and every entry stay as they were.
#[wasm_bindgen_test]
async fn a_compaction_that_fails_leaves_the_cache_as_it_was() {
    let db = "t-compact-fails";
    fresh_db(db).await;
    let net = FakeNet::new();
    let a = engine(db, &net);
    a.load().await.unwrap();
    let doc = Doc::with_client_id(110);
    store(&a, type_words(&doc, &["compacted "]).remove(0)).unwrap();
    a.compact().await.unwrap().expect("cache in use");
    for u in type_words(&doc, &["and ", "logged"]) {
        store(&a, u).unwrap();
        a.flush().await;
    }
    let handle = idb::open(db).await.unwrap();
    idb::append(
        &handle,
        "document/room1",
        &[LogEntry {
            update: b"\xff\xff\xff\xff\x7fnot a yjs update".to_vec(),
            local: true,
        }],
    )
    .await
    .unwrap();
    drop(handle);
    let before = dump(db).await;
    assert!(a.compact().await.is_err());
    assert_eq!(dump(db).await, before);
    a.destroy().await;
}
