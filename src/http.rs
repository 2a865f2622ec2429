//! HTTP GET for the load chain, behind a trait so browser tests can plug in fakes (a source
//! that is down, slow or corrupt) without a server. The timeout lives in the engine, not here.

use std::future::Future;
use std::pin::Pin;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Request, RequestInit, Response};

pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A finished HTTP exchange: status, `ETag` and body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Vec<u8>,
}

/// What to ask for, besides the URL.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Sent as `If-None-Match` (a quoted entity tag): a `304` says the caller holds it.
    pub if_none_match: Option<String>,
}

/// Something that performs `GET url`. `Err` = network failure.
pub trait Fetch {
    fn get(&self, url: String, ask: Ask, signal: AbortSignal)
    -> LocalFuture<Result<Reply, String>>;
}

/// The browser's `fetch` (window or worker).
pub struct BrowserFetch;

/// A thrown JS value as text: an `Error`'s message, a string, else its JSON (or its type).
pub fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .or_else(|| js_sys::JSON::stringify(e).ok()?.as_string())
        .or_else(|| e.js_typeof().as_string())
        .unwrap_or_default()
}

impl Fetch for BrowserFetch {
    fn get(
        &self,
        url: String,
        ask: Ask,
        signal: AbortSignal,
    ) -> LocalFuture<Result<Reply, String>> {
        Box::pin(async move {
            let init = RequestInit::new();
            init.set_method("GET");
            init.set_signal(Some(&signal));
            let request = Request::new_with_str_and_init(&url, &init).map_err(|e| describe(&e))?;
            let headers = request.headers();
            if let Some(token) = ask.token {
                headers
                    .set("Authorization", &format!("Bearer {token}"))
                    .map_err(|e| describe(&e))?;
            }
            if let Some(tag) = ask.if_none_match {
                // A request with its own conditional header skips the browser's HTTP cache, and a
                // 304 reaches us as it is.
                headers
                    .set("If-None-Match", &tag)
                    .map_err(|e| describe(&e))?;
            }
            // Window, worker or Node: the global `fetch`.
            let global = js_sys::global();
            let fetch = js_sys::Reflect::get(&global, &JsValue::from_str("fetch"))
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .ok_or_else(|| "no fetch in this global scope".to_string())?;
            let promise: js_sys::Promise = fetch
                .call1(&global, &request)
                .map_err(|e| describe(&e))?
                .unchecked_into();
            let response: Response = JsFuture::from(promise)
                .await
                .map_err(|e| describe(&e))?
                .unchecked_into();
            let buffer = JsFuture::from(response.array_buffer().map_err(|e| describe(&e))?)
                .await
                .map_err(|e| describe(&e))?;
            Ok(Reply {
                status: response.status(),
                etag: response.headers().get("ETag").ok().flatten(),
                body: js_sys::Uint8Array::new(&buffer).to_vec(),
            })
        })
    }
}
