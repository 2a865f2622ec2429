//! The one `Config` of the binary: clap derive, every flag also read from a `YKEEP_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// ykeep-relay: y-sync rooms with a durable local log, saving Yjs snapshots to a store.
#[derive(Debug, Parser)]
#[command(name = "ykeep-relay", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Relay + embedded snapshot store in one process, on one port.
    Serve(ServeArgs),
    /// The relay alone, saving to the store at --store-url.
    Relay(Config),
    /// The embedded snapshot store alone.
    Store(Config),
    /// Prints a development user token.
    Token(TokenArgs),
    /// Lists or exports the rooms whose resource the store deleted (kept for
    /// --deleted-retention).
    Quarantine(QuarantineArgs),
}

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    /// The relay's data dir (the quarantine is in `<data>/relay/log.sqlite3`).
    #[arg(long, env = "YKEEP_DATA_DIR", default_value = "./ykeep-data")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub action: QuarantineAction,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// One line per quarantined room: id, room, when, records, bytes, reason.
    List,
    /// Writes a quarantined room's content as one Yjs v1 update (`Y.applyUpdate` reads it).
    Export {
        /// The quarantine id (first column of `list`).
        id: i64,
        /// Output file; `-` writes to stdout.
        #[arg(long, short)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Demo mode: allow every client, auto-create resources, generate missing secrets.
    #[arg(long, env = "YKEEP_DEMO")]
    pub demo: bool,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub kind: String,
    #[arg(long)]
    pub id: String,
    #[arg(long, default_value = "dev")]
    pub sub: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
    #[arg(long, env = "YKEEP_TOKEN_KEY")]
    pub token_key: String,
}

/// How hard the local log syncs to disk (SQLite `PRAGMA synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogSync {
    /// Survives a process crash (kill -9); a power loss may lose the last commits.
    Normal,
    /// Every commit is fsynced: survives a power loss too, at a cost per batch.
    Full,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[arg(long, env = "YKEEP_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    #[arg(long, env = "YKEEP_DATA_DIR", default_value = "./ykeep-data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "YKEEP_STORE_URL")]
    pub store_url: Option<String>,
    #[arg(long, env = "YKEEP_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    #[arg(long, env = "YKEEP_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<String>,
    #[arg(long, env = "YKEEP_DEV_ALLOW_ALL")]
    pub dev_allow_all: bool,
    #[arg(long, env = "YKEEP_SAVE_INTERVAL_MS", default_value_t = 30_000)]
    pub save_interval_ms: u64,
    #[arg(long, env = "YKEEP_SAVE_DEBOUNCE_MS", default_value_t = 7_000)]
    pub save_debounce_ms: u64,
    /// How often a room with clients asks the store whether another relay saved it (a
    /// conditional GET: 304 when unchanged). 0 turns it off.
    #[arg(long, env = "YKEEP_STORE_POLL_MS", default_value_t = 30_000)]
    pub store_poll_ms: u64,
    #[arg(long, env = "YKEEP_STORE_TIMEOUT_MS", default_value_t = 10_000)]
    pub store_timeout_ms: u64,
    #[arg(long, env = "YKEEP_MAX_FRAME_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_frame_bytes: usize,
    #[arg(long, env = "YKEEP_MAX_SNAPSHOT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_snapshot_bytes: usize,
    /// Bytes queued for one slow reader before the relay merges or closes it (1013).
    #[arg(long, env = "YKEEP_MAX_BACKLOG_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_backlog_bytes: usize,
    #[arg(long, env = "YKEEP_AUTO_CREATE")]
    pub auto_create: bool,
    #[arg(long, env = "YKEEP_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    #[arg(long, env = "YKEEP_LOG_SYNC", value_enum, default_value_t = LogSync::Normal)]
    pub log_sync: LogSync,
    /// How long a token verification result is cached.
    #[arg(long, env = "YKEEP_AUTH_CACHE_MS", default_value_t = 30_000)]
    pub auth_cache_ms: u64,
    /// How long the quarantine keeps the log of a room whose resource the store deleted
    /// (`resource_deleted`) before it is purged: a number with a unit, ms, s, m, h or d.
    #[arg(long, env = "YKEEP_DELETED_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub deleted_retention: Duration,
}

/// Parses `<number><unit>`, unit one of `ms`, `s`, `m`, `h`, `d` (`7d`, `90m`, `0s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit: write e.g. 7d, 12h, 30m, 45s or 500ms"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let ms_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// A duration as the flags write it (`7d`, `90m`, `1500ms`).
pub struct DisplayDuration(pub Duration);

impl std::fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        for (unit, per) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= per && ms % per == 0 {
                return write!(f, "{}{unit}", ms / per);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Config {
    /// A config with every default, for tests and examples (feature `test-support`).
    #[cfg(any(test, feature = "test-support"))]
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Config {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            data_dir,
            store_url: None,
            secret: None,
            token_key: None,
            dev_allow_all: false,
            save_interval_ms: 30_000,
            save_debounce_ms: 7_000,
            store_poll_ms: 30_000,
            store_timeout_ms: 10_000,
            max_frame_bytes: 16 * 1024 * 1024,
            max_snapshot_bytes: 64 * 1024 * 1024,
            max_backlog_bytes: 64 * 1024 * 1024,
            auto_create: false,
            static_dir: None,
            log_sync: LogSync::Normal,
            auth_cache_ms: 30_000,
            deleted_retention: Duration::from_secs(7 * 86_400),
        }
    }

    pub fn relay_dir(&self) -> PathBuf {
        self.data_dir.join("relay")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms)
    }

    /// Logs warnings about settings that are legal but unusual.
    pub fn warn_about_settings(&self) {
        if !(5_000..=10_000).contains(&self.save_debounce_ms) {
            tracing::warn!(
                debounce_ms = self.save_debounce_ms,
                "save debounce outside 5000-10000 ms: fine for tests, not for production"
            );
        }
        if self.dev_allow_all {
            tracing::warn!(
                "DEV MODE: --dev-allow-all is on; EVERY client may read and write EVERY room. \
                 Never run this in production."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_print_back() {
        for (text, ms) in [
            ("7d", 7 * 86_400_000),
            ("12h", 12 * 3_600_000),
            ("90m", 90 * 60_000),
            ("45s", 45_000),
            ("1500ms", 1500),
            ("0s", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        assert_eq!(
            DisplayDuration(Duration::from_secs(7 * 86_400)).to_string(),
            "7d"
        );
        assert_eq!(
            DisplayDuration(Duration::from_millis(90 * 60_000)).to_string(),
            "90m"
        );
        assert_eq!(
            DisplayDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        for bad in ["7", "d", "7 days", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }
}
