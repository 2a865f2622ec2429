//! Toolchain smoke test: a yrs update round-trips through real IndexedDB (`ykeep::indexeddb`)
//! in Chromium.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::IdbTransactionMode;
use ykeep::indexeddb;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn yrs_update_round_trips_through_indexeddb() {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("t");
    text.insert(&mut doc.transact_mut(), 0, "hello from IndexedDB");
    let update = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());

    let db = indexeddb::open("ykeep-smoke", 1, &["blobs"])
        .await
        .expect("open IndexedDB");
    let tx = db
        .transaction(&["blobs"], IdbTransactionMode::Readwrite)
        .unwrap();
    let store = tx.store("blobs").unwrap();
    let value = js_sys::Uint8Array::from(update.as_slice());
    store.put(&value, &JsValue::from_str("k")).await.unwrap();
    tx.done().await.unwrap();

    let tx = db
        .transaction(&["blobs"], IdbTransactionMode::Readonly)
        .unwrap();
    let got = tx
        .store("blobs")
        .unwrap()
        .get(&JsValue::from_str("k"))
        .await
        .unwrap();
    let bytes = js_sys::Uint8Array::new(&got.expect("stored value")).to_vec();
    tx.done().await.unwrap();
    drop(db);
    indexeddb::delete_database("ykeep-smoke").await.unwrap();

    let fresh = Doc::new();
    fresh
        .transact_mut()
        .apply_update(Update::decode_v1(&bytes).unwrap())
        .unwrap();
    let t = fresh.get_or_insert_text("t");
    assert_eq!(t.get_string(&fresh.transact()), "hello from IndexedDB");
}
