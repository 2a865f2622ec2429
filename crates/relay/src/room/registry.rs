//! The rooms in memory: name → the room task's sender.
//!
//! A room leaves the map itself, under the map's lock and only when no message is waiting in
//! its channel; a joiner puts its `Join` in the channel under the same lock. So a `Join` never
//! lands in a room that is unloading.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ykeep_core::RoomName;
use ykeep_room::Purpose;

use super::channel::{self, Receiver, Sender, TrySendError};
use super::{RoomMsg, run};
use crate::Shared;

/// Room channel capacity: a writer faster than its room waits (TCP backpressure), it is never
/// dropped.
const ROOM_CHANNEL: usize = 4096;

#[derive(Default)]
pub struct Registry {
    rooms: Mutex<HashMap<RoomName, Sender<RoomMsg>>>,
}

fn spawn_room(shared: &Arc<Shared>, name: &RoomName, purpose: Purpose) -> Sender<RoomMsg> {
    let (tx, rx) = channel::channel(ROOM_CHANNEL);
    let task = run(shared.clone(), name.clone(), tx.downgrade(), rx, purpose);
    tokio::spawn(task);
    tx
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomName, Sender<RoomMsg>>> {
        self.rooms.lock().expect("rooms lock")
    }

    /// Sends `msg` to the room, opening (cold-starting) it if it is not in memory. Returns the
    /// room's sender, or None if the room could not take the message.
    pub async fn open_and_send(
        shared: &Arc<Shared>,
        name: &RoomName,
        mut msg: RoomMsg,
    ) -> Option<Sender<RoomMsg>> {
        for _ in 0..3 {
            let tx = {
                let mut rooms = shared.rooms.lock();
                let tx = match rooms.get(name) {
                    Some(tx) if !tx.is_closed() => tx.clone(),
                    _ => {
                        let tx = spawn_room(shared, name, Purpose::Client);
                        rooms.insert(name.clone(), tx.clone());
                        tx
                    }
                };
                match tx.try_send(msg) {
                    Ok(()) => return Some(tx),
                    Err(TrySendError::Full(back)) => {
                        msg = back;
                        tx
                    }
                    Err(TrySendError::Closed(back)) => {
                        msg = back;
                        rooms.remove(name);
                        continue;
                    }
                }
            };
            match tx.send(msg).await {
                Ok(()) => return Some(tx),
                Err(back) => msg = back.0,
            }
        }
        None
    }

    /// The room's sender if it is in memory.
    pub fn get(&self, name: &RoomName) -> Option<Sender<RoomMsg>> {
        self.lock().get(name).filter(|tx| !tx.is_closed()).cloned()
    }

    /// Opens a room for start-up recovery unless it is already in memory.
    pub fn open_for_recovery(shared: &Arc<Shared>, name: &RoomName) {
        let mut rooms = shared.rooms.lock();
        if !rooms.contains_key(name) {
            let tx = spawn_room(shared, name, Purpose::Recover);
            rooms.insert(name.clone(), tx);
        }
    }

    /// Every room in memory.
    pub fn all(&self) -> Vec<Sender<RoomMsg>> {
        self.lock().values().cloned().collect()
    }

    pub(super) fn remove(&self, name: &RoomName) {
        self.lock().remove(name);
    }

    /// Removes the room if nothing waits in its channel; true when removed.
    pub(super) fn remove_if_idle(&self, name: &RoomName, rx: &mut Receiver<RoomMsg>) -> bool {
        let mut rooms = self.lock();
        if !rx.is_empty() {
            return false;
        }
        rooms.remove(name);
        rx.close();
        true
    }
}
