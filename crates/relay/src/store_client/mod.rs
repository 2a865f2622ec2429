//! The relay's view of the snapshot store: load, save with a precondition, verify a user token.
//!
//! [`HttpStore`] speaks the HTTP contract of `docs/store-api.md` (embedded store or Convex;
//! `relay --store-url`); [`LocalStore`] calls the embedded store in the same process (`serve`)
//! with the same answers;
//! [`MemoryStore`] follows the same rules in memory, for tests (feature `test-support`).

pub mod http;
pub mod local;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;

use futures_util::future::BoxFuture;
use ykeep_core::RoomName;

pub use http::{ContractCheckError, HttpStore};
pub use local::LocalStore;
#[cfg(any(test, feature = "test-support"))]
pub use memory::MemoryStore;

pub use ykeep_room::store::{BODY_HEAD_BYTES, Refusal, StoreError, StoredSnapshot, body_head};

/// The save's precondition and the store's receipt are the wire contract's
/// (`ykeep_core::wire`). The relay sends `IfMatch` / `IfNoneMatch`: it always merges the snapshot
/// it names first (`ykeep_room`'s save). `Contains` (no header) leaves the containment check to the
/// store; [`HttpStore`] and [`MemoryStore`] both follow it as the stores do.
pub use ykeep_core::wire::{Precondition, SaveReceipt};

/// A user token check's answer.
pub use ykeep_room::store_http::Verdict;

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
