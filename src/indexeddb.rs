//! IndexedDB's own API made awaitable, straight on web-sys: open and delete a database,
//! transactions, object store requests.
//!
//! A request is made at once (when the method is called, not when its future is first polled)
//! and awaited through a `Promise` that its `success` or `error` event settles. The await
//! resumes in a microtask of that event, while the request's transaction is still active, so
//! one transaction can issue requests after awaiting others. The futures borrow nothing
//! (`use<>`): requests made together are in flight together, and are then awaited one after
//! another, without a join. A transaction commits by itself once no request is left;
//! [`Tx::done`] waits for that.

use std::future::Future;

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore, IdbRequest, IdbTransaction,
    IdbTransactionMode, IdbVersionChangeEvent,
};

use crate::error::CacheError;

/// `op` failed with the exception `e` (a `DOMException`: its name and message).
pub fn failed(op: &'static str, e: &JsValue) -> CacheError {
    let field = |k: &str| Reflect::get(e, &JsValue::from_str(k)).ok()?.as_string();
    CacheError::Failed {
        op,
        name: field("name").unwrap_or_default(),
        message: field("message")
            .or_else(|| e.as_string())
            .unwrap_or_default(),
    }
}

/// The global `indexedDB` (window, worker, or a polyfill in Node).
pub fn factory() -> Result<IdbFactory, CacheError> {
    Reflect::get(&js_sys::global(), &JsValue::from_str("indexedDB"))
        .ok()
        .and_then(|f| f.dyn_into::<IdbFactory>().ok())
        .ok_or(CacheError::Unavailable)
}

/// Awaits the request `made` (or fails with what making it threw): its `result`, or the
/// exception it failed with. The handlers are set here, before the request can settle.
fn wait(
    op: &'static str,
    made: Result<IdbRequest, JsValue>,
) -> impl Future<Output = Result<JsValue, CacheError>> + use<> {
    let pending = made.map(|request| {
        let settled = Promise::new(&mut |resolve, reject| {
            request.set_onsuccess(Some(&resolve));
            request.set_onerror(Some(&reject));
        });
        (request, JsFuture::from(settled))
    });
    async move {
        let (request, settled) = pending.map_err(|e| failed(op, &e))?;
        match settled.await {
            Ok(_) => request.result().map_err(|e| failed(op, &e)),
            Err(_) => Err(match request.error() {
                Ok(Some(e)) => failed(op, &e),
                Ok(None) => CacheError::Aborted,
                Err(e) => failed(op, &e),
            }),
        }
    }
}

/// An open connection. It closes when dropped, and when another connection asks it to (a
/// `versionchange`: another tab opens the database at a later version or deletes it, and waits
/// until every other connection has closed).
#[derive(Debug)]
pub struct Db {
    db: IdbDatabase,
    _close_on_change: Closure<dyn FnMut(IdbVersionChangeEvent)>,
}

/// Opens `name` at `version`, creating the object stores of `stores` that it lacks when the
/// database is new or older (without key path: keys are given with each value).
pub async fn open(
    name: &str,
    version: u32,
    stores: &'static [&'static str],
) -> Result<Db, CacheError> {
    let request = factory()?
        .open_with_u32(name, version)
        .map_err(|e| failed("open", &e))?;
    let upgrade = {
        let request = request.clone();
        Closure::<dyn FnMut(web_sys::Event)>::once(move |_: web_sys::Event| {
            let Ok(db) = request.result() else { return };
            let db: IdbDatabase = db.unchecked_into();
            let have = db.object_store_names();
            let created = stores
                .iter()
                .filter(|s| !have.contains(s))
                .all(|s| db.create_object_store(s).is_ok());
            // A store that cannot be created: the open fails, and the database stays as it was.
            if !created {
                if let Some(tx) = request.transaction() {
                    let _ = tx.abort();
                }
            }
        })
    };
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let opened = wait("open", Ok(request.clone().into())).await;
    request.set_onupgradeneeded(None);
    let db: IdbDatabase = opened?.unchecked_into();
    let close_on_change = {
        let db = db.clone();
        Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |_| db.close())
    };
    db.set_onversionchange(Some(close_on_change.as_ref().unchecked_ref()));
    Ok(Db {
        db,
        _close_on_change: close_on_change,
    })
}

