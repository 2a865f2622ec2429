//! `ykeep-bench`: the ykeep benchmarks (see bench/README.md). Run through `scripts/bench`.
//!
//!   ykeep-bench relay   [--runs 7] [--updates N] [--readers 1,2,10,50] [--servers ykeep,y-websocket,hocuspocus]
//!                       [--rate R] [--idle 1000,10000,50000] [--idle-wait-s 60] [--out relay-NAME]
//!   ykeep-bench save    [--runs 7] [--sizes 1,10]
//!   ykeep-bench scaling [--runs 7] [--sizes 1,2,5,10,20]
//!   ykeep-bench cpu     [--runs 7]
//!   ykeep-bench storm   [--runs 3] [--clients 100] [--size 10] [--servers ykeep,y-websocket,hocuspocus]

mod cpu;
mod proto;
mod rawws;
mod relay;
mod report;
mod save;
mod servers;
mod stats;
mod storm;
mod trace;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use servers::{Kind, Server};
use stats::median;

/// Each command's options, all `--name value`.
const OPTIONS: &[(&str, &[&str])] = &[
    (
        "relay",
        &[
            "runs",
            "updates",
            "readers",
            "servers",
            "rate",
            "idle",
            "idle-wait-s",
            "out",
        ],
    ),
    ("save", &["runs", "sizes"]),
    ("scaling", &["runs", "sizes"]),
    ("cpu", &["runs"]),
    ("storm", &["runs", "clients", "size", "servers"]),
];

const USAGE: &str =
    "usage: ykeep-bench relay|save|scaling|cpu|storm [--option value ...] (see bench/README.md)";

#[derive(Debug)]
struct Args(BTreeMap<String, String>);

impl Args {
    /// The options of `cmd`: an unknown option, a missing value or a stray word is an error,
    /// not a default run of what was not asked for.
    fn parse(cmd: &str, v: &[String]) -> Result<Args, String> {
        let Some((_, known)) = OPTIONS.iter().find(|(c, _)| *c == cmd) else {
            return Err(USAGE.into());
        };
        let mut m = BTreeMap::new();
        let mut words = v.iter();
        while let Some(word) = words.next() {
            let Some(k) = word.strip_prefix("--") else {
                return Err(format!("{cmd}: unexpected {word:?}; {USAGE}"));
            };
            if !known.contains(&k) {
                let known: Vec<String> = known.iter().map(|k| format!("--{k}")).collect();
                return Err(format!(
                    "{cmd} has no option --{k}; it takes {}",
                    known.join(", ")
                ));
            }
            let Some(val) = words.next() else {
                return Err(format!("{cmd}: --{k} needs a value"));
            };
            m.insert(k.to_owned(), val.clone());
        }
        Ok(Args(m))
    }
    fn get<T: std::str::FromStr>(&self, k: &str, d: T) -> Result<T, String> {
        Ok(self.opt(k)?.unwrap_or(d))
    }
    fn opt<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, String> {
        self.0
            .get(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{k}: {v:?} is not a valid value"))
            })
            .transpose()
    }
    fn list(&self, k: &str, d: &str) -> Vec<String> {
        self.0
            .get(k)
            .map(String::as_str)
            .unwrap_or(d)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
    /// A comma-separated list of counts (empty: none).
    fn counts(&self, k: &str, d: &str) -> Result<Vec<usize>, String> {
        self.list(k, d)
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("--{k}: {s:?} is not a count"))
            })
            .collect()
    }
    fn servers(&self, d: &str) -> Result<Vec<Kind>, String> {
        self.list("servers", d)
            .iter()
            .map(|s| Kind::parse(s).ok_or_else(|| format!("--servers: no server {s:?}")))
            .collect()
    }
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmd = argv.first().cloned().unwrap_or_default();
    let r = match Args::parse(&cmd, &argv[1.min(argv.len())..]) {
        Err(e) => Err(e),
        Ok(args) => match cmd.as_str() {
            "relay" => relay_cmd(&args).await,
            "save" => save_cmd(&args, "save", "1,10").await,
            "scaling" => save_cmd(&args, "scaling", "1,2,5,10,20").await,
            "cpu" => cpu::run(&args),
            "storm" => storm::run(&args).await,
            _ => Err(USAGE.into()),
        },
    };
    if let Err(e) = r {
        eprintln!("ykeep-bench: {e}");
        std::process::exit(1);
    }
}

