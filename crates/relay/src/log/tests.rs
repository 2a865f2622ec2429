use super::*;

#[tokio::test]
async fn append_load_compact_and_dirty_list() {
    let dir = tempfile::tempdir().unwrap();
    let log = RoomLog::open(dir.path(), LogSync::Normal).unwrap();
    let room: Arc<str> = "document/a".into();
    log.append(&room, 1, record_format::BATCH, vec![1])
        .await
        .unwrap();
    log.append(&room, 2, record_format::BATCH, vec![2])
        .await
        .unwrap();
    assert_eq!(
        log.dirty_rooms().await.unwrap(),
        vec!["document/a".to_string()]
    );
    log.saved(&room, saved_at_seq(1, vec![9], vec![]))
        .await
        .unwrap();
    let got = log.load("document/a").await.unwrap();
    assert_eq!((got.seq, got.saved_seq), (2, 1));
    assert_eq!(
        contents(&got.records),
        vec![(record_format::SNAPSHOT, vec![9]), (1, vec![2])]
    );
    assert_eq!(got.store_snapshot_id.as_deref(), Some("s1"));
    drop(log);
    // Reopening keeps everything and checks the format version.
    let log = RoomLog::open(dir.path(), LogSync::Full).unwrap();
    assert_eq!(log.load("document/a").await.unwrap().records.len(), 2);
}

fn saved_at_seq(saved_seq: u64, compacted: Vec<u8>, keep: Vec<i64>) -> SavedRecord {
    SavedRecord {
        saved_seq,
        store_snapshot_id: "s1".into(),
        store_marker: vec![0],
        saved_at: 5,
        compacted,
        keep,
    }
}

fn contents(records: &[LogRecord]) -> Vec<(i64, Vec<u8>)> {
    records.iter().map(|r| (r.format, r.data.clone())).collect()
}

#[tokio::test]
async fn compaction_replaces_only_what_the_save_held_in_its_own_room() {
    let dir = tempfile::tempdir().unwrap();
    let log = RoomLog::open(dir.path(), LogSync::Normal).unwrap();
    let a: Arc<str> = "document/a".into();
    let other: Arc<str> = "document/ab".into();
    for seq in 1..=3 {
        log.append(&a, seq, record_format::BATCH, vec![seq as u8])
            .await
            .unwrap();
        log.append(&other, seq, record_format::BATCH, vec![10 + seq as u8])
            .await
            .unwrap();
    }
    // A record this relay cannot read (a newer relay's format), inside the saved range.
    log.append(&a, 2, 77, vec![0xee]).await.unwrap();
    let loaded = log.load("document/a").await.unwrap();
    let unreadable = loaded.records.iter().find(|r| r.format == 77).unwrap().id;

    log.saved(&a, saved_at_seq(2, vec![9], vec![unreadable]))
        .await
        .unwrap();
    let got = log.load("document/a").await.unwrap();
    assert_eq!(
        contents(&got.records),
        vec![
            (77, vec![0xee]),
            (record_format::SNAPSHOT, vec![9]),
            (record_format::BATCH, vec![3]),
        ],
        "records 1-2 replaced; record 3 (after the save began) and the unreadable one kept"
    );
    assert_eq!(
        log.load("document/ab").await.unwrap().records.len(),
        3,
        "another room is untouched"
    );
}

#[tokio::test]
async fn quarantine_moves_a_room_whole_and_the_purge_takes_only_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    let log = RoomLog::open(dir.path(), LogSync::Normal).unwrap();
    let gone: Arc<str> = "document/gone".into();
    let later: Arc<str> = "diagram/later".into();
    let live: Arc<str> = "task/live".into();
    for room in [&gone, &later, &live] {
        log.append(room, 1, record_format::BATCH, vec![1])
            .await
            .unwrap();
        log.append(room, 2, record_format::BATCH, vec![2])
            .await
            .unwrap();
    }
    log.quarantine(&gone, 1_000, "test").await.unwrap();
    log.quarantine(&later, 5_000, "test").await.unwrap();
    // A room with nothing logged leaves no empty entry.
    log.quarantine(&"task/empty".into(), 1_000, "test")
        .await
        .unwrap();

    for room in ["document/gone", "diagram/later"] {
        let left = log.load(room).await.unwrap();
        assert!(
            left.records.is_empty() && left.seq == 0,
            "{room} left the log"
        );
    }
    assert_eq!(
        log.dirty_rooms().await.unwrap(),
        vec!["task/live".to_string()]
    );
    let entries = log.quarantined().await.unwrap();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| (e.room.as_str(), e.quarantined_at, e.records, e.bytes))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("document/gone", 1_000, 2, 2),
            ("diagram/later", 5_000, 2, 2)
        ]
    );
    let reader = LogReader::open(dir.path()).unwrap();
    let (_, records) = reader.quarantine_records(entries[0].id).unwrap().unwrap();
    assert_eq!(
        contents(&records),
        vec![
            (record_format::BATCH, vec![1]),
            (record_format::BATCH, vec![2])
        ]
    );

    // Not yet expired: nothing goes.
    assert!(log.purge_quarantine(999).await.unwrap().is_empty());
    assert_eq!(log.quarantined().await.unwrap().len(), 2);
    // The first has expired, the second has not.
    let purged = log.purge_quarantine(1_000).await.unwrap();
    assert_eq!(
        purged.iter().map(|e| e.room.as_str()).collect::<Vec<_>>(),
        ["document/gone"]
    );
    let left = log.quarantined().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].room, "diagram/later");
    assert!(reader.quarantine_records(entries[0].id).unwrap().is_none());
    assert_eq!(
        reader
            .quarantine_records(left[0].id)
            .unwrap()
            .unwrap()
            .1
            .len(),
        2
    );
    // The purge never touches the live log.
    assert_eq!(log.load("task/live").await.unwrap().records.len(), 2);
}

#[tokio::test]
async fn a_failed_commit_keeps_the_sqlite_error_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let log = RoomLog::open(dir.path(), LogSync::Normal).unwrap();
    Connection::open(dir.path().join("log.sqlite3"))
        .unwrap()
        .execute_batch("DROP TABLE records")
        .unwrap();
    let room: Arc<str> = "document/a".into();
    let err = log
        .append(&room, 1, record_format::BATCH, vec![1])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::Commit(_)), "{err:?}");
    let source = std::error::Error::source(&err).expect("the sqlite error");
    assert!(source.to_string().contains("no such table"), "{source}");
    // The reader connection is still the same one and still reads.
    assert_eq!(log.dirty_rooms().await.unwrap(), Vec::<String>::new());
}

#[test]
fn the_reader_never_creates_a_log() {
    let dir = tempfile::tempdir().unwrap();
    assert!(LogReader::open(dir.path()).is_err());
    assert!(!dir.path().join("log.sqlite3").exists());
}

#[test]
fn other_format_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sqlite3");
    drop(schema::open(&path, LogSync::Normal, true).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE meta SET value = 99 WHERE key = 'format_version'",
        [],
    )
    .unwrap();
    drop(conn);
    assert!(matches!(
        schema::open(&path, LogSync::Normal, true),
        Err(LogError::Version { found: 99, .. })
    ));
}
