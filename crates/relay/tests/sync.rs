//! Real sockets on 127.0.0.1: y-sync convergence, routes, refusals, slow readers.

mod common;

use std::sync::Arc;

use common::*;
use ykeep_core::{DurabilityMarker, ResourceKind, RoomName, b64};
use ykeep_relay::protocol;
use ykeep_relay::store_client::{MemoryStore, Verdict};
use yrs::{Text, Transact};

#[tokio::test]
async fn clients_converge_and_late_joiners_get_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let relay = TestRelay::start(config(dir.path()), store).await;
    let url = relay.ws_url("/rooms/document/conv");
    let mut a = Client::connect(&url, 1).await;
    let mut b = Client::connect(&url, 2).await;
    a.wait_synced().await;
    b.wait_synced().await;
    a.insert(0, "hello").await;
    b.wait_text("hello").await;
    b.insert(5, " world").await;
    a.wait_text("hello world").await;
    let mut c = Client::connect(&url, 3).await;
    c.wait_text("hello world").await;

    // /state: the live room's state, and only the diff against a state vector.
    let http = reqwest::Client::new();
    let state = http
        .get(relay.http_url("/rooms/document/conv/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), 200);
    let full = state.bytes().await.unwrap();
    assert_eq!(text_of_update(&full), "hello world");
    let sv = ykeep_core::state_vector_of(&full).unwrap();
    let url_sv = format!("/rooms/document/conv/state?sv={}", b64::encode(&sv));
    let diff = http
        .get(relay.http_url(&url_sv))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(diff.len() < full.len());

    // If-None-Match with the state's tag: 304 and no body, only while the state is that one.
    let tag = ykeep_core::StateTag::of(&DurabilityMarker::of_update(&full).unwrap());
    let unchanged = http
        .get(relay.http_url(&url_sv))
        .header("If-None-Match", tag.etag())
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], tag.etag().as_str());
    assert!(unchanged.bytes().await.unwrap().is_empty());
    let other = http
        .get(relay.http_url(&url_sv))
        .header("If-None-Match", "\"t1.00000000000000000000000000000000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(other.bytes().await.unwrap(), diff);
    a.delete(0, 1).await;
    c.wait_text("ello world").await;
    let after_delete = http
        .get(relay.http_url(&url_sv))
        .header("If-None-Match", tag.etag())
        .send()
        .await
        .unwrap();
    assert_eq!(after_delete.status(), 200, "a delete changes the tag");
    let missing = http
        .get(relay.http_url("/rooms/document/nobody/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_live");
    let bad = http
        .get(relay.http_url("/rooms/nope/x/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // /durable: the relay marker covers what the clients wrote; the store has nothing yet.
    let durable: serde_json::Value = http
        .get(relay.http_url("/rooms/document/conv/durable"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let marker = DurabilityMarker::from_base64(durable["relay"].as_str().unwrap()).unwrap();
    assert!(marker.covers_update(&full).unwrap());
    assert!(durable["store"].is_null());
    let health = http.get(relay.http_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = http
        .get(relay.http_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("ykeep_updates_total 3"), "{metrics}");
}

#[tokio::test]
async fn all_three_kinds_and_partykit_routes_share_one_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let relay = TestRelay::start(config(dir.path()), store.clone()).await;
    for kind in ResourceKind::ALL {
        let room = RoomName::from_parts(kind.as_str(), "k1").unwrap();
        let mut a = Client::connect(&relay.ws_url(&format!("/rooms/{kind}/k1")), 1).await;
        let mut b = Client::connect(&relay.ws_url(&format!("/parties/{kind}/k1?_pk=x")), 2).await;
        let mut c = Client::connect(&relay.ws_url(&format!("/parties/main/{kind}:k1")), 3).await;
        a.insert(0, kind.as_str()).await;
        b.wait_text(kind.as_str()).await;
        c.wait_text(kind.as_str()).await;
        a.close().await;
        b.close().await;
        c.close().await;
        wait_for("the room's save", || store.snapshot(&room).is_some()).await;
        assert_eq!(
            text_of_update(&store.snapshot(&room).unwrap().bytes),
            kind.as_str()
        );
    }
}

#[tokio::test]
async fn bad_rooms_tokens_and_frames_are_refused_while_others_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    store.set_token(
        "good",
        Verdict::Allowed {
            user_id: Some("u".into()),
        },
    );
    store.set_token(
        "elsewhere",
        Verdict::Denied {
            reason: ykeep_core::contract::reason::WRONG_RESOURCE.into(),
        },
    );
    let mut cfg = config(dir.path());
    cfg.dev_allow_all = false;
    cfg.max_frame_bytes = 64 * 1024;
    let relay = TestRelay::start(cfg, store.clone()).await;
    let good = relay.ws_url("/rooms/document/safe?token=good");
    let mut a = Client::connect(&good, 1).await;
    let mut b = Client::connect(&good, 2).await;
    a.insert(0, "keep").await;
    b.wait_text("keep").await;

    for (path, expect) in [
        ("/rooms/document/safe", "unauthorized"),
        ("/rooms/document/safe?token=bad", "unauthorized"),
        ("/rooms/document/safe?token=elsewhere", "forbidden"),
        ("/rooms/spreadsheet/x?token=good", "bad_kind"),
        ("/rooms/document/a.b?token=good", "bad_id"),
        ("/parties/main/nocolon?token=good", "bad_id"),
    ] {
        let mut c = Client::connect(&relay.ws_url(path), 9).await;
        let (code, reason) = c.wait_closed().await;
        assert_eq!(code, 1008, "{path}: {reason}");
        assert!(reason.starts_with(expect), "{path}: {reason}");
    }
    let http = reqwest::Client::new();
    let no_token = http
        .get(relay.http_url("/rooms/document/safe/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    let other = http
        .get(relay.http_url("/rooms/document/safe/state"))
        .bearer_auth("elsewhere")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    let ok = http
        .get(relay.http_url("/rooms/document/safe/state"))
        .bearer_auth("good")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // The scheme is matched without regard to case (RFC 9110), as the stores do; the body is
    // the wire contract's `DurableBody`.
    let lower = http
        .get(relay.http_url("/rooms/document/safe/durable"))
        .header("authorization", "bearer good")
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);
    let durable: ykeep_core::wire::DurableBody = lower.json().await.unwrap();
    assert!(durable.store.is_none());
    let basic = http
        .get(relay.http_url("/rooms/document/safe/durable"))
        .header("authorization", "Basic good")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);

    // Malformed frames: a truncated sync message, and a Yjs update that is garbage.
    for frame in [
        vec![0u8, 2, 50, 1, 2, 3],
        protocol::encode_update(&[0xff; 12]),
    ] {
        let mut bad = Client::connect(&good, 7).await;
        bad.send_raw(frame).await;
        let (code, _) = bad.wait_closed().await;
        assert_eq!(code, 1008);
    }
    // Oversized message.
    let mut big = Client::connect(&good, 8).await;
    big.send_raw(protocol::encode_update(&vec![0u8; 100 * 1024]))
        .await;
    let (code, reason) = big.wait_closed().await;
    assert_eq!(code, 1009, "{reason}");

    // The room is unchanged and still serves the others.
    b.insert(4, "!").await;
    a.wait_text("keep!").await;
    assert_eq!(relay.metric("malformed_frames_total"), 3);
    let state = http
        .get(relay.http_url("/rooms/document/safe/state"))
        .bearer_auth("good")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(text_of_update(&state), "keep!");
}

#[tokio::test]
async fn a_slow_reader_still_gets_every_update_of_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(config(dir.path()), Arc::new(MemoryStore::new())).await;
    let url = relay.ws_url("/rooms/document/burst");
    let mut writer = Client::connect(&url, 1).await;
    let mut slow = Client::connect(&url, 2).await;
    writer.wait_synced().await;
    slow.wait_synced().await;
    // Encode the burst up front, then send it as fast as the socket takes it while the slow
    // reader does not read at all.
    let mut frames = Vec::with_capacity(50_000);
    {
        let t = writer.doc.get_or_insert_text("t");
        for i in 0..50_000u32 {
            let mut txn = writer.doc.transact_mut();
            t.insert(&mut txn, i, "x");
            frames.push(protocol::encode_update(&txn.encode_update_v1()));
        }
    }
    let expected = writer.text();
    use futures_util::SinkExt;
    for f in frames {
        writer
            .ws
            .feed(tokio_tungstenite::tungstenite::Message::Binary(f.into()))
            .await
            .unwrap();
    }
    writer.ws.flush().await.unwrap();
    relay.wait_metric("updates_total", 50_000).await;
    // Now read: everything must arrive (possibly merged), nothing dropped.
    slow.wait_text(&expected).await;
    assert_eq!(slow.text().len(), 50_000);
}

#[tokio::test]
async fn a_reader_over_its_backlog_limit_is_closed_1013_and_resyncs_on_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_backlog_bytes = 1024 * 1024;
    let relay = TestRelay::start(cfg, Arc::new(MemoryStore::new())).await;
    let url = relay.ws_url("/rooms/document/stuck");
    let mut writer = Client::connect(&url, 1).await;
    let mut stuck = Client::connect(&url, 2).await;
    writer.wait_synced().await;
    stuck.wait_synced().await;
    // 12 MB: more than the kernel's socket buffers can hide, so the relay's queue for the
    // reader that does not read grows past its 1 MB limit.
    let chunk = "y".repeat(60_000);
    for i in 0..200u32 {
        writer.insert(i * 60_000, &chunk).await;
    }
    relay.wait_metric("slow_reader_closes_total", 1).await;
    let (code, reason) = stuck.wait_closed().await;
    assert_eq!(code, 1013, "{reason}");
    // Its provider reconnects and resyncs: nothing was lost. It reconnects once the writer's
    // burst is committed, so what it gets is the SyncStep2 reply (never counted as a backlog)
    // and not the tail of the burst, which this test's single-threaded reader could again fall
    // 1 MB behind on a loaded machine.
    relay.wait_metric("updates_total", 200).await;
    let mut again = Client::connect(&url, 2).await;
    again.wait_synced().await;
    assert_eq!(again.text().len(), 200 * 60_000);
}

/// A SyncStep2 over 64 KiB goes out in WebSocket fragments, shared by every joiner with the same
/// state vector: each joiner (a stock tungstenite client, which reassembles them) gets the whole
/// document, and a joiner after an edit gets the edit too (the shared reply is not stale).
#[tokio::test]
async fn a_large_document_reaches_every_joiner_whole_and_a_later_joiner_sees_the_latest_edit() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(config(dir.path()), Arc::new(MemoryStore::new())).await;
    let url = relay.ws_url("/rooms/document/large");
    let mut writer = Client::connect(&url, 1).await;
    writer.wait_synced().await;
    let text: String = (0..300_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    writer.insert(0, &text).await;
    let mut joiners = Vec::new();
    for id in 10..14 {
        joiners.push(Client::connect(&url, id).await);
    }
    for j in &mut joiners {
        j.wait_text(&text).await;
    }
    writer.insert(0, "new ").await;
    let mut late = Client::connect(&url, 20).await;
    late.wait_text(&format!("new {text}")).await;
    for j in &mut joiners {
        j.wait_text(&format!("new {text}")).await;
    }
}

#[tokio::test]
async fn a_request_to_a_room_that_is_not_a_websocket_upgrade_gets_the_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(config(dir.path()), Arc::new(MemoryStore::new())).await;
    let http = reqwest::Client::new();
    let plain = http
        .get(relay.http_url("/rooms/document/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 426);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("WebSocket"),
        "{body}"
    );
    let old_version = http
        .get(relay.http_url("/parties/main/document:x"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "8")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(old_version.status(), 400);
    let body: serde_json::Value = old_version.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("13"),
        "{body}"
    );
}
