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
    Cache(String),
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
