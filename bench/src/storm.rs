//! `ykeep-bench storm`: a join storm. `--clients` raw sockets (default 100) open one room holding
//! the N× automerge-paper document (default 10×, 2.2 MB of state) at the same moment.
//!
//! Per server and run (fresh process, runs interleaved across servers):
//! 1. A loader connects, syncs, sends the whole state as one Update and stays connected (a live
//!    room with one editor); a checker then joins and its SyncStep2 must decode to the trace's
//!    text, N times: the room holds the document before the storm starts.
//! 2. The server's peak RSS is reset (`5` into `/proc/<pid>/clear_refs`) and its RSS and CPU
//!    read.
//! 3. Every joiner task waits on one barrier; released together, each connects, sends SyncStep1
//!    with an empty state vector and reads until its SyncStep2 has arrived. Joiners count the
//!    SyncStep2 bytes and hash them; joiner 0 keeps its copy, which is applied with yrs after the
//!    clock stops (the text must be the document's), and every other joiner's hash must equal
//!    joiner 0's. So the load generator does no Yjs work while the clock runs.
//! 4. Reported: the time from the release until the last joiner has its SyncStep2, the server's
//!    peak RSS since the reset (and its growth over the RSS before the storm), and its CPU
//!    seconds over the storm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Barrier;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Transact, Update};

use crate::proto::Dialect;
use crate::rawws::RawWs;
use crate::servers::{self, Kind, Server};
use crate::stats::median;
use crate::{Args, report, trace};

const TIMEOUT: Duration = Duration::from_secs(180);

/// What one joiner saw: when its SyncStep2 was complete, its size and hash (and, for joiner 0,
/// the bytes).
struct Joined {
    done: Instant,
    bytes: usize,
    hash: u64,
    kept: Option<Vec<u8>>,
}

struct RunResult {
    all_synced_ms: f64,
    first_synced_ms: f64,
    peak_rss_mb: f64,
    rss_growth_mb: f64,
    rss_before_mb: f64,
    cpu_s: f64,
    step2_bytes: usize,
}

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Connects, sends the dialect's hello and a SyncStep1 with an empty state vector, and reads
/// until the SyncStep2. `keep`: return the SyncStep2's bytes too.
async fn join(url: &str, d: &Dialect, keep: bool) -> std::io::Result<(RawWs, Joined)> {
    let mut ws = RawWs::connect(url).await?;
    if let Some(h) = d.hello() {
        ws.send(&h).await?;
    }
    ws.send(&d.sync(0, &[0])).await?;
    let deadline = Instant::now() + TIMEOUT;
    let mut got: Option<Joined> = None;
    while got.is_none() {
        let alive = tokio::time::timeout_at(
            deadline.into(),
            ws.read_some(|m, now| {
                if got.is_some() {
                    return;
                }
                if let Some((1, payload)) = d.parse_sync(m) {
                    got = Some(Joined {
                        done: now,
                        bytes: payload.len(),
                        hash: fnv(payload),
                        kept: keep.then(|| payload.to_vec()),
                    });
                }
            }),
        )
        .await
        .map_err(|_| std::io::Error::other("no SyncStep2 in time"))??;
        if !alive {
            return Err(std::io::Error::other("closed before SyncStep2"));
        }
    }
    Ok((ws, got.expect("set above")))
}

fn text_of_update(bytes: &[u8]) -> Result<String, String> {
    let doc = trace::new_doc(99);
    let update = Update::decode_v1(bytes).map_err(|e| format!("SyncStep2 does not decode: {e}"))?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| format!("SyncStep2 does not apply: {e}"))?;
    Ok(trace::text_of(&doc))
}

