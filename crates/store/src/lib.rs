//! ykeep-store: the embedded snapshot store.
//!
//! SQLite (WAL) holds the resource tables `documents`, `diagrams`, `tasks` and a `blobs` table;
//! snapshot bytes live in files under `<data>/blobs/`. The HTTP contract is `docs/store-api.md`.
//!
//! A save writes the new blob file (temp name, fsync, rename), then switches the row in one
//! transaction that also checks the compare-and-set precondition, then removes the old file. A
//! crash between any two steps leaves the row pointing at one complete blob; files no row points
//! at are collected at start-up.

mod auth;
mod blobs;
mod config;
mod db;
mod error;
mod routes;
mod service;
pub mod token;

pub use config::StoreConfig;
pub use db::{SCHEMA_V1 as LEGACY_SCHEMA_V1, SCHEMA_VERSION};
pub use error::StoreError;
pub use service::{EmbeddedStore, Precondition, SaveReceipt, Snapshot};
