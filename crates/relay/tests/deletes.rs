//! Nothing is deleted on anyone's say-so but an explicit one (in-process relay, real sockets).
//!
//! - Every store answer but `resource_deleted` is a failed save: the room stays dirty, its
//!   edits stay in the log and reach the next client.
//! - `resource_deleted` moves the room's log to the quarantine (listed, exportable), closes the
//!   clients with 1008, and only the purge after `--deleted-retention` deletes it.

mod common;
#[path = "common/front.rs"]
mod front;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use front::{Front, HTML_404, fixed};
use ykeep_core::RoomName;
use ykeep_relay::quarantine;
use ykeep_relay::store_client::{HttpStore, MemoryStore, SnapshotStore};

fn room(s: &str) -> RoomName {
    RoomName::parse(s).unwrap()
}

/// A front whose `/snapshots/*` answers are always `(status, content type, body)`.
async fn front_answering(status: u16, content_type: &'static str, body: &'static str) -> Front {
    Front::start(move |_| fixed(status, content_type, body)).await
}

#[tokio::test]
async fn every_store_error_but_resource_deleted_is_a_failed_save_and_the_edits_stay() {
    let answers: [(u16, &str, &str); 6] = [
        (404, "text/html", HTML_404),
        (404, "text/plain", ""),
        (
            404,
            "application/json",
            r#"{"error":{"code":"not_found","message":"no document with this id"}}"#,
        ),
        (
            404,
            "application/json",
            r#"{"error":{"code":"no_such_route","message":"?"}}"#,
        ),
        (410, "text/plain", "gone"),
        (
            500,
            "application/json",
            r#"{"error":{"code":"internal","message":"x"}}"#,
        ),
    ];
    for (status, content_type, body) in answers {
        let what = format!("{status} {content_type} {body:.40}");
        let front = front_answering(status, content_type, body).await;
        let dir = tempfile::tempdir().unwrap();
        let store = HttpStore::new(&front.url, "s", Duration::from_secs(2)).unwrap();
        {
            let relay = TestRelay::start(config(dir.path()), Arc::new(store)).await;
            let mut a = Client::connect(&relay.ws_url("/rooms/document/kept"), 1).await;
            a.insert(0, "written before the save").await;
            relay.wait_metric("updates_total", 1).await;
            a.close().await;
            relay.wait_metric("saves_failed_total", 1).await;
            assert_eq!(relay.metric("saves_refused_total"), 1, "{what}");
            assert_eq!(relay.metric("rooms_quarantined_total"), 0, "{what}");
            wait_for("unload", || relay.metric("rooms") == 0).await;
            let log = &relay.relay.shared().log;
            assert_eq!(
                log.dirty_rooms().await.unwrap(),
                vec!["document/kept".to_string()],
                "{what}: the room stays dirty"
            );
            assert!(log.quarantined().await.unwrap().is_empty(), "{what}");
            // The room opens again from its log.
            let mut b = Client::connect(&relay.ws_url("/rooms/document/kept"), 2).await;
            b.wait_synced().await;
            assert_eq!(b.text(), "written before the save", "{what}");
            b.close().await;
        }
    }
}

