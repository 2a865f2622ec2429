//! Save and cold start of one N× document (the trace replayed N times into one doc):
//! full-state encode time, v1/v2 sizes, save time (POST to the embedded store of a real
//! `ykeep-relay serve`), cold start of the room on a fresh relay from snapshot + local log (WS
//! connect to SyncStep2 received), the raw disk read of the same bytes (floor), and the relay's
//! RSS growth for the loaded room.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
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

async fn cold_start(host: &str, room: &str) -> Result<Duration, String> {
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
    if len < 16 {
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
    use yrs::updates::decoder::Decode;

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
    let mut cold = Vec::new();
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
        cold.push(ms(cold_start(&s.host, &room).await?));
        rss.push(servers::rss_kb(s.pid).saturating_sub(before) as f64 / 1024.0);
        s.stop().await;
    }
    Ok(SizeResult {
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
