//! Acknowledgements by tier over real sockets (`ykeep_core::acks`): only a connection that opts
//! in hears them, a mark is Committed once its updates are in the log and Saved once a store
//! save covers them, and a store that is down keeps the mark at Committed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ykeep_core::RoomName;
use ykeep_core::acks::Message::{Committed, Mark, OptIn, Saved, Welcome};
use ykeep_relay::store_client::MemoryStore;

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

#[tokio::test]
async fn an_opted_in_page_hears_committed_then_saved_and_a_stock_client_hears_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut cfg = config(dir.path());
    cfg.save_interval_ms = 300;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let url = relay.ws_url("/rooms/document/acks");
    let mut stock = Client::connect(&url, 1).await;
    let mut page = Client::connect(&url, 2).await;
    stock.wait_synced().await;
    page.wait_synced().await;

    page.send_raw(OptIn.encode()).await;
    page.wait_ack(Welcome).await;
    page.insert(0, "saved").await;
    page.send_raw(Mark(1).encode()).await;
    page.wait_ack(Committed(1)).await;
    page.wait_ack(Saved(1)).await;
    let saved = store.snapshot(&room("document/acks")).expect("a save");
    assert_eq!(text_of_update(&saved.bytes), "saved");
    assert_eq!(page.acks, [Welcome, Committed(1), Saved(1)]);

    // The stock client edits and receives edits like before, and never a ykeep message.
    stock.wait_text("saved").await;
    stock.insert(5, " too").await;
    page.wait_text("saved too").await;
    stock.wait_text("saved too").await;
    page.insert(0, ">").await;
    page.send_raw(Mark(2).encode()).await;
    page.wait_ack(Committed(2)).await;
    stock.wait_text(">saved too").await;
    assert_eq!(
        stock.unknown_frames, 0,
        "a stock client got a message it does not know"
    );

    // The store goes down: the next mark is committed, and no Saved comes.
    store.set_down(true);
    page.insert(0, "!").await;
    page.send_raw(Mark(3).encode()).await;
    page.wait_ack(Committed(3)).await;
    relay.wait_metric("saves_failed_total", 1).await;
    let pumped = tokio::time::timeout(Duration::from_millis(800), async {
        while page.pump().await {}
    })
    .await;
    assert!(pumped.is_err(), "the socket stays open");
    assert!(
        !page.acks.contains(&Saved(3)),
        "no Saved while the store is down"
    );
    store.set_down(false);
    page.wait_ack(Saved(3)).await;
    relay.stop().await;
}

#[tokio::test]
async fn the_query_parameter_opts_in_from_the_first_message_and_bad_messages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let relay = TestRelay::start(config(dir.path()), store).await;
    let mut page = Client::connect(&relay.ws_url("/rooms/document/q?ykeep=acks"), 1).await;
    page.wait_ack(Welcome).await;
    page.insert(0, "x").await;
    page.send_raw(Mark(7).encode()).await;
    page.wait_ack(Committed(7)).await;
    assert_eq!(page.acks[..2], [Welcome, Committed(7)]);

    // A page may not send what only a relay sends; a malformed message closes it with 1008.
    let mut bad = Client::connect(&relay.ws_url("/parties/main/document:q"), 2).await;
    bad.wait_synced().await;
    bad.send_raw(Committed(1).encode()).await;
    let (code, reason) = bad.wait_closed().await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("only a relay sends"), "{reason}");
    let mut truncated = Client::connect(&relay.ws_url("/rooms/document/q"), 3).await;
    truncated
        .send_raw(vec![ykeep_core::acks::MESSAGE_TYPE, 1])
        .await;
    let (code, reason) = truncated.wait_closed().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("malformed ykeep message"), "{reason}");
    relay.stop().await;
}
