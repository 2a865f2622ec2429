//! The room's awareness table: the latest state of every client id, and which connection
//! announced it, so that a disconnect can remove its states and tell the others.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::block::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

use crate::ConnId;

const NULL: &str = "null";

/// A client id's clock, its state (`None`: the owner is known but the state was not kept, after
/// a host rebuilt the room) and the connection that announced it.
type Entry = (u32, Option<Arc<str>>, ConnId);

#[derive(Default)]
pub struct AwarenessTable {
    states: HashMap<ClientID, Entry>,
}

impl AwarenessTable {
    /// Applies an encoded awareness update sent by `conn`; returns false if it does not decode.
    pub fn apply(&mut self, conn: ConnId, payload: &[u8]) -> bool {
        let Ok(update) = AwarenessUpdate::decode_v1(payload) else {
            return false;
        };
        for (client, entry) in update.clients {
            let removal = entry.json.as_ref() == NULL;
            let newer = match self.states.get_mut(&client) {
                // The state the room holds already, sent again: y-websocket's provider sends
                // back every state it hears (its awareness handler does not look at the
                // origin). An echo keeps its owner (as y-protocols ignores an equal clock), or
                // the announcer's leave would remove nothing; a rebuilt room learns the state.
                Some((clock, json, _)) if entry.clock == *clock && !removal => {
                    json.get_or_insert_with(|| entry.json.clone());
                    false
                }
                Some((clock, _, _)) => entry.clock >= *clock,
                None => true,
            };
            if newer {
                if removal {
                    self.states.remove(&client);
                } else {
                    self.states
                        .insert(client, (entry.clock, Some(entry.json), conn));
                }
            }
        }
        true
    }

    /// The encoded update of every live state, for a new connection (None when empty).
    pub fn full_update(&self) -> Option<Vec<u8>> {
        let clients: HashMap<_, _> = self
            .states
            .iter()
            .filter_map(|(c, (clock, json, _))| {
                let json = json.clone()?;
                Some((
                    *c,
                    AwarenessUpdateEntry {
                        clock: *clock,
                        json,
                    },
                ))
            })
            .collect();
        if clients.is_empty() {
            return None;
        }
        Some(AwarenessUpdate { clients }.encode_v1())
    }

    /// The client ids `conn` announced, with their clocks: what a host keeps beside the
    /// connection so that a rebuilt room can still announce their removal.
    pub fn owned_by(&self, conn: ConnId) -> Vec<(u64, u32)> {
        let mut owned: Vec<_> = self
            .states
            .iter()
            .filter(|(_, (_, _, owner))| *owner == conn)
            .map(|(c, (clock, _, _))| (c.get(), *clock))
            .collect();
        owned.sort_unstable();
        owned
    }

    /// A rebuilt room learns which client ids `conn` announced (their states are gone: the
    /// clients send them again within their renewal interval).
    pub fn adopt(&mut self, conn: ConnId, owned: &[(u64, u32)]) {
        for &(client, clock) in owned {
            self.states
                .entry(ClientID::new(client))
                .or_insert((clock, None, conn));
        }
    }

    /// Removes the states `conn` announced; returns the encoded removal update for the others.
    pub fn remove_conn(&mut self, conn: ConnId) -> Option<Vec<u8>> {
        let gone: Vec<(ClientID, u32)> = self
            .states
            .iter()
            .filter(|(_, (_, _, owner))| *owner == conn)
            .map(|(c, (clock, _, _))| (*c, *clock))
            .collect();
        if gone.is_empty() {
            return None;
        }
        let mut clients = HashMap::new();
        for (client, clock) in gone {
            self.states.remove(&client);
            clients.insert(
                client,
                AwarenessUpdateEntry {
                    clock: clock + 1,
                    json: NULL.into(),
                },
            );
        }
        Some(AwarenessUpdate { clients }.encode_v1())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(client: u64, clock: u32, json: &str) -> Vec<u8> {
        let mut clients = HashMap::new();
        clients.insert(
            ClientID::new(client),
            AwarenessUpdateEntry {
                clock,
                json: json.into(),
            },
        );
        AwarenessUpdate { clients }.encode_v1()
    }

    #[test]
    fn disconnect_removes_the_connections_states() {
        let mut t = AwarenessTable::default();
        assert!(t.apply(1, &update(10, 1, r#"{"user":"a"}"#)));
        assert!(t.apply(2, &update(20, 1, r#"{"user":"b"}"#)));
        assert!(!t.apply(2, &[0xff, 0xff]));
        let removal = t.remove_conn(1).unwrap();
        let decoded = AwarenessUpdate::decode_v1(&removal).unwrap();
        let entry = &decoded.clients[&ClientID::new(10)];
        assert_eq!((entry.clock, entry.json.as_ref()), (2, "null"));
        assert!(t.remove_conn(1).is_none());
        let full = AwarenessUpdate::decode_v1(&t.full_update().unwrap()).unwrap();
        assert_eq!(full.clients.len(), 1);
        assert!(t.apply(2, &update(20, 2, "null")));
        assert!(t.full_update().is_none());
    }

    #[test]
    fn an_adopted_owner_is_removed_with_a_newer_clock() {
        let mut t = AwarenessTable::default();
        assert!(t.apply(1, &update(10, 4, r#"{"user":"a"}"#)));
        let owned = t.owned_by(1);
        assert_eq!(owned, vec![(10, 4)]);
        let mut rebuilt = AwarenessTable::default();
        rebuilt.adopt(1, &owned);
        assert!(rebuilt.full_update().is_none(), "no state is invented");
        let removal = AwarenessUpdate::decode_v1(&rebuilt.remove_conn(1).unwrap()).unwrap();
        let entry = &removal.clients[&ClientID::new(10)];
        assert_eq!((entry.clock, entry.json.as_ref()), (5, "null"));
    }
}
