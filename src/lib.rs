//! ykeep: the browser client module.
//!
//! Loads a Yjs room from the relay, the snapshot store and an IndexedDB cache, merges them with
//! yrs into one update for the page's `Y.Doc`, and keeps IndexedDB current as a warm cache and
//! an outbox of edits not yet durable remotely. JS use (the package entry initialises wasm):
//!
//! ```js
//! import { YKeep } from 'ykeep'
//! const keep = new YKeep(ydoc, { kind: 'document', id, relayUrl, storeUrl, token })
//! const report = await keep.whenSynced
//! ```
//!
//! The pure parts ([`load`], [`cache`], [`options`]) build and test natively; the engine that
//! talks to `fetch` and IndexedDB and the `#[wasm_bindgen]` surface exist on wasm32 only.
pub use ykeep_core as core;

pub mod cache;
pub mod durability;
pub mod error;
pub mod load;
pub mod options;
pub mod tiers;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
#[cfg(target_arch = "wasm32")]
pub mod engine;
#[cfg(target_arch = "wasm32")]
pub mod http;
#[cfg(target_arch = "wasm32")]
pub mod idb;
#[cfg(target_arch = "wasm32")]
pub mod indexeddb;
#[cfg(target_arch = "wasm32")]
pub mod js;

pub use error::KeepError;
