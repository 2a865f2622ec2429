//! The client engine in headless Chromium on real IndexedDB (wasm-bindgen-test).
//! HTTP sources are in-test fakes behind the engine's `Fetch` trait: up, down, slow, corrupt.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::AbortSignal;
use ykeep::cache::LogEntry;
use ykeep::core::DurabilityMarker;
use ykeep::engine::Engine;
use ykeep::http::{Fetch, LocalFuture, Reply};
use ykeep::idb;
use ykeep::options::{Options, RawOptions};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

wasm_bindgen_test_configure!(run_in_browser);

const RELAY: &str = "http://relay.test";
const STORE: &str = "http://store.test";

#[derive(Clone)]
enum Fake {
    Reply(u16, Vec<u8>),
    Down,
    Hang,
}

/// Routes: relay `/state`, relay `/durable`, store `/snapshots`. Records the URLs asked.
struct FakeNet {
    relay: RefCell<Fake>,
    durable: RefCell<Fake>,
    store: RefCell<Fake>,
    asked: RefCell<Vec<String>>,
}

impl FakeNet {
    fn new() -> Rc<FakeNet> {
        Rc::new(FakeNet {
            relay: RefCell::new(Fake::Reply(404, b"{}".to_vec())),
            durable: RefCell::new(Fake::Reply(404, b"{}".to_vec())),
            store: RefCell::new(Fake::Reply(404, b"{}".to_vec())),
            asked: RefCell::new(Vec::new()),
        })
    }
}

impl Fetch for FakeNet {
    fn get(
        &self,
        url: String,
        _token: Option<String>,
        _signal: AbortSignal,
    ) -> LocalFuture<Result<Reply, String>> {
        self.asked.borrow_mut().push(url.clone());
        let fake = if url.ends_with("/durable") {
            self.durable.borrow().clone()
        } else if url.starts_with(RELAY) {
            self.relay.borrow().clone()
        } else {
            self.store.borrow().clone()
        };
        Box::pin(async move {
            match fake {
                Fake::Reply(status, body) => Ok(Reply { status, body }),
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
        a.store_update(u).unwrap();
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
        a.store_update(u).unwrap();
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
        a.store_update(u).unwrap();
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
        a.store_update(u).unwrap();
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
        a.store_update(type_words(&doc, &[&format!("{i:04}")]).remove(0))
            .unwrap();
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
    seed.store_update(full(&cache_doc)).unwrap();
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
        seed.store_update(full(&cache_doc)).unwrap();
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
                handle.close();
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
        a.store_update(u).unwrap();
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

#[wasm_bindgen_test]
async fn a_delete_only_edit_stays_in_the_outbox_until_a_marker_covers_it() {
    let db = "t-outbox";
    fresh_db(db).await;
    let net = FakeNet::new();
    let doc = Doc::with_client_id(40);
    let a = engine(db, &net);
    a.load().await.unwrap();
    for u in type_words(&doc, &["abcdef"]) {
        a.store_update(u).unwrap();
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
    a.store_update(delete.clone()).unwrap();
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

#[wasm_bindgen_test]
async fn records_of_another_format_version_are_not_misread() {
    let db = "t-version";
    fresh_db(db).await;
    let net = FakeNet::new();
    let a = engine(db, &net);
    a.load().await.unwrap();
    a.store_update(type_words(&Doc::with_client_id(50), &["v1"]).remove(0))
        .unwrap();
    a.compact().await.unwrap();
    a.destroy().await;
    let b = engine(db, &net);
    assert_eq!(text_of(&b.load().await.unwrap().update), "v1");
    b.destroy().await;
}
