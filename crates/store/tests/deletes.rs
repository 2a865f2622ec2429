//! Every path of the embedded store that deletes a blob file, and every one that must not
//! (DESIGN.md, "Nothing is deleted on anyone's say-so but an explicit one"):
//! - a save deletes the blob it replaced only after the row switch committed, and a refused
//!   save deletes nothing of the current snapshot (only its own temp file);
//! - DELETE removes the blob only after the tombstone committed;
//! - a `blob_sweep` entry is dropped only once its file is gone (in the next switch or DELETE
//!   transaction, or by the start-up sweep);
//! - the start-up sweep removes only leftovers the database recorded (and temp files no blob
//!   row names), keeps blob files it does not know, and refuses a database that names no blob
//!   next to such files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rusqlite::Connection;
use serde_json::Value;
use tower::ServiceExt;
use ykeep_core::merge::apply_to;
use ykeep_core::{ResourceId, ResourceKind};
use ykeep_store::{EmbeddedStore, Precondition, ServiceError, StoreConfig};
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

const SECRET: &str = "deletes-secret";
const LIMIT: usize = 4096;

fn config(data: &Path) -> StoreConfig {
    StoreConfig {
        data_dir: data.to_path_buf(),
        secret: SECRET.into(),
        token_key: "k".into(),
        auto_create: false,
        max_snapshot_bytes: LIMIT,
    }
}

