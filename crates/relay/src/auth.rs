//! Client auth: user tokens are checked by the store's `POST /collaboration/verify`, and the
//! answer is cached briefly. `--dev-allow-all` skips the check (loudly, see `Config`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use subtle::ConstantTimeEq;
use ykeep_core::RoomName;
use ykeep_core::contract::{self, code};

use crate::store_client::{SnapshotStore, StoreError, Verdict};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("a user token is required")]
    Missing,
    #[error("token refused: {0}")]
    Refused(String),
    #[error("token is not for this resource")]
    WrongResource,
    #[error("cannot verify the token now: the store is unavailable")]
    Unavailable,
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::Refused(_) => StatusCode::UNAUTHORIZED,
            AuthError::WrongResource => StatusCode::FORBIDDEN,
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing | AuthError::Refused(_) => code::UNAUTHORIZED,
            AuthError::WrongResource => code::FORBIDDEN,
            AuthError::Unavailable => code::UNAVAILABLE,
        }
    }
}

const CACHE_MAX: usize = 10_000;

/// (token, room) → when checked, and the answer.
type Cache = HashMap<(String, RoomName), (Instant, Result<(), AuthError>)>;

pub struct Authorizer {
    allow_all: bool,
    secret: Option<String>,
    store: Arc<dyn SnapshotStore>,
    ttl: Duration,
    cache: Mutex<Cache>,
}

impl Authorizer {
    pub fn new(
        allow_all: bool,
        secret: Option<String>,
        store: Arc<dyn SnapshotStore>,
        ttl: Duration,
    ) -> Self {
        Authorizer {
            allow_all,
            secret,
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Checks a user token (or the server secret) for `room`.
    pub async fn check(&self, token: Option<&str>, room: &RoomName) -> Result<(), AuthError> {
        if self.allow_all {
            return Ok(());
        }
        let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        if let Some(secret) = &self.secret
            && bool::from(token.as_bytes().ct_eq(secret.as_bytes()))
        {
            return Ok(());
        }
        let key = (token.to_owned(), room.clone());
        if let Some((at, result)) = self.cache.lock().expect("auth cache").get(&key)
            && at.elapsed() < self.ttl
        {
            return result.clone();
        }
        let result = match self.store.verify(token, room).await {
            Ok(Verdict::Allowed { .. }) => Ok(()),
            Ok(Verdict::Denied { reason }) if reason == contract::reason::WRONG_RESOURCE => {
                Err(AuthError::WrongResource)
            }
            Ok(Verdict::Denied { reason }) => Err(AuthError::Refused(reason)),
            Err(StoreError::Unreachable(e)) => {
                tracing::warn!(error = %e, "token verification: store unreachable");
                return Err(AuthError::Unavailable);
            }
            Err(e) => {
                tracing::warn!(error = %e, "token verification failed");
                return Err(AuthError::Unavailable);
            }
        };
        let mut cache = self.cache.lock().expect("auth cache");
        if cache.len() >= CACHE_MAX {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), result.clone()));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store_client::MemoryStore;

    #[tokio::test]
    async fn verdicts_are_mapped_and_cached() {
        let store = Arc::new(MemoryStore::new());
        store.set_token(
            "good",
            Verdict::Allowed {
                user_id: Some("u".into()),
            },
        );
        store.set_token(
            "other",
            Verdict::Denied {
                reason: "wrong_resource".into(),
            },
        );
        let auth = Authorizer::new(
            false,
            Some("s3cret".into()),
            store.clone(),
            Duration::from_secs(60),
        );
        let room = RoomName::parse("document/x").unwrap();
        assert!(matches!(
            auth.check(None, &room).await,
            Err(AuthError::Missing)
        ));
        assert!(auth.check(Some("good"), &room).await.is_ok());
        assert!(auth.check(Some("good"), &room).await.is_ok());
        assert_eq!(store.verifies(), 1, "second check answered from the cache");
        assert!(matches!(
            auth.check(Some("other"), &room).await,
            Err(AuthError::WrongResource)
        ));
        assert!(matches!(
            auth.check(Some("bad"), &room).await,
            Err(AuthError::Refused(_))
        ));
        assert!(auth.check(Some("s3cret"), &room).await.is_ok());
        store.set_down(true);
        assert!(matches!(
            auth.check(Some("new"), &room).await,
            Err(AuthError::Unavailable)
        ));
        let open = Authorizer::new(true, None, store, Duration::from_secs(1));
        assert!(open.check(None, &room).await.is_ok());
    }
}
