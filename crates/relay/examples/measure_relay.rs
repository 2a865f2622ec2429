//! Prints the relay's figures (build with `--release`):
//!   cargo run --release -p ykeep-relay --example measure_relay
//!
//! 1. updates/s through one room, 1 writer + 2 readers, durable log on, automerge-paper trace
//!    (updates pre-encoded before timing; raw y-sync frames over tokio-tungstenite; readers
//!    apply and their final text is checked against `endContent`);
//! 2. cold start of that room from its uncompacted log, save time and size, cold start from the
//!    compacted log + store snapshot;
//! 3. RSS of a relay process holding 1,000 idle rooms (one client each, ~1 KB doc).
//!
//! Trace path: env YKEEP_BENCH_DATA (default ../shared/bench-data from the repo root). The
//! relay binary for step 3: env YKEEP_RELAY_BIN (default target/release/ykeep-relay).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use ykeep_relay::Relay;
use ykeep_relay::config::Config;
use ykeep_relay::protocol::{self, Frame};
use ykeep_relay::store_client::HttpStore;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, OffsetKind, Options, ReadTxn, Text, Transact, Update};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn bench_dir() -> PathBuf {
    std::env::var_os("YKEEP_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench-data")
        })
}

struct Trace {
    updates: Vec<Vec<u8>>,
    end: String,
    writer_clock: u32,
}

fn load_trace() -> Option<Trace> {
    let path = bench_dir().join("automerge-paper.json.gz");
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("trace not readable at {}", path.display());
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let end = json["endContent"].as_str()?.to_owned();
    let doc = Doc::with_options(Options {
        client_id: yrs::block::ClientID::new(1),
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    });
    let text = doc.get_or_insert_text("t");
    let captured = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = captured.clone();
    doc.observe_update_v1("capture", move |_, e| {
        sink.lock().unwrap().push(e.update.clone())
    })
    .ok()?;
    for txn in json["txns"].as_array()? {
        let mut t = doc.transact_mut();
        for patch in txn["patches"].as_array()? {
            let pos = patch[0].as_u64()? as u32;
            let del = patch[1].as_u64()? as u32;
            let ins = patch[2].as_str()?;
            if del > 0 {
                text.remove_range(&mut t, pos, del);
            }
            if !ins.is_empty() {
                text.insert(&mut t, pos, ins);
            }
        }
    }
    assert_eq!(
        text.get_string(&doc.transact()),
        end,
        "trace replay mismatch"
    );
    let writer_clock = doc
        .transact()
        .state_vector()
        .get(&yrs::block::ClientID::new(1));
    let updates = std::mem::take(&mut *captured.lock().unwrap());
    Some(Trace {
        updates,
        end,
        writer_clock,
    })
}

async fn connect(url: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws.send(Message::Binary(protocol::encode_step1(&[0]).into()))
        .await
        .unwrap();
    ws
}

/// Reads until the doc holds the writer's last clock; returns the doc and when that happened.
async fn read_all(mut ws: Ws, target_clock: u32) -> (Doc, Instant, u64) {
    let doc = Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    });
    let writer = yrs::block::ClientID::new(1);
    let mut frames = 0u64;
    loop {
        let msg = ws
            .next()
            .await
            .expect("socket ended")
            .expect("socket error");
        let Message::Binary(data) = msg else { continue };
        match protocol::parse(&data).unwrap() {
            Frame::SyncStep2 { update } | Frame::Update { update, .. } => {
                frames += 1;
                let u = Update::decode_v1(&data[update]).unwrap();
                doc.transact_mut().apply_update(u).unwrap();
                if doc.transact().state_vector().get(&writer) >= target_clock {
                    return (doc, Instant::now(), frames);
                }
            }
            _ => {}
        }
    }
}

