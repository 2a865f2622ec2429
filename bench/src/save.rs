//! Save and cold start of one N× document (the trace replayed N times into one doc):
//! full-state encode time, v1/v2 sizes, save time (POST to the embedded store of a real
//! `ykeep-relay serve`), cold start of the room on a fresh relay from snapshot + local log (WS
//! connect to SyncStep2 received), the raw disk read of the same bytes (floor), and the relay's
//! RSS growth for the loaded room.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact};

use crate::proto::Dialect;
use crate::rawws::RawWs;
use crate::servers::{self, Kind, Server};
use crate::stats::median;
use crate::trace::{self, Trace};

const SECRET: &str = "bench-secret-0123456789";

#[derive(Serialize, Clone)]
pub struct SizeResult {
    pub times: usize,
    pub chars: usize,
    pub v1_bytes: usize,
    pub v2_bytes: usize,
    pub encode_v1_ms: f64,
    pub encode_v2_ms: f64,
    pub save_ms: f64,
    pub cold_start_ms: f64,
    pub raw_read_ms: f64,
    pub apply_floor_ms: f64,
    pub room_rss_mb: f64,
    pub runs: usize,
    /// The cold start's floor and its breakdown (in process, on the same snapshot).
    pub cold: ColdBreakdown,
    /// The save's floor, part by part.
    pub save_floor: SaveFloor,
}

/// Cold start: the floor (yrs decode + apply of the state, then the SyncStep2 encode of it) and
/// what ykeep's room does, step by step, in process on the snapshot and log record the relay
/// left. `process_ms` is the rest of the end-to-end figure: WebSocket connect and upgrade, the
/// SQLite read of the log, task hand-offs.
#[derive(Serialize, Clone)]
pub struct ColdBreakdown {
    pub floor_ms: f64,
    pub floor_apply_ms: f64,
    pub floor_sync2_ms: f64,
    /// The store's blob read (`serve` calls its store in process: no HTTP).
    pub fetch_ms: f64,
    /// `apply_records` of the log's compacted record into a fresh doc.
    pub log_apply_ms: f64,
    /// `Room::open` with that log and the store's answer, minus the log apply: the checks and
    /// the merge of the store's snapshot (skipped when the log holds it).
    pub checks_merge_ms: f64,
    /// SyncStep2 (full state) encode of the room's doc.
    pub sync2_ms: f64,
    pub process_ms: f64,
    pub ratio: f64,
    /// Connect to SyncStep2 of an empty room, the first connection of the fresh relay (before
    /// the room's cold start, which is measured on the same, now running, relay).
    pub empty_room_first_ms: f64,
    /// Minor page faults of the relay process during the room's cold start (fresh memory the
    /// kernel zeroes; the in-process steps above reuse the bench's warm heap).
    pub minor_faults: f64,
}

