//! `LocalStore` (the embedded store in process, as `serve` saves) answers exactly as `HttpStore`
//! answers over the same store's HTTP routes: the same script runs against both, on one real
//! embedded store, and both must give the expected outcomes.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{text_of_update, update_with_text};
use ykeep_core::RoomName;
use ykeep_relay::store_client::{
    HttpStore, LocalStore, Precondition, SnapshotStore, StoreError, StoredSnapshot, Verdict,
};
use ykeep_store::token::{Claims, mint, now_unix};
use ykeep_store::{EmbeddedStore, StoreConfig};

const SECRET: &str = "local-store-secret";
const TOKEN_KEY: &str = "local-store-token-key";
const LIMIT: usize = 4096;

/// Snapshot ids as `#1`, `#2`, … in the order first seen, so two stores' answers compare.
#[derive(Default)]
struct Ids(HashMap<String, usize>);

impl Ids {
    fn name(&mut self, id: &str) -> String {
        let next = self.0.len() + 1;
        format!("#{}", self.0.entry(id.to_owned()).or_insert(next))
    }

    fn loaded(&mut self, r: Result<Option<StoredSnapshot>, StoreError>) -> String {
        match r {
            Ok(None) => "none".into(),
            Ok(Some(s)) => format!(
                "{} {:?} saved_at={}",
                self.name(&s.snapshot_id),
                text_of_update(&s.bytes),
                s.saved_at.is_some_and(|t| t > 0)
            ),
            Err(e) => self.error(e),
        }
    }

    fn saved<T>(&mut self, r: Result<T, StoreError>, id: impl Fn(&T) -> &str) -> String {
        match r {
            Ok(receipt) => format!("saved {}", self.name(id(&receipt))),
            Err(e) => self.error(e),
        }
    }

    fn error(&mut self, e: StoreError) -> String {
        match e {
            StoreError::Deleted => "deleted".into(),
            StoreError::Conflict { current } => match current {
                Some(id) => format!("conflict {}", self.name(&id)),
                None => "conflict none".into(),
            },
            StoreError::TooLarge => "too large".into(),
            StoreError::Unreachable(why) => format!("unreachable {why}"),
            StoreError::Refused(r) => format!("refused {} {:?}", r.status, r.code),
        }
    }
}

/// The script: every rule the relay relies on, against `store`, on rooms `document/<p>-*`.
async fn script(store: &dyn SnapshotStore, embedded: &EmbeddedStore, p: &str) -> Vec<String> {
    let room = |name: &str| RoomName::from_parts("document", &format!("{p}-{name}")).unwrap();
    let (unknown, empty, gone) = (room("unknown"), room("empty"), room("gone"));
    for r in [&empty, &gone] {
        embedded.create(r.kind, r.id.clone()).await.unwrap();
    }
    let mut ids = Ids::default();
    let mut out = Vec::new();
    let first = update_with_text(1, "first");

    // An unknown id is nothing to merge, and not a deletion.
    out.push(ids.loaded(store.load(&unknown).await));
    let r = store
        .save(&unknown, first.clone(), Precondition::IfNoneMatch)
        .await;
    out.push(ids.saved(r, |r| &r.snapshot_id));
    // A resource without a snapshot.
    out.push(ids.loaded(store.load(&empty).await));
    let r = store
        .save(&empty, first.clone(), Precondition::IfNoneMatch)
        .await;
    let saved_id = r.as_ref().map(|r| r.snapshot_id.clone()).ok();
    out.push(ids.saved(r, |r| &r.snapshot_id));
    let saved_id = saved_id.expect("the first save");
    out.push(ids.loaded(store.load(&empty).await));
    out.push(ids.loaded(store.load_if_changed(&empty, &saved_id).await));
    out.push(ids.loaded(store.load_if_changed(&empty, "older").await));
    // Preconditions.
    let r = store
        .save(&empty, first.clone(), Precondition::IfNoneMatch)
        .await;
    out.push(ids.saved(r, |r| &r.snapshot_id));
    let r = store
        .save(&empty, first.clone(), Precondition::IfMatch("older".into()))
        .await;
    out.push(ids.saved(r, |r| &r.snapshot_id));
    let r = store
        .save(
            &empty,
            update_with_text(1, "second"),
            Precondition::IfMatch(saved_id.clone()),
        )
        .await;
    out.push(ids.saved(r, |r| &r.snapshot_id));
    out.push(ids.loaded(store.load(&empty).await));
    // Too large, and not a Yjs update at all.
    let big = update_with_text(2, &"x".repeat(LIMIT * 2));
    let r = store.save(&gone, big, Precondition::IfNoneMatch).await;
    out.push(ids.saved(r, |r| &r.snapshot_id));
    let r = store
        .save(&gone, b"not yjs".to_vec(), Precondition::IfNoneMatch)
        .await;
    out.push(ids.saved(r, |r| &r.snapshot_id));
    // A tombstone is the one answer that is `Deleted`.
    let r = store
        .save(&gone, first.clone(), Precondition::IfNoneMatch)
        .await;
    out.push(ids.saved(r, |r| &r.snapshot_id));
    embedded.delete(gone.kind, gone.id.clone()).await.unwrap();
    out.push(ids.loaded(store.load(&gone).await));
    out.push(ids.loaded(store.load_if_changed(&gone, "older").await));
    let r = store.save(&gone, first, Precondition::IfNoneMatch).await;
    out.push(ids.saved(r, |r| &r.snapshot_id));
    // User tokens.
    let token = |kind: &str, id: &str| {
        let claims = Claims {
            sub: "alice".into(),
            kind: kind.into(),
            id: id.into(),
            exp: now_unix() + 600,
        };
        mint(TOKEN_KEY, &claims)
    };
    for t in [
        token("document", &empty.id.to_string()),
        token("document", "elsewhere"),
        "garbage".to_owned(),
    ] {
        out.push(match store.verify(&t, &empty).await {
            Ok(Verdict::Allowed { user_id }) => format!("allowed {user_id:?}"),
            Ok(Verdict::Denied { reason }) => format!("denied {reason}"),
            Err(e) => ids.error(e),
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_answers_as_the_http_client_does_over_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(StoreConfig {
        data_dir: dir.path().join("store"),
        secret: SECRET.into(),
        token_key: TOKEN_KEY.into(),
        auto_create: false,
        max_snapshot_bytes: LIMIT,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = embedded.router();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = HttpStore::new(&format!("http://{addr}"), SECRET, Duration::from_secs(5)).unwrap();
    let local = LocalStore::new(embedded.clone());

    let expected = [
        "none",
        "refused 404 Some(\"not_found\")",
        "none",
        "saved #1",
        "#1 \"first\" saved_at=true",
        "none",
        "#1 \"first\" saved_at=true",
        "conflict #1",
        "conflict #1",
        "saved #2",
        "#2 \"second\" saved_at=true",
        "too large",
        "refused 400 Some(\"bad_update\")",
        "saved #3",
        "deleted",
        "deleted",
        "deleted",
        "allowed Some(\"alice\")",
        "denied wrong_resource",
        "denied malformed",
    ];
    let over_http = script(&http, &embedded, "http").await;
    let in_process = script(&local, &embedded, "local").await;
    assert_eq!(over_http, expected, "HttpStore");
    assert_eq!(in_process, expected, "LocalStore");
    server.abort();
}
