//! The embedded snapshot store, wired into `serve`, `store` and `token`.

use axum::Router;
use ykeep_relay::RelayError;
use ykeep_relay::config::{Config, TokenArgs};

/// The embedded store's routes for `serve`.
pub async fn store_router(_config: &Config) -> Result<Router, RelayError> {
    Err(RelayError::Config(
        "the embedded store (crates/store) is not built yet".into(),
    ))
}

/// `ykeep-relay store`.
pub async fn store_only(_config: Config) -> Result<(), RelayError> {
    Err(RelayError::Config(
        "the embedded store (crates/store) is not built yet".into(),
    ))
}

/// `ykeep-relay token`.
pub fn print_token(_args: TokenArgs) -> Result<(), RelayError> {
    Err(RelayError::Config(
        "the embedded store (crates/store) is not built yet".into(),
    ))
}

/// A random secret for `serve --demo` when none is given.
pub fn random_secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
