//! Client auth: user tokens are checked by the store's `POST /collaboration/verify`, and the
//! answer is cached briefly. `--dev-allow-all` skips the check (loudly, see `Config`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ykeep_core::RoomName;
use ykeep_room::access::{self, Precheck};

use crate::store_client::SnapshotStore;

/// The rules are the room crate's, shared with the Durable Object host.
pub use ykeep_room::access::AuthError;

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
        let token = match access::precheck(token, self.secret.as_deref())? {
            Precheck::Secret => return Ok(()),
            Precheck::AskStore(token) => token,
        };
        let key = (token.to_owned(), room.clone());
        if let Some((at, result)) = self.cache.lock().expect("auth cache").get(&key)
            && at.elapsed() < self.ttl
        {
            return result.clone();
        }
        let result = access::judge(self.store.verify(token, room).await);
        if result == Err(AuthError::Unavailable) {
            return result; // not a verdict: never cached
        }
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
    use crate::store_client::{MemoryStore, Verdict};

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