/// The embedded store (crates/store) on its own port, as `relay --store-url` would use it.
async fn start_store(dir: &std::path::Path) -> (HttpStore, tokio::task::JoinHandle<()>) {
    let store = ykeep_store::EmbeddedStore::open(ykeep_store::StoreConfig {
        data_dir: dir.join("store"),
        secret: "measure-secret".into(),
        token_key: "measure-key".into(),
        auto_create: true,
        max_snapshot_bytes: 64 * 1024 * 1024,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = store.router();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (
        HttpStore::new(&url, "measure-secret", Duration::from_secs(10)).unwrap(),
        server,
    )
}

async fn start(
    dir: &std::path::Path,
    store: Arc<HttpStore>,
    debounce: u64,
) -> (Relay, String, tokio::task::JoinHandle<()>) {
    let mut cfg = Config::for_tests(dir.to_path_buf());
    cfg.dev_allow_all = true;
    cfg.save_debounce_ms = debounce;
    cfg.save_interval_ms = 3_600_000;
    let relay = Relay::open(cfg, store).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = relay.router();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (relay, format!("ws://{addr}/rooms/document/paper"), server)
}

async fn synced_in(url: &str) -> (Duration, usize) {
    let t0 = Instant::now();
    let mut ws = connect(url).await;
    loop {
        let Message::Binary(data) = ws.next().await.unwrap().unwrap() else {
            continue;
        };
        if let Ok(Frame::SyncStep2 { update }) = protocol::parse(&data) {
            let elapsed = t0.elapsed();
            let doc = Doc::with_options(Options {
                offset_kind: OffsetKind::Utf16,
                ..Options::default()
            });
            doc.transact_mut()
                .apply_update(Update::decode_v1(&data[update]).unwrap())
                .unwrap();
            let len = doc
                .get_or_insert_text("t")
                .get_string(&doc.transact())
                .chars()
                .count();
            let _ = ws.close(None).await;
            return (elapsed, len);
        }
    }
}

fn metric(relay: &Relay, name: &str) -> u64 {
    let text = relay.shared().metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("ykeep_{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn throughput_and_saves() {
    let Some(trace) = load_trace() else {
        println!(
            "SKIP throughput/save/cold-start: automerge-paper trace absent (set YKEEP_BENCH_DATA)"
        );
        return;
    };
    let n = trace.updates.len();
    let bytes: usize = trace.updates.iter().map(Vec::len).sum();
    println!("automerge-paper: {n} updates pre-encoded, {bytes} bytes");
    let frames: Vec<Vec<u8>> = trace
        .updates
        .iter()
        .map(|u| protocol::encode_update(u))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (store, _store_server) = start_store(dir.path()).await;
    let store = Arc::new(store);
    let (relay, url, server) = start(dir.path(), store.clone(), 3_600_000).await;
    let r1 = connect(&url).await;
    let r2 = connect(&url).await;
    let mut writer = connect(&url).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let clock = trace.writer_clock;
    let reader1 = tokio::spawn(read_all(r1, clock));
    let reader2 = tokio::spawn(read_all(r2, clock));
    let t0 = Instant::now();
    let send = tokio::spawn(async move {
        for f in frames {
            writer.feed(Message::Binary(f.into())).await.unwrap();
        }
        writer.flush().await.unwrap();
        writer
    });
    let (d1, t1, f1) = reader1.await.unwrap();
    let (d2, t2, f2) = reader2.await.unwrap();
    let writer = send.await.unwrap();
    let last = t1.max(t2) - t0;
    for d in [&d1, &d2] {
        assert_eq!(
            d.get_or_insert_text("t").get_string(&d.transact()),
            trace.end,
            "reader text"
        );
    }
    println!(
        "throughput: {n} updates to 2 readers in {:.0} ms = {:.0} updates/s (reader frames {f1}/{f2}; log commits {}; slow-reader closes {})",
        last.as_secs_f64() * 1e3,
        n as f64 / last.as_secs_f64(),
        metric(&relay, "log_commits_total"),
        metric(&relay, "slow_reader_closes_total"),
    );
    drop(writer);
    server.abort();
    drop(relay);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Cold start from the uncompacted log (as after a kill -9 before any save).
    let (relay, url, server) = start(dir.path(), store.clone(), 0).await;
    let (cold, len) = synced_in(&url).await;
    println!(
        "cold start from the uncompacted log (one record per batch): {:.1} ms to SyncStep2, {len} chars",
        cold.as_secs_f64() * 1e3
    );
    // The client left: debounce 0 → save.
    while metric(&relay, "saves_ok_total") < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let save_us = metric(&relay, "save_seconds_sum_micros");
    println!(
        "save: {} bytes (Yjs v1 full state), {:.1} ms (encode + marker + HTTP save to the embedded store + log compaction)",
        metric(&relay, "saved_bytes_total"),
        save_us as f64 / 1e3
    );
    while metric(&relay, "rooms") > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (cold, len) = synced_in(&url).await;
    println!(
        "cold start from the compacted log + store snapshot: {:.1} ms to SyncStep2, {len} chars",
        cold.as_secs_f64() * 1e3
    );
    server.abort();
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn idle_rooms_rss() {
    let bin = std::env::var_os("YKEEP_RELAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/ykeep-relay")
        });
    if !bin.exists() {
        println!(
            "SKIP idle-room RSS: {} not built (cargo build --release -p ykeep-relay)",
            bin.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(&bin)
        .args([
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--store-url",
            "http://127.0.0.1:9",
            "--secret",
            "x",
        ])
        .args([
            "--dev-allow-all",
            "--save-debounce-ms",
            "3600000",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("YKEEP_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
        .await
        .unwrap();
    let host = line
        .trim()
        .trim_start_matches("ykeep-relay listening on http://")
        .to_owned();
    let pid = child.id().unwrap();
    let before = rss_kb(pid);
    let text: String = "lorem ipsum dolor sit amet ".repeat(38); // ~1 KB
    let mut sockets = Vec::with_capacity(1000);
    for i in 0..1000 {
        let url = format!("ws://{host}/rooms/document/idle{i}");
        let mut ws = connect(&url).await;
        let doc = Doc::new();
        let update = {
            let t = doc.get_or_insert_text("t");
            let mut txn = doc.transact_mut();
            t.insert(&mut txn, 0, &text);
            txn.encode_update_v1()
        };
        ws.send(Message::Binary(protocol::encode_update(&update).into()))
            .await
            .unwrap();
        sockets.push(ws);
    }
    // Wait until every room answered (each sends SyncStep1 + SyncStep2 to its client).
    for ws in sockets.iter_mut() {
        loop {
            let Message::Binary(data) = ws.next().await.unwrap().unwrap() else {
                continue;
            };
            if matches!(protocol::parse(&data), Ok(Frame::SyncStep2 { .. })) {
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kb(pid);
    println!(
        "idle rooms: relay RSS {:.1} MB before, {:.1} MB with 1,000 rooms (1 client, ~1 KB doc each) = {:.1} KB/room",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - before) as f64 / 1000.0
    );
    drop(sockets);
    let _ = child.kill().await;
}

#[tokio::main]
async fn main() {
    throughput_and_saves().await;
    idle_rooms_rss().await;
}
