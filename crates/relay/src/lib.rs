//! ykeep relay: a y-sync WebSocket room server (the protocol of y-websocket and y-partykit)
//! with a local durable log (SQLite, WAL, group commit) and snapshot saves to a store.
//!
//! One task per room drives the room's rules, the sans-IO state machine `ykeep_room::Room`: a
//! batch of messages is applied, committed to the log in one transaction, and only then
//! forwarded. See `docs/relay-api.md`.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod log;
pub mod memory;
pub mod metrics;
pub mod quarantine;
pub mod room;
pub mod server;
pub mod store_client;

pub use ykeep_room::protocol;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ykeep_core::SchedulePolicy;

pub use config::{Cli, Command, Config};
pub use server::{Relay, RelayError};

/// State shared by the HTTP handlers, the connections and the room tasks.
pub struct Shared {
    pub config: Config,
    pub policy: SchedulePolicy,
    pub log: log::RoomLog,
    pub store: Arc<dyn store_client::SnapshotStore>,
    pub auth: auth::Authorizer,
    pub metrics: Arc<metrics::Metrics>,
    pub rooms: room::Registry,
    epoch: tokio::time::Instant,
    next_conn: AtomicU64,
}

impl Shared {
    /// Milliseconds since the relay started (the scheduler's clock).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn instant_at(&self, ms: u64) -> tokio::time::Instant {
        self.epoch + Duration::from_millis(ms)
    }

    fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }
}