async fn run_once(
    kind: Kind,
    state: &[u8],
    want: &str,
    clients: usize,
) -> Result<RunResult, String> {
    let server = Server::start(kind).await?;
    let room = "storm";
    let (url, d) = server.room(room);
    // 1. Load the document; the loader stays in the room.
    let (mut loader, _) = join(&url, &d, false)
        .await
        .map_err(|e| format!("{}: loader: {e}", kind.name()))?;
    loader
        .send(&d.update(state))
        .await
        .map_err(|e| format!("{}: loader send: {e}", kind.name()))?;
    let loader_drain =
        tokio::spawn(async move { while let Ok(true) = loader.read_some(|_, _| {}).await {} });
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (ws, seen) = join(&url, &d, true)
            .await
            .map_err(|e| format!("{}: checker: {e}", kind.name()))?;
        drop(ws);
        if text_of_update(seen.kept.as_deref().unwrap_or_default())? == want {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{}: the room never held the document", kind.name()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the checker's leave settle before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 2. Baseline.
    std::fs::write(format!("/proc/{}/clear_refs", server.pid), "5")
        .map_err(|e| format!("resetting the peak RSS of {}: {e}", kind.name()))?;
    let rss_before = servers::rss_kb(server.pid);
    let cpu_before = servers::cpu_seconds(server.pid);
    // 3. The storm.
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let (url, d, barrier) = (url.clone(), d.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            // The socket stays open until every joiner is done: leaving early would let the
            // server free a reply the others still wait for.
            join(&url, &d, i == 0).await
        }));
    }
    barrier.wait().await;
    let t0 = Instant::now();
    let mut joined = Vec::with_capacity(clients);
    let mut sockets = Vec::with_capacity(clients);
    for t in tasks {
        let (ws, j) = t
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{}: joiner: {e}", kind.name()))?;
        sockets.push(ws);
        joined.push(j);
    }
    let last = joined.iter().map(|j| j.done).max().expect("joiners");
    let first = joined.iter().map(|j| j.done).min().expect("joiners");
    let cpu_s = servers::cpu_seconds(server.pid) - cpu_before;
    let peak_kb = servers::peak_rss_kb(server.pid);
    drop(sockets);
    loader_drain.abort();
    server.stop().await;
    // 4. Checks, off the clock.
    let kept = joined[0].kept.as_deref().expect("joiner 0 keeps its bytes");
    if text_of_update(kept)? != want {
        return Err(format!(
            "{}: a joiner's SyncStep2 is not the document",
            kind.name()
        ));
    }
    let (bytes, hash) = (joined[0].bytes, joined[0].hash);
    if let Some(i) = joined
        .iter()
        .position(|j| j.bytes != bytes || j.hash != hash)
    {
        return Err(format!(
            "{}: joiner {i} got another SyncStep2 ({} bytes) than joiner 0 ({bytes})",
            kind.name(),
            joined[i].bytes
        ));
    }
    Ok(RunResult {
        all_synced_ms: (last - t0).as_secs_f64() * 1000.0,
        first_synced_ms: (first - t0).as_secs_f64() * 1000.0,
        peak_rss_mb: peak_kb as f64 / 1024.0,
        rss_growth_mb: peak_kb.saturating_sub(rss_before) as f64 / 1024.0,
        rss_before_mb: rss_before as f64 / 1024.0,
        cpu_s,
        step2_bytes: bytes,
    })
}

/// The N× document's v1 state, cached under the Cargo target folder (building 10× takes about
/// a minute): keyed by the trace file's size and modification time.
fn state_of(tr: &trace::Trace, times: usize) -> Result<Vec<u8>, String> {
    let file = trace::data_dir().join("automerge-paper.json.gz");
    let meta = std::fs::metadata(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| servers::repo_root().join("target"));
    let cache = target.join("bench-cache").join(format!(
        "automerge-paper-{times}x-{}-{mtime}.v1",
        meta.len()
    ));
    if let Ok(bytes) = std::fs::read(&cache) {
        return Ok(bytes);
    }
    eprintln!(
        "building the {times}x document (cached in {})",
        cache.display()
    );
    let doc = trace::replay(tr, times);
    let state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&cache, &state);
    Ok(state)
}

