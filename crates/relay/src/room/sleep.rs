//! Idle rooms sleep: `--room-sleep-ms` after a client last sent it anything, a saved room with
//! nothing in flight drops its doc ([`Room::sleep`] refuses otherwise). Its connections, their
//! awareness and the save schedule stay; the next message or the room's next deadline reads
//! its records from the local log and rebuilds the doc ([`SleepingRoom::wake`]). The log holds
//! everything the doc did (the room is saved, and every record is committed before its
//! effects), so sleeping changes nothing durable.

use ykeep_room::{Close, Room, SleepingRoom};

use super::channel::Receiver;
use super::{Driver, RoomMsg};
use crate::metrics::Metrics;

/// What ended a room's sleep.
enum WokenBy {
    Message(RoomMsg),
    /// [`SleepingRoom::next_deadline`] (a poll of the store).
    Deadline,
    /// Every sender is gone: nothing can reach the room any more.
    Closed,
}

/// [`Room::sleep`], boxed either way: the room task keeps only a pointer to the room.
pub(super) fn try_sleep(room: Box<Room>) -> Result<Box<SleepingRoom>, Box<Room>> {
    Room::sleep(*room).map(Box::new).map_err(Box::new)
}

impl Driver {
    /// When the room may sleep (None: never, `--room-sleep-ms 0`).
    pub(super) fn sleep_at(&self) -> Option<u64> {
        let after = self.shared.config.room_sleep_ms;
        (after > 0).then(|| self.last_active.saturating_add(after))
    }

    /// Waits, asleep, for the next message (pushed to `batch`) or the room's next deadline,
    /// then wakes the room from its log. None: the room has stopped (its channel closed, or its
    /// log cannot be read: every client is closed with 1011 and reconnects to a cold start).
    ///
    /// The wait is this future's only long state: the room is boxed, and the wake-up (log read,
    /// replay) is a future of its own that exists only while it runs.
    pub(super) async fn doze(
        &mut self,
        asleep: Box<SleepingRoom>,
        rx: &mut Receiver<RoomMsg>,
        batch: &mut Vec<RoomMsg>,
    ) -> Option<Box<Room>> {
        // What the awake room kept for its capacity.
        *batch = Vec::new();
        rx.shrink_to_fit();
        self.deliveries = Vec::new();
        self.asked.shrink_to_fit();
        crate::memory::trim_soon();
        Metrics::inc(&self.shared.metrics.rooms_asleep);
        let woken_by = self.wait_asleep(asleep.next_deadline(), rx).await;
        Metrics::dec(&self.shared.metrics.rooms_asleep);
        match woken_by {
            WokenBy::Closed => return None,
            WokenBy::Deadline => {}
            WokenBy::Message(msg) => batch.push(msg),
        }
        Box::pin(self.wake(asleep, rx, batch)).await
    }

    async fn wait_asleep(&self, deadline: Option<u64>, rx: &mut Receiver<RoomMsg>) -> WokenBy {
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(self.shared.instant_at(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => WokenBy::Message(msg),
                None => WokenBy::Closed,
            },
            _ = timer => WokenBy::Deadline,
        }
    }

    /// Reads the room's records from the local log and replays them into a new doc.
    async fn wake(
        &mut self,
        asleep: Box<SleepingRoom>,
        rx: &mut Receiver<RoomMsg>,
        batch: &mut Vec<RoomMsg>,
    ) -> Option<Box<Room>> {
        let started = std::time::Instant::now();
        let records = match self.shared.log.load(&self.key).await {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(room = %self.name, error = %e,
                    "room stopped: its local log cannot be read to wake it");
                self.stop_unreadable(rx, batch);
                return None;
            }
        };
        // Replaying a long log is CPU work: off the async threads.
        let woken = tokio::task::spawn_blocking(move || asleep.wake(&records)).await;
        let Ok(room) = woken else {
            tracing::error!(room = %self.name, "room stopped: waking it from its log panicked");
            self.stop_unreadable(rx, batch);
            return None;
        };
        Metrics::inc(&self.shared.metrics.room_wakes_total);
        Metrics::add(
            &self.shared.metrics.room_wake_micros_total,
            started.elapsed().as_micros() as u64,
        );
        Some(Box::new(room))
    }

    /// The room cannot be rebuilt: it leaves the registry, every client and joiner is closed
    /// with 1011, and every query waiting is dropped (its asker hears the room is gone).
    fn stop_unreadable(&mut self, rx: &mut Receiver<RoomMsg>, batch: &mut Vec<RoomMsg>) {
        self.shared.rooms.remove(&self.name);
        rx.close();
        let close = Close::log_failed();
        let waiting = std::iter::from_fn(|| rx.try_recv());
        for msg in batch.drain(..).chain(waiting) {
            match msg {
                RoomMsg::Join { outbox, .. } => outbox.close(close.code, close.reason.clone()),
                RoomMsg::Shutdown { done } => self.shutdown_waiters.push(done),
                _ => {}
            }
        }
        for outbox in self.conns.values() {
            outbox.close(close.code, close.reason.clone());
        }
        self.conns.clear();
        self.asked.clear();
    }
}
