//! [`SnapshotStore`] in memory, following the contract's rules, for tests.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use ykeep_core::{DurabilityMarker, RoomName};

use super::{
    Precondition, Refusal, SaveReceipt, SnapshotStore, StoreError, StoredSnapshot, Verdict,
};

/// An in-memory store. Every resource exists (as with `--auto-create`); `set_down(true)` makes
/// every call fail as if the store were unreachable.
#[derive(Default)]
pub struct MemoryStore {
    snapshots: Mutex<HashMap<RoomName, StoredSnapshot>>,
    /// Tombstones: resources deleted through the contract.
    deleted: Mutex<HashSet<RoomName>>,
    tokens: Mutex<HashMap<String, Verdict>>,
    down: AtomicBool,
    next_id: AtomicU64,
    saves: AtomicU64,
    verifies: AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Successful saves so far.
    pub fn saves(&self) -> u64 {
        self.saves.load(Ordering::SeqCst)
    }

    /// Verify calls so far.
    pub fn verifies(&self) -> u64 {
        self.verifies.load(Ordering::SeqCst)
    }

    pub fn snapshot(&self, room: &RoomName) -> Option<StoredSnapshot> {
        self.snapshots
            .lock()
            .expect("store lock")
            .get(room)
            .cloned()
    }

    /// Puts a snapshot in place directly (as another relay's save would).
    pub fn put(&self, room: &RoomName, bytes: Vec<u8>) -> String {
        let id = format!("m{}", self.next_id.fetch_add(1, Ordering::SeqCst) + 1);
        let snap = StoredSnapshot {
            bytes,
            snapshot_id: id.clone(),
            saved_at: Some(0),
        };
        self.snapshots
            .lock()
            .expect("store lock")
            .insert(room.clone(), snap);
        id
    }

    /// Deletes the resource as `DELETE /snapshots/...` does: later loads and saves answer
    /// `resource_deleted`.
    pub fn delete(&self, room: &RoomName) {
        self.snapshots.lock().expect("store lock").remove(room);
        self.deleted
            .lock()
            .expect("store lock")
            .insert(room.clone());
    }

    fn check_live(&self, room: &RoomName) -> Result<(), StoreError> {
        if self.deleted.lock().expect("store lock").contains(room) {
            Err(StoreError::Deleted)
        } else {
            Ok(())
        }
    }

    /// Declares what verifying `token` answers (unknown tokens are denied as `bad_signature`).
    pub fn set_token(&self, token: &str, verdict: Verdict) {
        self.tokens
            .lock()
            .expect("store lock")
            .insert(token.to_owned(), verdict);
    }

    fn check_up(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unreachable("memory store is down".into()))
        } else {
            Ok(())
        }
    }
}

impl SnapshotStore for MemoryStore {
    fn load<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, StoreError>> {
        async move {
            self.check_up()?;
            self.check_live(room)?;
            Ok(self.snapshot(room))
        }
        .boxed()
    }

    fn save<'a>(
        &'a self,
        room: &'a RoomName,
        state: Vec<u8>,
        precondition: Precondition,
    ) -> BoxFuture<'a, Result<SaveReceipt, StoreError>> {
        async move {
            self.check_up()?;
            self.check_live(room)?;
            ykeep_core::validate_update(&state).map_err(|e| {
                StoreError::Refused(Refusal {
                    method: "POST",
                    url: format!("memory:/snapshots/{room}"),
                    status: 400,
                    code: Some(ykeep_core::contract::code::BAD_UPDATE.into()),
                    body_head: e.to_string(),
                })
            })?;
            let current = self.snapshot(room);
            let current_id = current.as_ref().map(|s| s.snapshot_id.clone());
            let new = DurabilityMarker::of_update(&state).expect("validated");
            let contains_current = || {
                current.as_ref().is_none_or(|cur| {
                    new.covers(&DurabilityMarker::of_update(&cur.bytes).expect("stored"))
                })
            };
            let ok = match &precondition {
                Precondition::IfMatch(id) => current_id.as_deref() == Some(id.as_str()),
                Precondition::IfNoneMatch => current.is_none(),
                // As the stores do: no header, so the new state must contain the current one.
                Precondition::Contains => contains_current(),
            };
            if !ok {
                return Err(StoreError::Conflict {
                    current: current_id,
                });
            }
            // The store's own guard: a save never loses what the store holds. The relay names
            // the snapshot it merged, so a state that lacks it is a relay bug, not a conflict.
            assert!(
                contains_current(),
                "relay saved a state that lacks the stored snapshot"
            );
            let size = state.len() as u64;
            let state_vector =
                ykeep_core::b64::encode(&ykeep_core::state_vector_of(&state).expect("validated"));
            let id = self.put(room, state);
            self.saves.fetch_add(1, Ordering::SeqCst);
            Ok(SaveReceipt {
                snapshot_id: id,
                size,
                state_vector,
                saved_at: 0,
            })
        }
        .boxed()
    }

    fn verify<'a>(
        &'a self,
        token: &'a str,
        _room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        async move {
            self.check_up()?;
            self.verifies.fetch_add(1, Ordering::SeqCst);
            let tokens = self.tokens.lock().expect("store lock");
            Ok(tokens.get(token).cloned().unwrap_or(Verdict::Denied {
                reason: ykeep_core::contract::reason::BAD_SIGNATURE.into(),
            }))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

    fn state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    #[tokio::test]
    async fn contains_needs_the_current_snapshot_and_receipts_are_complete() {
        let store = MemoryStore::new();
        let room = RoomName::parse("document/x").unwrap();
        let doc = Doc::with_client_id(1);
        let text = doc.get_or_insert_text("t");
        text.insert(&mut doc.transact_mut(), 0, "hello");
        let first = state(&doc);
        let receipt = store
            .save(&room, first.clone(), Precondition::Contains)
            .await
            .unwrap();
        assert_eq!(receipt.size, first.len() as u64);
        assert_eq!(
            ykeep_core::b64::decode(&receipt.state_vector).unwrap(),
            ykeep_core::state_vector_of(&first).unwrap()
        );

        // A state that never saw the snapshot is a conflict naming it; nothing changes.
        let stranger = Doc::with_client_id(2);
        stranger
            .get_or_insert_text("t")
            .insert(&mut stranger.transact_mut(), 0, "other");
        match store
            .save(&room, state(&stranger), Precondition::Contains)
            .await
        {
            Err(StoreError::Conflict { current }) => {
                assert_eq!(current.as_deref(), Some(receipt.snapshot_id.as_str()))
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(store.saves(), 1);

        // A later state of the same doc (a delete included) contains it.
        text.remove_range(&mut doc.transact_mut(), 0, 1);
        let next = store
            .save(&room, state(&doc), Precondition::Contains)
            .await
            .unwrap();
        assert_ne!(next.snapshot_id, receipt.snapshot_id);
        assert_eq!(store.saves(), 2);
    }
}
