//! A room's task: the tokio driver of the sans-IO room (`ykeep_room::Room`).
//!
//! The task drains whatever messages are waiting (a batch), feeds them to the room, and
//! performs the step that comes out: one log append for the whole batch, and only once it is
//! committed the deliveries, replies, closes and store requests (`effects.rs`). Nothing leaves
//! the relay before it is durable. The room's rules live in `crates/room`; this module only
//! does the I/O.

pub mod channel;
mod effects;
pub mod outbox;
pub mod registry;
mod sleep;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::oneshot;
use ykeep_core::{RoomName, StateTag};
use ykeep_room::{Event, Purpose, Room, RoomConfig, StoreError, Tally};

use crate::Shared;
use crate::metrics::Metrics;
use channel::{Receiver, WeakSender};
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
    /// Boxed: a state tag is 16-aligned, and the room's channel holds its messages by value
    /// (`channel.rs`): 64 bytes each instead of 48.
    State(Box<StateAsk>),
    Durable {
        reply: oneshot::Sender<DurableInfo>,
    },
    /// The answer to a store request the room made (`Fetched`, `Saved`, `Polled`).
    Store(Box<Event>),
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// `GET /state`: `reply` gets [`Reply::State`] or [`Reply::Unchanged`].
pub struct StateAsk {
    pub sv: Option<Vec<u8>>,
    pub unless: Option<StateTag>,
    pub reply: oneshot::Sender<Reply>,
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
    name: RoomName,
    key: Arc<str>,
    tx: WeakSender<RoomMsg>,
    conns: HashMap<ConnId, Arc<Outbox>>,
    asked: HashMap<u64, Asked>,
    next_query: u64,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    /// The deliveries of the step being performed (kept for its capacity while awake).
    deliveries: Vec<(ykeep_room::Target, ykeep_room::OutFrame)>,
    /// When a client last sent the room something (ms): the room sleeps `--room-sleep-ms`
    /// after it (`sleep.rs`). The store's answers and the room's own deadlines do not count.
    last_active: u64,
}

/// The room task. Not an `async fn`, which keeps a copy of each argument beside the one it
/// uses, and the cold start's result is an `Option` of a box: the task's future is 864 bytes
/// instead of 976 (`-Zprint-type-sizes`), and its tokio task cell 1,024 instead of 1,152.
#[allow(clippy::manual_async_fn)] // on purpose, see above
pub(crate) fn run(
    shared: Arc<Shared>,
    name: RoomName,
    tx: WeakSender<RoomMsg>,
    mut rx: Receiver<RoomMsg>,
    purpose: Purpose,
) -> impl Future<Output = ()> + Send {
    async move {
        Metrics::inc(&shared.metrics.rooms);
        // Boxed: the cold start's futures are not kept in the task for the room's whole life.
        let Some(room) = Box::pin(open_or_stop(&shared, &name, purpose, &mut rx)).await else {
            Metrics::dec(&shared.metrics.rooms);
            return;
        };
        let mut driver = Driver {
            key: name.to_string().into(),
            last_active: shared.now_ms(),
            shared,
            name,
            tx,
            conns: HashMap::new(),
            asked: HashMap::new(),
            next_query: 0,
            shutdown_waiters: Vec::new(),
            deliveries: Vec::new(),
        };
        driver.serve(room, &mut rx).await;
        Metrics::dec(&driver.shared.metrics.rooms);
    }
}

/// [`open`], or None when the local log cannot be read: the room leaves the registry and every
/// joiner waiting is closed with 1011.
async fn open_or_stop(
    shared: &Arc<Shared>,
    name: &RoomName,
    purpose: Purpose,
    rx: &mut Receiver<RoomMsg>,
) -> Option<Box<Room>> {
    match open(shared, name, purpose).await {
        Ok(room) => Some(room),
        Err(e) => {
            tracing::error!(room = %name, error = %e, "room stopped: its local log cannot be read");
            shared.rooms.remove(name);
            rx.close();
            while let Some(msg) = rx.try_recv() {
                if let RoomMsg::Join { outbox, .. } = msg {
                    let close = ykeep_room::Close::log_failed();
                    outbox.close(close.code, close.reason);
                }
            }
            None
        }
    }
}

