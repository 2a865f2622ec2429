//! Save and load latency and throughput of the embedded store for the automerge-paper document.
//!
//! Run: `cargo run --release -p ykeep-store --example measure`
//!
//! Builds the document by replaying `automerge-paper.json.gz` (259,778 single-character edits,
//! Martin Kleppmann, CC BY 4.0) into yrs, then talks to a real `EmbeddedStore` over a real
//! socket on 127.0.0.1 with reqwest, exactly as the relay does. Trace path: env
//! `YKEEP_BENCH_DATA` (default `../shared/bench-data` next to the repo); without it the example
//! says so and exits. Prints numbers; asserts nothing about time.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ykeep_core::DurabilityMarker;
use ykeep_core::{ResourceId, ResourceKind};
use ykeep_store::{EmbeddedStore, StoreConfig};
use yrs::{Doc, GetString, OffsetKind, Options, ReadTxn, StateVector, Text, Transact};

const SECRET: &str = "measure-secret";
const SAMPLES: usize = 15;
const THROUGHPUT_OPS: usize = 40;

fn bench_dir() -> PathBuf {
    std::env::var_os("YKEEP_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench-data")
        })
}

/// Replays the trace; returns the full state as a Yjs v1 update and the final text length.
fn build_paper() -> Result<(Vec<u8>, usize), String> {
    let path = bench_dir().join("automerge-paper.json.gz");
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let trace: serde_json::Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    let end = trace["endContent"].as_str().ok_or("no endContent")?;
    let txns = trace["txns"].as_array().ok_or("no txns")?;

    // Trace positions count code points; yrs counts UTF-16 units. They agree while the text
    // holds only BMP characters; otherwise a shadow copy converts positions.
    let all_bmp = json.chars().all(|c| c.len_utf16() == 1);
    let mut shadow: Vec<char> = Vec::new();
    let doc = Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::with_client_id(yrs::block::ClientID::new(1))
    });
    let text = doc.get_or_insert_text("t");
    for txn in txns {
        let mut t = doc.transact_mut();
        for patch in txn["patches"].as_array().ok_or("bad txn")? {
            let pos = patch[0].as_u64().ok_or("bad pos")? as usize;
            let del = patch[1].as_u64().ok_or("bad del")? as usize;
            let ins = patch[2].as_str().ok_or("bad insert")?;
            let (at, del_units) = if all_bmp {
                (pos as u32, del as u32)
            } else {
                let units = |s: &[char]| s.iter().map(|c| c.len_utf16() as u32).sum::<u32>();
                let at = units(&shadow[..pos]);
                let d = units(&shadow[pos..pos + del]);
                shadow.splice(pos..pos + del, ins.chars());
                (at, d)
            };
            if del_units > 0 {
                text.remove_range(&mut t, at, del_units);
            }
            if !ins.is_empty() {
                text.insert(&mut t, at, ins);
            }
        }
    }
    let got = text.get_string(&doc.transact());
    if got != end {
        return Err("replaying the trace did not give endContent".into());
    }
    let state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    Ok((state, end.chars().count()))
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn summary(label: &str, xs: Vec<Duration>) {
    let (min, max) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
    println!(
        "{label:<44} median {:>10}  min {:>10}  max {:>10}  (n={})",
        ms(median(xs.clone())),
        ms(min),
        ms(max),
        xs.len()
    );
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn save(&self, id: &str, body: &[u8]) {
        let r = self
            .http
            .post(format!("{}/snapshots/document/{id}", self.base))
            .bearer_auth(SECRET)
            .body(body.to_vec())
            .send()
            .await
            .expect("save request");
        assert_eq!(
            r.status(),
            200,
            "save: {}",
            r.text().await.unwrap_or_default()
        );
    }

    async fn load(&self, id: &str) -> usize {
        let r = self
            .http
            .get(format!("{}/snapshots/document/{id}", self.base))
            .bearer_auth(SECRET)
            .send()
            .await
            .expect("load request");
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("load body").len()
    }
}

