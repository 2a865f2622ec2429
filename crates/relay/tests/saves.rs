//! The save policy end to end (in-process relay, real sockets, in-memory store).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ykeep_core::RoomName;
use ykeep_relay::store_client::MemoryStore;

fn room(s: &str) -> RoomName {
    RoomName::parse(s).unwrap()
}

/// Waits well past `ms` so that an event that should NOT happen would have happened.
async fn quiet_for(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test]
async fn last_client_leaves_exactly_one_save_after_debounce_then_unload() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let relay = TestRelay::start(config(dir.path()), store.clone()).await;
    let url = relay.ws_url("/rooms/document/leave");
    let mut a = Client::connect(&url, 1).await;
    let mut b = Client::connect(&url, 2).await;
    a.insert(0, "bye").await;
    b.wait_text("bye").await;
    a.close().await;
    b.close().await;
    relay.wait_metric("saves_ok_total", 1).await;
    wait_for("unload", || relay.metric("rooms") == 0).await;
    quiet_for(900).await;
    assert_eq!(store.saves(), 1, "exactly one save");
    assert_eq!(
        text_of_update(&store.snapshot(&room("document/leave")).unwrap().bytes),
        "bye"
    );
    let http = reqwest::Client::new();
    let state = http
        .get(relay.http_url("/rooms/document/leave/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), 404, "unloaded rooms are not live");
}

#[tokio::test]
async fn reconnect_inside_the_window_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut cfg = config(dir.path());
    cfg.save_debounce_ms = 1_500;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/document/refresh");
    let mut a = Client::connect(&url, 1).await;
    a.insert(0, "x").await;
    relay.wait_metric("updates_total", 1).await;
    a.close().await;
    let mut again = Client::connect(&url, 1).await;
    again.wait_text("x").await;
    quiet_for(2_500).await;
    assert_eq!(
        store.saves(),
        0,
        "a reconnect inside the debounce window cancels the save"
    );
    assert_eq!(relay.metric("rooms"), 1);
}

#[tokio::test]
async fn periodic_saves_only_when_changed_and_delete_only_edits_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut cfg = config(dir.path());
    cfg.save_interval_ms = 200;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/task/periodic");
    let mut a = Client::connect(&url, 1).await;
    a.wait_synced().await;
    quiet_for(600).await;
    assert_eq!(store.saves(), 0, "unchanged room: no periodic save");
    a.insert(0, "hello").await;
    relay.wait_metric("saves_ok_total", 1).await;
    quiet_for(700).await;
    assert_eq!(store.saves(), 1, "no save while nothing changed");
    a.delete(0, 2).await;
    relay.wait_metric("saves_ok_total", 2).await;
    assert_eq!(
        text_of_update(&store.snapshot(&room("task/periodic")).unwrap().bytes),
        "llo"
    );
}

#[tokio::test]
async fn an_edit_during_an_in_flight_save_is_saved_by_the_next_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(GatedStore::new());
    let mut cfg = config(dir.path());
    cfg.save_interval_ms = 100;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/document/inflight");
    let mut a = Client::connect(&url, 1).await;
    a.insert(0, "a").await;
    wait_for("the first save to start", || store.started() == 1).await;
    a.insert(1, "b").await;
    relay.wait_metric("updates_total", 2).await;
    store.gate.add_permits(1);
    relay.wait_metric("saves_ok_total", 1).await;
    let first = store.inner.snapshot(&room("document/inflight")).unwrap();
    assert_eq!(
        text_of_update(&first.bytes),
        "a",
        "the save captured its state when it started"
    );
    store.gate.add_permits(1);
    relay.wait_metric("saves_ok_total", 2).await;
    let second = store.inner.snapshot(&room("document/inflight")).unwrap();
    assert_eq!(text_of_update(&second.bytes), "ab");
}