/// Cold start: the local log and the store's snapshot, fetched concurrently, merged by the room.
async fn open(
    shared: &Arc<Shared>,
    name: &RoomName,
    purpose: Purpose,
) -> Result<Box<Room>, crate::log::LogError> {
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
    tokio::task::spawn_blocking(move || {
        Box::new(Room::open(name, config, records, store, purpose, now))
    })
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
    /// The room's life. Every room has a task, so what it keeps between messages is measured
    /// per idle room (`scripts/bench relay --idle`): the room and the futures of a step are
    /// boxed, so the task's own state is the loop's few locals (was 6.7 KB).
    async fn serve(&mut self, mut room: Box<Room>, rx: &mut Receiver<RoomMsg>) {
        let mut batch = Vec::new();
        // The cold start's own step (what the store added, or the quarantine).
        let mut step = room.flush(self.shared.now_ms());
        loop {
            if let Flow::Stop = Box::pin(self.perform(&mut room, step, rx)).await {
                break;
            }
            // A room with no client unloads after the debounce instead.
            let sleep_at = self.sleep_at().filter(|_| room.connections() > 0);
            if sleep_at.is_some_and(|at| self.shared.now_ms() >= at) {
                // Refused (unsaved, a store request in flight): it stays awake until the next
                // message or deadline, and tries again after that step.
                room = match sleep::try_sleep(room) {
                    Ok(asleep) => match self.doze(asleep, rx, &mut batch).await {
                        Some(awake) => awake,
                        None => break,
                    },
                    Err(awake) => awake,
                };
            }
            if batch.is_empty() {
                let deadline = room.next_deadline();
                // Armed only while in the future: once past, the room tried and was refused.
                let sleep_at = sleep_at.filter(|&at| at > self.shared.now_ms());
                let at = [deadline, sleep_at].into_iter().flatten().min();
                let timer = async {
                    match at {
                        Some(at) => tokio::time::sleep_until(self.shared.instant_at(at)).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(msg) => batch.push(msg),
                        None => break,
                    },
                    _ = timer => {}
                }
            }
            let more = MAX_BATCH.saturating_sub(batch.len());
            rx.drain_into(&mut batch, more);
            let now = self.shared.now_ms();
            for msg in batch.drain(..) {
                self.handle(&mut room, msg, now);
            }
            step = room.flush(now);
        }
        for done in self.shutdown_waiters.drain(..) {
            let _ = done.send(());
        }
    }

    fn handle(&mut self, room: &mut Room, msg: RoomMsg, now: u64) {
        if !matches!(msg, RoomMsg::Store(_)) {
            self.last_active = now;
        }
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
            RoomMsg::State(ask) => {
                let StateAsk { sv, unless, reply } = *ask;
                Event::StateQuery {
                    query: self.ask(Asked::State(reply)),
                    sv,
                    unless,
                }
            }
            RoomMsg::Durable { reply } => Event::DurableQuery {
                query: self.ask(Asked::Durable(reply)),
            },
            RoomMsg::Store(event) => *event,
            RoomMsg::Shutdown { done } => {
                self.shutdown_waiters.push(done);
                Event::Shutdown
            }
        };
        room.handle(event, now);
    }

    fn ask(&mut self, asked: Asked) -> u64 {
        self.next_query += 1;
        self.asked.insert(self.next_query, asked);
        self.next_query
    }

    /// Commits the step's record, then performs its effects.
    async fn perform(
        &mut self,
        room: &mut Room,
        mut step: ykeep_room::Step,
        rx: &mut Receiver<RoomMsg>,
    ) -> Flow {
        if let Some(append) = step.append.take() {
            let appended = self
                .shared
                .log
                .append(&self.key, append.seq, append.format, append.data)
                .await;
            if let Err(e) = appended {
                tracing::error!(room = %self.name, error = %e, "room stopped: local log failure");
                let effects = room.log_failed();
                return self.apply(room, effects, rx).await;
            }
            Metrics::inc(&self.shared.metrics.log_commits_total);
        }
        if let Some(saved) = step.compact.take()
            && let Err(e) = self.shared.log.saved(&self.key, saved).await
        {
            // The save itself succeeded and the log keeps its records; the next start-up
            // recovery saves the room again. Nothing is lost.
            tracing::error!(room = %self.name, error = %e, "recording the save in the local log failed");
        }
        self.count(step.tally);
        let effects = step.durable();
        self.apply(room, effects, rx).await
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
