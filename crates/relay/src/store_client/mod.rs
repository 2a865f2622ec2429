//! The relay's view of the snapshot store: load, save with a precondition, verify a user token.
//!
//! [`HttpStore`] speaks the HTTP contract of `docs/store-api.md` (embedded store or Convex);
//! [`MemoryStore`] follows the same rules in memory, for tests.

pub mod http;
pub mod memory;

use futures_util::future::BoxFuture;
use ykeep_core::RoomName;

pub use http::HttpStore;
pub use memory::MemoryStore;

/// A snapshot as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub bytes: Vec<u8>,
    pub snapshot_id: String,
    pub saved_at: Option<i64>,
}

/// The save's precondition (`If-Match` / `If-None-Match: *`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    IfMatch(String),
    IfNoneMatch,
}

/// What the store answered to a successful save.
#[derive(Debug, Clone)]
pub struct SaveReceipt {
    pub snapshot_id: String,
    pub saved_at: i64,
}

/// A user token check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed { user_id: Option<String> },
    Denied { reason: String },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No resource row with that id (or it was deleted).
    #[error("the store has no such resource")]
    NotFound,
    /// The precondition failed.
    #[error("the store's snapshot changed (now {current:?})")]
    Conflict { current: Option<String> },
    #[error("the store refused the snapshot as too large")]
    TooLarge,
    #[error("the store is unreachable: {0}")]
    Unreachable(String),
    #[error("the store answered {status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
}

/// The snapshot store as the relay uses it.
pub trait SnapshotStore: Send + Sync + 'static {
    /// `Ok(None)`: the resource exists but has no snapshot yet.
    fn load<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, StoreError>>;

    /// The snapshot unless it is `known` (the id the caller holds already): `Ok(None)` when it
    /// is unchanged or there is none. This default loads and compares; [`HttpStore`] sends
    /// `If-None-Match` so that an unchanged snapshot costs a 304.
    fn load_if_changed<'a>(
        &'a self,
        room: &'a RoomName,
        known: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, StoreError>> {
        use futures_util::FutureExt;
        async move { Ok(self.load(room).await?.filter(|s| s.snapshot_id != known)) }.boxed()
    }

    fn save<'a>(
        &'a self,
        room: &'a RoomName,
        state: Vec<u8>,
        precondition: Precondition,
    ) -> BoxFuture<'a, Result<SaveReceipt, StoreError>>;

    fn verify<'a>(
        &'a self,
        token: &'a str,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Verdict, StoreError>>;
}
