//! Typed errors of the client module. The bindings turn them into JS `Error` objects.

use ykeep_core::{AddressError, MarkerError, MergeError};

use crate::cache::ForeignRecord;

#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("invalid room: {0}")]
    Address(#[from] AddressError),
    #[error(transparent)]
    Update(#[from] MergeError),
    #[error(transparent)]
    Marker(#[from] MarkerError),
    #[error("invalid option: {0}")]
    Options(String),
    #[error("IndexedDB: {0}")]
    Cache(#[from] CacheError),
    /// The room's cache holds a record of another format version; it is left as it is.
    #[error("IndexedDB: {0}")]
    Foreign(#[from] ForeignRecord),
    #[error("{source_name}: {message}")]
    Source {
        source_name: &'static str,
        message: String,
    },
    #[error("this YKeep was destroyed")]
    Destroyed,
}

/// What went wrong in IndexedDB (the cache).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// There is no `indexedDB` in this context.
    #[error("indexedDB is not available in this context")]
    Unavailable,
    /// A call or a request failed with this exception (a `DOMException`).
    #[error("{op} failed: {name}: {message}")]
    Failed {
        /// What failed: `open`, `transaction`, `get`, `put`, ...
        op: &'static str,
        name: String,
        message: String,
    },
    /// The transaction aborted without an exception: nothing it wrote is kept.
    #[error("the transaction was aborted")]
    Aborted,
    /// `getAllKeys` and `getAll` over the same key range in one transaction disagreed.
    #[error("read {keys} log keys but {values} values for {room}")]
    LogMismatch {
        room: String,
        keys: usize,
        values: usize,
    },
}