fn color(k: Kind) -> &'static str {
    match k {
        Kind::Ykeep => "#1f77b4",
        Kind::YWebsocket => "#ff7f0e",
        Kind::Hocuspocus => "#2ca02c",
    }
}

async fn relay_cmd(a: &Args) -> Result<(), String> {
    let runs: usize = a.get("runs", 7)?;
    let readers = a.counts("readers", "2,1,10,50")?;
    let kinds = a.servers("ykeep,y-websocket,hocuspocus")?;
    let rate: Option<f64> = a.opt("rate")?;
    let idle = a.counts("idle", "1000,10000,50000")?;
    let tr = trace::load("automerge-paper")?;
    let (_, mut updates) = trace::pre_encode(&tr);
    let total_updates = updates.len();
    let n: usize = a.get("updates", total_updates)?.min(total_updates);
    updates.truncate(n);
    eprintln!(
        "automerge-paper: {n} of {total_updates} updates pre-encoded ({} bytes)",
        updates.iter().map(Vec::len).sum::<usize>()
    );
    let mut works = BTreeMap::new();
    for k in &kinds {
        let d = match k {
            Kind::Hocuspocus => proto::Dialect::Hocuspocus("bench".into()),
            _ => proto::Dialect::YSync,
        };
        works.insert(k.name(), Arc::new(relay::Workload::new(&updates, &d)));
    }
    let mut rows = Vec::new();
    let mut md = String::new();
    md += &format!(
        "# Relay vs peers (`scripts/bench relay`)\n\n{}; {}; automerge-paper, {n} updates pre-encoded (one per edit), one writer, \
         {} ; median of {runs} interleaved runs (a fresh server process per run).\n\n",
        report::now_utc(),
        report::machine(),
        match rate {
            Some(r) => format!("writer paced at {r} updates/s"),
            None =>
                "writer as fast as the socket drains (latency is queueing under saturation)".into(),
        }
    );
    md += "| readers | server | updates/s | p50 echo ms | p99 echo ms | relay CPU s | CPU µs/update | peak RSS MB | ykeep ÷ this (updates/s) | this p99 ÷ ykeep p99 | ok runs |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    let mut thr_series: Vec<report::Series> = kinds
        .iter()
        .map(|k| report::Series {
            name: k.name().into(),
            color: color(*k),
            points: vec![],
        })
        .collect();
    let mut lat_series: Vec<report::Series> = kinds
        .iter()
        .map(|k| report::Series {
            name: k.name().into(),
            color: color(*k),
            points: vec![],
        })
        .collect();
    for (ri, &r) in readers.iter().enumerate() {
        let mut per: BTreeMap<&str, Vec<relay::RunResult>> = BTreeMap::new();
        for run in 0..runs {
            for k in &kinds {
                let server = Server::start(*k).await?;
                let res = relay::run_once(&server, "bench", &works[k.name()], r, rate).await;
                server.stop().await;
                match res {
                    Ok(res) => {
                        eprintln!(
                            "readers {r} run {run} {:<12} {:>9.0} updates/s  p50 {:>8.1} ms  p99 {:>8.1} ms  cpu {:.2} s  peak {:.0} MB  msgs {} {}",
                            k.name(),
                            res.updates_per_s,
                            res.p50_ms,
                            res.p99_ms,
                            res.cpu_s,
                            res.peak_rss_mb,
                            res.messages,
                            res.note
                        );
                        per.entry(k.name()).or_default().push(res);
                    }
                    Err(e) => eprintln!("readers {r} run {run} {}: FAILED {e}", k.name()),
                }
            }
        }
        let med = |k: &str, f: &dyn Fn(&relay::RunResult) -> f64| -> f64 {
            per.get(k)
                .map(|v| median(&v.iter().filter(|x| x.ok).map(f).collect::<Vec<_>>()))
                .unwrap_or(f64::NAN)
        };
        let y_thr = med("ykeep", &|x| x.updates_per_s);
        let y_p99 = med("ykeep", &|x| x.p99_ms);
        for (ki, k) in kinds.iter().enumerate() {
            let name = k.name();
            let ok = per
                .get(name)
                .map(|v| v.iter().filter(|x| x.ok).count())
                .unwrap_or(0);
            let thr = med(name, &|x| x.updates_per_s);
            let p50 = med(name, &|x| x.p50_ms);
            let p99 = med(name, &|x| x.p99_ms);
            let cpu = med(name, &|x| x.cpu_s);
            let cpu_per = med(name, &|x| x.cpu_s / x.updates as f64 * 1e6);
            let rss = med(name, &|x| x.peak_rss_mb);
            md += &format!(
                "| {r} | {name} | {thr:.0} | {p50:.1} | {p99:.1} | {cpu:.2} | {cpu_per:.1} | {rss:.0} | {:.2} | {:.2} | {ok}/{runs} |\n",
                y_thr / thr,
                p99 / y_p99
            );
            rows.push(json!({"readers": r, "server": name, "describe": k.describe(), "updates": n,
                "updates_per_s": thr, "p50_ms": p50, "p99_ms": p99, "cpu_s": cpu, "cpu_us_per_update": cpu_per,
                "peak_rss_mb": rss, "ratio_ykeep_throughput": y_thr / thr, "ratio_p99_vs_ykeep": p99 / y_p99,
                "ok_runs": ok, "runs": runs,
                "samples_updates_per_s": per.get(name).map(|v| v.iter().map(|x| x.updates_per_s).collect::<Vec<_>>()),
                "failures": per.get(name).map(|v| v.iter().filter(|x| !x.ok).map(|x| x.note.clone()).collect::<Vec<_>>())}));
            thr_series[ki].points.push((ri as f64, thr));
            lat_series[ki].points.push((ri as f64, p99));
        }
    }
    let cats: Vec<String> = readers.iter().map(|r| format!("{r} readers")).collect();
    let out_name: String = a.get(
        "out",
        if rate.is_some() {
            "relay-paced".to_owned()
        } else {
            "relay".to_owned()
        },
    )?;
    // relay-NAME -> relay-throughput-NAME.svg; another --out keeps its whole name, so that it
    // never overwrites the committed plots.
    let suffix = out_name
        .strip_prefix("relay")
        .map_or_else(|| format!("-{out_name}"), str::to_owned);
    // No plots of an idle-rooms-only run (`--readers ""`): they would be empty.
    if !readers.is_empty() {
        report::write(
            &format!("relay-throughput{suffix}"),
            "svg",
            &report::bar_plot(
                "updates/s through one room (higher is better)",
                "updates/s",
                &cats,
                &thr_series,
            ),
        );
        report::write(
            &format!("relay-p99{suffix}"),
            "svg",
            &report::bar_plot(
                "p99 echo latency to readers (lower is better)",
                "ms",
                &cats,
                &lat_series,
            ),
        );
    }
    // Idle rooms.
    let mut idle_rows = Vec::new();
    if !idle.is_empty() {
        let wait_s: u64 = a.get("idle-wait-s", 60)?;
        md += &format!(
            "\n## Idle rooms (one client each, ~1 KB doc)\n\n| rooms | server | RSS KB per room, settled (3 s) | RSS KB per room, idle ({wait_s} s) | rooms per GiB, idle | wake: SyncStep1 -> SyncStep2 p50 ms | p99 ms |\n|---|---|---|---|---|---|---|\n"
        );
        let open_files = relay::raise_open_files();
        for &count in &idle {
            // One socket per room in this process and one in the server's, plus their own files.
            let need = count as u64 + 512;
            if open_files < need {
                let why = format!(
                    "not run: {count} rooms need {need} open files per process, and this \
                     machine's hard limit is {open_files} (`ulimit -Hn`)"
                );
                eprintln!("idle {count}: {why}");
                md += &format!("| {count} | all | {why} | | | | |\n");
                idle_rows.push(json!({"rooms": count, "skipped": why}));
                continue;
            }
            for k in &kinds {
                let server = Server::start(*k).await?;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let res =
                    relay::idle_rooms(&server, count, std::time::Duration::from_secs(wait_s)).await;
                server.stop().await;
                match res {
                    Ok(r) => {
                        let per_gib = relay::IdleRooms::rooms_per_gib(r.idle_kb_per_room);
                        let (p50, p99) = (
                            stats::median(&r.wake_ms),
                            stats::percentile(&r.wake_ms, 0.99),
                        );
                        eprintln!(
                            "idle {count} {:<12} settled {:.1} KB/room, idle {:.1} KB/room  {per_gib:.0} rooms/GiB  wake p50 {p50:.2} ms p99 {p99:.2} ms",
                            k.name(),
                            r.settled_kb_per_room,
                            r.idle_kb_per_room
                        );
                        md += &format!(
                            "| {count} | {} | {:.1} | {:.1} | {per_gib:.0} | {p50:.2} | {p99:.2} |\n",
                            k.name(),
                            r.settled_kb_per_room,
                            r.idle_kb_per_room
                        );
                        idle_rows.push(json!({"rooms": count, "server": k.name(),
                            "settled_kb_per_room": r.settled_kb_per_room, "kb_per_room": r.idle_kb_per_room,
                            "rooms_per_gib": per_gib, "idle_wait_s": wait_s, "wake_ms": r.wake_ms}));
                    }
                    Err(e) => {
                        eprintln!("idle {count} {}: FAILED {e}", k.name());
                        md += &format!("| {count} | {} | failed: {e} | | | | |\n", k.name());
                    }
                }
            }
        }
        md += &format!(
            "\nOne run per room count (each takes a while). RSS delta of the server process from before the first connection to 3 s after the last room received its update (settled), and to {wait_s} s after it (idle: longer than ykeep's 30 s save interval and 30 s `--room-sleep-ms`, so its rooms are saved and asleep; the peers keep every doc in memory). Rooms per GiB is of the idle figure. Wake: then {} of the idle rooms, evenly spread, each get a SyncStep1 one at a time; the time to its SyncStep2 includes ykeep rebuilding the room's doc from its local log.\n",
            relay::WAKE_SAMPLE
        );
    }
    md += &format!("\n{}\n", report::ATTRIBUTION);
    let out = json!({"benchmark": "relay", "at": report::now_utc(), "machine": report::machine(), "trace": "automerge-paper",
        "updates": n, "runs": runs, "rate": rate, "servers": kinds.iter().map(|k| k.describe()).collect::<Vec<_>>(),
        "rows": rows, "idle_rooms": idle_rows, "attribution": report::ATTRIBUTION});
    let name = out_name;
    report::write(&name, "json", &serde_json::to_string_pretty(&out).unwrap());
    report::write(&name, "md", &md);
    report::update_readme(&name, &md);
    println!("{md}");
    Ok(())
}

