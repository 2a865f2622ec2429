//! ykeep relay: a y-sync WebSocket room server (the protocol of y-websocket and y-partykit)
//! with a local durable log (SQLite, WAL, group commit) and snapshot saves to a store.
//!
//! One task per room owns the room's `yrs::Doc`; a batch of messages is applied, committed to
//! the log in one transaction, and only then forwarded. The save policy is the pure state
//! machine `ykeep_core::schedule`. See `docs/relay-api.md`.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod quarantine;
pub mod room;
pub mod server;
pub mod store_client;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use ykeep_core::{RoomName, SchedulePolicy};

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
    rooms: Mutex<HashMap<RoomName, mpsc::Sender<room::RoomMsg>>>,
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