#[tokio::test]
async fn resource_deleted_quarantines_the_room_closes_clients_1008_and_only_the_purge_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let name = room("document/deleted");
    let mut cfg = config(dir.path());
    cfg.save_interval_ms = 200; // periodic saves while both clients stay connected
    let relay = TestRelay::start(cfg.clone(), store.clone()).await;
    let url = relay.ws_url("/rooms/document/deleted");
    let mut a = Client::connect(&url, 1).await;
    let mut b = Client::connect(&url, 2).await;
    a.insert(0, "first").await;
    b.wait_text("first").await;
    relay.wait_metric("saves_ok_total", 1).await;

    store.delete(&name);
    a.insert(5, " second").await;
    b.wait_text("first second").await;
    for client in [&mut a, &mut b] {
        let (code, reason) = client.wait_closed().await;
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.starts_with("resource_deleted"), "{reason}");
    }
    assert_eq!(relay.metric("rooms_quarantined_total"), 1);
    let log = &relay.relay.shared().log;
    wait_for("unload", || relay.metric("rooms") == 0).await;
    assert!(
        log.load("document/deleted")
            .await
            .unwrap()
            .records
            .is_empty()
    );
    assert!(log.dirty_rooms().await.unwrap().is_empty());

    // Listed and exportable: everything the room held, "second" included.
    let relay_dir = cfg.relay_dir();
    let entries = quarantine::list(&relay_dir).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].room, "document/deleted");
    let exported = quarantine::export(&relay_dir, entries[0].id).unwrap();
    assert_eq!(text_of_update(&exported.update), "first second");
    assert_eq!(exported.unreadable, 0);

    // A client that comes back meets the deletion at cold start, and nothing new is queued.
    let mut c = Client::connect(&url, 3).await;
    let (code, _) = c.wait_closed().await;
    assert_eq!(code, 1008);
    assert_eq!(quarantine::list(&relay_dir).unwrap().len(), 1);

    // Within the retention the purge keeps it...
    assert_eq!(relay.relay.purge_quarantine().await.unwrap(), 0);
    assert_eq!(quarantine::list(&relay_dir).unwrap().len(), 1);
    drop(relay);
    // ...after it, it goes, and only it: another room's log stays.
    let mut later = cfg.clone();
    later.deleted_retention = Duration::ZERO;
    let relay = TestRelay::start(later, store.clone()).await;
    let mut other = Client::connect(&relay.ws_url("/rooms/task/other"), 4).await;
    other.insert(0, "unsaved").await;
    relay.wait_metric("updates_total", 1).await;
    assert_eq!(relay.relay.purge_quarantine().await.unwrap(), 1);
    assert_eq!(relay.metric("quarantine_purged_total"), 1);
    assert!(quarantine::list(&relay_dir).unwrap().is_empty());
    let log = &relay.relay.shared().log;
    assert_eq!(log.load("task/other").await.unwrap().records.len(), 1);
}

#[tokio::test]
async fn a_room_left_dirty_for_a_deleted_resource_is_quarantined_by_start_up_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    store.set_down(true);
    {
        let relay = TestRelay::start(config(dir.path()), store.clone()).await;
        let mut a = Client::connect(&relay.ws_url("/rooms/diagram/offline"), 1).await;
        a.insert(0, "drawn offline").await;
        relay.wait_metric("updates_total", 1).await;
        a.close().await;
        relay.wait_metric("saves_failed_total", 1).await;
        wait_for("unload", || relay.metric("rooms") == 0).await;
    }
    store.set_down(false);
    store.delete(&room("diagram/offline"));
    let relay = TestRelay::start(config(dir.path()), store.clone()).await;
    assert_eq!(relay.relay.recover().await.unwrap(), 1);
    relay.wait_metric("rooms_quarantined_total", 1).await;
    let entries = relay.relay.shared().log.quarantined().await.unwrap();
    assert_eq!(entries.len(), 1);
    let relay_dir = dir.path().join("relay");
    let exported = quarantine::export(&relay_dir, entries[0].id).unwrap();
    assert_eq!(text_of_update(&exported.update), "drawn offline");
    assert_eq!(store.saves(), 0);
}

