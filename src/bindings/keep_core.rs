//! `KeepCore`: the Rust engine as a JS class. Apps use `YKeep` (js/ykeep.js), which owns a
//! `KeepCore` and does only what must touch the `Y.Doc`.

use js_sys::{Function, Object, Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::convert;
use super::errors::to_js;
use crate::engine::{Engine, Event};
use crate::js::set;
use crate::options::Options;
use crate::tiers::{Origin, Tier};
use ykeep_core::DurabilityMarker;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export interface KeepOptions {
  kind: 'document' | 'diagram' | 'task';
  id: string;
  relayUrl?: string;
  storeUrl?: string;
  token?: string;
  timeoutMs?: number;
  compactionFloorBytes?: number;
  dbName?: string;
  indexeddb?: boolean;
}
export interface SourceReport {
  source: 'relay' | 'store' | 'indexeddb';
  status: 'ok' | 'unchanged' | 'missing' | 'skipped' | 'error' | 'timeout' | 'corrupt';
  bytes: number;
  ms: number;
  error?: string;
}
export interface LoadReport { sources: SourceReport[]; mergedBytes: number; totalMs: number; loaded: boolean; }
export interface LoadResult { update: Uint8Array; report: LoadReport; }
export interface DurabilityView {
  local: boolean; relay: boolean | null; store: boolean | null;
  storeSnapshotId: string | null; savedAt: number | null;
  pendingUpdates: number; pendingBytes: number; error?: string;
}
export interface StoredBytes { recordBytes: number; logBytes: number; logEntries: number; total: number; }
export interface CompactResult { logBytesBefore: number; logEntriesBefore: number; stateBytes: number; }
export type KeepEvent =
  | { type: 'warning'; message: string }
  | { type: 'compacted'; logBytesBefore: number; stateBytes: number; byOtherTab: boolean }
  | { type: 'durability'; report: DurabilityReport };
export type Tier = 'browser' | 'relay' | 'store';
export interface DurabilityReport {
  /** The furthest tier the page's latest edit has reached, with every available tier before
   * it (null: not even the browser yet, or no edit). */
  tier: Tier | null;
  /** The tiers that do not hold everything the page holds. */
  unsaved: Tier[];
  /** Why the browser tier is unavailable (no cache, a failed write, another tab's format). */
  browser?: string;
}
"#;

/// The first byte of a ykeep message (`ykeep_core::acks::MESSAGE_TYPE`).
#[wasm_bindgen(js_name = ykeepMessageType)]
pub fn ykeep_message_type() -> u8 {
    ykeep_core::acks::MESSAGE_TYPE
}

/// The client engine for one room. Low level: apps use `YKeep`.
///
/// ```js
/// const core = new KeepCore({ kind: 'document', id: 'x', relayUrl })
/// const { update, report } = await core.load()
/// core.storeUpdate(update2); await core.flush()
/// ```
#[wasm_bindgen]
pub struct KeepCore {
    engine: Engine,
}

#[wasm_bindgen]
impl KeepCore {
    /// Checks the options (throws `RangeError` on a bad kind, id or URL) before any I/O.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "KeepOptions")] options: JsValue,
    ) -> Result<KeepCore, JsValue> {
        let raw = convert::options(&options).map_err(to_js)?;
        let opts = Options::parse(raw).map_err(to_js)?;
        Ok(KeepCore {
            engine: Engine::new(opts),
        })
    }

    /// The room, `kind/id`.
    #[wasm_bindgen(getter)]
    pub fn room(&self) -> String {
        self.engine.options().room.to_string()
    }

    /// Runs the load chain; resolves `{ update, report }` (`update` is empty when nothing exists).
    #[wasm_bindgen(unchecked_return_type = "Promise<LoadResult>")]
    pub fn load(&self) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            let loaded = engine.load_for_page().await.map_err(to_js)?;
            let update = match loaded.held {
                Some(state) => state,
                None => Uint8Array::from(loaded.merged.update.as_slice()),
            };
            let out = Object::new();
            set(&out, "update", &update);
            set(&out, "report", &convert::load_report(&loaded.merged.report));
            Ok(out.into())
        })
    }

    /// Queues an update (Yjs v1) for the cache under the sequence number `noteUpdate` gave it;
    /// throws `RangeError` if it does not decode.
    #[wasm_bindgen(js_name = storeUpdate)]
    pub fn store_update(&self, update: &[u8], seq: f64) -> Result<(), JsValue> {
        self.engine
            .store_update(update.to_vec(), seq as u64)
            .map_err(to_js)
    }

    /// The doc took an update: `'own'` (the page's edit), `'provider'` (applied by the page's
    /// provider), `'loaded'` (the load's merged state). Returns its sequence number.
    #[wasm_bindgen(js_name = noteUpdate)]
    pub fn note_update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "'own' | 'provider' | 'loaded'")] origin: &str,
    ) -> Result<f64, JsValue> {
        let origin = match origin {
            "own" => Origin::Own,
            "provider" => Origin::Provider,
            "loaded" => Origin::Loaded,
            other => {
                let message = format!("ykeep: unknown update origin '{other}'");
                return Err(js_sys::RangeError::new(&message).into());
            }
        };
        Ok(self.engine.note_update(origin) as f64)
    }

    /// Sends ykeep messages through `send(bytes)` (the page's provider socket); `null` detaches.
    #[wasm_bindgen(js_name = setSender)]
    pub fn set_sender(
        &self,
        #[wasm_bindgen(unchecked_param_type = "((bytes: Uint8Array) => void) | null")]
        send: JsValue,
    ) {
        self.engine.set_sender(send.dyn_into::<Function>().ok());
    }

    /// The provider's socket opened (`true`: ykeep asks for acknowledgements) or closed.
    pub fn link(&self, open: bool) {
        self.engine.link(open);
    }

    /// A ykeep message (type 107) the provider received.
    #[wasm_bindgen(js_name = ackMessage)]
    pub fn ack_message(&self, frame: &[u8]) -> Result<(), JsValue> {
        self.engine.ack_message(frame).map_err(to_js)
    }

    /// Sends a mark covering what the provider has sent so far (call after the doc's update
    /// handlers ran: `YKeep` does, in a microtask).
    pub fn mark(&self) {
        self.engine.mark();
    }

    /// Whether the relay acknowledges on the provider's socket now open.
    #[wasm_bindgen(getter)]
    pub fn acknowledged(&self) -> bool {
        self.engine.acknowledged()
    }

    /// The tiers that do not hold everything the page holds.
    #[wasm_bindgen(unchecked_return_type = "Tier[]")]
    pub fn unsaved(&self) -> JsValue {
        convert::tiers(&self.engine.unsaved())
    }

    /// Resolves once `tier` holds everything the page holds now; rejects on destroy, and when
    /// the tier is unavailable (the browser tier without a cache).
    #[wasm_bindgen(js_name = whenSaved, unchecked_return_type = "Promise<void>")]
    pub fn when_saved(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Tier")] tier: &str,
    ) -> Result<Promise, JsValue> {
        let tier = Tier::parse(tier).ok_or_else(|| {
            let message =
                format!("ykeep: whenSaved takes 'browser', 'relay' or 'store', got '{tier}'");
            JsValue::from(js_sys::RangeError::new(&message))
        })?;
        Ok(self.engine.when_saved(tier))
    }

    /// Resolves once every queued update is in IndexedDB.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn flush(&self) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            engine.flush().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Folds the log into the compacted record; resolves `null` without a cache (also when the
    /// room's cache holds records of another format version: see `cacheDisabledReason`).
    #[wasm_bindgen(unchecked_return_type = "Promise<CompactResult | null>")]
    pub fn compact(&self) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            Ok(match engine.compact().await.map_err(to_js)? {
                None => JsValue::NULL,
                Some(c) => {
                    let o = Object::new();
                    set(
                        &o,
                        "logBytesBefore",
                        &JsValue::from_f64(c.log_bytes_before as f64),
                    );
                    set(
                        &o,
                        "logEntriesBefore",
                        &JsValue::from_f64(c.log_entries_before as f64),
                    );
                    set(&o, "stateBytes", &JsValue::from_f64(c.state_bytes as f64));
                    o.into()
                }
            })
        })
    }

    /// Compares `localState` (the page's full state) with the relay's durability markers.
    #[wasm_bindgen(unchecked_return_type = "Promise<DurabilityView>")]
    pub fn durability(&self, local_state: &[u8]) -> Promise {
        let engine = self.engine.clone();
        let local_state = local_state.to_vec();
        future_to_promise(async move {
            let view = engine.durability(&local_state).await.map_err(to_js)?;
            Ok(convert::durability_view(&view))
        })
    }

    /// Takes a base64url Yjs snapshot (a durability marker) into the cache; resolves the number
    /// of outbox updates left.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn settle(&self, marker_b64: String) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            let marker = DurabilityMarker::from_base64(&marker_b64).map_err(|e| to_js(e.into()))?;
            let left = engine.settle(&marker).await.map_err(to_js)?;
            Ok(JsValue::from_f64(left as f64))
        })
    }

    /// The outbox: updates made here that no remote marker covers yet.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array[]>")]
    pub fn outbox(&self) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            let list = engine.outbox().await.map_err(to_js)?;
            Ok(list
                .iter()
                .map(|u| JsValue::from(Uint8Array::from(u.as_slice())))
                .collect::<js_sys::Array>()
                .into())
        })
    }

    /// Bytes this room occupies in IndexedDB.
    #[wasm_bindgen(js_name = storedBytes, unchecked_return_type = "Promise<StoredBytes>")]
    pub fn stored_bytes(&self) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            let stored = engine.stored_bytes().await.map_err(to_js)?;
            Ok(convert::stored_bytes(&stored))
        })
    }

    /// Deletes this room's cache. Rejects with an `Error`, deleting nothing, when the room's
    /// cache holds records of another format version (written by an older or newer ykeep).
    #[wasm_bindgen(js_name = clearData, unchecked_return_type = "Promise<void>")]
    pub fn clear_data(&self) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            engine.clear_data().await.map_err(to_js)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Why there is no IndexedDB cache (`undefined` when it is in use), e.g. the room's cache
    /// holds records of another format version, which this tab leaves as they are.
    #[wasm_bindgen(getter, js_name = cacheDisabledReason)]
    pub fn cache_disabled_reason(&self) -> Option<String> {
        self.engine.cache_disabled_reason()
    }

    /// Flushes and closes.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn destroy(&self) -> Promise {
        let engine = self.engine.clone();
        future_to_promise(async move {
            engine.destroy().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Registers the one event listener (`YKeep` fans it out).
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: KeepEvent) => void")] f: Function,
    ) {
        self.engine.set_listener(Box::new(move |e: Event| {
            let o = Object::new();
            match e {
                Event::Warning(m) => {
                    set(&o, "type", &"warning".into());
                    set(&o, "message", &JsValue::from_str(&m));
                }
                Event::Compacted {
                    log_bytes_before,
                    state_bytes,
                    by_other_tab,
                } => {
                    set(&o, "type", &"compacted".into());
                    set(
                        &o,
                        "logBytesBefore",
                        &JsValue::from_f64(log_bytes_before as f64),
                    );
                    set(&o, "stateBytes", &JsValue::from_f64(state_bytes as f64));
                    set(&o, "byOtherTab", &JsValue::from_bool(by_other_tab));
                }
                Event::Durability(report) => {
                    set(&o, "type", &"durability".into());
                    set(&o, "report", &convert::report(&report));
                }
            }
            let _ = f.call1(&JsValue::NULL, &o);
        }));
    }
}
