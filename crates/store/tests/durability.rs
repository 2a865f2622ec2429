//! The store's durability: schema migration from the legacy app schema, a process killed inside
//! a save, concurrent savers that must not erase each other's edits, and one SQLite commit per
//! save.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use rusqlite::Connection;
use ykeep_core::merge::apply_to;
use ykeep_core::{ResourceId, ResourceKind};
use ykeep_store::{
    EmbeddedStore, LEGACY_SCHEMA_V1, Precondition, SCHEMA_VERSION, ServiceError, StoreConfig,
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
                Err(ServiceError::NoSnapshot { .. })
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
    // Every legacy value is kept, the rows without a snapshot (d2, g1) above all.
    let archived: Vec<(String, String, String)> = conn
        .prepare("SELECT kind, id, content FROM legacy_content ORDER BY kind, id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let row = |k: &str, i: &str, c: &str| (k.to_string(), i.to_string(), c.to_string());
    assert_eq!(
        archived,
        [
            row("diagram", "g1", r#"{"elements":[]}"#),
            row("document", "d1", r#"{"type":"doc","content":[]}"#),
            row("document", "d2", r#"{"type":"doc"}"#),
        ]
    );
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
                        Err(ServiceError::Conflict { .. }) => {
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

/// The ids `blob_sweep` records as detached: what the next start-up may remove.
fn sweep_entries(data: &Path) -> Vec<String> {
    let conn = Connection::open(data.join("store/store.sqlite3")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM blob_sweep ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The crash points of a save, in order, and what each leaves: the new blob's file extension,
/// whether the row switch committed.
const CRASH_POINTS: [(&str, &str, bool); 3] = [
    // `<new>.tmp` is durable; nothing committed.
    ("after_blob_write", "tmp", false),
    // Committed, not renamed yet: the row names `<new>`, whose file is still `.tmp`.
    ("after_row_switch", "tmp", true),
    // Renamed; the replaced file is still there.
    ("after_rename", "yjs", true),
];

#[tokio::test]
async fn a_crash_inside_a_save_leaves_one_valid_snapshot() {
    for (point, new_ext, committed) in CRASH_POINTS {
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
        let s2 = files
            .iter()
            .filter_map(|f| f.split_once('.'))
            .map(|(stem, _)| stem.to_owned())
            .find(|f| *f != s1)
            .unwrap();
        assert_eq!(
            files,
            {
                let mut want = [format!("{s1}.yjs"), format!("{s2}.{new_ext}")];
                want.sort();
                want
            },
            "{point}: the crash leaves the old file and the new one"
        );
        // The database says which of the two files is the leftover: before the commit no blob
        // row names the new one (a temp file), after it the old one is recorded as detached.
        let (leftover, kept) = if committed { (&s1, &s2) } else { (&s2, &s1) };
        let expected: &[String] = if committed {
            std::slice::from_ref(&s1)
        } else {
            &[]
        };
        assert_eq!(sweep_entries(data.path()), expected, "{point}");
        // A snapshot file the database does not know, present at the restart.
        std::fs::write(
            data.path().join("store/blobs/stranger.yjs"),
            text_state(9, "x"),
        )
        .unwrap();

        let store = StoreProcess::start(data.path(), None);
        let survivor = if committed { "v1 v2" } else { "v1" };
        assert_eq!(store.load_text().await, survivor, "{point}");
        assert_eq!(
            blob_files(data.path()),
            [format!("{kept}.yjs"), "stranger.yjs".to_owned()],
            "{point}: {leftover} removed, {kept} in place (promoted if it was a temp file)"
        );
        assert!(sweep_entries(data.path()).is_empty(), "{point}");
    }
}

#[tokio::test]
async fn a_crash_inside_the_first_save_leaves_no_snapshot_or_the_new_one() {
    for (point, new_ext, committed) in CRASH_POINTS {
        let data = tempfile::tempdir().unwrap();
        {
            let mut store = StoreProcess::start(data.path(), Some(point));
            assert!(store.save(text_state(1, "first")).await.is_err(), "{point}");
            assert!(!store.child.wait().unwrap().success(), "{point}: aborted");
        }
        let files = blob_files(data.path());
        assert_eq!(files.len(), 1, "{point}: {files:?}");
        assert!(
            files[0].ends_with(&format!(".{new_ext}")),
            "{point}: {files:?}"
        );
        let store = StoreProcess::start(data.path(), None);
        let status = reqwest::Client::new()
            .get(format!("{}/snapshots/document/crashy", store.url))
            .bearer_auth("s")
            .send()
            .await
            .unwrap()
            .status();
        if committed {
            assert_eq!(store.load_text().await, "first", "{point}");
            let files = blob_files(data.path());
            assert_eq!(files.len(), 1, "{point}: {files:?}");
            assert!(files[0].ends_with(".yjs"), "{point}: promoted, {files:?}");
        } else {
            assert_eq!(status, 404, "{point}: nothing was committed");
            assert!(
                blob_files(data.path()).is_empty(),
                "{point}: the uncommitted temp file was removed"
            );
        }
        assert!(sweep_entries(data.path()).is_empty(), "{point}");
    }
}

/// How many transactions have committed into the store's write-ahead log so far: the frames
/// of the current WAL generation (matching salts) that end a transaction. Valid while no
/// checkpoint has reset the log (a few small writes never reach the 1000-page auto-checkpoint).
fn wal_commits(data: &Path) -> usize {
    let wal = std::fs::read(data.join("store.sqlite3-wal")).unwrap_or_default();
    if wal.len() < 32 {
        return 0;
    }
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    let page_size = be(&wal[8..12]) as usize;
    let salts = &wal[16..24];
    let mut commits = 0;
    let mut at = 32;
    while at + 24 + page_size <= wal.len() {
        let frame = &wal[at..at + 24];
        if &frame[8..16] != salts {
            break;
        }
        if be(&frame[4..8]) != 0 {
            commits += 1;
        }
        at += 24 + page_size;
    }
    commits
}

#[tokio::test]
async fn a_save_commits_once_and_a_refused_save_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let store = EmbeddedStore::open(config(&data)).await.unwrap();
    let room = ResourceId::parse("doc").unwrap();
    let mut last = wal_commits(&data);
    let mut step = |what: &str, expected: usize| {
        let now = wal_commits(&data);
        assert_eq!(now - last, expected, "{what}: commits");
        last = now;
    };
    store
        .create(ResourceKind::Document, room.clone())
        .await
        .unwrap();
    step("create", 1);

    let save = |body: Vec<u8>, precondition| {
        store.save(ResourceKind::Document, room.clone(), body, precondition)
    };
    let mut current = text_state(1, "v1");
    save(current.clone(), Precondition::Contains).await.unwrap();
    step("the first save", 1);
    for round in 2..=4 {
        let doc = Doc::with_client_id(round);
        apply_to(&doc, &current).unwrap();
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), 0, "+");
        current = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        save(current.clone(), Precondition::Contains).await.unwrap();
        // Replacing a snapshot, and dropping the previous replacement's entry: one commit.
        step(&format!("save {round}"), 1);
    }
    for (what, body, precondition) in [
        ("a 409", text_state(9, "stranger"), Precondition::Contains),
        (
            "an If-Match 409",
            current.clone(),
            Precondition::IfMatch("nope".into()),
        ),
        ("a 400", b"not yjs".to_vec(), Precondition::Contains),
    ] {
        assert!(save(body, precondition).await.is_err(), "{what}");
        step(what, 0);
    }
    store
        .delete(ResourceKind::Document, room.clone())
        .await
        .unwrap();
    step("a delete", 1);

    // Under --auto-create the row is created in the switch transaction, not before it.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let store = EmbeddedStore::open(StoreConfig {
        auto_create: true,
        ..config(&data)
    })
    .await
    .unwrap();
    let before = wal_commits(&data);
    store
        .save(
            ResourceKind::Task,
            ResourceId::parse("new-task").unwrap(),
            text_state(1, "first"),
            Precondition::Contains,
        )
        .await
        .unwrap();
    assert_eq!(wal_commits(&data) - before, 1, "an auto-created first save");
}
