//! [`SnapshotStore`] over the embedded store in the same process (`ykeep-relay serve`): the
//! calls the store's HTTP routes make, without HTTP in between.
//!
//! The answers map exactly as [`super::HttpStore`] maps the same store's HTTP answers: only a
//! tombstone (`resource_deleted`) is [`StoreError::Deleted`]; an unknown id (`not_found`) or a
//! resource without a snapshot (`no_snapshot`) loads as `Ok(None)` and refuses a save as
//! [`StoreError::Refused`]; a failed precondition is [`StoreError::Conflict`] with the current
//! snapshot id; an oversized body is [`StoreError::TooLarge`].

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use ykeep_core::RoomName;
use ykeep_store::EmbeddedStore;

use super::{
    Precondition, Refusal, SaveReceipt, SnapshotStore, StoreError, StoredSnapshot, Verdict,
};

/// The embedded store, called in process. Cheap to clone.
#[derive(Clone)]
pub struct LocalStore {
    store: EmbeddedStore,
}

impl LocalStore {
    pub fn new(store: EmbeddedStore) -> Self {
        LocalStore { store }
    }

    /// The store itself (for mounting its HTTP routes beside the relay's).
    pub fn embedded(&self) -> &EmbeddedStore {
        &self.store
    }
}

/// How a log line names the operation (the URL the same call has over HTTP).
fn url(room: &RoomName) -> String {
    format!("embedded:/snapshots/{}/{}", room.kind, room.id)
}

/// The store's error as the relay sees it: the rule of the HTTP client's `error_of`, on the
/// typed error instead of its status and code.
fn answer(method: &'static str, url: String, e: ykeep_store::ServiceError) -> StoreError {
    use ykeep_store::ServiceError as E;
    let current = match &e {
        E::Conflict { current, .. } => current.clone(),
        _ => None,
    };
    let refusal = Refusal {
        method,
        url,
        status: e.status().as_u16(),
        code: Some(e.code().to_owned()),
        body_head: e.to_string(),
    };
    StoreError::of_answer(refusal, current)
}

/// A load's answer: nothing to merge when the row has no snapshot or there is no such row
/// (the save that follows carries `If-None-Match: *`, so it cannot replace a snapshot it did
/// not see), as [`super::HttpStore`] answers.
fn loaded(
    room: &RoomName,
    result: Result<Option<ykeep_store::Snapshot>, ykeep_store::ServiceError>,
) -> Result<Option<StoredSnapshot>, StoreError> {
    match result {
        Ok(snapshot) => Ok(snapshot.map(|s| StoredSnapshot {
            bytes: s.bytes,
            snapshot_id: s.id,
            saved_at: Some(s.saved_at),
        })),
        Err(e) => match answer("GET", url(room), e) {
            e if e.is_nothing_to_merge() => Ok(None),
            e => Err(e),
        },
    }
}

impl SnapshotStore for LocalStore {
    fn load<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, StoreError>> {
        async move {
            let result = self.store.load(room.kind, room.id.clone()).await;
            loaded(room, result.map(Some))
        }
        .boxed()
    }

    fn load_if_changed<'a>(
        &'a self,
        room: &'a RoomName,
        known: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, StoreError>> {
        async move {
            let result = self
                .store
                .load_if_changed(room.kind, room.id.clone(), known.to_owned())
                .await;
            loaded(room, result)
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
            self.store
                .save(room.kind, room.id.clone(), state, precondition)
                .await
                .map_err(|e| answer("POST", url(room), e))
        }
        .boxed()
    }

    fn verify<'a>(
        &'a self,
        token: &'a str,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>> {
        async move {
            Ok(match self.store.verify_token(token, room.kind, &room.id) {
                Ok(claims) => Verdict::Allowed {
                    user_id: Some(claims.sub),
                },
                Err(e) => Verdict::Denied {
                    reason: e.reason().to_owned(),
                },
            })
        }
        .boxed()
    }
}
