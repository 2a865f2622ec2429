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
    Relay(RelayArgs),
    /// The embedded snapshot store alone.
    Store(StoreArgs),
    /// Prints a development user token.
    Token(TokenArgs),
    /// Lists or exports the rooms whose resource the store deleted (kept for
    /// --deleted-retention).
    Quarantine(QuarantineArgs),
}

/// Every default of the flags, written once (the save timers are `SchedulePolicy::DEFAULT`'s,
/// the snapshot limit the store's).
mod duration;

pub use duration::{DisplayDuration, parse_duration};

pub mod defaults {
    use ykeep_core::SchedulePolicy;
    use ykeep_store::StoreConfig;

    pub const LISTEN: &str = "127.0.0.1:8787";
    pub const DATA_DIR: &str = "./ykeep-data";
    pub const MAX_SNAPSHOT_BYTES: usize = StoreConfig::DEFAULT_MAX_SNAPSHOT_BYTES;
    pub const SAVE_INTERVAL_MS: u64 = SchedulePolicy::DEFAULT.save_interval_ms;
    pub const SAVE_DEBOUNCE_MS: u64 = SchedulePolicy::DEFAULT.debounce_ms;
    pub use ykeep_room::defaults::{
        AUTH_CACHE_MS, MAX_FRAME_BYTES, STORE_POLL_MS, STORE_TIMEOUT_MS,
    };
    pub const MAX_BACKLOG_BYTES: usize = 64 * 1024 * 1024;
    /// 30 s: longer than the 15 s awareness heartbeat of y-protocols clients, so a room whose
    /// clients only send that does not sleep and wake every few seconds.
    pub const ROOM_SLEEP_MS: u64 = 30_000;
    /// Parsed by [`super::parse_duration`].
    pub const DELETED_RETENTION: &str = "7d";
    pub const TOKEN_SUB: &str = "dev";
    pub const TOKEN_TTL_SECONDS: u64 = 3600;
}

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    /// The relay's data dir (the quarantine is in `<data>/relay/log.sqlite3`).
    #[arg(long, env = "YKEEP_DATA_DIR", default_value = defaults::DATA_DIR)]
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

/// `serve`: the relay's flags, the embedded store's, the demo switch and the static dir.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Demo mode: allow every client, auto-create resources, generate missing secrets.
    #[arg(long, env = "YKEEP_DEMO")]
    pub demo: bool,
    /// A directory served at `/` (the demo page).
    #[arg(long, env = "YKEEP_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub relay: RelayFlags,
    #[command(flatten)]
    pub store: StoreFlags,
}

/// `relay`: the relay's flags and the store it saves to.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Base URL of the snapshot store (embedded or Convex) the relay saves to.
    #[arg(long, env = "YKEEP_STORE_URL")]
    pub store_url: String,
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub relay: RelayFlags,
}

/// `store`: the embedded store's flags only.
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub store: StoreFlags,
}

/// The flags every server subcommand reads (`serve`, `relay`, `store`).
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "YKEEP_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,
    /// Data directory: the relay's log in `<data>/relay/`, the store in `<data>/store/`.
    #[arg(long, env = "YKEEP_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: PathBuf,
    /// Shared secret between relay and store (`Authorization: Bearer`).
    #[arg(long, env = "YKEEP_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Largest snapshot saved or accepted, in bytes.
    #[arg(long, env = "YKEEP_MAX_SNAPSHOT_BYTES", default_value_t = defaults::MAX_SNAPSHOT_BYTES)]
    pub max_snapshot_bytes: usize,
}

/// The relay's own flags (`serve`, `relay`).
#[derive(Debug, Clone, Args)]
pub struct RelayFlags {
    /// Lets every client read and write every room, without a token (development only).
    #[arg(long, env = "YKEEP_DEV_ALLOW_ALL")]
    pub dev_allow_all: bool,
    /// While clients are connected, save a changed room this long after its first unsaved edit.
    #[arg(long, env = "YKEEP_SAVE_INTERVAL_MS", default_value_t = defaults::SAVE_INTERVAL_MS)]
    pub save_interval_ms: u64,
    /// Save and unload a room this long after its last client left.
    #[arg(long, env = "YKEEP_SAVE_DEBOUNCE_MS", default_value_t = defaults::SAVE_DEBOUNCE_MS)]
    pub save_debounce_ms: u64,
    /// How often a room with clients checks the store for another relay's save; 0 turns it off.
    #[arg(long, env = "YKEEP_STORE_POLL_MS", default_value_t = defaults::STORE_POLL_MS)]
    pub store_poll_ms: u64,
    /// How long one store call may take before it counts as failed.
    #[arg(long, env = "YKEEP_STORE_TIMEOUT_MS", default_value_t = defaults::STORE_TIMEOUT_MS)]
    pub store_timeout_ms: u64,
    /// Largest WebSocket frame accepted from a client, in bytes.
    #[arg(long, env = "YKEEP_MAX_FRAME_BYTES", default_value_t = defaults::MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,
    /// Bytes queued for one slow reader before the relay merges or closes it (1013).
    #[arg(long, env = "YKEEP_MAX_BACKLOG_BYTES", default_value_t = defaults::MAX_BACKLOG_BYTES)]
    pub max_backlog_bytes: usize,
    /// Drop the in-memory doc of a saved room this long after a client last sent it anything;
    /// its next message (or store poll) rebuilds it from the local log. 0 = never.
    #[arg(long, env = "YKEEP_ROOM_SLEEP_MS", default_value_t = defaults::ROOM_SLEEP_MS)]
    pub room_sleep_ms: u64,
    /// How hard the local log syncs to disk.
    #[arg(long, env = "YKEEP_LOG_SYNC", value_enum, default_value_t = LogSync::Normal)]
    pub log_sync: LogSync,
    /// How long a token verification answer is cached.
    #[arg(long, env = "YKEEP_AUTH_CACHE_MS", default_value_t = defaults::AUTH_CACHE_MS)]
    pub auth_cache_ms: u64,
    /// How long a room whose resource the store deleted stays in the quarantine (7d, 12h, 90m…).
    #[arg(long, env = "YKEEP_DELETED_RETENTION", default_value = defaults::DELETED_RETENTION, value_parser = parse_duration)]
    pub deleted_retention: Duration,
}

