use std::path::PathBuf;

/// Everything the embedded store needs; built by the relay's `Config` or the standalone binary.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store's own directory (`<data>/store`): `store.sqlite3` and `blobs/`.
    pub data_dir: PathBuf,
    /// Shared secret for server-to-server calls (`Authorization: Bearer <secret>`).
    pub secret: String,
    /// HMAC key for user tokens (not the shared secret).
    pub token_key: String,
    /// Create resource rows on first save (demo only).
    pub auto_create: bool,
    /// Largest accepted snapshot body, in bytes.
    pub max_snapshot_bytes: usize,
}

impl StoreConfig {
    pub const DEFAULT_MAX_SNAPSHOT_BYTES: usize = ykeep_core::contract::DEFAULT_MAX_SNAPSHOT_BYTES;
}
