//! Relay throughput and echo latency: one writer sends pre-encoded updates as raw y-sync frames
//! over tokio-tungstenite as fast as the socket drains (or at a fixed rate); R readers on raw
//! sockets stamp when each message arrives. Reader 0 keeps the bytes; after the run it applies
//! them with yrs and checks the text, and every reader's stream must hash equal to reader 0's.
//!
//! Which update a message carries: a message's progress is the writer's highest clock seen so
//! far plus the number of deleted units seen so far; update i is delivered by the first message
//! whose progress reaches the writer's own progress after update i. This holds when a server
//! merges several updates into one message (Hocuspocus does, per event-loop turn).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, Transact, Update};

use crate::proto::Dialect;
use crate::rawws::RawWs;
use crate::servers::{self, Server};
use crate::trace::{self, WRITER_CLIENT};

/// Progress units in one update: (highest writer clock + 1, deleted units).
pub fn progress_of(update: &[u8]) -> (u32, u64) {
    let Ok(u) = Update::decode_v1(update) else {
        return (0, 0);
    };
    // `Update::state_vector` only counts blocks that start at clock 0: use the insertion set.
    let writer = yrs::block::ClientID::new(WRITER_CLIENT);
    let mut clock = 0u32;
    for (client, ranges) in u.insertions(true).iter() {
        if *client == writer {
            for r in ranges.iter() {
                clock = clock.max(r.end);
            }
        }
    }
    let mut del = 0u64;
    for (_, ranges) in u.delete_set().iter() {
        for r in ranges.iter() {
            del += (r.end - r.start) as u64;
        }
    }
    (clock, del)
}

pub struct Workload {
    pub frames: Vec<Vec<u8>>,
    /// Cumulative progress after each update.
    pub progress: Vec<u64>,
    pub expected_text: String,
}

impl Workload {
    pub fn new(updates: &[Vec<u8>], dialect: &Dialect) -> Workload {
        let mut clock = 0u32;
        let mut del = 0u64;
        let mut progress = Vec::with_capacity(updates.len());
        for u in updates {
            let (c, d) = progress_of(u);
            clock = clock.max(c);
            del += d;
            progress.push(clock as u64 + del);
        }
        let doc = trace::new_doc(99);
        {
            let mut txn = doc.transact_mut();
            for u in updates {
                txn.apply_update(Update::decode_v1(u).unwrap()).unwrap();
            }
        }
        Workload {
            frames: updates.iter().map(|u| dialect.update(u)).collect(),
            progress,
            expected_text: trace::text_of(&doc),
        }
    }
}

pub struct RunResult {
    pub updates: usize,
    pub updates_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_s: f64,
    pub peak_rss_mb: f64,
    pub messages: usize,
    pub ok: bool,
    pub note: String,
}

struct ReaderOut {
    arrivals: Vec<u32>, // µs since base, per message
    hash: u64,
    bytes: Vec<Vec<u8>>, // reader 0 only
}

fn fnv(h: &mut u64, b: &[u8]) {
    for &x in b {
        *h ^= x as u64;
        *h = h.wrapping_mul(0x100000001b3);
    }
    *h ^= 0xff;
    *h = h.wrapping_mul(0x100000001b3);
}

async fn handshake_raw(url: &str, d: &Dialect) -> std::io::Result<RawWs> {
    handshake_raw_from(url, d, None).await
}

async fn handshake_raw_from(
    url: &str,
    d: &Dialect,
    source: Option<std::net::Ipv4Addr>,
) -> std::io::Result<RawWs> {
    let mut ws = RawWs::connect_from(url, source).await?;
    if let Some(h) = d.hello() {
        ws.send(&h).await?;
    }
    ws.send(&d.sync(0, &[0])).await?;
    let mut synced = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !synced {
        let alive = tokio::time::timeout_at(
            deadline.into(),
            ws.read_some(|m, _| {
                if let Some((1, _)) = d.parse_sync(m) {
                    synced = true;
                }
            }),
        )
        .await
        .map_err(|_| std::io::Error::other("no SyncStep2 in 20 s"))??;
        if !alive {
            return Err(std::io::Error::other("closed before SyncStep2"));
        }
    }
    Ok(ws)
}

