//! The relay's view of the snapshot store: load, save with a precondition, verify a user token.
//!
//! [`HttpStore`] speaks the HTTP contract of `docs/store-api.md` (embedded store or Convex);
//! [`MemoryStore`] follows the same rules in memory, for tests.

pub mod http;
pub mod memory;

use futures_util::future::BoxFuture;
use ykeep_core::RoomName;

pub use http::{ContractCheckError, HttpStore};
pub use memory::MemoryStore;

/// A snapshot as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub bytes: Vec<u8>,
    pub snapshot_id: String,
    pub saved_at: Option<i64>,
}

/// The save's precondition and the store's receipt are the wire contract's
/// (`ykeep_core::wire`). The relay sends `IfMatch` / `IfNoneMatch`: it always merges the snapshot
/// it names first (`room::save`). `Contains` (no header) leaves the containment check to the
/// store; [`HttpStore`] and [`MemoryStore`] both follow it as the stores do.
pub use ykeep_core::wire::{Precondition, SaveReceipt};

/// A user token check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed { user_id: Option<String> },
    Denied { reason: String },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store says the resource was deleted through the contract: its error body carries
    /// the code `resource_deleted`. The only answer on which the relay lets go of a room (into
    /// its quarantine, not into nothing).
    #[error("the store says this resource was deleted (resource_deleted)")]
    Deleted,
    /// The precondition failed.
    #[error("the store's snapshot changed (now {current:?})")]
    Conflict { current: Option<String> },
    #[error("the store refused the snapshot as too large")]
    TooLarge,
    #[error("the store is unreachable: {0}")]
    Unreachable(String),
    /// Any other non-success answer, `not_found` and every 404 without the contract's
    /// `resource_deleted` among them (a wrong URL, host or id looks exactly like this).
    #[error(transparent)]
    Refused(Refusal),
}

/// A non-success answer of the store, as much of it as a log line needs to find the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {url} answered {status}{}: {body_head:?}", code_part(.code))]
pub struct Refusal {
    pub method: &'static str,
    pub url: String,
    pub status: u16,
    /// The contract's `error.code`, when the body is the contract's JSON error.
    pub code: Option<String>,
    /// The first bytes of the body, as text (see [`body_head`]).
    pub body_head: String,
}

impl Refusal {
    /// A 404 whose body is the contract's own `not_found`: the store has no row with that id.
    pub fn is_unknown_id(&self) -> bool {
        self.status == 404 && self.code.as_deref() == Some(ykeep_core::contract::code::NOT_FOUND)
    }
}

fn code_part(code: &Option<String>) -> String {
    match code {
        Some(code) => format!(" {code}"),
        None => " (no contract error code)".into(),
    }
}

/// How many bytes of a refused answer go into the log.
pub const BODY_HEAD_BYTES: usize = 160;

/// The first [`BODY_HEAD_BYTES`] of a body as one line of text (invalid UTF-8 replaced,
/// whitespace runs collapsed), for log lines and start-up errors.
pub fn body_head(body: &[u8]) -> String {
    let head = &body[..body.len().min(BODY_HEAD_BYTES)];
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !c.is_control()));
    }
    if body.len() > BODY_HEAD_BYTES {
        out.push('…');
    }
    out
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