async fn save_cmd(a: &Args, name: &str, default_sizes: &str) -> Result<(), String> {
    let runs: usize = a.get("runs", 7)?;
    let sizes = a.counts("sizes", default_sizes)?;
    let tr = trace::load("automerge-paper")?;
    let mut res = Vec::new();
    for &k in &sizes {
        eprintln!("{name}: {k}x");
        let r = save::measure(&tr, k, runs).await?;
        eprintln!(
            "  {k}x: v1 {} B, v2 {} B, encode v1 {:.2} ms, save {:.1} ms, cold start {:.1} ms, raw read {:.2} ms, apply floor {:.1} ms, room RSS {:.1} MB",
            r.v1_bytes,
            r.v2_bytes,
            r.encode_v1_ms,
            r.save_ms,
            r.cold_start_ms,
            r.raw_read_ms,
            r.apply_floor_ms,
            r.room_rss_mb
        );
        let (c, f) = (&r.cold, &r.save_floor);
        eprintln!(
            "  {k}x cold start {:.1} ms vs floor {:.1} ms (apply {:.1} + SyncStep2 {:.1}) = {:.2}x; fetch {:.2}, log apply {:.1}, checks+merge {:.1}, SyncStep2 {:.1}, process {:.1}; first connection of the process (empty room) {:.1}; relay minor faults {:.0}",
            r.cold_start_ms,
            c.floor_ms,
            c.floor_apply_ms,
            c.floor_sync2_ms,
            c.ratio,
            c.fetch_ms,
            c.log_apply_ms,
            c.checks_merge_ms,
            c.sync2_ms,
            c.process_ms,
            c.empty_room_first_ms,
            c.minor_faults
        );
        eprintln!(
            "  {k}x save {:.1} ms (encode + POST) vs floor {:.1} ms (encode {:.2} + check {:.1} + blob write+fsync {:.1} + SQLite commit {:.1}) = {:.2}x",
            f.ykeep_ms,
            f.floor_ms,
            f.encode_ms,
            f.check_ms,
            f.blob_write_ms,
            f.sqlite_commit_ms,
            f.ratio
        );
        res.push(r);
    }
    let mut md = format!(
        "# Save and cold start (`scripts/bench {name}`)\n\n{}; {}; automerge-paper replayed N times into one yrs doc (each replay in front of the text so far); median of {runs} runs each.\n\n\
         | size | chars | v1 bytes | v2 bytes | encode v1 ms | encode v2 ms | store save ms | cold start ms | cold start ÷ raw read | raw disk read ms (floor) | yrs apply of the snapshot ms | relay RSS for the room MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        report::now_utc(),
        report::machine()
    );
    for r in &res {
        md += &format!(
            "| {}× | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.0} | {:.3} | {:.1} | {:.1} |\n",
            r.times,
            r.chars,
            r.v1_bytes,
            r.v2_bytes,
            r.encode_v1_ms,
            r.encode_v2_ms,
            r.save_ms,
            r.cold_start_ms,
            r.cold_start_ms / r.raw_read_ms,
            r.raw_read_ms,
            r.apply_floor_ms,
            r.room_rss_mb
        );
    }
    md += "\nstore save = POST of the full v1 state to the embedded store of `ykeep-relay serve` (blob fsync + SQLite commit). \
cold start = a fresh relay whose store holds the snapshot and whose local log holds one compacted record (left by a graceful stop): \
time from WebSocket connect to SyncStep2 received. raw disk read = `read()` of the stored blob file (page cache warm).\n";
    md += "\n## Cold start vs its floor (same run)\n\nfloor = yrs decode + apply of the snapshot into an empty doc, plus the SyncStep2 (full state) encode of it. \
The breakdown repeats the room's steps in process on the same blob and log record: fetch = the store's blob read (`serve` calls its store in process, no HTTP); \
log apply = `apply_records` of the compacted record; checks + merge = the rest of `Room::open` (the store snapshot is skipped when the log's compacted save names the same snapshot id and the doc covers its marker); \
SyncStep2 = the room's full-state encode; process = the end-to-end figure minus those (WebSocket connect and upgrade, the SQLite read of the log, task hand-offs).\n\n\
| size | cold start ms | floor ms | ratio | floor: apply ms | floor: SyncStep2 ms | fetch ms | log apply ms | checks + merge ms | SyncStep2 ms | process ms | relay minor faults | first connection (empty room) ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in &res {
        let c = &r.cold;
        md += &format!(
            "| {}× | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} |\n",
            r.times,
            r.cold_start_ms,
            c.floor_ms,
            c.ratio,
            c.floor_apply_ms,
            c.floor_sync2_ms,
            c.fetch_ms,
            c.log_apply_ms,
            c.checks_merge_ms,
            c.sync2_ms,
            c.process_ms,
            c.minor_faults,
            c.empty_room_first_ms
        );
    }
    md += "\n## Save vs its floor (same run)\n\nykeep = v1 encode + the POST to the embedded store (check, blob write + fsync, re-check and switch in one SQLite commit, delete of the old blob). \
floor = v1 encode + the store's contract check (`load_full_state`: decode + apply) + one blob write with file and directory fsync + one SQLite commit (WAL, synchronous=FULL), each measured on the same disk.\n\n\
| size | ykeep save ms | floor ms | ratio | encode v1 ms | check ms | blob write + fsync ms | SQLite commit ms |\n|---|---|---|---|---|---|---|---|\n";
    for r in &res {
        let f = &r.save_floor;
        md += &format!(
            "| {}× | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} |\n",
            r.times,
            f.ykeep_ms,
            f.floor_ms,
            f.ratio,
            f.encode_ms,
            f.check_ms,
            f.blob_write_ms,
            f.sqlite_commit_ms
        );
    }
    md += &format!("\n{}\n", report::ATTRIBUTION);
    if name == "scaling" {
        let xs = |f: &dyn Fn(&save::SizeResult) -> f64| {
            res.iter()
                .map(|r| (r.times as f64, f(r)))
                .collect::<Vec<_>>()
        };
        let svg = report::line_plot(
            "save and load time vs document size",
            "document size (× automerge-paper)",
            "ms",
            &[
                report::Series {
                    name: "store save".into(),
                    color: "#d62728",
                    points: xs(&|r| r.save_ms),
                },
                report::Series {
                    name: "cold start".into(),
                    color: "#1f77b4",
                    points: xs(&|r| r.cold_start_ms),
                },
                report::Series {
                    name: "yrs apply floor".into(),
                    color: "#7f7f7f",
                    points: xs(&|r| r.apply_floor_ms),
                },
                report::Series {
                    name: "encode v1".into(),
                    color: "#2ca02c",
                    points: xs(&|r| r.encode_v1_ms),
                },
            ],
        );
        report::write("scaling-time", "svg", &svg);
        let svg = report::line_plot(
            "memory and snapshot size vs document size",
            "document size (× automerge-paper)",
            "MB",
            &[
                report::Series {
                    name: "relay RSS for room".into(),
                    color: "#1f77b4",
                    points: xs(&|r| r.room_rss_mb),
                },
                report::Series {
                    name: "v1 snapshot".into(),
                    color: "#ff7f0e",
                    points: xs(&|r| r.v1_bytes as f64 / 1e6),
                },
                report::Series {
                    name: "v2 snapshot".into(),
                    color: "#2ca02c",
                    points: xs(&|r| r.v2_bytes as f64 / 1e6),
                },
            ],
        );
        report::write("scaling-memory", "svg", &svg);
    }
    let out = json!({"benchmark": name, "at": report::now_utc(), "machine": report::machine(), "trace": "automerge-paper",
        "runs": runs, "sizes": res, "attribution": report::ATTRIBUTION});
    report::write(name, "json", &serde_json::to_string_pretty(&out).unwrap());
    report::write(name, "md", &md);
    report::update_readme(name, &md);
    println!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_are_checked_not_defaulted() {
        let a = Args::parse("relay", &words("--runs 3 --readers 1,2 --idle")).unwrap_err();
        assert_eq!(a, "relay: --idle needs a value");
        let a = Args::parse("relay", &words("--runs 3 --readers 1,2 --idle ''")).unwrap();
        assert_eq!(a.get("runs", 7).unwrap(), 3);
        assert_eq!(a.counts("readers", "9").unwrap(), vec![1, 2]);
        assert_eq!(a.get("updates", 5).unwrap(), 5, "absent: the default");
        assert!(a.counts("idle", "1").is_err(), "'' is not a count");
        let e = Args::parse("cpu", &words("--help")).unwrap_err();
        assert!(e.contains("cpu has no option --help"), "{e}");
        let a = Args::parse("storm", &words("--runs x --servers ykeep,nope")).unwrap();
        assert!(
            a.get("runs", 3)
                .unwrap_err()
                .contains("\"x\" is not a valid value")
        );
        assert!(
            a.servers("ykeep")
                .unwrap_err()
                .contains("no server \"nope\"")
        );
        assert!(Args::parse("nope", &[]).is_err());
        assert!(Args::parse("save", &words("stray")).is_err());
    }
}