/// Deletes the database `name`; resolves once it is gone (after every other connection closed).
pub async fn delete_database(name: &str) -> Result<(), CacheError> {
    let made = factory()?.delete_database(name).map(Into::into);
    wait("deleteDatabase", made).await.map(drop)
}

impl Db {
    /// A transaction over `stores`.
    pub fn transaction(&self, stores: &[&str], mode: IdbTransactionMode) -> Result<Tx, CacheError> {
        let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        self.db
            .transaction_with_str_sequence_and_mode(&names, mode)
            .map(Tx)
            .map_err(|e| failed("transaction", &e))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.db.set_onversionchange(None);
        self.db.close();
    }
}

/// A transaction.
pub struct Tx(IdbTransaction);

impl Tx {
    /// One of the transaction's object stores.
    pub fn store(&self, name: &str) -> Result<Store, CacheError> {
        self.0
            .object_store(name)
            .map(Store)
            .map_err(|e| failed("objectStore", &e))
    }

    /// Resolves once the transaction has committed; fails when it aborts (with its exception,
    /// when it has one: a failed request, a full disk), and then nothing it wrote is kept.
    pub async fn done(self) -> Result<(), CacheError> {
        let tx = self.0;
        let settled = Promise::new(&mut |resolve, reject| {
            tx.set_oncomplete(Some(&resolve));
            tx.set_onerror(Some(&reject));
            tx.set_onabort(Some(&reject));
        });
        match JsFuture::from(settled).await {
            Ok(_) => Ok(()),
            Err(_) => Err(match tx.error() {
                Some(e) => failed("transaction", &e),
                None => CacheError::Aborted,
            }),
        }
    }
}

/// An object store, in the transaction that gave it.
pub struct Store(IdbObjectStore);

fn to_vec(found: Result<JsValue, CacheError>) -> Result<Vec<JsValue>, CacheError> {
    found.map(|a| a.unchecked_into::<Array>().to_vec())
}

impl Store {
    /// The value under `key` (None when there is none).
    pub fn get(
        &self,
        key: &JsValue,
    ) -> impl Future<Output = Result<Option<JsValue>, CacheError>> + use<> {
        let found = wait("get", self.0.get(key));
        async move { Ok(Some(found.await?).filter(|v| !v.is_undefined() && !v.is_null())) }
    }

    /// Every value in `range` (the whole store for None), in key order.
    pub fn get_all(
        &self,
        range: Option<&IdbKeyRange>,
    ) -> impl Future<Output = Result<Vec<JsValue>, CacheError>> + use<> {
        let made = match range {
            Some(r) => self.0.get_all_with_key(r),
            None => self.0.get_all(),
        };
        let found = wait("getAll", made);
        async move { to_vec(found.await) }
    }

    /// Every key in `range` (the whole store for None), in key order.
    pub fn get_all_keys(
        &self,
        range: Option<&IdbKeyRange>,
    ) -> impl Future<Output = Result<Vec<JsValue>, CacheError>> + use<> {
        let made = match range {
            Some(r) => self.0.get_all_keys_with_key(r),
            None => self.0.get_all_keys(),
        };
        let found = wait("getAllKeys", made);
        async move { to_vec(found.await) }
    }

    /// Writes `value` under `key`, replacing what is there.
    pub fn put(
        &self,
        value: &JsValue,
        key: &JsValue,
    ) -> impl Future<Output = Result<(), CacheError>> + use<> {
        let done = wait("put", self.0.put_with_key(value, key));
        async move { done.await.map(drop) }
    }

    /// Writes `value` under `key`; fails (a `ConstraintError`) when the key is taken.
    pub fn add(
        &self,
        value: &JsValue,
        key: &JsValue,
    ) -> impl Future<Output = Result<(), CacheError>> + use<> {
        let done = wait("add", self.0.add_with_key(value, key));
        async move { done.await.map(drop) }
    }

    /// Deletes the value under `key` (nothing when there is none).
    pub fn delete(&self, key: &JsValue) -> impl Future<Output = Result<(), CacheError>> + use<> {
        let done = wait("delete", self.0.delete(key));
        async move { done.await.map(drop) }
    }
}
