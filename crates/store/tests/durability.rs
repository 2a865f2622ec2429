//! The store's durability: schema migration from the legacy app schema, a process killed inside
//! a save, and concurrent savers that must not erase each other's edits.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use rusqlite::Connection;
use ykeep_core::merge::apply_to;
use ykeep_core::{ResourceId, ResourceKind};
use ykeep_store::{
    EmbeddedStore, LEGACY_SCHEMA_V1, Precondition, SCHEMA_VERSION, StoreConfig, StoreError,
};
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

fn text_state(client: u64, text: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(client);
    doc.get_or_insert_text("t")
        .insert(&mut doc.transact_mut(), 0, text);
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn text_of(update: &[u8]) -> String {
    let doc = Doc::new();
    apply_to(&doc, update).unwrap();
    doc.get_or_insert_text("t").get_string(&doc.transact())
}

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        secret: "s".into(),
        token_key: "k".into(),
        auto_create: false,
        max_snapshot_bytes: StoreConfig::DEFAULT_MAX_SNAPSHOT_BYTES,
    }
}

fn columns(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(1))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn legacy_schema_migrates_with_rows_and_snapshots_intact() {
    let dir = tempfile::tempdir().unwrap();
    let blob = text_state(3, "migrated text");
    {
        std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs/b1.yjs"), &blob).unwrap();
        let conn = Connection::open(dir.path().join("store.sqlite3")).unwrap();
        conn.execute_batch(LEGACY_SCHEMA_V1).unwrap();
        let marker = ykeep_core::DurabilityMarker::of_update(&blob)
            .unwrap()
            .encode();
        conn.execute(
            "INSERT INTO blobs (id, size, state_vector, marker, saved_at) VALUES ('b1', ?1, x'00', ?2, 5)",
            rusqlite::params![blob.len() as i64, marker],
        )
        .unwrap();
        conn.execute_batch(
            r#"INSERT INTO documents (id, created_at, content, yjs_snapshot_id)
                 VALUES ('d1', 1, '{"type":"doc","content":[]}', 'b1'), ('d2', 2, '{"type":"doc"}', NULL);
               INSERT INTO diagrams (id, created_at, content) VALUES ('g1', 3, '{"elements":[]}');
               INSERT INTO tasks (id, created_at) VALUES ('t1', 4);"#,
        )
        .unwrap();
        assert!(columns(&conn, "documents").contains(&"content".to_string()));
    }

    let store = EmbeddedStore::open(config(dir.path())).await.unwrap();
    let id = |s: &str| ResourceId::parse(s).unwrap();
    let loaded = store.load(ResourceKind::Document, id("d1")).await.unwrap();
    assert_eq!(
        (loaded.id.as_str(), text_of(&loaded.bytes).as_str()),
        ("b1", "migrated text")
    );
    for (kind, row) in [
        (ResourceKind::Document, "d2"),
        (ResourceKind::Diagram, "g1"),
        (ResourceKind::Task, "t1"),
    ] {
        assert!(
            matches!(
                store.load(kind, id(row)).await,
                Err(StoreError::NoSnapshot { .. })
            ),
            "{row}"
        );
    }
    drop(store);

    let conn = Connection::open(dir.path().join("store.sqlite3")).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert!(!columns(&conn, "documents").contains(&"content".to_string()));
    assert!(!columns(&conn, "diagrams").contains(&"content".to_string()));
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM documents ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, ["d1", "d2"]);
}

#[tokio::test]
async fn concurrent_savers_never_erase_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(config(dir.path())).await.unwrap();
    let room = ResourceId::parse("shared").unwrap();
    store
        .create(ResourceKind::Document, room.clone())
        .await
        .unwrap();
    const ROUNDS: usize = 25;
    let saver = |client: u64| {
        let (store, room) = (store.clone(), room.clone());
        tokio::spawn(async move {
            let doc = Doc::with_client_id(client);
            let t = doc.get_or_insert_text("t");
            let mut conflicts = 0;
            for round in 0..ROUNDS {
                t.insert(&mut doc.transact_mut(), 0, &format!("[{client}:{round}]"));
                // The relay's protocol: save; on 409 load, merge, retry with If-Match.
                let mut precondition = Precondition::Contains;
                loop {
                    let state = doc
                        .transact()
                        .encode_state_as_update_v1(&StateVector::default());
                    match store
                        .save(
                            ResourceKind::Document,
                            room.clone(),
                            state,
                            precondition.clone(),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => {
                            conflicts += 1;
                            let current = store
                                .load(ResourceKind::Document, room.clone())
                                .await
                                .unwrap();
                            apply_to(&doc, &current.bytes).unwrap();
                            precondition = Precondition::IfMatch(current.id);
                        }
                        Err(e) => panic!("save failed: {e}"),
                    }
                }
            }
            conflicts
        })
    };
    let (a, b) = (saver(1), saver(2));
    let conflicts = a.await.unwrap() + b.await.unwrap();
    let last = store.load(ResourceKind::Document, room).await.unwrap();
    let text = text_of(&last.bytes);
    for client in [1, 2] {
        for round in 0..ROUNDS {
            assert!(
                text.contains(&format!("[{client}:{round}]")),
                "lost [{client}:{round}]"
            );
        }
    }
    println!("{} edits kept through {conflicts} conflicts", 2 * ROUNDS);
    let files = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert_eq!(files, 1, "exactly one blob file after overwrites");
}

