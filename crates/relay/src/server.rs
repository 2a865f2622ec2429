//! Assembling the relay: log, store client, auth, routes; start-up recovery; graceful flush.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;
use ykeep_core::{RoomName, SchedulePolicy};

use crate::auth::Authorizer;
use crate::config::{Config, DisplayDuration};
use crate::log::{LogError, RoomLog};
use crate::metrics::Metrics;
use crate::room::{Registry, RoomMsg};
use crate::store_client::SnapshotStore;
use crate::{Shared, http};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("local log: {0}")]
    Log(#[from] LogError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Quarantine(#[from] crate::quarantine::QuarantineError),
}

/// A running relay (without its listener).
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

impl Relay {
    /// Opens the local log under `<data>/relay/` and prepares the rooms.
    pub async fn open(config: Config, store: Arc<dyn SnapshotStore>) -> Result<Self, RelayError> {
        config.warn_about_settings();
        let dir = config.relay_dir();
        let sync = config.log_sync;
        let log = tokio::task::spawn_blocking(move || RoomLog::open(&dir, sync))
            .await
            .map_err(|e| RelayError::Config(e.to_string()))??;
        let auth = Authorizer::new(
            config.dev_allow_all,
            config.secret.clone(),
            store.clone(),
            Duration::from_millis(config.auth_cache_ms),
        );
        let policy = SchedulePolicy {
            save_interval_ms: config.save_interval_ms,
            debounce_ms: config.save_debounce_ms,
        };
        let shared = Arc::new(Shared {
            config,
            policy,
            log,
            store,
            auth,
            metrics: Arc::new(Metrics::default()),
            rooms: Registry::default(),
            epoch: tokio::time::Instant::now(),
            next_conn: AtomicU64::new(0),
        });
        Ok(Relay { shared })
    }

    pub fn router(&self) -> Router {
        http::router(self.shared.clone())
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Opens every room whose log is past its last save, so each saves and unloads.
    pub async fn recover(&self) -> Result<usize, RelayError> {
        let dirty = self.shared.log.dirty_rooms().await?;
        let mut opened = 0;
        for key in dirty {
            match RoomName::parse(&key) {
                Ok(name) => {
                    tracing::info!(room = %name, "recovery: saving a room left dirty");
                    Registry::open_for_recovery(&self.shared, &name);
                    opened += 1;
                }
                Err(e) => {
                    tracing::error!(room = %key, error = %e, "recovery: bad room name in log")
                }
            }
        }
        Ok(opened)
    }

    /// Deletes the quarantined rooms older than `--deleted-retention`; returns how many.
    pub async fn purge_quarantine(&self) -> Result<usize, RelayError> {
        let retention = self.shared.config.deleted_retention;
        let before = ykeep_store::clock::unix_ms().saturating_sub(retention.as_millis() as i64);
        let purged = self.shared.log.purge_quarantine(before).await?;
        for entry in &purged {
            tracing::info!(room = %entry.room, quarantine_id = entry.id,
                records = entry.records, bytes = entry.bytes,
                retention = %DisplayDuration(retention),
                "quarantined room purged after its retention");
        }
        Metrics::add(
            &self.shared.metrics.quarantine_purged_total,
            purged.len() as u64,
        );
        Ok(purged.len())
    }

    /// Purges the quarantine now and then every hour (or every retention, when shorter).
    pub fn spawn_quarantine_purge(&self) -> tokio::task::JoinHandle<()> {
        let relay = self.clone();
        let every = relay
            .shared
            .config
            .deleted_retention
            .clamp(Duration::from_secs(1), Duration::from_secs(3600));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = relay.purge_quarantine().await {
                    tracing::error!(error = %e, "purging the quarantine failed; next try in {every:?}");
                }
            }
        })
    }

    /// Saves every dirty room in memory (graceful shutdown); returns when all answered or
    /// after a bound derived from the store timeout.
    pub async fn flush(&self) {
        let rooms = self.shared.rooms.all();
        let mut waits = Vec::with_capacity(rooms.len());
        for tx in rooms {
            let (done, wait) = oneshot::channel();
            if tx.send(RoomMsg::Shutdown { done }).await.is_ok() {
                waits.push(wait);
            }
        }
        let bound = self.shared.config.store_timeout() * 3 + Duration::from_secs(1);
        let all = futures_util::future::join_all(waits);
        if tokio::time::timeout(bound, all).await.is_err() {
            tracing::error!(
                "shutdown: some rooms did not finish saving in time; their updates stay in the local log"
            );
        }
    }
}
