//! Issue 7, item 6: the fuzz targets' checks under `cargo test` (no nightly needed).
//!
//! Replays every input of the committed corpus (`fuzz/corpus/<target>/`) and every regression
//! input (`fuzz/regressions/<target>/`, crashes found by fuzzing) through the same checks the
//! cargo-fuzz targets run, plus a seeded batch of mutated valid frames and updates (the seed is
//! printed; rerun with YKEEP_SEED=<seed>).

use std::path::{Path, PathBuf};

use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

mod common;
#[path = "../../../fuzz/checks/frame_decoder.rs"]
mod frame_decoder;
#[path = "../../../fuzz/checks/snapshot_save.rs"]
mod snapshot_save;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Inputs under fuzz/corpus/<target> and fuzz/regressions/<target>.
fn committed_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(sub).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("read corpus file");
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed() -> u64 {
    let seed = std::env::var("YKEEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("seed {seed} (rerun with YKEEP_SEED={seed})");
    seed
}

/// Valid updates to mutate: inserts and deletes by a few clients.
fn sample_updates(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for client in 1..4u64 {
        let doc = Doc::with_client_id(client * 100);
        let t = doc.get_or_insert_text("t");
        let sv0 = doc.transact().state_vector();
        t.insert(&mut doc.transact_mut(), 0, "some text to edit");
        let len = 5 + rng.below(10) as u32;
        t.remove_range(&mut doc.transact_mut(), 1, len);
        out.push(doc.transact().encode_state_as_update_v1(&sv0));
        out.push(
            doc.transact()
                .encode_state_as_update_v1(&StateVector::default()),
        );
        out.push(doc.transact().state_vector().encode_v1());
    }
    out
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes.truncate(i);
            }
            2 => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, rng.next() as u8);
            }
            _ if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = [0, 0x7f, 0x80, 0xff][rng.below(4)];
            }
            _ => bytes.push(0xff),
        }
    }
    bytes
}

#[test]
fn frame_decoder_corpus_and_regressions() {
    let inputs = committed_inputs("frame_decoder");
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(path, bytes)| {
            println!("frame_decoder: {}", path.display());
            std::panic::catch_unwind(|| frame_decoder::run(bytes)).is_err()
        })
        .map(|(path, _)| path.display().to_string())
        .collect();
    println!("frame_decoder: {} committed inputs", inputs.len());
    assert!(
        failed.is_empty(),
        "frame_decoder: inputs that still fail: {failed:#?}"
    );
}

#[test]
fn snapshot_save_corpus_and_regressions() {
    let inputs = committed_inputs("snapshot_save");
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(path, bytes)| {
            println!("snapshot_save: {}", path.display());
            std::panic::catch_unwind(|| snapshot_save::run(bytes)).is_err()
        })
        .map(|(path, _)| path.display().to_string())
        .collect();
    println!("snapshot_save: {} committed inputs", inputs.len());
    assert!(
        failed.is_empty(),
        "snapshot_save: inputs that still fail: {failed:#?}"
    );
}

#[test]
fn seeded_mutations_of_valid_frames_and_updates() {
    let mut rng = Rng(seed());
    let samples = sample_updates(&mut rng);
    let mut runs = 0;
    for _ in 0..1500 {
        let base = samples[rng.below(samples.len())].clone();
        let payload = mutate(&mut rng, base.clone());
        snapshot_save::run(&payload);
        // One frame of each kind around the (mutated) payload, length-prefixed as the target reads.
        let frame = match rng.below(4) {
            0 => ykeep_relay::protocol::encode_update(&payload),
            1 => ykeep_relay::protocol::encode_step2(&payload),
            2 => ykeep_relay::protocol::encode_step1(&payload),
            _ => mutate(&mut rng, ykeep_relay::protocol::encode_update(&base)),
        };
        let mut input = Vec::new();
        let good = ykeep_relay::protocol::encode_update(&samples[0]);
        for f in [&good, &frame] {
            if f.len() < 255 {
                input.push(f.len() as u8);
                input.extend_from_slice(f);
            }
        }
        frame_decoder::run(&input);
        runs += 2;
    }
    println!("{runs} mutated inputs checked");
}

/// Regression (cargo fuzz, snapshot_save crash-40b0… and frame_decoder crash-677f…): yrs accepts
/// this 16-byte update, keeps part of it pending, and then panics in every later
/// `encode_state_as_update_v1` of the doc (`merge_pending_v1` unwraps `EndOfBuffer`). In the
/// relay this kills the room task for good (the log replays the same update after a restart).
/// Whatever validates an update (`ykeep_core::validate_update`, the relay's frame handling) must
/// refuse it: it does not survive decode -> encode -> decode.
#[test]
fn regression_a_validated_update_never_poisons_a_doc() {
    let poison = [1u8, 1, 3, 3, 2, 4, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0];
    if ykeep_core::validate_update(&poison).is_ok() {
        let merged = std::panic::catch_unwind(|| ykeep_core::merge_updates([poison.as_slice()]));
        assert!(
            merged.is_ok(),
            "validate_update accepted an update after which merging/encoding the doc panics"
        );
    }
}

