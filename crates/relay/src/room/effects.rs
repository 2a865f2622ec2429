//! Performing a room's effects: closes, deliveries, replies, store requests, quarantine, unload.

use ykeep_room::{Effect, Event, OutFrame, Reply, Room, Target};

use super::channel::Receiver;
use super::{Asked, Driver, Flow, RoomMsg};
use crate::metrics::Metrics;

/// A store request, run in its own task; its answer comes back as a room message.
enum Request {
    Fetch,
    Save {
        state: Vec<u8>,
        precondition: ykeep_core::wire::Precondition,
    },
    Poll {
        known: String,
    },
}

impl Driver {
    pub(super) async fn apply(
        &mut self,
        room: &mut Room,
        effects: Vec<Effect>,
        rx: &mut Receiver<RoomMsg>,
    ) -> Flow {
        // Deliveries (most of a step) go out together after everything else, which keeps its
        // order, closes first.
        let mut deliveries = std::mem::take(&mut self.deliveries);
        let mut unload = false;
        for effect in effects {
            match effect {
                Effect::Deliver { to, frame } => deliveries.push((to, frame)),
                Effect::Close { conn, close } => {
                    if let Some(outbox) = self.conns.remove(&conn) {
                        outbox.close(close.code, close.reason);
                    }
                }
                Effect::Reply { query, reply } => self.reply(query, *reply),
                Effect::Fetch => self.request(Request::Fetch),
                Effect::Save {
                    state,
                    precondition,
                } => self.request(Request::Save {
                    state: state.to_vec(),
                    precondition,
                }),
                Effect::Poll { known } => self.request(Request::Poll { known }),
                Effect::Quarantine { reason } => self.quarantine(reason).await,
                Effect::Flushed => {
                    for done in self.shutdown_waiters.drain(..) {
                        let _ = done.send(());
                    }
                }
                Effect::Unload => unload = true,
            }
        }
        self.deliver(&deliveries);
        deliveries.clear();
        self.deliveries = deliveries; // its capacity serves the next step
        if !unload {
            return Flow::Continue;
        }
        // Unload, unless someone arrived meanwhile.
        if self.shared.rooms.remove_if_idle(&self.name, rx) {
            return Flow::Stop;
        }
        room.reopen(self.shared.now_ms());
        Flow::Continue
    }

    /// Every connection gets its frames of the step in one push (one wake-up of its writer).
    fn deliver(&self, deliveries: &[(Target, OutFrame)]) {
        if deliveries.is_empty() {
            return;
        }
        for (conn, outbox) in &self.conns {
            let frames = deliveries
                .iter()
                .filter(|(to, _)| to.includes(*conn))
                .map(|(_, frame)| frame.clone());
            if !outbox.push(frames) {
                tracing::warn!(room = %self.name, conn, "slow reader over its backlog limit: closing it (1013)");
                Metrics::inc(&self.shared.metrics.slow_reader_closes_total);
            }
        }
    }

    fn reply(&mut self, query: u64, reply: Reply) {
        match (self.asked.remove(&query), reply) {
            (Some(Asked::State(tx)), reply @ (Reply::State(_) | Reply::Unchanged(_))) => {
                let _ = tx.send(reply);
            }
            (Some(Asked::Durable(tx)), Reply::Durable(info)) => {
                let _ = tx.send(info);
            }
            // Dropping the sender tells the asker the room is gone.
            (Some(_), Reply::Ended) => {}
            _ => tracing::error!(room = %self.name, query, "a reply to no such query"),
        }
    }

    fn request(&self, request: Request) {
        let Some(tx) = self.tx.upgrade() else { return };
        let shared = self.shared.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            let timeout = shared.config.store_timeout();
            let late =
                || ykeep_room::StoreError::Unreachable(format!("no answer within {timeout:?}"));
            let event = match request {
                Request::Fetch => {
                    let load = tokio::time::timeout(timeout, shared.store.load(&name));
                    Event::Fetched(load.await.unwrap_or_else(|_| Err(late())))
                }
                Request::Save {
                    state,
                    precondition,
                } => Event::Saved(shared.store.save(&name, state, precondition).await),
                Request::Poll { known } => {
                    let load = shared.store.load_if_changed(&name, &known);
                    let load = tokio::time::timeout(timeout, load);
                    Event::Polled(load.await.unwrap_or_else(|_| Err(late())))
                }
            };
            let _ = tx.send(RoomMsg::Store(Box::new(event))).await;
        });
    }

    /// Moves the room's whole log to the quarantine (kept for `--deleted-retention`).
    async fn quarantine(&self, reason: &'static str) {
        let name = &self.name;
        match self
            .shared
            .log
            .quarantine(&self.key, ykeep_store::clock::unix_ms(), reason)
            .await
        {
            Ok(()) => tracing::warn!(room = %name,
                retention = %crate::config::DisplayDuration(self.shared.config.deleted_retention),
                "the store says this resource was deleted: the room's local log moved to \
                 the quarantine (`ykeep-relay quarantine list` shows it)"),
            Err(e) => tracing::error!(room = %name, error = %e,
                "the store says this resource was deleted, but moving the room's log to \
                 the quarantine failed: it stays in the log"),
        }
    }
}