/// A `ykeep-store` process on a fresh port.
struct StoreProcess {
    child: Child,
    url: String,
}

impl StoreProcess {
    fn start(data: &Path, crash_at: Option<&str>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ykeep-store"));
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--secret",
            "s",
            "--token-key",
            "k",
            "--auto-create",
        ])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if let Some(point) = crash_at {
            cmd.env("YKEEP_STORE_CRASH_AT", point);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let url = line
            .trim()
            .strip_prefix("ykeep-store listening on ")
            .expect(&line)
            .to_owned();
        StoreProcess { child, url }
    }

    async fn save(&self, body: Vec<u8>) -> reqwest::Result<reqwest::Response> {
        reqwest::Client::new()
            .post(format!("{}/snapshots/document/crashy", self.url))
            .bearer_auth("s")
            .body(body)
            .send()
            .await
    }

    async fn load_text(&self) -> String {
        let r = reqwest::Client::new()
            .get(format!("{}/snapshots/document/crashy", self.url))
            .bearer_auth("s")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        text_of(&r.bytes().await.unwrap())
    }
}

impl Drop for StoreProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn blob_files(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("store/blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `blob_sweep` as (id, reason): what the next start-up may remove.
fn sweep_entries(data: &Path) -> Vec<(String, String)> {
    let conn = Connection::open(data.join("store/store.sqlite3")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, reason FROM blob_sweep ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_crash_inside_a_save_leaves_one_valid_snapshot() {
    for (point, survivor) in [("after_blob_write", "v1"), ("after_row_switch", "v1 v2")] {
        let data = tempfile::tempdir().unwrap();
        let v1 = text_state(1, "v1");
        let v2 = {
            let doc = Doc::with_client_id(2);
            apply_to(&doc, &v1).unwrap();
            doc.get_or_insert_text("t")
                .insert(&mut doc.transact_mut(), 2, " v2");
            doc.transact()
                .encode_state_as_update_v1(&StateVector::default())
        };
        let s1 = {
            let store = StoreProcess::start(data.path(), None);
            let reply = store.save(v1).await.unwrap();
            assert_eq!(reply.status(), 200);
            let json: serde_json::Value = reply.json().await.unwrap();
            json["snapshotId"].as_str().unwrap().to_owned()
        };
        {
            let mut store = StoreProcess::start(data.path(), Some(point));
            // The process aborts inside the save: the request fails, the process is gone.
            assert!(
                store.save(v2).await.is_err(),
                "{point}: the save should not answer"
            );
            let status = store.child.wait().unwrap();
            assert!(!status.success(), "{point}: the store should have aborted");
        }
        let files = blob_files(data.path());
        assert_eq!(files.len(), 2, "{point}: the crash leaves two files");
        let s2 = files
            .iter()
            .map(|f| f.trim_end_matches(".yjs").to_owned())
            .find(|f| *f != s1)
            .unwrap();
        // The database says which of the two files is the leftover, and nothing else.
        let expected = match point {
            "after_blob_write" => (s2.clone(), "pending".to_owned()),
            _ => (s1.clone(), "detached".to_owned()),
        };
        assert_eq!(
            sweep_entries(data.path()),
            std::slice::from_ref(&expected),
            "{point}"
        );
        // A snapshot file the database does not know, present at the restart.
        std::fs::write(
            data.path().join("store/blobs/stranger.yjs"),
            text_state(9, "x"),
        )
        .unwrap();

        let store = StoreProcess::start(data.path(), None);
        assert_eq!(store.load_text().await, survivor, "{point}");
        let kept = if expected.0 == s1 { &s2 } else { &s1 };
        assert_eq!(
            blob_files(data.path()),
            [format!("{kept}.yjs"), "stranger.yjs".to_owned()],
            "{point}: only the recorded leftover was removed"
        );
        assert!(sweep_entries(data.path()).is_empty(), "{point}");
    }
}

#[tokio::test]
async fn a_crash_inside_the_first_save_leaves_no_snapshot_or_the_new_one() {
    for (point, survivor) in [
        ("after_blob_write", None),
        ("after_row_switch", Some("first")),
    ] {
        let data = tempfile::tempdir().unwrap();
        {
            let mut store = StoreProcess::start(data.path(), Some(point));
            assert!(store.save(text_state(1, "first")).await.is_err(), "{point}");
            assert!(!store.child.wait().unwrap().success(), "{point}: aborted");
        }
        let store = StoreProcess::start(data.path(), None);
        let status = reqwest::Client::new()
            .get(format!("{}/snapshots/document/crashy", store.url))
            .bearer_auth("s")
            .send()
            .await
            .unwrap()
            .status();
        match survivor {
            None => {
                assert_eq!(status, 404, "{point}: nothing was committed");
                assert!(
                    blob_files(data.path()).is_empty(),
                    "{point}: the pending blob was removed"
                );
            }
            Some(text) => {
                assert_eq!(store.load_text().await, text, "{point}");
                assert_eq!(blob_files(data.path()).len(), 1, "{point}");
            }
        }
        assert!(sweep_entries(data.path()).is_empty(), "{point}");
    }
}
