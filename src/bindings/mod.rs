//! Everything `#[wasm_bindgen]`: one file per JS class, plus the error mapping.
//!
//! The npm package's entry (`js/ykeep.js`) wraps [`keep_core::KeepCore`] in the `YKeep` class
//! that touches the page's `Y.Doc`.

pub mod convert;
pub mod errors;
pub mod keep_core;
