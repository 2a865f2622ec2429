#![no_main]
//! cargo-fuzz target; the checks live in fuzz/checks/snapshot_save.rs (also run on the corpus by
//! `cargo test` in crates/relay/tests/reliability_fuzz_corpus.rs).

#[path = "../checks/snapshot_save.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
