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
}

impl Config {
    /// A config with every default, for tests and examples.
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
