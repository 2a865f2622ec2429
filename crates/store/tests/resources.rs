//! Embedded-store-only routes and modes: `POST /resources/{kind}`, `--auto-create`, and the
//! `store` name in `GET /contract`.
//! (The shared contract cases cover what Convex serves too.)

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use ykeep_store::{EmbeddedStore, StoreConfig};
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

const SECRET: &str = "resources-secret";

async fn store(dir: &tempfile::TempDir, auto_create: bool) -> EmbeddedStore {
    EmbeddedStore::open(StoreConfig {
        data_dir: dir.path().join("store"),
        secret: SECRET.into(),
        token_key: "k".into(),
        auto_create,
        max_snapshot_bytes: 4096,
    })
    .await
    .unwrap()
}

async fn call(
    store: &EmbeddedStore,
    method: &str,
    path: &str,
    secret: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {secret}"))
        .body(Body::from(body))
        .unwrap();
    let response = store.router().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn update(text: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(1);
    doc.get_or_insert_text("t")
        .insert(&mut doc.transact_mut(), 0, text);
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

#[tokio::test]
async fn resources_are_created_once_with_a_given_or_random_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, false).await;
    let body = |json: &str| json.as_bytes().to_vec();

    let (status, json) = call(
        &store,
        "POST",
        "/resources/task",
        SECRET,
        body(r#"{"id":"t-1"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(json, serde_json::json!({"kind": "task", "id": "t-1"}));

    let (status, json) = call(
        &store,
        "POST",
        "/resources/task",
        SECRET,
        body(r#"{"id":"t-1"}"#),
    )
    .await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (StatusCode::CONFLICT, &"conflict".into())
    );

    let (status, json) = call(&store, "POST", "/resources/diagram", SECRET, Vec::new()).await;
    assert_eq!(status, StatusCode::CREATED);
    let random = json["id"].as_str().unwrap().to_owned();
    assert!(!random.is_empty());
    let (status, _) = call(&store, "POST", "/resources/diagram", SECRET, Vec::new()).await;
    assert_eq!(status, StatusCode::CREATED, "a second random id differs");

    let (status, json) = call(
        &store,
        "POST",
        "/resources/task",
        SECRET,
        body(r#"{"id":"a b"}"#),
    )
    .await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (StatusCode::BAD_REQUEST, &"bad_id".into())
    );
    let (status, json) = call(&store, "POST", "/resources/widget", SECRET, Vec::new()).await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (StatusCode::BAD_REQUEST, &"bad_kind".into())
    );
    let (status, json) = call(&store, "POST", "/resources/task", SECRET, body("{nope")).await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (StatusCode::BAD_REQUEST, &"bad_request".into())
    );
    let (status, _) = call(
        &store,
        "POST",
        "/resources/task",
        "wrong",
        body(r#"{"id":"t-2"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The refused creation changed nothing: t-2 is still unknown.
    let (status, json) = call(&store, "POST", "/snapshots/task/t-2", SECRET, update("x")).await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (StatusCode::NOT_FOUND, &"not_found".into())
    );

    let (status, _) = call(
        &store,
        "POST",
        &format!("/snapshots/diagram/{random}"),
        SECRET,
        update("d"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the random id names a real row");
}

#[tokio::test]
async fn auto_create_makes_the_row_on_first_save_but_never_revives_a_deleted_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, true).await;
    let (status, json) = call(
        &store,
        "POST",
        "/snapshots/document/fresh",
        SECRET,
        update("hi"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, _) = call(
        &store,
        "GET",
        "/snapshots/document/fresh",
        SECRET,
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A load does not create anything.
    let (status, json) = call(
        &store,
        "GET",
        "/snapshots/document/never-saved",
        SECRET,
        Vec::new(),
    )
    .await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (StatusCode::NOT_FOUND, &"not_found".into())
    );

    let (status, _) = call(
        &store,
        "DELETE",
        "/snapshots/document/fresh",
        SECRET,
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, json) = call(
        &store,
        "POST",
        "/snapshots/document/fresh",
        SECRET,
        update("back?"),
    )
    .await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (StatusCode::NOT_FOUND, &"resource_deleted".into()),
        "auto-create does not revive a tombstone"
    );
    let files = std::fs::read_dir(dir.path().join("store/blobs"))
        .unwrap()
        .count();
    assert_eq!(
        files, 0,
        "the deleted resource's blob is gone and nothing new was kept"
    );
}

#[tokio::test]
async fn contract_route_names_the_embedded_store_on_both_routers() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, false).await;
    let (status, json) = call(&store, "GET", "/contract", SECRET, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let info: ykeep_core::ContractInfo = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(info, ykeep_core::ContractInfo::new("embedded"), "{json}");
    assert_eq!(
        json,
        serde_json::json!({"contract": 1, "store": "embedded"})
    );

    // The standalone router (ykeep-store, ykeep-relay store) answers it the same way.
    let request = Request::get("/contract")
        .header("authorization", format!("Bearer {SECRET}"))
        .body(Body::empty())
        .unwrap();
    let response = store.standalone_router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
