//! Idle rooms sleep (`--room-sleep-ms`): the doc of a saved room is dropped and rebuilt from
//! the local log on its next event. Nothing may be lost, and only a saved room with nothing in
//! flight may sleep.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ykeep_core::RoomName;
use ykeep_relay::store_client::MemoryStore;
use yrs::{GetString, ReadTxn, Transact, WriteTxn};

/// A room sleeps 150 ms after its last client message once saved; saves 100 ms after an edit.
fn sleepy(dir: &std::path::Path) -> ykeep_relay::Config {
    let mut c = config(dir);
    c.room_sleep_ms = 150;
    c.save_interval_ms = 100;
    c
}

/// The text `t` the relay's log holds for `room`.
async fn log_text(relay: &TestRelay, room: &str) -> String {
    let records = relay.relay.shared().log.load(room).await.unwrap();
    let doc = yrs::Doc::new();
    let name = RoomName::parse(room).unwrap();
    let unreadable = ykeep_room::apply_records(&doc, &records.records, &name);
    assert!(unreadable.is_empty());
    let t = doc.get_or_insert_text("t");
    t.get_string(&doc.transact())
}

/// Waits well past `ms` so that an event that should NOT happen would have happened.
async fn quiet_for(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test]
async fn a_sleeping_room_wakes_on_an_edit_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let relay = TestRelay::start(sleepy(dir.path()), store.clone()).await;
    let url = relay.ws_url("/rooms/document/sleepy");
    let mut a = Client::connect(&url, 1).await;
    let mut b = Client::connect(&url, 2).await;
    a.wait_synced().await;
    b.wait_synced().await;
    a.insert(0, "hello").await;
    b.wait_text("hello").await;
    relay.wait_metric("saves_ok_total", 1).await;
    relay.wait_metric("rooms_asleep", 1).await;
    assert_eq!(relay.metric("room_wakes_total"), 0);

    // An edit wakes it: the other client gets it, the log and then the store hold it.
    a.insert(5, " world").await;
    b.wait_text("hello world").await;
    assert_eq!(relay.metric("room_wakes_total"), 1);
    assert_eq!(log_text(&relay, "document/sleepy").await, "hello world");
    relay.wait_metric("saves_ok_total", 2).await;
    let room = RoomName::parse("document/sleepy").unwrap();
    assert_eq!(
        text_of_update(&store.snapshot(&room).unwrap().bytes),
        "hello world"
    );

    // Asleep again: a joiner gets the whole state from the rebuilt doc, and so does /state.
    wait_for("asleep again", || relay.metric("rooms_asleep") == 1).await;
    let mut c = Client::connect(&url, 3).await;
    c.wait_text("hello world").await;
    assert_eq!(relay.metric("room_wakes_total"), 2);
    wait_for("asleep again", || relay.metric("rooms_asleep") == 1).await;
    let state = reqwest::get(relay.http_url("/rooms/document/sleepy/state"))
        .await
        .unwrap();
    assert_eq!(state.status(), 200);
    assert_eq!(text_of_update(&state.bytes().await.unwrap()), "hello world");
    assert_eq!(relay.metric("room_wakes_total"), 3);

    // The others' edits still flow both ways after every wake.
    c.insert(0, "> ").await;
    a.wait_text("> hello world").await;
    b.wait_text("> hello world").await;
    assert_eq!(log_text(&relay, "document/sleepy").await, "> hello world");
    relay.wait_metric("saves_ok_total", 3).await;
    assert_eq!(
        text_of_update(&store.snapshot(&room).unwrap().bytes),
        "> hello world"
    );
}

#[tokio::test]
async fn a_room_with_unsaved_edits_does_not_sleep() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut cfg = sleepy(dir.path());
    cfg.save_interval_ms = 60_000;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/document/dirty");
    let mut a = Client::connect(&url, 1).await;
    let mut b = Client::connect(&url, 2).await;
    a.insert(0, "unsaved").await;
    b.wait_text("unsaved").await;
    quiet_for(800).await;
    assert_eq!(store.saves(), 0);
    assert_eq!(
        relay.metric("rooms_asleep"),
        0,
        "an unsaved room keeps its doc"
    );
    assert_eq!(relay.metric("room_wakes_total"), 0);
    a.insert(7, "!").await;
    b.wait_text("unsaved!").await;
}

#[tokio::test]
async fn a_room_whose_save_is_in_flight_does_not_sleep() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(GatedStore::new());
    let relay = TestRelay::start(sleepy(dir.path()), store.clone()).await;
    let url = relay.ws_url("/rooms/document/inflight");
    let mut a = Client::connect(&url, 1).await;
    let mut b = Client::connect(&url, 2).await;
    a.insert(0, "saving").await;
    b.wait_text("saving").await;
    wait_for("the save to start", || store.started() == 1).await;
    quiet_for(800).await;
    assert_eq!(
        relay.metric("rooms_asleep"),
        0,
        "a save in flight keeps the doc"
    );
    store.gate.add_permits(1);
    relay.wait_metric("saves_ok_total", 1).await;
    relay.wait_metric("rooms_asleep", 1).await;
    a.insert(6, ", saved").await;
    b.wait_text("saving, saved").await;
}

#[tokio::test]
async fn a_sleeping_room_wakes_for_its_poll_and_hands_on_another_hosts_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut cfg = sleepy(dir.path());
    cfg.store_poll_ms = 400;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/document/polled");
    let mut a = Client::connect(&url, 1).await;
    a.insert(0, "mine").await;
    relay.wait_metric("saves_ok_total", 1).await;
    relay.wait_metric("rooms_asleep", 1).await;
    // Another relay saves on top of ours: the sleeping room's poll deadline wakes it, it
    // merges the store's snapshot and sends the client what it lacks.
    let room = RoomName::parse("document/polled").unwrap();
    let ours = store.snapshot(&room).unwrap().bytes;
    let theirs = {
        let doc = yrs::Doc::with_client_id(9);
        let mut txn = doc.transact_mut();
        txn.apply_update(yrs::updates::decoder::Decode::decode_v1(&ours).unwrap())
            .unwrap();
        let t = txn.get_or_insert_text("t");
        yrs::Text::insert(&t, &mut txn, 4, " and theirs");
        drop(txn);
        doc.transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    store.put(&room, theirs);
    a.wait_text("mine and theirs").await;
    assert!(relay.metric("room_wakes_total") >= 1);
    assert_eq!(log_text(&relay, "document/polled").await, "mine and theirs");
    // And back to sleep once the merge is saved.
    wait_for("asleep again", || relay.metric("rooms_asleep") == 1).await;
}

#[tokio::test]
async fn a_room_does_not_sleep_when_sleep_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut cfg = sleepy(dir.path());
    cfg.room_sleep_ms = 0;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/document/awake");
    let mut a = Client::connect(&url, 1).await;
    a.insert(0, "x").await;
    relay.wait_metric("saves_ok_total", 1).await;
    quiet_for(600).await;
    assert_eq!(relay.metric("rooms_asleep"), 0);
}
