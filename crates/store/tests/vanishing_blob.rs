//! A snapshot whose blob file vanishes under a load: the contract's rule for both stores is
//! `SNAPSHOT_READ_TRIES` reads, then `503 snapshot_unavailable` (retryable, nothing deleted).
//! The Convex store pins the same answer in `convex/snapshots.test.ts`. A JSON contract case
//! cannot take a blob away, so each store has its own test; the try count is pinned by the
//! unit test in `src/service.rs` (and by `readSnapshot`'s test on Convex).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use ykeep_core::contract::code;
use ykeep_store::{EmbeddedStore, StoreConfig};
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

#[tokio::test]
async fn a_vanished_blob_is_503_snapshot_unavailable_and_the_row_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(StoreConfig {
        data_dir: dir.path().to_path_buf(),
        secret: "s".into(),
        token_key: "k".into(),
        auto_create: true,
        max_snapshot_bytes: StoreConfig::DEFAULT_MAX_SNAPSHOT_BYTES,
    })
    .await
    .unwrap();
    let doc = Doc::with_client_id(1);
    doc.get_or_insert_text("t")
        .insert(&mut doc.transact_mut(), 0, "hello");
    let state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let request = |method: &str, body: Vec<u8>| {
        Request::builder()
            .method(method)
            .uri("/snapshots/document/doc1")
            .header("authorization", "bearer s")
            .body(Body::from(body))
            .unwrap()
    };
    let saved = store
        .router()
        .oneshot(request("POST", state.clone()))
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let receipt: ykeep_core::wire::SaveReceipt = serde_json::from_slice(
        &axum::body::to_bytes(saved.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();

    std::fs::remove_file(
        dir.path()
            .join("blobs")
            .join(format!("{}.yjs", receipt.snapshot_id)),
    )
    .unwrap();
    let load = store
        .router()
        .oneshot(request("GET", Vec::new()))
        .await
        .unwrap();
    assert_eq!(load.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(load.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["error"]["code"], code::SNAPSHOT_UNAVAILABLE);

    // Nothing was deleted: the row still names its snapshot, and a save that contains it lands.
    let saved = store
        .router()
        .oneshot(request("POST", state))
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let load = store
        .router()
        .oneshot(request("GET", Vec::new()))
        .await
        .unwrap();
    assert_eq!(load.status(), StatusCode::OK);
}