pub async fn run(a: &Args) -> Result<(), String> {
    let runs: usize = a.get("runs", 3)?;
    let clients: usize = a.get("clients", 100)?;
    let times: usize = a.get("size", 10)?;
    let kinds = a.servers("ykeep,y-websocket,hocuspocus")?;
    let tr = trace::load("automerge-paper")?;
    let state = state_of(&tr, times)?;
    let want = {
        let t = text_of_update(&state)?;
        if t.len() != tr.end.len() * times {
            return Err(
                "the cached document is not the trace's (delete target/bench-cache)".into(),
            );
        }
        t
    };
    let sv_len = Update::decode_v1(&state)
        .map_err(|e| e.to_string())?
        .state_vector()
        .encode_v1()
        .len();
    eprintln!(
        "storm: {clients} joiners, the {times}x document ({} bytes of v1 state, sv {sv_len} bytes), {runs} runs",
        state.len()
    );
    let mut results: Vec<(Kind, Vec<RunResult>)> = kinds.iter().map(|&k| (k, Vec::new())).collect();
    for run in 0..runs {
        for (kind, rs) in results.iter_mut() {
            let r = run_once(*kind, &state, &want, clients).await?;
            eprintln!(
                "run {run} {:<12} all synced {:8.1} ms (first {:7.1}), peak RSS {:7.1} MB (+{:6.1}), CPU {:5.2} s, SyncStep2 {} B",
                kind.name(),
                r.all_synced_ms,
                r.first_synced_ms,
                r.peak_rss_mb,
                r.rss_growth_mb,
                r.cpu_s,
                r.step2_bytes
            );
            rs.push(r);
        }
    }
    let med =
        |rs: &[RunResult], f: fn(&RunResult) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
    let summary: Vec<(Kind, [f64; 6])> = results
        .iter()
        .map(|(k, rs)| {
            (
                *k,
                [
                    med(rs, |r| r.all_synced_ms),
                    med(rs, |r| r.first_synced_ms),
                    med(rs, |r| r.peak_rss_mb),
                    med(rs, |r| r.rss_growth_mb),
                    med(rs, |r| r.cpu_s),
                    med(rs, |r| r.rss_before_mb),
                ],
            )
        })
        .collect();
    let ykeep = summary
        .iter()
        .find(|(k, _)| *k == Kind::Ykeep)
        .map(|(_, s)| *s);
    let best_peer = |i: usize| {
        summary
            .iter()
            .filter(|(k, _)| *k != Kind::Ykeep)
            .map(|(_, s)| s[i])
            .fold(f64::INFINITY, f64::min)
    };
    let mut md = format!(
        "# Join storm (`scripts/bench storm`)\n\n{}; {}; {clients} raw-socket joiners released \
         together into one live room holding the {times}× automerge-paper document ({} bytes of \
         v1 state); median of {runs} interleaved runs, a fresh server process per run.\n\n\
         | server | all synced ms | first synced ms | RSS before MB | peak RSS MB | RSS growth MB | CPU s | \
         this ÷ best peer (time) | this ÷ best peer (peak RSS) |\n|---|---|---|---|---|---|---|---|---|\n",
        report::now_utc(),
        report::machine(),
        state.len()
    );
    let (bt, bm) = (best_peer(0), best_peer(2));
    for (k, s) in &summary {
        md += &format!(
            "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} |\n",
            k.name(),
            s[0],
            s[1],
            s[5],
            s[2],
            s[3],
            s[4],
            s[0] / bt,
            s[2] / bm
        );
    }
    if let Some(y) = ykeep.filter(|_| bt.is_finite()) {
        md += &format!(
            "\nykeep against the best peer: {:.2}× the time until all {clients} are synced, \
             {:.2}× the peak RSS (target: at most 0.33× on both).\n",
            y[0] / bt,
            y[2] / bm
        );
    }
    md += "\nPeak RSS = `VmHWM` after a reset (`/proc/<pid>/clear_refs`) just before the storm: \
           the server's whole resident set at its highest during the storm; RSS before = the server with \
           the document loaded and its editor connected, just before the release. Servers: ";
    md += &kinds
        .iter()
        .map(|k| format!("{} = {}", k.name(), k.describe()))
        .collect::<Vec<_>>()
        .join("; ");
    md += ".\n\nTraces: automerge-paper by Martin Kleppmann (josephg/editing-traces, from \
           automerge/automerge-perf), licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).\n";
    println!("{md}");
    let rows: Vec<_> = results
        .iter()
        .map(|(k, rs)| {
            json!({
                "server": k.name(),
                "runs": rs.iter().map(|r| json!({
                    "all_synced_ms": r.all_synced_ms, "first_synced_ms": r.first_synced_ms,
                    "peak_rss_mb": r.peak_rss_mb, "rss_growth_mb": r.rss_growth_mb, "rss_before_mb": r.rss_before_mb,
                    "cpu_s": r.cpu_s, "step2_bytes": r.step2_bytes,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let out = json!({"when": report::now_utc(), "machine": report::machine(), "clients": clients,
        "size": times, "state_bytes": state.len(), "runs": runs, "servers": rows});
    report::write(
        "storm",
        "json",
        &serde_json::to_string_pretty(&out).unwrap(),
    );
    report::write("storm", "md", &md);
    report::update_readme("storm", &md);
    Ok(())
}
