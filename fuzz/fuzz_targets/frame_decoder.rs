#![no_main]
//! cargo-fuzz target; the checks live in fuzz/checks/frame_decoder.rs (also run on the corpus by
//! `cargo test` in crates/relay/tests/reliability_fuzz_corpus.rs).

#[path = "../checks/frame_decoder.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
