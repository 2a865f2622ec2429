//! Typed errors inside, real JS `Error` objects outside.

use wasm_bindgen::JsValue;

use crate::error::KeepError;

/// `RangeError` for bad arguments (room, options, bytes that are not an update), `Error` else.
pub fn to_js(e: KeepError) -> JsValue {
    let message = format!("ykeep: {e}");
    match e {
        KeepError::Address(_)
        | KeepError::Options(_)
        | KeepError::Update(_)
        | KeepError::Marker(_) => js_sys::RangeError::new(&message).into(),
        _ => js_sys::Error::new(&message).into(),
    }
}