impl Default for RelayFlags {
    /// What the flags default to when none is given.
    fn default() -> Self {
        RelayFlags {
            dev_allow_all: false,
            save_interval_ms: defaults::SAVE_INTERVAL_MS,
            save_debounce_ms: defaults::SAVE_DEBOUNCE_MS,
            store_poll_ms: defaults::STORE_POLL_MS,
            store_timeout_ms: defaults::STORE_TIMEOUT_MS,
            max_frame_bytes: defaults::MAX_FRAME_BYTES,
            max_backlog_bytes: defaults::MAX_BACKLOG_BYTES,
            room_sleep_ms: defaults::ROOM_SLEEP_MS,
            log_sync: LogSync::Normal,
            auth_cache_ms: defaults::AUTH_CACHE_MS,
            deleted_retention: parse_duration(defaults::DELETED_RETENTION)
                .expect("the default retention parses"),
        }
    }
}

/// The embedded store's own flags (`serve`, `store`).
#[derive(Debug, Clone, Default, Args)]
pub struct StoreFlags {
    /// HMAC key the store checks user tokens with (not the shared secret).
    #[arg(long, env = "YKEEP_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<String>,
    /// Creates a resource's row on its first save (demo only).
    #[arg(long, env = "YKEEP_AUTO_CREATE")]
    pub auto_create: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Resource kind the token opens (`document`, `diagram`, `task`, or `*`).
    #[arg(long)]
    pub kind: String,
    /// Resource id the token opens, or `*`.
    #[arg(long)]
    pub id: String,
    /// The user id the token names.
    #[arg(long, default_value = defaults::TOKEN_SUB)]
    pub sub: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = defaults::TOKEN_TTL_SECONDS)]
    pub ttl: u64,
    /// HMAC key to sign with (the store's --token-key).
    #[arg(long, env = "YKEEP_TOKEN_KEY", hide_env_values = true)]
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

/// Everything the relay and the embedded store read, assembled from one subcommand's flags
/// (those a subcommand has no flag for keep their defaults).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store_url: Option<String>,
    pub secret: Option<String>,
    pub token_key: Option<String>,
    pub dev_allow_all: bool,
    pub save_interval_ms: u64,
    pub save_debounce_ms: u64,
    pub store_poll_ms: u64,
    pub store_timeout_ms: u64,
    pub max_frame_bytes: usize,
    pub max_snapshot_bytes: usize,
    pub max_backlog_bytes: usize,
    pub room_sleep_ms: u64,
    pub auto_create: bool,
    pub static_dir: Option<PathBuf>,
    pub log_sync: LogSync,
    pub auth_cache_ms: u64,
    pub deleted_retention: Duration,
}

impl ServeArgs {
    pub fn config(&self) -> Config {
        let mut c = Config::assemble(&self.server, &self.relay, &self.store);
        c.static_dir = self.static_dir.clone();
        c
    }
}

impl RelayArgs {
    pub fn config(&self) -> Config {
        let mut c = Config::assemble(&self.server, &self.relay, &StoreFlags::default());
        c.store_url = Some(self.store_url.clone());
        c
    }
}

impl StoreArgs {
    pub fn config(&self) -> Config {
        Config::assemble(&self.server, &RelayFlags::default(), &self.store)
    }
}

impl Config {
    fn assemble(server: &ServerFlags, relay: &RelayFlags, store: &StoreFlags) -> Self {
        let ServerFlags {
            listen,
            data_dir,
            secret,
            max_snapshot_bytes,
        } = server.clone();
        let RelayFlags {
            dev_allow_all,
            save_interval_ms,
            save_debounce_ms,
            store_poll_ms,
            store_timeout_ms,
            max_frame_bytes,
            max_backlog_bytes,
            room_sleep_ms,
            log_sync,
            auth_cache_ms,
            deleted_retention,
        } = relay.clone();
        let StoreFlags {
            token_key,
            auto_create,
        } = store.clone();
        Config {
            listen,
            data_dir,
            store_url: None,
            secret,
            token_key,
            dev_allow_all,
            save_interval_ms,
            save_debounce_ms,
            store_poll_ms,
            store_timeout_ms,
            max_frame_bytes,
            max_snapshot_bytes,
            max_backlog_bytes,
            room_sleep_ms,
            auto_create,
            static_dir: None,
            log_sync,
            auth_cache_ms,
            deleted_retention,
        }
    }

    /// A config with every default and port 0, for tests and examples (feature
    /// `test-support`).
    #[cfg(any(test, feature = "test-support"))]
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let server = ServerFlags {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            data_dir,
            secret: None,
            max_snapshot_bytes: defaults::MAX_SNAPSHOT_BYTES,
        };
        Config::assemble(&server, &RelayFlags::default(), &StoreFlags::default())
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
mod tests;