#[tokio::test]
async fn the_http_store_reads_only_the_contract_code_as_a_deletion() {
    let name = room("document/x");
    let deleted = Front::start(|_| {
        fixed(
            404,
            "application/json",
            r#"{"error":{"code":"resource_deleted","message":"deleted"}}"#,
        )
    })
    .await;
    let store = HttpStore::new(&deleted.url, "s", Duration::from_secs(2)).unwrap();
    let save = store
        .save(
            &name,
            update_with_text(1, "x"),
            ykeep_relay::store_client::Precondition::IfNoneMatch,
        )
        .await;
    assert!(matches!(
        save,
        Err(ykeep_relay::store_client::StoreError::Deleted)
    ));
    assert!(matches!(
        store.load(&name).await,
        Err(ykeep_relay::store_client::StoreError::Deleted)
    ));

    // A 404 page: a refusal that names the URL, the status and the page's first bytes.
    let page = front_answering(404, "text/html", HTML_404).await;
    let store = HttpStore::new(&page.url, "s", Duration::from_secs(2)).unwrap();
    let err = store
        .save(
            &name,
            update_with_text(1, "x"),
            ykeep_relay::store_client::Precondition::IfNoneMatch,
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("{}/snapshots/document/x", page.url)),
        "{text}"
    );
    assert!(text.contains("404"), "{text}");
    assert!(text.contains("no contract error code"), "{text}");
    assert!(text.contains("<title>404 Not Found</title>"), "{text}");
    // And a load through that page is an error too, never "the store has nothing".
    assert!(store.load(&name).await.is_err());
}

#[tokio::test]
async fn a_log_record_this_relay_cannot_read_survives_saves_and_compaction() {
    use ykeep_relay::config::LogSync;
    use ykeep_relay::log::{RoomLog, record_format};
    let dir = tempfile::tempdir().unwrap();
    let key: Arc<str> = "document/mixed".into();
    {
        // As a newer relay would leave it: one record this relay reads, one it does not.
        let log = RoomLog::open(&dir.path().join("relay"), LogSync::Normal).unwrap();
        let mut batch = Vec::new();
        ykeep_relay::protocol::write_len_prefixed(&mut batch, &update_with_text(1, "readable"));
        log.append(&key, 1, record_format::BATCH, batch)
            .await
            .unwrap();
        log.append(&key, 2, 99, b"a newer relay's record".to_vec())
            .await
            .unwrap();
    }
    let store = Arc::new(MemoryStore::new());
    let relay = TestRelay::start(config(dir.path()), store.clone()).await;
    let mut a = Client::connect(&relay.ws_url("/rooms/document/mixed"), 2).await;
    a.wait_synced().await;
    assert_eq!(a.text(), "readable");
    a.insert(8, " and more").await;
    relay.wait_metric("updates_total", 1).await;
    a.close().await;
    relay.wait_metric("saves_ok_total", 1).await;
    wait_for("unload", || relay.metric("rooms") == 0).await;
    let records = relay.relay.shared().log.load(&key).await.unwrap().records;
    let formats: Vec<i64> = records.iter().map(|r| r.format).collect();
    assert_eq!(
        formats,
        vec![99, record_format::SNAPSHOT],
        "the save compacted what the room read, and kept what it could not"
    );
    assert_eq!(records[0].data, b"a newer relay's record");
    assert_eq!(
        text_of_update(&store.snapshot(&room("document/mixed")).unwrap().bytes),
        "readable and more"
    );
}

#[tokio::test]
async fn a_store_snapshot_the_room_cannot_read_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let name = room("document/unreadable");
    // What a newer writer (or a corruption) could leave: bytes this relay cannot merge.
    let foreign = b"\xff\xff\xff\xff\x7f not a Yjs v1 update".to_vec();
    store.put(&name, foreign.clone());
    let relay = TestRelay::start(config(dir.path()), store.clone()).await;
    let mut a = Client::connect(&relay.ws_url("/rooms/document/unreadable"), 1).await;
    a.insert(0, "an edit the store cannot take yet").await;
    relay.wait_metric("updates_total", 1).await;
    a.close().await;
    relay.wait_metric("saves_failed_total", 1).await;
    assert_eq!(store.saves(), 0);
    assert_eq!(
        store.snapshot(&name).unwrap().bytes,
        foreign,
        "left as it was"
    );
    let log = &relay.relay.shared().log;
    assert_eq!(
        log.dirty_rooms().await.unwrap(),
        vec!["document/unreadable".to_string()]
    );
}
