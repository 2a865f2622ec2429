//! ykeep-store: the embedded snapshot store.
//!
//! SQLite (WAL) holds the resource tables `documents`, `diagrams`, `tasks` and a `blobs` table;
//! snapshot bytes live in files under `<data>/blobs/`. The HTTP contract is `docs/store-api.md`.
//!
//! A save checks its precondition (a read), writes the blob durably as `<id>.tmp`, then switches
//! the row in its one transaction, which checks the precondition again and records the replaced
//! blob as detached; then it renames `<id>.tmp` to `<id>.yjs` and removes the old file. A crash
//! between any two steps leaves the row pointing at one complete blob. The start-up sweep
//! promotes a temp file a blob row names, removes other temp files and what the database
//! records as detached; a blob file the database does not know is kept and reported, and a
//! database that names no blob next to such files is refused (`ServiceError::UnknownBlobFiles`).

mod auth;
mod blobs;
pub mod clock;
mod config;
mod db;
mod error;
pub mod random;
mod routes;
mod service;
mod sweep;
pub mod token;

pub use config::StoreConfig;
pub use db::{SCHEMA_V1 as LEGACY_SCHEMA_V1, SCHEMA_VERSION};
pub use error::ServiceError;
pub use service::{EmbeddedStore, Snapshot};
/// The save precondition and receipt of the wire contract, re-exported for callers of
/// [`EmbeddedStore::save`].
pub use ykeep_core::wire::{Precondition, SaveReceipt};
