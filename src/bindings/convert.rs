//! The plain JS objects of the API (their TypeScript types are in `keep_core.rs`): `KeepOptions`
//! read into [`RawOptions`], the reports built from their Rust structs, field by field
//! (`crate::js`).

use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::durability::DurabilityView;
use crate::error::KeepError;
use crate::idb::StoredBytes;
use crate::js::{self, MAX_SAFE_INTEGER, set};
use crate::load::LoadReport;
use crate::options::RawOptions;
use crate::tiers::{Report, Tier};

/// The fields of `KeepOptions`.
const OPTIONS: [&str; 9] = [
    "kind",
    "id",
    "relayUrl",
    "storeUrl",
    "token",
    "timeoutMs",
    "compactionFloorBytes",
    "dbName",
    "indexeddb",
];

/// `KeepOptions` as given: an object with string `kind` and `id`, the other fields optional
/// (`undefined` or `null`), and no field it does not know (a misspelt option would else go
/// unnoticed). Its values are checked by `Options::parse`.
pub fn options(value: &JsValue) -> Result<RawOptions, KeepError> {
    read_options(value).map_err(KeepError::Options)
}

fn read_options(o: &JsValue) -> Result<RawOptions, String> {
    if !o.is_object() {
        return Err("the options must be an object { kind, id, ... }".into());
    }
    for key in Object::keys(o.unchecked_ref::<Object>()) {
        let key = key.as_string().unwrap_or_default();
        if !OPTIONS.contains(&key.as_str()) {
            let known = OPTIONS.join(", ");
            return Err(format!("unknown option {key} (the options are {known})"));
        }
    }
    Ok(RawOptions {
        kind: js::string(o, "kind")?,
        id: js::string(o, "id")?,
        relay_url: js::opt_string(o, "relayUrl")?,
        store_url: js::opt_string(o, "storeUrl")?,
        token: js::opt_string(o, "token")?,
        timeout_ms: js::opt_integer(o, "timeoutMs", false, f64::from(u32::MAX))?.map(|n| n as u32),
        compaction_floor_bytes: js::opt_integer(
            o,
            "compactionFloorBytes",
            false,
            MAX_SAFE_INTEGER,
        )?
        .map(|n| n as u64),
        db_name: js::opt_string(o, "dbName")?,
        indexeddb: js::opt_bool(o, "indexeddb")?,
    })
}

fn string_or_null(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

/// `LoadReport`.
pub fn load_report(r: &LoadReport) -> JsValue {
    let sources: Array = r
        .sources
        .iter()
        .map(|s| {
            let o = Object::new();
            set(&o, "source", &s.source.name().into());
            set(&o, "status", &s.status.into());
            set(&o, "bytes", &JsValue::from_f64(s.bytes as f64));
            set(&o, "ms", &JsValue::from_f64(s.ms));
            if let Some(e) = &s.error {
                set(&o, "error", &e.into());
            }
            JsValue::from(o)
        })
        .collect();
    let o = Object::new();
    set(&o, "sources", &sources);
    set(&o, "mergedBytes", &JsValue::from_f64(r.merged_bytes as f64));
    set(&o, "totalMs", &JsValue::from_f64(r.total_ms));
    set(&o, "loaded", &r.loaded.into());
    o.into()
}

/// `DurabilityView`.
pub fn durability_view(v: &DurabilityView) -> JsValue {
    let maybe = |b: Option<bool>| b.map_or(JsValue::NULL, JsValue::from_bool);
    let o = Object::new();
    set(&o, "local", &v.local.into());
    set(&o, "relay", &maybe(v.relay));
    set(&o, "store", &maybe(v.store));
    set(
        &o,
        "storeSnapshotId",
        &string_or_null(v.store_snapshot_id.as_deref()),
    );
    set(
        &o,
        "savedAt",
        &v.saved_at
            .map_or(JsValue::NULL, |t| JsValue::from_f64(t as f64)),
    );
    set(
        &o,
        "pendingUpdates",
        &JsValue::from_f64(v.pending_updates as f64),
    );
    set(
        &o,
        "pendingBytes",
        &JsValue::from_f64(v.pending_bytes as f64),
    );
    if let Some(e) = &v.error {
        set(&o, "error", &e.into());
    }
    o.into()
}

/// `StoredBytes`.
pub fn stored_bytes(s: &StoredBytes) -> JsValue {
    let o = Object::new();
    set(&o, "recordBytes", &JsValue::from_f64(s.record_bytes as f64));
    set(&o, "logBytes", &JsValue::from_f64(s.log_bytes as f64));
    set(&o, "logEntries", &JsValue::from_f64(s.log_entries as f64));
    set(&o, "total", &JsValue::from_f64(s.total as f64));
    o.into()
}

/// `Tier[]`.
pub fn tiers(tiers: &[Tier]) -> JsValue {
    tiers
        .iter()
        .map(|t| JsValue::from_str(t.name()))
        .collect::<Array>()
        .into()
}

/// `DurabilityReport`.
pub fn report(r: &Report) -> JsValue {
    let o = Object::new();
    set(&o, "tier", &string_or_null(r.tier.map(Tier::name)));
    set(&o, "unsaved", &tiers(&r.unsaved));
    if let Some(why) = &r.browser {
        set(&o, "browser", &why.into());
    }
    o.into()
}
