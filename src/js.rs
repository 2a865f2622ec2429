//! Plain JS objects read and built field by field: the options, the relay's `/durable` body
//! (after `JSON.parse`) and the reports the page gets. Written by hand rather than through
//! serde-wasm-bindgen, whose generic (de)serializers cost the client module more than these few
//! fields do (issue 16).

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

/// `o[key]` (`undefined` when the getter throws).
pub fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `o[key] = v`.
pub fn set(o: &Object, key: &str, v: &JsValue) {
    let _ = Reflect::set(o, &JsValue::from_str(key), v);
}

/// A field of `o` that may be absent (`undefined` or `null`), read by `read`. `Err` says what
/// the field must be: `"<key> must be <what>"`.
fn optional<T>(
    o: &JsValue,
    key: &str,
    what: &str,
    read: impl FnOnce(&JsValue) -> Option<T>,
) -> Result<Option<T>, String> {
    let v = get(o, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    read(&v)
        .map(Some)
        .ok_or_else(|| format!("{key} must be {what}"))
}

/// A string field that may be absent.
pub fn opt_string(o: &JsValue, key: &str) -> Result<Option<String>, String> {
    optional(o, key, "a string", JsValue::as_string)
}

/// A string field that must be there.
pub fn string(o: &JsValue, key: &str) -> Result<String, String> {
    opt_string(o, key)?.ok_or_else(|| format!("{key} must be a string"))
}

/// A boolean field that may be absent.
pub fn opt_bool(o: &JsValue, key: &str) -> Result<Option<bool>, String> {
    optional(o, key, "a boolean", JsValue::as_bool)
}

/// An integer field that may be absent: a number without a fraction, at most `max` and at
/// least 0 (or `-max` when `signed`). `max` is at most 2^53 - 1, which JS numbers hold exactly.
pub fn opt_integer(o: &JsValue, key: &str, signed: bool, max: f64) -> Result<Option<f64>, String> {
    let (min, what) = if signed {
        (-max, "an integer")
    } else {
        (0.0, "a non-negative integer")
    };
    optional(o, key, what, |v| {
        v.as_f64()
            .filter(|n| n.fract() == 0.0 && (min..=max).contains(n))
    })
}

/// The number 2^53 - 1 (`Number.MAX_SAFE_INTEGER`): the largest integer every JS number
/// between 0 and it holds exactly.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