fn state(client: u64, text: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(client);
    doc.get_or_insert_text("t")
        .insert(&mut doc.transact_mut(), 0, text);
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// `base` with `more` appended by another client: a state that contains `base`.
fn extended(base: &[u8], client: u64, more: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(client);
    apply_to(&doc, base).unwrap();
    let t = doc.get_or_insert_text("t");
    let len = t.len(&doc.transact());
    t.insert(&mut doc.transact_mut(), len, more);
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn id(s: &str) -> ResourceId {
    ResourceId::parse(s).unwrap()
}

/// A store in `data` with resource `doc1` saved once: the store, the state and its id.
async fn store_with_doc1_saved(data: &Path) -> (EmbeddedStore, Vec<u8>, String) {
    let store = EmbeddedStore::open(config(data)).await.unwrap();
    store
        .create(ResourceKind::Document, id("doc1"))
        .await
        .unwrap();
    let v1 = state(1, "v1");
    let s1 = store
        .save(
            ResourceKind::Document,
            id("doc1"),
            v1.clone(),
            Precondition::Contains,
        )
        .await
        .unwrap()
        .snapshot_id;
    (store, v1, s1)
}

/// Every file in `<data>/blobs` with its bytes.
fn blob_folder(data: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn file_names(data: &Path) -> Vec<String> {
    blob_folder(data).into_keys().collect()
}

/// The ids `blob_sweep` records as detached, read through a second connection.
fn sweep_entries(data: &Path) -> Vec<String> {
    let conn = Connection::open(data.join("store.sqlite3")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM blob_sweep ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `blob_sweep` holds exactly `ids`, and none of their files is left: only the entries wait
/// for the next transaction.
fn assert_settled(data: &Path, ids: &[&str], at: &str) {
    assert_eq!(sweep_entries(data), ids, "{at}: blob_sweep entries");
    let files = file_names(data);
    for id in ids {
        assert!(
            !files.contains(&format!("{id}.yjs")) && !files.contains(&format!("{id}.tmp")),
            "{at}: the file of detached {id} is still there: {files:?}"
        );
    }
}

/// Runs SQL on the store's database through a second connection (the test's only lever on
/// the store: triggers that make one statement fail).
fn sql(data: &Path, sql: &str) {
    Connection::open(data.join("store.sqlite3"))
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

async fn send(
    store: &EmbeddedStore,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {SECRET}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = store
        .router()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn refused_saves_delete_nothing_of_the_current_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let store = EmbeddedStore::open(config(&data)).await.unwrap();
    for name in ["doc1", "gone"] {
        store
            .create(ResourceKind::Document, id(name))
            .await
            .unwrap();
    }
    let v1 = state(1, "the current snapshot");
    let current = store
        .save(
            ResourceKind::Document,
            id("doc1"),
            v1.clone(),
            Precondition::Contains,
        )
        .await
        .unwrap()
        .snapshot_id;
    let gone = store
        .save(
            ResourceKind::Document,
            id("gone"),
            state(3, "to delete"),
            Precondition::Contains,
        )
        .await
        .unwrap()
        .snapshot_id;
    store
        .delete(ResourceKind::Document, id("gone"))
        .await
        .unwrap();
    // The deleted blob's file is gone; its entry waits for the next switch or DELETE.
    assert_settled(&data, &[&gone], "after the delete");
    let expected = blob_folder(&data);
    assert_eq!(expected.len(), 1);
    assert_eq!(expected[&format!("{current}.yjs")], v1);

    let stranger = state(2, "does not contain the current snapshot");
    let superset = extended(&v1, 4, " and more");
    let wrong_tag = "0".repeat(32);
    // (row, method, request headers, body, expected status, expected error code)
    type Refusal<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let refusals: Vec<Refusal> = vec![
        ("doc1", "POST", vec![], stranger.clone(), 409, "conflict"),
        (
            "doc1",
            "POST",
            vec![("if-match", wrong_tag.as_str())],
            superset.clone(),
            409,
            "conflict",
        ),
        (
            "doc1",
            "POST",
            vec![("if-none-match", "*")],
            superset.clone(),
            409,
            "conflict",
        ),
        (
            "doc1",
            "POST",
            vec![],
            b"not a yjs update".to_vec(),
            400,
            "bad_update",
        ),
        (
            "doc1",
            "POST",
            vec![("if-match", "a"), ("if-none-match", "*")],
            superset.clone(),
            400,
            "bad_request",
        ),
        ("doc1", "POST", vec![], vec![0; LIMIT + 1], 413, "too_large"),
        ("nobody", "POST", vec![], superset.clone(), 404, "not_found"),
        (
            "gone",
            "POST",
            vec![],
            superset.clone(),
            404,
            "resource_deleted",
        ),
        ("nobody", "DELETE", vec![], Vec::new(), 404, "not_found"),
        (
            "gone",
            "DELETE",
            vec![],
            Vec::new(),
            404,
            "resource_deleted",
        ),
    ];
    for (row, method, headers, body, status, code) in refusals {
        let at = format!("{method} {row} -> {status} {code}");
        let (got, json) = send(
            &store,
            method,
            &format!("/snapshots/document/{row}"),
            &headers,
            body,
        )
        .await;
        assert_eq!(
            (got.as_u16(), json["error"]["code"].as_str()),
            (status, Some(code)),
            "{at}: {json}"
        );
        assert_eq!(blob_folder(&data), expected, "{at}: blob files changed");
        assert_settled(&data, &[&gone], &at);
        let loaded = store
            .load(ResourceKind::Document, id("doc1"))
            .await
            .unwrap();
        assert_eq!(
            (loaded.id.as_str(), loaded.bytes),
            (current.as_str(), v1.clone())
        );
    }
}

#[tokio::test]
async fn the_old_blob_is_deleted_only_after_the_row_switch_committed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let (store, v1, s1) = store_with_doc1_saved(&data).await;

    // The switch statement fails inside its transaction: nothing commits.
    sql(
        &data,
        "CREATE TRIGGER no_switch BEFORE UPDATE OF yjs_snapshot_id ON documents
         BEGIN SELECT RAISE(ABORT, 'switch refused by the test'); END;",
    );
    let v2 = extended(&v1, 2, " v2");
    for precondition in [Precondition::Contains, Precondition::IfMatch(s1.clone())] {
        let err = store
            .save(ResourceKind::Document, id("doc1"), v2.clone(), precondition)
            .await
            .unwrap_err();
        assert!(matches!(err, ServiceError::Db(_)), "{err}");
        // The row still points at s1 and its file is intact; the new blob was discarded.
        let loaded = store
            .load(ResourceKind::Document, id("doc1"))
            .await
            .unwrap();
        assert_eq!((loaded.id.as_str(), &loaded.bytes), (s1.as_str(), &v1));
        assert_eq!(
            file_names(&data),
            [format!("{s1}.yjs")],
            "temp file removed"
        );
        assert!(sweep_entries(&data).is_empty());
    }

    // Once the switch can commit, the old blob goes, and only then.
    sql(&data, "DROP TRIGGER no_switch;");
    let s2 = store
        .save(
            ResourceKind::Document,
            id("doc1"),
            v2.clone(),
            Precondition::IfMatch(s1.clone()),
        )
        .await
        .unwrap()
        .snapshot_id;
    assert_eq!(file_names(&data), [format!("{s2}.yjs")]);
    assert_settled(&data, &[&s1], "after the switch");
}

#[tokio::test]
async fn delete_removes_the_blob_only_after_the_tombstone_committed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let store = EmbeddedStore::open(config(&data)).await.unwrap();
    store.create(ResourceKind::Task, id("t1")).await.unwrap();
    let v1 = state(1, "task");
    let s1 = store
        .save(
            ResourceKind::Task,
            id("t1"),
            v1.clone(),
            Precondition::Contains,
        )
        .await
        .unwrap()
        .snapshot_id;
    sql(
        &data,
        "CREATE TRIGGER no_tombstone BEFORE UPDATE OF deleted_at ON tasks
         BEGIN SELECT RAISE(ABORT, 'delete refused by the test'); END;",
    );
    let (status, _) = send(&store, "DELETE", "/snapshots/task/t1", &[], Vec::new()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let loaded = store.load(ResourceKind::Task, id("t1")).await.unwrap();
    assert_eq!((loaded.id.as_str(), &loaded.bytes), (s1.as_str(), &v1));
    assert_eq!(file_names(&data), [format!("{s1}.yjs")]);
    assert!(sweep_entries(&data).is_empty());

    sql(&data, "DROP TRIGGER no_tombstone;");
    let (status, _) = send(&store, "DELETE", "/snapshots/task/t1", &[], Vec::new()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(file_names(&data).is_empty());
    assert_settled(&data, &[&s1], "after the delete");
}

/// A store with three saved documents (and one deleted), closed again.
async fn populated(data: &Path) -> Vec<(String, Vec<u8>)> {
    let store = EmbeddedStore::open(config(data)).await.unwrap();
    let mut saved = Vec::new();
    for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
        store
            .create(ResourceKind::Document, id(name))
            .await
            .unwrap();
        let body = state(i as u64 + 1, name);
        store
            .save(
                ResourceKind::Document,
                id(name),
                body.clone(),
                Precondition::Contains,
            )
            .await
            .unwrap();
        saved.push((name.to_owned(), body));
    }
    store.delete(ResourceKind::Document, id("d")).await.unwrap();
    saved.pop();
    saved
}

fn db_files(data: &Path) -> Vec<PathBuf> {
    ["store.sqlite3", "store.sqlite3-wal", "store.sqlite3-shm"]
        .iter()
        .map(|f| data.join(f))
        .filter(|p| p.exists())
        .collect()
}

#[tokio::test]
async fn a_fresh_or_replaced_database_beside_a_full_blob_folder_is_refused_and_nothing_is_deleted()
{
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let saved = populated(&data).await;
    std::fs::write(data.join("blobs/half.tmp"), b"an interrupted write").unwrap();
    let before = blob_folder(&data);
    assert_eq!(before.len(), 4, "three snapshots and a temp file");
    let backup = dir.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    for f in db_files(&data) {
        std::fs::rename(&f, backup.join(f.file_name().unwrap())).unwrap();
    }

    // 1. No database at all: refused before one is created. The temp file counts too: with
    // no database, nothing proves it is not another database's committed snapshot.
    let err = EmbeddedStore::open(config(&data)).await.err().unwrap();
    match &err {
        ServiceError::UnknownBlobFiles { count, .. } => assert_eq!(*count, 4),
        other => panic!("expected UnknownBlobFiles, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains(&data.display().to_string()), "{message}");
    assert!(message.contains("4 snapshot file"), "{message}");
    assert!(message.contains("Nothing was deleted"), "{message}");
    assert_eq!(blob_folder(&data), before, "no blob file touched");
    assert!(db_files(&data).is_empty(), "no database created");

    // 2. Another store's (empty) database copied in: refused the same way.
    let other = dir.path().join("other");
    drop(EmbeddedStore::open(config(&other)).await.unwrap());
    std::fs::copy(other.join("store.sqlite3"), data.join("store.sqlite3")).unwrap();
    assert!(matches!(
        EmbeddedStore::open(config(&data)).await,
        Err(ServiceError::UnknownBlobFiles { count: 3, .. })
    ));
    assert_eq!(blob_folder(&data), before, "no blob file touched");

    // 3. The matching database back: every snapshot loads; only the temp file is swept.
    for f in db_files(&data) {
        std::fs::remove_file(f).unwrap();
    }
    for f in std::fs::read_dir(&backup).unwrap() {
        let f = f.unwrap();
        std::fs::rename(f.path(), data.join(f.file_name())).unwrap();
    }
    let store = EmbeddedStore::open(config(&data)).await.unwrap();
    for (name, body) in &saved {
        let loaded = store.load(ResourceKind::Document, id(name)).await.unwrap();
        assert_eq!(&loaded.bytes, body, "{name}");
    }
    let mut after = before.clone();
    after.remove("half.tmp");
    assert_eq!(blob_folder(&data), after);
}

#[tokio::test]
async fn blob_files_and_rows_the_database_cannot_account_for_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let saved = populated(&data).await;
    // A snapshot file the database does not know (restored by hand, copied in, ...), and a
    // blob row with its file that no resource points at.
    let stranger = state(9, "not in the database");
    std::fs::write(data.join("blobs/stranger.yjs"), &stranger).unwrap();
    std::fs::write(data.join("blobs/orphan-row.yjs"), b"kept").unwrap();
    sql(
        &data,
        "INSERT INTO blobs (id, size, state_vector, marker, saved_at)
         VALUES ('orphan-row', 4, x'00', x'0000', 1);",
    );
    let before = blob_folder(&data);
    for _ in 0..2 {
        let store = EmbeddedStore::open(config(&data)).await.unwrap();
        for (name, body) in &saved {
            let loaded = store.load(ResourceKind::Document, id(name)).await.unwrap();
            assert_eq!(&loaded.bytes, body, "{name}");
        }
        drop(store);
        assert_eq!(blob_folder(&data), before, "nothing removed");
        let conn = Connection::open(data.join("store.sqlite3")).unwrap();
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM blobs WHERE id = 'orphan-row'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 1, "the unreferenced blob row is kept");
    }
}

#[tokio::test]
async fn the_sweep_finishes_or_removes_recorded_leftovers_of_interrupted_saves_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let saved = populated(&data).await;
    // What interrupted saves and deletes leave: the temp file of a save that never committed,
    // a committed save whose rename did not happen (or was lost in a power loss: document a's
    // blob is still `.tmp`), and a detached blob whose removal did not happen.
    let a = {
        let conn = Connection::open(data.join("store.sqlite3")).unwrap();
        conn.query_row(
            "SELECT yjs_snapshot_id FROM documents WHERE id = 'a'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
    };
    std::fs::rename(
        data.join(format!("blobs/{a}.yjs")),
        data.join(format!("blobs/{a}.tmp")),
    )
    .unwrap();
    std::fs::write(
        data.join("blobs/uncommitted.tmp"),
        state(7, "never switched"),
    )
    .unwrap();
    std::fs::write(data.join("blobs/old.yjs"), state(8, "replaced")).unwrap();
    std::fs::write(data.join("blobs/stranger.yjs"), state(9, "unknown")).unwrap();
    sql(
        &data,
        "INSERT INTO blob_sweep (id, recorded_at) VALUES ('old', 1);",
    );
    let store = EmbeddedStore::open(config(&data)).await.unwrap();
    let mut names = file_names(&data);
    assert!(names.contains(&format!("{a}.yjs")), "promoted: {names:?}");
    assert!(
        names.contains(&"stranger.yjs".to_string()),
        "kept: {names:?}"
    );
    names.retain(|n| n != "stranger.yjs");
    assert!(names.iter().all(|n| n.ends_with(".yjs")), "{names:?}");
    assert_eq!(
        names.len(),
        saved.len(),
        "only the live blobs and the stranger left: {names:?}"
    );
    assert!(sweep_entries(&data).is_empty());
    for (name, body) in &saved {
        let loaded = store.load(ResourceKind::Document, id(name)).await.unwrap();
        assert_eq!(&loaded.bytes, body, "{name}");
    }
}

#[tokio::test]
async fn a_load_between_the_commit_and_the_rename_reads_the_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let (store, v1, s1) = store_with_doc1_saved(&data).await;
    // The state between a save's commit and its rename: the row names s1, the file is
    // still `<s1>.tmp`.
    std::fs::rename(
        data.join(format!("blobs/{s1}.yjs")),
        data.join(format!("blobs/{s1}.tmp")),
    )
    .unwrap();
    let loaded = store
        .load(ResourceKind::Document, id("doc1"))
        .await
        .unwrap();
    assert_eq!((loaded.id.as_str(), &loaded.bytes), (s1.as_str(), &v1));

    // The next save replaces it, and the replaced temp file goes like a `.yjs` would.
    let s2 = store
        .save(
            ResourceKind::Document,
            id("doc1"),
            extended(&v1, 2, " v2"),
            Precondition::IfMatch(s1.clone()),
        )
        .await
        .unwrap()
        .snapshot_id;
    assert_eq!(file_names(&data), [format!("{s2}.yjs")]);
    assert_settled(&data, &[&s1], "after the switch");
}

#[tokio::test]
async fn a_detached_entry_goes_only_after_its_file_and_in_the_next_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let store = EmbeddedStore::open(config(&data)).await.unwrap();
    store
        .create(ResourceKind::Document, id("doc1"))
        .await
        .unwrap();
    let mut body = state(1, "v1");
    let mut ids = Vec::new();
    let save = |body: Vec<u8>| {
        store.save(
            ResourceKind::Document,
            id("doc1"),
            body,
            Precondition::Contains,
        )
    };
    ids.push(save(body.clone()).await.unwrap().snapshot_id);
    // s1's file cannot be removed (a directory took its name): its removal after the next
    // switch fails, so its entry must stay for the start-up sweep.
    let s1_path = data.join(format!("blobs/{}.yjs", ids[0]));
    std::fs::remove_file(&s1_path).unwrap();
    std::fs::create_dir(&s1_path).unwrap();
    std::fs::write(s1_path.join("keep"), b"x").unwrap();
    for round in 2..=4 {
        body = extended(&body, round, &format!(" v{round}"));
        ids.push(save(body.clone()).await.unwrap().snapshot_id);
        // Each switch drops the entries of files removed before it, and records its own.
        let prev = &ids[round as usize - 2];
        let mut expected = vec![ids[0].as_str()];
        if round > 2 {
            expected.push(prev);
        }
        expected.sort();
        assert_eq!(sweep_entries(&data), expected, "after save {round}");
    }
    // A DELETE drops them the same way, in its own transaction.
    store
        .delete(ResourceKind::Document, id("doc1"))
        .await
        .unwrap();
    let mut expected = vec![ids[0].as_str(), ids[3].as_str()];
    expected.sort();
    assert_eq!(sweep_entries(&data), expected, "after the delete");
    drop(store);

    // The file the store could not remove is back in place; the start-up sweep removes it
    // and drops every entry.
    std::fs::remove_dir_all(&s1_path).unwrap();
    std::fs::write(&s1_path, state(1, "v1")).unwrap();
    drop(EmbeddedStore::open(config(&data)).await.unwrap());
    assert!(file_names(&data).is_empty());
    assert!(sweep_entries(&data).is_empty());
}
