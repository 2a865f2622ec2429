//! Starting the servers under test as child processes, and reading their CPU and memory
//! from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proto::Dialect;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn relay_bin() -> PathBuf {
    std::env::var_os("YKEEP_RELAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/ykeep-relay"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ykeep,
    YWebsocket,
    Hocuspocus,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "ykeep" => Some(Kind::Ykeep),
            "y-websocket" => Some(Kind::YWebsocket),
            "hocuspocus" => Some(Kind::Hocuspocus),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ykeep => "ykeep",
            Kind::YWebsocket => "y-websocket",
            Kind::Hocuspocus => "hocuspocus",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Ykeep => "ykeep-relay serve --demo (durable SQLite log, embedded store)",
            Kind::YWebsocket => "y-websocket 1.5.4 bin/server.js (Node, in memory, no persistence)",
            Kind::Hocuspocus => "@hocuspocus/server 4.7.0 + extension-sqlite (Node, persists)",
        }
    }
}

pub struct Server {
    pub kind: Kind,
    pub child: Child,
    pub host: String,
    pub pid: u32,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Server {
    pub async fn start(kind: Kind) -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        Self::start_in(kind, dir, &[]).await
    }

    /// Starts `kind` with its data under `dir` (ykeep: extra args appended to `serve`).
    pub async fn start_in(
        kind: Kind,
        dir: tempfile::TempDir,
        extra: &[&str],
    ) -> Result<Server, String> {
        let peers = repo_root().join("bench/peers");
        let mut cmd;
        let port = free_port();
        match kind {
            Kind::Ykeep => {
                let bin = relay_bin();
                if !bin.exists() {
                    return Err(format!(
                        "{} not built (cargo build --release -p ykeep-relay)",
                        bin.display()
                    ));
                }
                cmd = Command::new(bin);
                cmd.args(["serve", "--listen", "127.0.0.1:0", "--demo", "--data-dir"])
                    .arg(dir.path())
                    .args(extra)
                    .env("YKEEP_LOG", "warn");
            }
            Kind::YWebsocket => {
                cmd = Command::new("node");
                cmd.arg(peers.join("node_modules/y-websocket/bin/server.js"))
                    .env("HOST", "127.0.0.1")
                    .env("PORT", port.to_string())
                    .env_remove("YPERSISTENCE");
            }
            Kind::Hocuspocus => {
                cmd = Command::new("node");
                cmd.arg(peers.join("hocuspocus-server.cjs"))
                    .env("PORT", port.to_string())
                    .env("HOCUSPOCUS_DB", dir.path().join("hocuspocus.sqlite"));
            }
        }
        if kind != Kind::Ykeep && !peers.join("node_modules").exists() {
            return Err("bench/peers/node_modules missing: run scripts/bench setup".into());
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("{kind:?}: {e}"))?;
        let pid = child.id().ok_or("no pid")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let host = loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .map_err(|_| format!("{kind:?} did not start in 30 s"))?
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{kind:?} exited before listening"))?;
            if let Some(rest) = line.strip_prefix("ykeep-relay listening on http://") {
                break rest.trim().to_owned();
            }
            if line.contains("running at") || line.contains("listening") {
                break format!("127.0.0.1:{port}");
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            kind,
            child,
            host,
            pid,
            _dir: dir,
        })
    }

    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// WebSocket URL and dialect for one room.
    pub fn room(&self, room: &str) -> (String, Dialect) {
        match self.kind {
            Kind::Ykeep => (
                format!("ws://{}/rooms/document/{room}", self.host),
                Dialect::YSync,
            ),
            Kind::YWebsocket => (format!("ws://{}/{room}", self.host), Dialect::YSync),
            Kind::Hocuspocus => (
                format!("ws://{}/", self.host),
                Dialect::Hocuspocus(room.to_owned()),
            ),
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub async fn stop(mut self) {
        // Quiet: the server may have exited already (a graceful stop the caller waited for).
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stderr(std::process::Stdio::null())
            .status();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / clk_tck()
}

fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:")
}

pub fn peak_rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM:")
}

/// Minor page faults of the process so far (`/proc/<pid>/stat`, field 10), 0 if unreadable.
pub fn minor_faults(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
