//! A room's task: the tokio driver of the sans-IO room (`ykeep_room::Room`).
//!
//! The task drains whatever messages are waiting (a batch), feeds them to the room, and
//! performs the step that comes out: one log append for the whole batch, and only once it is
//! committed the deliveries, replies, closes and store requests (`effects.rs`). Nothing leaves
//! the relay before it is durable. The room's rules live in `crates/room`; this module only
//! does the I/O.

mod effects;
pub mod outbox;
pub mod registry;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::{mpsc, oneshot};
use ykeep_core::{RoomName, StateTag};
use ykeep_room::{Event, Purpose, Room, RoomConfig, StoreError, Tally};

use crate::Shared;
use crate::metrics::Metrics;
use outbox::Outbox;
pub use registry::Registry;
pub use ykeep_room::{DurableInfo, Reply};

pub type ConnId = u64;

/// Most messages handled in one batch (one log commit).
const MAX_BATCH: usize = 4096;

pub enum RoomMsg {
    Join {
        conn: ConnId,
        outbox: Arc<Outbox>,
    },
    Frame {
        conn: ConnId,
        data: Bytes,
    },
    Leave {
        conn: ConnId,
    },
    /// The connection asked for acknowledgements in its URL (`?ykeep=acks`).
    OptIn {
        conn: ConnId,
    },
    /// `reply` gets [`Reply::State`] or [`Reply::Unchanged`].
    State {
        sv: Option<Vec<u8>>,
        unless: Option<StateTag>,
        reply: oneshot::Sender<Reply>,
    },
    Durable {
        reply: oneshot::Sender<DurableInfo>,
    },
    /// The answer to a store request the room made (`Fetched`, `Saved`, `Polled`).
    Store(Box<Event>),
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// A query waiting for the room's reply.
enum Asked {
    State(oneshot::Sender<Reply>),
    Durable(oneshot::Sender<DurableInfo>),
}

/// Whether the task goes on after a step.
enum Flow {
    Continue,
    Stop,
}

struct Driver {
    shared: Arc<Shared>,
    key: Arc<str>,
    tx: mpsc::WeakSender<RoomMsg>,
    room: Room,
    conns: HashMap<ConnId, Arc<Outbox>>,
    asked: HashMap<u64, Asked>,
    next_query: u64,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    /// The deliveries of the step being performed (kept for its capacity).
    deliveries: Vec<(ykeep_room::Target, ykeep_room::OutFrame)>,
}

/// The room task.
pub(crate) async fn run(
    shared: Arc<Shared>,
    name: RoomName,
    tx: mpsc::WeakSender<RoomMsg>,
    mut rx: mpsc::Receiver<RoomMsg>,
    purpose: Purpose,
) {
    Metrics::inc(&shared.metrics.rooms);
    match open(&shared, &name, purpose).await {
        Ok(room) => {
            let mut driver = Driver {
                key: name.to_string().into(),
                shared: shared.clone(),
                tx,
                room,
                conns: HashMap::new(),
                asked: HashMap::new(),
                next_query: 0,
                shutdown_waiters: Vec::new(),
                deliveries: Vec::new(),
            };
            driver.serve(&mut rx).await;
        }
        Err(e) => {
            tracing::error!(room = %name, error = %e, "room stopped: its local log cannot be read");
            shared.rooms.remove(&name);
            rx.close();
            while let Ok(msg) = rx.try_recv() {
                if let RoomMsg::Join { outbox, .. } = msg {
                    let close = ykeep_room::Close::log_failed();
                    outbox.close(close.code, close.reason);
                }
            }
        }
    }
    Metrics::dec(&shared.metrics.rooms);
}

/// Cold start: the local log and the store's snapshot, fetched concurrently, merged by the room.
async fn open(
    shared: &Arc<Shared>,
    name: &RoomName,
    purpose: Purpose,
) -> Result<Room, crate::log::LogError> {
    let key = name.to_string();
    let timeout = shared.config.store_timeout();
    let from_store = tokio::time::timeout(timeout, shared.store.load(name));
    let (records, from_store) = tokio::join!(shared.log.load(&key), from_store);
    let records = records?;
    let store = from_store.unwrap_or_else(|_| {
        Err(StoreError::Unreachable(format!(
            "no answer within {timeout:?}"
        )))
    });
    Metrics::inc(&shared.metrics.cold_starts_total);
    let config = room_config(shared);
    let (name, now) = (name.clone(), shared.now_ms());
    // Replaying a long log is CPU work: off the async threads.
    tokio::task::spawn_blocking(move || Room::open(name, config, records, store, purpose, now))
        .await
        .map_err(crate::log::LogError::Join)
}

fn room_config(shared: &Shared) -> RoomConfig {
    RoomConfig {
        policy: shared.policy,
        poll_every_ms: shared.config.store_poll_ms,
        max_snapshot_bytes: shared.config.max_snapshot_bytes,
    }
}

impl Driver {
    async fn serve(&mut self, rx: &mut mpsc::Receiver<RoomMsg>) {
        let mut batch = Vec::with_capacity(64);
        // The cold start's own step (what the store added, or the quarantine).
        let mut step = self.room.flush(self.shared.now_ms());
        loop {
            if let Flow::Stop = self.perform(step, rx).await {
                break;
            }
            let deadline = self.room.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(self.shared.instant_at(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => batch.push(msg),
                    None => break,
                },
                _ = sleep => {}
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            let now = self.shared.now_ms();
            for msg in batch.drain(..) {
                self.handle(msg, now);
            }
            step = self.room.flush(now);
        }
        for done in self.shutdown_waiters.drain(..) {
            let _ = done.send(());
        }
    }

    fn handle(&mut self, msg: RoomMsg, now: u64) {
        let event = match msg {
            RoomMsg::Join { conn, outbox } => {
                self.conns.insert(conn, outbox);
                Event::Join { conn }
            }
            RoomMsg::Frame { conn, data } => Event::Frame { conn, data },
            RoomMsg::OptIn { conn } => Event::OptIn { conn },
            RoomMsg::Leave { conn } => {
                self.conns.remove(&conn);
                Event::Leave { conn }
            }
            RoomMsg::State { sv, unless, reply } => Event::StateQuery {
                query: self.ask(Asked::State(reply)),
                sv,
                unless,
            },
            RoomMsg::Durable { reply } => Event::DurableQuery {
                query: self.ask(Asked::Durable(reply)),
            },
            RoomMsg::Store(event) => *event,
            RoomMsg::Shutdown { done } => {
                self.shutdown_waiters.push(done);
                Event::Shutdown
            }
        };
        self.room.handle(event, now);
    }

    fn ask(&mut self, asked: Asked) -> u64 {
        self.next_query += 1;
        self.asked.insert(self.next_query, asked);
        self.next_query
    }

    /// Commits the step's record, then performs its effects.
    async fn perform(
        &mut self,
        mut step: ykeep_room::Step,
        rx: &mut mpsc::Receiver<RoomMsg>,
    ) -> Flow {
        if let Some(append) = step.append.take() {
            let appended = self
                .shared
                .log
                .append(&self.key, append.seq, append.format, append.data)
                .await;
            if let Err(e) = appended {
                tracing::error!(room = %self.room.name(), error = %e, "room stopped: local log failure");
                let effects = self.room.log_failed();
                return self.apply(effects, rx).await;
            }
            Metrics::inc(&self.shared.metrics.log_commits_total);
        }
        if let Some(saved) = step.compact.take()
            && let Err(e) = self.shared.log.saved(&self.key, saved).await
        {
            // The save itself succeeded and the log keeps its records; the next start-up
            // recovery saves the room again. Nothing is lost.
            tracing::error!(room = %self.room.name(), error = %e, "recording the save in the local log failed");
        }
        self.count(step.tally);
        let effects = step.durable();
        self.apply(effects, rx).await
    }

    fn count(&self, t: Tally) {
        let m = &self.shared.metrics;
        Metrics::add(&m.updates_total, t.updates);
        Metrics::add(&m.update_bytes_total, t.update_bytes);
        Metrics::add(&m.malformed_frames_total, t.refused_frames);
        Metrics::add(&m.saves_ok_total, t.saves_ok);
        Metrics::add(&m.saved_bytes_total, t.saved_bytes);
        Metrics::add(&m.save_seconds_sum_micros, t.save_ms * 1000);
        Metrics::add(&m.save_seconds_count, t.saves_ok + t.saves_failed);
        Metrics::add(&m.save_conflicts_total, t.save_conflicts);
        Metrics::add(&m.saves_failed_total, t.saves_failed);
        Metrics::add(&m.saves_refused_total, t.saves_refused);
        Metrics::add(&m.saves_too_large_total, t.saves_too_large);
        Metrics::add(&m.rooms_quarantined_total, t.quarantined);
    }
}
