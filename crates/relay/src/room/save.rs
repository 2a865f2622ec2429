//! One save of a room's full state to the store: never lose what the store holds.
//!
//! If the room has not merged the store's snapshot yet (the store was down at cold start), the
//! snapshot is fetched and merged first. The save carries `If-Match` (or `If-None-Match: *`);
//! on 409 the current snapshot is fetched, merged and the save retried once.

use std::time::Instant;

use ykeep_core::{DurabilityMarker, RoomName};

use crate::store_client::{Precondition, SaveReceipt, SnapshotStore, StoreError};

/// What the room knows about the store when the save starts.
#[derive(Debug, Clone)]
pub struct SaveInput {
    pub state: Vec<u8>,
    /// The marker of `state` (taken from the room's doc, cheaper than decoding `state`).
    pub marker: DurabilityMarker,
    /// The store snapshot id the room's state already contains (None = store had none).
    pub known_snapshot: Option<String>,
    /// False while the store's snapshot has never been fetched and merged.
    pub store_synced: bool,
    pub max_bytes: usize,
}

#[derive(Debug)]
pub struct SaveOutcome {
    pub receipt: SaveReceipt,
    /// The state that was stored (the room's state, merged with the store's when needed).
    pub saved_state: Vec<u8>,
    pub saved_marker: DurabilityMarker,
    /// Store content merged during the save, for the room to apply.
    pub merged_from_store: Vec<Vec<u8>>,
    pub elapsed: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("snapshot of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("merging the store's snapshot failed: {0}")]
    Merge(#[from] ykeep_core::MergeError),
    #[error("the store answered 409 twice")]
    ConflictAgain,
}

impl SaveError {
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            SaveError::TooLarge { .. } | SaveError::Store(StoreError::TooLarge)
        )
    }
}

pub async fn save_room(
    store: &dyn SnapshotStore,
    room: &RoomName,
    input: SaveInput,
) -> Result<SaveOutcome, SaveError> {
    let started = Instant::now();
    let mut state = input.state;
    let mut marker = Some(input.marker);
    let mut merged_from_store = Vec::new();
    let mut precondition = match input.known_snapshot {
        Some(id) => Precondition::IfMatch(id),
        None => Precondition::IfNoneMatch,
    };
    if !input.store_synced {
        precondition = merge_current(store, room, &mut state, &mut merged_from_store).await?;
        if !merged_from_store.is_empty() {
            marker = None;
        }
    }
    let mut retried = false;
    loop {
        if state.len() > input.max_bytes {
            return Err(SaveError::TooLarge {
                size: state.len(),
                limit: input.max_bytes,
            });
        }
        match store.save(room, state.clone(), precondition.clone()).await {
            Ok(receipt) => {
                let saved_marker = match marker {
                    Some(m) => m,
                    None => DurabilityMarker::of_update(&state)
                        .map_err(|e| ykeep_core::MergeError::Decode(e.to_string()))?,
                };
                return Ok(SaveOutcome {
                    receipt,
                    saved_state: state,
                    saved_marker,
                    merged_from_store,
                    elapsed: started.elapsed(),
                });
            }
            Err(StoreError::Conflict { .. }) if !retried => {
                retried = true;
                tracing::info!(%room, "save met a conflict: merging the store's snapshot");
                precondition =
                    merge_current(store, room, &mut state, &mut merged_from_store).await?;
                marker = None;
            }
            Err(StoreError::Conflict { .. }) => return Err(SaveError::ConflictAgain),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Fetches the store's snapshot and merges it into `state`; returns the precondition that
/// names it.
async fn merge_current(
    store: &dyn SnapshotStore,
    room: &RoomName,
    state: &mut Vec<u8>,
    merged: &mut Vec<Vec<u8>>,
) -> Result<Precondition, SaveError> {
    match store.load(room).await? {
        Some(current) => {
            *state = ykeep_core::merge_updates([state.as_slice(), current.bytes.as_slice()])?;
            merged.push(current.bytes);
            Ok(Precondition::IfMatch(current.snapshot_id))
        }
        None => Ok(Precondition::IfNoneMatch),
    }
}