/// Save: the floor's parts, each measured in the same run, and ykeep's save (encode + POST).
#[derive(Serialize, Clone)]
pub struct SaveFloor {
    pub encode_ms: f64,
    /// `ykeep_core::load_full_state`: the store's contract check (decode + apply).
    pub check_ms: f64,
    /// One blob write with its file and directory fsync, on the store's disk.
    pub blob_write_ms: f64,
    /// One SQLite commit (WAL, synchronous=FULL, as the store) on the same disk.
    pub sqlite_commit_ms: f64,
    pub floor_ms: f64,
    /// encode v1 + the store's POST.
    pub ykeep_ms: f64,
    pub ratio: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn post(
    client: &reqwest::Client,
    host: &str,
    id: &str,
    body: Vec<u8>,
) -> Result<Duration, String> {
    let t = Instant::now();
    let r = client
        .post(format!("http://{host}/snapshots/document/{id}"))
        .bearer_auth(SECRET)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let _ = r.bytes().await;
    if !status.is_success() {
        return Err(format!("save answered {status}"));
    }
    Ok(t.elapsed())
}

/// WebSocket connect to SyncStep2 received; `loaded`: the SyncStep2 must hold a state.
async fn cold_start(host: &str, room: &str, loaded: bool) -> Result<Duration, String> {
    let t = Instant::now();
    let mut ws = RawWs::connect(&format!("ws://{host}/rooms/document/{room}"))
        .await
        .map_err(|e| e.to_string())?;
    ws.send(&Dialect::YSync.sync(0, &[0]))
        .await
        .map_err(|e| e.to_string())?;
    let mut got = None;
    while got.is_none() {
        let alive = ws
            .read_some(|m, now| {
                if let Some((1, p)) = Dialect::YSync.parse_sync(m)
                    && got.is_none()
                {
                    got = Some((now - t, p.len()));
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        if !alive {
            return Err("closed before SyncStep2".into());
        }
    }
    let (d, len) = got.unwrap();
    if loaded && len < 16 {
        return Err("SyncStep2 is empty: the room did not load the snapshot".into());
    }
    Ok(d)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .map_err(|e| e.to_string())?;
    if st.success() {
        Ok(())
    } else {
        Err("cp failed".into())
    }
}

fn newest_blob(dir: &Path) -> Option<std::path::PathBuf> {
    let blobs = dir.join("store/blobs");
    std::fs::read_dir(blobs)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "yjs"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

pub async fn measure(trace: &Trace, times: usize, runs: usize) -> Result<SizeResult, String> {
    let t = Instant::now();
    let doc = trace::replay(trace, times);
    eprintln!("  {times}x doc built in {:.1} s", t.elapsed().as_secs_f64());
    let chars = trace::text_of(&doc).chars().count();
    let sv = StateVector::default();
    let (mut e1, mut e2) = (Vec::new(), Vec::new());
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        v1 = doc.transact().encode_state_as_update_v1(&sv);
        e1.push(ms(t.elapsed()));
        let t = Instant::now();
        v2 = doc.transact().encode_state_as_update_v2(&sv);
        e2.push(ms(t.elapsed()));
    }
    // Apply floor: decode + apply the v1 snapshot into an empty yrs doc.
    let mut apply = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let d = trace::new_doc(5);
        d.transact_mut()
            .apply_update(yrs::Update::decode_v1(&v1).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        apply.push(ms(t.elapsed()));
    }

    let check = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let d = ykeep_core::load_full_state(&v1).map_err(|e| e.to_string())?;
            let e = ms(t.elapsed());
            std::hint::black_box(d);
            Ok(e)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let (blob_write, sqlite_commit) = disk_floor(&v1, runs)?;

    // A real relay + embedded store: saves, then a graceful stop leaves snapshot + local log.
    let template = tempfile::tempdir().map_err(|e| e.to_string())?;
    let room = format!("paper{times}x");
    let server = Server::start_in(
        Kind::Ykeep,
        tempfile::tempdir().map_err(|e| e.to_string())?,
        &["--secret", SECRET, "--save-debounce-ms", "3600000"],
    )
    .await?;
    let client = reqwest::Client::new();
    let mut save = Vec::new();
    for _ in 0..runs {
        save.push(ms(post(&client, &server.host, &room, v1.clone()).await?));
    }
    // Connect once (the room loads the snapshot), add one edit that lives only in the local
    // log, then stop gracefully: the relay flushes (save) and compacts its log to one record.
    {
        let mut ws = RawWs::connect(&format!("ws://{}/rooms/document/{room}", server.host))
            .await
            .map_err(|e| e.to_string())?;
        ws.send(&Dialect::YSync.sync(0, &[0]))
            .await
            .map_err(|e| e.to_string())?;
        let extra = trace::new_doc(4242);
        let u = {
            let txt = extra.get_or_insert_text("t");
            let mut txn = extra.transact_mut();
            yrs::Text::insert(&txt, &mut txn, 0, "x");
            txn.encode_update_v1()
        };
        ws.send(&Dialect::YSync.update(&u))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let data = server.data_dir().to_path_buf();
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(server.pid.to_string())
        .status();
    let mut child = server;
    let _ = tokio::time::timeout(Duration::from_secs(30), child.child.wait()).await;
    copy_dir(&data, template.path())?;
    child.stop().await;
    let blob = newest_blob(template.path()).ok_or("no blob file in the store")?;
    let mut raw = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let b = std::fs::read(&blob).map_err(|e| e.to_string())?;
        raw.push(ms(t.elapsed()));
        std::hint::black_box(b);
    }
    let breakdown = room_breakdown(&blob, runs)?;
    let mut cold = Vec::new();
    let mut first = Vec::new();
    let mut minflt = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        copy_dir(template.path(), dir.path())?;
        let s = Server::start_in(
            Kind::Ykeep,
            dir,
            &["--secret", SECRET, "--save-debounce-ms", "3600000"],
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = servers::rss_kb(s.pid);
        // The first connection a fresh process serves pays its own start (threads, the log's
        // first read, allocator growth): an empty room takes it, and is reported apart.
        first.push(ms(cold_start(&s.host, "warmup", false).await?));
        let faults = servers::minor_faults(s.pid);
        cold.push(ms(cold_start(&s.host, &room, true).await?));
        minflt.push(servers::minor_faults(s.pid).saturating_sub(faults) as f64);
        rss.push(servers::rss_kb(s.pid).saturating_sub(before) as f64 / 1024.0);
        s.stop().await;
    }
    let floor_apply_ms = median(&apply);
    let cold_start_ms = median(&cold);
    let cold_floor = floor_apply_ms + breakdown.floor_sync2_ms;
    let fetch_ms = median(&raw);
    let cold_b = ColdBreakdown {
        floor_ms: cold_floor,
        floor_apply_ms,
        fetch_ms,
        process_ms: (cold_start_ms
            - fetch_ms
            - breakdown.log_apply_ms
            - breakdown.checks_merge_ms
            - breakdown.sync2_ms)
            .max(0.0),
        ratio: cold_start_ms / cold_floor,
        empty_room_first_ms: median(&first),
        minor_faults: median(&minflt),
        ..breakdown
    };
    let (encode_ms, save_ms) = (median(&e1), median(&save));
    let mut floor = SaveFloor {
        encode_ms,
        check_ms: median(&check),
        blob_write_ms: median(&blob_write),
        sqlite_commit_ms: median(&sqlite_commit),
        floor_ms: 0.0,
        ykeep_ms: encode_ms + save_ms,
        ratio: 0.0,
    };
    floor.floor_ms =
        floor.encode_ms + floor.check_ms + floor.blob_write_ms + floor.sqlite_commit_ms;
    floor.ratio = floor.ykeep_ms / floor.floor_ms;
    Ok(SizeResult {
        cold: cold_b,
        save_floor: floor,
        times,
        chars,
        v1_bytes: v1.len(),
        v2_bytes: v2.len(),
        encode_v1_ms: median(&e1),
        encode_v2_ms: median(&e2),
        save_ms: median(&save),
        cold_start_ms: median(&cold),
        raw_read_ms: median(&raw),
        apply_floor_ms: median(&apply),
        room_rss_mb: median(&rss),
        runs,
    })
}

/// One blob write with file + directory fsync, and one SQLite commit (WAL, synchronous=FULL),
/// each `runs` times, in a temporary directory on the disk the store's data dir uses.
fn disk_floor(bytes: &[u8], runs: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    use std::io::Write;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let e = |e: std::io::Error| e.to_string();
    let mut write = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let path = dir.path().join(format!("b{i}.tmp"));
        let mut f = std::fs::File::create(&path).map_err(e)?;
        f.write_all(bytes).map_err(e)?;
        f.sync_all().map_err(e)?;
        std::fs::File::open(dir.path())
            .map_err(e)?
            .sync_all()
            .map_err(e)?;
        write.push(ms(t.elapsed()));
    }
    let q = |e: rusqlite::Error| e.to_string();
    let mut conn = rusqlite::Connection::open(dir.path().join("db.sqlite")).map_err(q)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(q)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(q)?;
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, snapshot TEXT, saved_at INTEGER); INSERT INTO t VALUES (1, 'x', 0);")
        .map_err(q)?;
    let mut commit = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let tx = conn.transaction().map_err(q)?;
        tx.execute(
            "UPDATE t SET snapshot = ?1, saved_at = ?2 WHERE id = 1",
            rusqlite::params![format!("s{i}"), i as i64],
        )
        .map_err(q)?;
        tx.commit().map_err(q)?;
        commit.push(ms(t.elapsed()));
    }
    Ok((write, commit))
}

/// The room's part of a cold start, in process on the blob the store holds and the log record
/// the relay compacted to (the same state): the floor's SyncStep2 encode, the log apply, the
/// rest of `Room::open` (checks and store merge), the SyncStep2 encode of the room's doc.
fn room_breakdown(blob: &Path, runs: usize) -> Result<ColdBreakdown, String> {
    use ykeep_room::{
        LogRecord, Purpose, Room, RoomConfig, RoomRecords, StoredSnapshot, record_format,
    };
    let bytes = std::fs::read(blob).map_err(|e| e.to_string())?;
    let id = blob
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("blob file name")?
        .to_owned();
    let marker = ykeep_core::DurabilityMarker::of_update(&bytes)
        .map_err(|e| e.to_string())?
        .encode();
    let records = RoomRecords {
        seq: 2,
        saved_seq: 2,
        store_snapshot_id: Some(id.clone()),
        store_marker: Some(marker),
        saved_at: Some(1),
        records: vec![LogRecord {
            id: 1,
            format: record_format::SNAPSHOT,
            data: bytes.clone(),
        }],
    };
    let name = ykeep_core::RoomName::parse("document/bench").map_err(|e| e.to_string())?;
    let config = RoomConfig {
        policy: ykeep_core::SchedulePolicy {
            save_interval_ms: 30_000,
            debounce_ms: 7_000,
        },
        poll_every_ms: 0,
        max_snapshot_bytes: 64 << 20,
    };
    let (mut floor_sync2, mut log_apply, mut open, mut sync2) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let d = trace::new_doc(5);
        d.transact_mut()
            .apply_update(yrs::Update::decode_v1(&bytes).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        std::hint::black_box(
            d.transact()
                .encode_state_as_update_v1(&StateVector::default()),
        );
        floor_sync2.push(ms(t.elapsed()));

        let t = Instant::now();
        let d = yrs::Doc::new();
        ykeep_room::apply_records(&d, &records.records, &name);
        log_apply.push(ms(t.elapsed()));

        let snapshot = StoredSnapshot {
            bytes: bytes.clone(),
            snapshot_id: id.clone(),
            saved_at: Some(1),
        };
        let t = Instant::now();
        let mut room = Room::open(
            name.clone(),
            config,
            records.clone(),
            Ok(Some(snapshot)),
            Purpose::Client,
            0,
        );
        let step = room.flush(0);
        open.push(ms(t.elapsed()));
        std::hint::black_box(step);
        // The full state, as a joiner's SyncStep2 carries it (a `/state` query: the same encode).
        let t = Instant::now();
        room.handle(
            ykeep_room::Event::StateQuery {
                query: 1,
                sv: None,
                unless: None,
            },
            1,
        );
        let effects = room.flush(1).durable();
        sync2.push(ms(t.elapsed()));
        let full = effects.iter().any(|e| {
            matches!(e, ykeep_room::Effect::Reply { reply, .. }
                if matches!(&**reply, ykeep_room::Reply::State(Ok(s)) if s.len() >= bytes.len() / 2))
        });
        if !full {
            return Err("the room opened on the snapshot answered no full state".into());
        }
    }
    let log_apply_ms = median(&log_apply);
    Ok(ColdBreakdown {
        floor_ms: 0.0,
        floor_apply_ms: 0.0,
        floor_sync2_ms: median(&floor_sync2),
        fetch_ms: 0.0,
        log_apply_ms,
        checks_merge_ms: (median(&open) - log_apply_ms).max(0.0),
        sync2_ms: median(&sync2),
        process_ms: 0.0,
        ratio: 0.0,
        empty_room_first_ms: 0.0,
        minor_faults: 0.0,
    })
}