/// One run against a started server; `rate` = updates/s (None = as fast as the socket drains).
pub async fn run_once(
    server: &Server,
    room: &str,
    work: &Arc<Workload>,
    readers: usize,
    rate: Option<f64>,
) -> Result<RunResult, String> {
    let (url, dialect) = server.room(room);
    let n = work.frames.len();
    let total = *work.progress.last().unwrap_or(&0);
    let mut socks = Vec::new();
    for _ in 0..readers {
        socks.push(
            handshake_raw(&url, &dialect)
                .await
                .map_err(|e| format!("reader: {e}"))?,
        );
    }
    let (mut writer, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| format!("writer: {e}"))?;
    if let Some(h) = dialect.hello() {
        writer
            .send(Message::Binary(h.into()))
            .await
            .map_err(|e| e.to_string())?;
    }
    writer
        .send(Message::Binary(dialect.sync(0, &[0]).into()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), writer.next())
            .await
            .map_err(|_| "writer: no SyncStep2")?
            .ok_or("writer closed")?
            .map_err(|e| e.to_string())?;
        if let Message::Binary(b) = m
            && let Some((1, _)) = dialect.parse_sync(&b)
        {
            break;
        }
    }
    let (mut sink, mut stream) = writer.split();
    // The writer reads (and drops) what the server sends it, as a real client would.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });

    let base = Instant::now();
    let (final_tx, final_rx) = tokio::sync::watch::channel(usize::MAX);
    let final_tx = Arc::new(final_tx);
    let mut tasks = Vec::new();
    for (i, mut ws) in socks.into_iter().enumerate() {
        let d = dialect.clone();
        let ftx = final_tx.clone();
        let mut frx = final_rx.clone();
        let frx_peek = final_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = ReaderOut { arrivals: Vec::with_capacity(n), hash: 0xcbf29ce484222325, bytes: Vec::new() };
            let (mut clock, mut del) = (0u32, 0u64);
            let mut done = false;
            while !done {
                tokio::select! {
                    alive = ws.read_some(|m, now| {
                        let Some((step, payload)) = d.parse_sync(m) else { return };
                        if step != 2 || done || (i != 0 && out.arrivals.len() >= *frx_peek.borrow()) {
                            return;
                        }
                        out.arrivals.push((now - base).as_micros() as u32);
                        fnv(&mut out.hash, payload);
                        if i == 0 {
                            out.bytes.push(payload.to_vec());
                            let (c, dl) = progress_of(payload);
                            clock = clock.max(c);
                            del += dl;
                            if clock as u64 + del >= total {
                                let _ = ftx.send(out.arrivals.len());
                                done = true;
                            }
                        }
                    }) => {
                        if !matches!(alive, Ok(true)) {
                            break;
                        }
                    }
                    _ = frx.changed(), if i != 0 => {}
                }
                if i != 0 && out.arrivals.len() >= *frx.borrow() {
                    done = true;
                }
            }
            out
        }));
    }
    drop(final_rx);
    let cpu0 = servers::cpu_seconds(server.pid);
    let w = work.clone();
    let sender = tokio::spawn(async move {
        let mut sent = Vec::with_capacity(w.frames.len());
        let start = Instant::now();
        for (i, f) in w.frames.iter().enumerate() {
            if let Some(r) = rate {
                let due = start + Duration::from_secs_f64(i as f64 / r);
                if Instant::now() < due {
                    let _ = sink.flush().await;
                    tokio::time::sleep_until(due.into()).await;
                }
            }
            sent.push((Instant::now() - base).as_micros() as u32);
            if sink.feed(Message::Binary(f.clone().into())).await.is_err() {
                break;
            }
        }
        let _ = sink.flush().await;
        (sent, sink)
    });
    let timeout = Duration::from_secs(600);
    let mut outs = Vec::new();
    for t in tasks {
        match tokio::time::timeout(timeout, t).await {
            Ok(Ok(o)) => outs.push(o),
            _ => return Err("reader timed out or failed".into()),
        }
    }
    let (sent, sink) = sender.await.map_err(|e| e.to_string())?;
    let cpu = servers::cpu_seconds(server.pid) - cpu0;
    drop(sink);
    drain.abort();

    // Check: reader 0's bytes rebuild the expected text; all streams are identical.
    let r0 = &outs[0];
    let doc = trace::new_doc(77);
    {
        let mut txn = doc.transact_mut();
        for b in &r0.bytes {
            txn.apply_update(Update::decode_v1(b).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
    }
    let got_text = trace::text_of(&doc);
    let text_ok = got_text == work.expected_text;
    if !text_ok {
        eprintln!(
            "text mismatch: got {} chars, expected {}; first difference at byte {:?}",
            got_text.len(),
            work.expected_text.len(),
            got_text
                .bytes()
                .zip(work.expected_text.bytes())
                .position(|(a, b)| a != b)
        );
    }
    let _ = doc.transact().state_vector();
    let complete = outs
        .iter()
        .all(|o| o.arrivals.len() == r0.arrivals.len() && o.hash == r0.hash);
    // Map each update to the message that delivered it.
    let mut msg_of = Vec::with_capacity(n);
    let (mut clock, mut del, mut m) = (0u32, 0u64, 0usize);
    let mut prog_m = 0u64;
    for target in &work.progress {
        while prog_m < *target && m < r0.bytes.len() {
            let (c, d) = progress_of(&r0.bytes[m]);
            clock = clock.max(c);
            del += d;
            prog_m = clock as u64 + del;
            m += 1;
        }
        msg_of.push(m.saturating_sub(1));
    }
    let mut lat: Vec<u32> = Vec::with_capacity(n * outs.len());
    let mut last = 0u32;
    for o in &outs {
        for (i, &mi) in msg_of.iter().enumerate() {
            let a = o.arrivals.get(mi).copied().unwrap_or(0);
            lat.push(a.saturating_sub(sent[i]));
        }
        last = last.max(o.arrivals.last().copied().unwrap_or(0));
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1e3
    };
    let seconds = (last.saturating_sub(sent[0])) as f64 / 1e6;
    Ok(RunResult {
        updates: n,
        updates_per_s: n as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        cpu_s: cpu,
        peak_rss_mb: servers::peak_rss_kb(server.pid) as f64 / 1024.0,
        messages: r0.arrivals.len(),
        ok: text_ok && complete,
        note: if text_ok && complete {
            String::new()
        } else {
            format!("text_ok={text_ok} streams_identical={complete}")
        },
    })
}

/// Idle rooms: `rooms` connections, each in its own room with a ~1 KB doc; RSS delta per room.
/// Raises this process's open-file limit to its hard limit (the servers it starts inherit it)
/// and returns that limit.
pub fn raise_open_files() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// What [`idle_rooms`] measured: the server's RSS per room when the rooms have just settled and
/// after they have been idle a while, and how long an idle room takes to answer a SyncStep1.
pub struct IdleRooms {
    pub settled_kb_per_room: f64,
    pub idle_kb_per_room: f64,
    /// SyncStep1 -> SyncStep2 of idle rooms, one at a time (ms).
    pub wake_ms: Vec<f64>,
}

impl IdleRooms {
    pub fn rooms_per_gib(kb_per_room: f64) -> f64 {
        if kb_per_room > 0.0 {
            1024.0 * 1024.0 / kb_per_room
        } else {
            f64::INFINITY
        }
    }
}

/// Rooms whose SyncStep1 round trip is timed after the idle wait.
pub const WAKE_SAMPLE: usize = 200;

/// `rooms` connections, each in its own room, each sending a ~1 KB update; the server's RSS
/// (delta from before the first connection) 3 s after the last update and again `idle_wait`
/// after it. Then [`WAKE_SAMPLE`] of the idle rooms are asked for their state (SyncStep1), one
/// at a time: the round trip includes whatever the server does to bring an idle room back.
pub async fn idle_rooms(
    server: &Server,
    rooms: usize,
    idle_wait: Duration,
) -> Result<IdleRooms, String> {
    let before = servers::rss_kb(server.pid);
    let text = "lorem ipsum dolor sit amet ".repeat(38);
    let mut socks = Vec::with_capacity(rooms);
    for i in 0..rooms {
        let (url, d) = server.room(&format!("idle-{i}"));
        // Spread over 127.0.0.2-127.0.0.5 (the servers listen on 127.0.0.1): one source address
        // runs out of ephemeral ports near 28,000.
        let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % 4) as u8);
        let mut ws = handshake_raw_from(&url, &d, Some(source))
            .await
            .map_err(|e| format!("room {i}: {e}"))?;
        let doc = trace::new_doc(1000 + i as u64);
        let update = {
            let t = doc.get_or_insert_text("t");
            let mut txn = doc.transact_mut();
            yrs::Text::insert(&t, &mut txn, 0, &text);
            txn.encode_update_v1()
        };
        ws.send(&d.update(&update))
            .await
            .map_err(|e| e.to_string())?;
        socks.push((ws, d));
    }
    let last_update = Instant::now();
    // While idle, each client keeps reading (and answering pings, as a browser does: y-websocket
    // closes a connection that misses a pong) and sends nothing.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let readers: Vec<_> = socks
        .into_iter()
        .map(|(mut ws, d)| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        alive = ws.read_some(|_, _| {}) => if !matches!(alive, Ok(true)) { break },
                    }
                }
                (ws, d)
            })
        })
        .collect();
    // Let the servers apply and persist what they received.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = servers::rss_kb(server.pid);
    tokio::time::sleep_until((last_update + idle_wait).into()).await;
    let idle = servers::rss_kb(server.pid);
    let _ = stop.send(true);
    let mut socks = Vec::with_capacity(rooms);
    for reader in readers {
        socks.push(reader.await.map_err(|e| e.to_string())?);
    }
    let mut wake_ms = Vec::new();
    let step = (rooms / WAKE_SAMPLE).max(1);
    for (ws, d) in socks.iter_mut().step_by(step) {
        let t0 = Instant::now();
        ws.send(&d.sync(0, &[0])).await.map_err(|e| e.to_string())?;
        let mut answered = None;
        while answered.is_none() {
            let alive = tokio::time::timeout(
                Duration::from_secs(20),
                ws.read_some(|m, at| {
                    if let Some((1, _)) = d.parse_sync(m) {
                        answered = Some(at);
                    }
                }),
            )
            .await
            .map_err(|_| "an idle room gave no SyncStep2 in 20 s".to_string())?
            .map_err(|e| e.to_string())?;
            if !alive {
                return Err("an idle room closed instead of answering SyncStep1".into());
            }
        }
        wake_ms.push(answered.unwrap().duration_since(t0).as_secs_f64() * 1e3);
    }
    drop(socks);
    let per_room = |kb: u64| kb.saturating_sub(before) as f64 / rooms as f64;
    Ok(IdleRooms {
        settled_kb_per_room: per_room(settled),
        idle_kb_per_room: per_room(idle),
        wake_ms,
    })
}
