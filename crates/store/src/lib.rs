//! ykeep-store: the embedded snapshot store.
//!
//! SQLite (WAL) holds the resource tables `documents`, `diagrams`, `tasks` and a `blobs` table;
//! snapshot bytes live in files under `<data>/blobs/`. The HTTP contract is `docs/store-api.md`.
//!
//! A save checks its precondition and records the new blob id as pending, writes the blob file
//! (temp name, fsync, rename), then switches the row in one transaction that checks the
//! precondition again and records the replaced blob as detached, then removes the old file. A
//! crash between any two steps leaves the row pointing at one complete blob. The start-up sweep
//! removes only what the database records as pending or detached (and temp files); a blob file
//! the database does not know is kept and reported, and a database that names no blob next to
//! such files is refused (`StoreError::UnknownBlobFiles`).

mod auth;
mod blobs;
mod config;
mod db;
mod error;
mod routes;
mod service;
mod sweep;
pub mod token;

pub use config::StoreConfig;
pub use db::{SCHEMA_V1 as LEGACY_SCHEMA_V1, SCHEMA_VERSION};
pub use error::StoreError;
pub use service::{EmbeddedStore, Precondition, SaveReceipt, Snapshot};