#[tokio::test]
async fn store_down_loses_nothing_and_the_next_trigger_saves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    store.set_down(true);
    let mut cfg = config(dir.path());
    cfg.save_interval_ms = 150;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/diagram/outage");
    let mut a = Client::connect(&url, 1).await;
    a.insert(0, "kept").await;
    relay.wait_metric("saves_failed_total", 1).await;
    assert_eq!(store.saves(), 0);
    // The data waits in the log: a second client still gets it.
    let mut b = Client::connect(&url, 2).await;
    b.wait_text("kept").await;
    store.set_down(false);
    relay.wait_metric("saves_ok_total", 1).await;
    assert_eq!(
        text_of_update(&store.snapshot(&room("diagram/outage")).unwrap().bytes),
        "kept"
    );
}

#[tokio::test]
async fn failed_final_save_unloads_and_restart_recovery_saves_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    store.set_down(true);
    {
        let relay = TestRelay::start(config(dir.path()), store.clone()).await;
        let mut a = Client::connect(&relay.ws_url("/rooms/document/later"), 1).await;
        a.insert(0, "offline edit").await;
        relay.wait_metric("updates_total", 1).await;
        a.close().await;
        relay.wait_metric("saves_failed_total", 1).await;
        wait_for("unload after the failed save", || {
            relay.metric("rooms") == 0
        })
        .await;
        relay.stop().await;
    }
    store.set_down(false);
    let relay = TestRelay::start(config(dir.path()), store.clone()).await;
    assert_eq!(relay.relay.recover().await.unwrap(), 1);
    relay.wait_metric("saves_ok_total", 1).await;
    wait_for("unload after recovery", || relay.metric("rooms") == 0).await;
    let saved = store.snapshot(&room("document/later")).unwrap();
    assert_eq!(text_of_update(&saved.bytes), "offline edit");
    assert_eq!(
        relay.relay.recover().await.unwrap(),
        0,
        "clean after the save"
    );
}

#[tokio::test]
async fn cold_start_merges_the_local_log_and_the_store_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    store.set_down(true);
    let name = room("document/both");
    {
        let relay = TestRelay::start(config(dir.path()), store.clone()).await;
        let mut a = Client::connect(&relay.ws_url("/rooms/document/both"), 1).await;
        a.insert(0, "LOG").await;
        relay.wait_metric("updates_total", 1).await;
        a.close().await;
        wait_for("unload", || relay.metric("rooms") == 0).await;
    }
    // Meanwhile another relay saved edits this log lacks.
    store.set_down(false);
    store.put(&name, update_with_text(77, "STORE"));
    let relay = TestRelay::start(config(dir.path()), store.clone()).await;
    let mut c = Client::connect(&relay.ws_url("/rooms/document/both"), 3).await;
    c.wait_synced().await;
    let text = c.text();
    assert!(text.contains("LOG") && text.contains("STORE"), "{text}");
    c.close().await;
    relay.wait_metric("saves_ok_total", 1).await;
    let saved = text_of_update(&store.snapshot(&name).unwrap().bytes);
    assert_eq!(saved, text);
}

#[tokio::test]
async fn store_down_at_cold_start_then_save_merges_the_store_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let name = room("document/late-store");
    store.put(&name, update_with_text(55, "SAVED"));
    store.set_down(true);
    let relay = TestRelay::start(config(dir.path()), store.clone()).await;
    let mut a = Client::connect(&relay.ws_url("/rooms/document/late-store"), 1).await;
    a.wait_synced().await;
    a.insert(0, "new ").await;
    relay.wait_metric("updates_total", 1).await;
    store.set_down(false);
    a.close().await;
    relay.wait_metric("saves_ok_total", 1).await;
    // MemoryStore itself asserts that no save drops what it holds.
    let saved = text_of_update(&store.snapshot(&name).unwrap().bytes);
    assert!(saved.contains("SAVED") && saved.contains("new "), "{saved}");
}