/// Peak resident memory of this process, in kB (Linux).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Regression (cargo fuzz, allocation bomb): yrs reserves the declared number of clients before
/// reading them (`HashMap::try_reserve(n)`), so 5 bytes declaring 2^27 clients make the process
/// touch ~270 MB. Validation must refuse a count larger than the bytes that follow first.
#[test]
fn regression_a_tiny_update_declaring_a_huge_count_is_refused_cheaply() {
    let Some(before) = peak_rss_kb() else {
        println!("skipped: /proc/self/status has no VmHWM here");
        return;
    };
    // varint(2^27) then an empty delete set.
    let bomb = [0x80u8, 0x80, 0x80, 0x40, 0, 0];
    assert!(ykeep_core::validate_update(&bomb).is_err());
    let _ = ykeep_core::merge::decode_state_vector(&bomb[..4]);
    let grown_mb = (peak_rss_kb().unwrap_or(before) - before) / 1024;
    assert!(
        grown_mb < 64,
        "validating 6 bytes raised peak memory by {grown_mb} MB"
    );
}

/// Regression (cargo fuzz, snapshot_save crash-c1d9…, replayed above; fuzz/README.md): an item
/// naming a room's text item (7#7) as its parent. yrs' apply fails on it, after integrating what
/// it met before (here an insert by client 200), so the refused update was partly in the room's
/// doc: not in its log, not sent to its peers, but sent to every client that synced later. The
/// room must refuse it with its doc, log and peers as they were.
#[tokio::test]
async fn regression_a_refused_update_leaves_the_room_doc_log_and_peers_untouched() {
    use common::{Client, TestRelay, config};
    use std::sync::Arc;
    use ykeep_core::DurabilityMarker;
    use ykeep_relay::log::record_format;
    use ykeep_relay::protocol;
    use yrs::updates::decoder::Decode;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // No save during the test: a save would compact the log into the doc's state.
    cfg.save_debounce_ms = 3_600_000;
    cfg.save_interval_ms = 3_600_000;
    cfg.store_poll_ms = 3_600_000;
    let store = Arc::new(ykeep_relay::store_client::MemoryStore::new());
    let relay = TestRelay::start(cfg, store).await;
    let url = relay.ws_url("/rooms/document/parent-clash");
    // Client 7 writes what the snapshot_save target's stored snapshot holds: 7#7.. is "snapshot".
    let mut seven = Client::connect(&url, 7).await;
    seven.wait_synced().await;
    seven.insert(0, "stored snapshot").await;
    seven.delete(0, 7).await;
    let mut peer = Client::connect(&url, 99).await;
    peer.wait_text("snapshot").await;

    let finding = include_bytes!(
        "../../../fuzz/regressions/snapshot_save/crash-c1d9159bc159df44c1d313ccde20189c9554d62c"
    );
    let bad = yrs::merge_updates_v1([
        common::update_with_text(200, "NEW").as_slice(),
        finding.as_slice(),
    ])
    .unwrap();
    let mut attacker = Client::connect(&url, 300).await;
    attacker.wait_synced().await;
    attacker.send_raw(protocol::encode_update(&bad)).await;
    assert_eq!(attacker.wait_closed().await.0, 1008);

    // An edit after the refusal: the peer gets it, and nothing of the refused update.
    seven.insert(8, "!").await;
    peer.wait_text("snapshot!").await;
    let marker = |doc: &yrs::Doc| DurabilityMarker::of_txn(&doc.transact());
    let honest = marker(&seven.doc);
    assert_eq!(marker(&peer.doc), honest);
    // The room's doc: what a client syncing now gets, and /state.
    let mut late = Client::connect(&url, 400).await;
    late.wait_synced().await;
    assert_eq!(late.text(), "snapshot!");
    assert_eq!(
        marker(&late.doc),
        honest,
        "the room's doc holds only client 7's edits"
    );
    let state = reqwest::get(relay.http_url("/rooms/document/parent-clash/state"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(DurabilityMarker::of_update(&state).unwrap(), honest);
    // The log replays into the same doc: nothing of the refused update, nothing missing.
    let records = relay
        .relay
        .shared()
        .log
        .load("document/parent-clash")
        .await
        .unwrap()
        .records;
    let replayed = yrs::Doc::new();
    for r in &records {
        let parts = match r.format {
            record_format::BATCH => protocol::read_len_prefixed(&r.data).unwrap(),
            record_format::SNAPSHOT => vec![r.data.as_slice()],
            other => panic!("unexpected log record format {other}"),
        };
        for part in parts {
            let u = yrs::Update::decode_v1(part).unwrap();
            replayed.transact_mut().apply_update(u).unwrap();
        }
    }
    assert_eq!(marker(&replayed), honest, "log and doc agree");
}