#[tokio::main]
async fn main() {
    let t0 = Instant::now();
    let (state, chars) = match build_paper() {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "skipped: the automerge-paper trace is not readable ({e}); set YKEEP_BENCH_DATA"
            );
            return;
        }
    };
    println!(
        "automerge-paper: {chars} chars, full state {} bytes (Yjs v1), replayed in {}",
        state.len(),
        ms(t0.elapsed())
    );
    let mut markers = Vec::new();
    let mut marker_len = 0;
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let marker = DurabilityMarker::of_update(&state).expect("marker");
        markers.push(t.elapsed());
        marker_len = marker.encode().len();
    }
    summary("body check: decode + apply + Yjs snapshot", markers);
    println!("marker (encoded Yjs snapshot) kept per blob row: {marker_len} bytes");

    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(StoreConfig {
        data_dir: dir.path().join("store"),
        secret: SECRET.into(),
        token_key: "measure-token-key".into(),
        auto_create: false,
        max_snapshot_bytes: StoreConfig::DEFAULT_MAX_SNAPSHOT_BYTES,
    })
    .await
    .expect("open store");
    let rows = ["paper", "paper-1", "paper-2", "paper-3", "paper-4"];
    for id in rows {
        store
            .create(ResourceKind::Document, ResourceId::parse(id).unwrap())
            .await
            .expect("create row");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = store.standalone_router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = Client {
        http: reqwest::Client::new(),
        base,
    };

    // Warm up: first save (no snapshot yet), first load.
    client.save("paper", &state).await;
    client.load("paper").await;

    // Every save below carries no precondition: the store checks that the body contains the
    // current snapshot (it does: same state), writes a new blob, switches the row, drops the old.
    let mut saves = Vec::new();
    for _ in 0..SAMPLES {
        let t = Instant::now();
        client.save("paper", &state).await;
        saves.push(t.elapsed());
    }
    summary("save latency (HTTP, sequential)", saves);

    let mut loads = Vec::new();
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let n = client.load("paper").await;
        loads.push(t.elapsed());
        assert_eq!(n, state.len());
    }
    summary("load latency (HTTP, sequential)", loads);

    let t = Instant::now();
    for _ in 0..THROUGHPUT_OPS {
        client.save("paper", &state).await;
    }
    let e = t.elapsed();
    println!(
        "save throughput, 1 client, 1 row:            {:.1} saves/s ({THROUGHPUT_OPS} saves in {})",
        THROUGHPUT_OPS as f64 / e.as_secs_f64(),
        ms(e)
    );

    let clients = 4;
    for id in &rows[1..] {
        client.save(id, &state).await;
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for id in &rows[1..=clients] {
        let (http, base, body, id) = (client.http.clone(), client.base.clone(), state.clone(), *id);
        tasks.push(tokio::spawn(async move {
            let c = Client { http, base };
            for _ in 0..THROUGHPUT_OPS / clients {
                c.save(id, &body).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let e = t.elapsed();
    println!(
        "save throughput, {clients} clients, {clients} rows:          {:.1} saves/s ({THROUGHPUT_OPS} saves in {})",
        THROUGHPUT_OPS as f64 / e.as_secs_f64(),
        ms(e)
    );

    let load_ops = THROUGHPUT_OPS * 5;
    let t = Instant::now();
    for _ in 0..load_ops {
        client.load("paper").await;
    }
    let e = t.elapsed();
    println!(
        "load throughput, 1 client:                   {:.1} loads/s ({load_ops} loads in {})",
        load_ops as f64 / e.as_secs_f64(),
        ms(e)
    );
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base) = (client.http.clone(), client.base.clone());
        tasks.push(tokio::spawn(async move {
            let c = Client { http, base };
            for _ in 0..load_ops / clients {
                c.load("paper").await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let e = t.elapsed();
    println!(
        "load throughput, {clients} clients:                  {:.1} loads/s ({load_ops} loads in {})",
        load_ops as f64 / e.as_secs_f64(),
        ms(e)
    );
    let files = std::fs::read_dir(dir.path().join("store/blobs"))
        .map(|d| d.count())
        .unwrap_or(0);
    println!(
        "blob files after all saves: {files} (one per row with a snapshot: {})",
        rows.len()
    );
    println!(
        "machine: {} cores shared with other builds; numbers are indicative",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
}