#[tokio::test]
async fn a_conflicting_save_merges_and_retries_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut cfg = config(dir.path());
    cfg.save_interval_ms = 100;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let name = room("task/race");
    let mut a = Client::connect(&relay.ws_url("/rooms/task/race"), 1).await;
    a.wait_synced().await;
    // Another relay saves after this room loaded: this relay's If-None-Match fails.
    store.put(&name, update_with_text(66, "OTHER"));
    a.insert(0, "mine").await;
    relay.wait_metric("saves_ok_total", 1).await;
    let saved = text_of_update(&store.snapshot(&name).unwrap().bytes);
    assert!(saved.contains("OTHER") && saved.contains("mine"), "{saved}");
    assert_eq!(relay.metric("save_conflicts_total"), 1);
    // The merged store content reached the connected client too.
    let expected = saved.clone();
    a.wait_text(&expected).await;
}

#[tokio::test]
async fn oversized_snapshots_are_counted_and_kept_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut cfg = config(dir.path());
    cfg.max_snapshot_bytes = 64;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let mut a = Client::connect(&relay.ws_url("/rooms/document/huge"), 1).await;
    a.insert(0, &"z".repeat(500)).await;
    relay.wait_metric("updates_total", 1).await;
    a.close().await;
    relay.wait_metric("saves_too_large_total", 1).await;
    assert_eq!(store.saves(), 0);
    wait_for("unload", || relay.metric("rooms") == 0).await;
    let mut b = Client::connect(&relay.ws_url("/rooms/document/huge"), 2).await;
    b.wait_text(&"z".repeat(500)).await;
}

/// The store's snapshot for `room` with `more` appended by another client (what a second relay
/// holding the same room would save).
fn saved_elsewhere(store: &MemoryStore, room: &RoomName, client: u64, more: &str) -> Vec<u8> {
    use yrs::updates::decoder::Decode;
    use yrs::{GetString, ReadTxn, Text, Transact, Update};
    let doc = yrs::Doc::with_client_id(client);
    let current = store.snapshot(room).unwrap().bytes;
    doc.transact_mut()
        .apply_update(Update::decode_v1(&current).unwrap())
        .unwrap();
    let t = doc.get_or_insert_text("t");
    let end = t.get_string(&doc.transact()).len() as u32;
    t.insert(&mut doc.transact_mut(), end, more);
    doc.transact()
        .encode_state_as_update_v1(&yrs::StateVector::default())
}

#[tokio::test]
async fn a_room_with_clients_pulls_saves_made_by_another_relay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let name = room("document/polled");
    store.put(&name, update_with_text(9, "base"));
    let mut cfg = config(dir.path());
    cfg.store_poll_ms = 200;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/document/polled");
    let mut a = Client::connect(&url, 1).await;
    a.wait_text("base").await;
    // Another relay holding the same room saves an edit this relay never saw.
    store.put(&name, saved_elsewhere(&store, &name, 10, " and more"));
    a.wait_text("base and more").await;
    // It came from the store: nothing to save back.
    quiet_for(600).await;
    assert_eq!(store.saves(), 0);
}

#[tokio::test]
async fn with_polling_off_a_quiet_room_does_not_see_other_relays_saves() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let name = room("document/unpolled");
    store.put(&name, update_with_text(9, "base"));
    let mut cfg = config(dir.path());
    cfg.store_poll_ms = 0;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let mut a = Client::connect(&relay.ws_url("/rooms/document/unpolled"), 1).await;
    a.wait_text("base").await;
    store.put(&name, saved_elsewhere(&store, &name, 10, " and more"));
    let pumped = tokio::time::timeout(Duration::from_millis(1_000), async {
        while a.pump().await {}
    })
    .await;
    assert!(pumped.is_err(), "the socket stayed open");
    assert_eq!(
        a.text(),
        "base",
        "no poll, no pull (the next conflicting save would merge it)"
    );
}
