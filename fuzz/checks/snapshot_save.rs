// Shared by the cargo-fuzz target and by crates/relay/tests/reliability_fuzz_corpus.rs,
// which replays the committed corpus and every regression input under `cargo test`.
//! The snapshot save path: a body that claims to be a Yjs v1 update arrives at
//! `POST /snapshots/{kind}/{id}`. The store must validate it, compute its durability marker, and
//! accept it without a precondition only if it contains the current snapshot. This target runs
//! the shared functions that path is built from (`ykeep_core`): validate, marker, containment,
//! merge (the relay's merge-and-retry on 409), and checks their invariants.
use ykeep_core::{DurabilityMarker, merge_updates, validate_update};
use yrs::updates::decoder::Decode as _;
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

fn current_snapshot() -> Vec<u8> {
    let doc = Doc::with_client_id(7);
    let t = doc.get_or_insert_text("t");
    t.insert(&mut doc.transact_mut(), 0, "stored snapshot");
    t.remove_range(&mut doc.transact_mut(), 0, 7);
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Runs one input; panics when an invariant breaks.
pub fn run(body: &[u8]) {
    let current = current_snapshot();
    let current_marker = DurabilityMarker::of_update(&current).expect("current snapshot is valid");
    if validate_update(body).is_err() {
        // Refused (400 bad_update): nothing else may be computed from it.
        return;
    }
    let Ok(marker) = DurabilityMarker::of_update(body) else {
        panic!("a body that validates must have a marker");
    };
    // (No "marker covers its own body" check: yrs keeps structs with a clock gap aside without
    // reporting `has_missing_updates`, and the marker rightly leaves them out; the blob keeps them.)
    // Encoded markers round-trip (they are what /durable reports).
    let enc = marker.encode();
    assert_eq!(
        DurabilityMarker::decode(&enc).expect("marker decodes"),
        marker
    );
    // The merge invariants need distinct ids: a body that reuses the stored snapshot's client id
    // (7) names different content with the same (client, clock) ids, which Yjs cannot merge
    // (first one wins). The relay never sends such a body: it saves a state containing the
    // stored one. For those, only "no panic" is checked.
    let clashes = {
        let u = yrs::Update::decode_v1(body).expect("validated");
        u.state_vector().get(&yrs::block::ClientID::new(7)) > 0
            || u.insertions(true)
                .iter()
                .any(|(client, _)| *client == yrs::block::ClientID::new(7))
            || u.delete_set()
                .iter()
                .any(|(client, _)| *client == yrs::block::ClientID::new(7))
    };
    // A body whose item names as its parent an item of the stored snapshot that is neither a
    // type nor deleted (finding c1d9159b, fuzz/README.md): yrs' apply fails on it half-way, so
    // the merge fails, and the relay refuses it before it touches a room holding that item
    // (`ykeep_core::merge::validated_update_for`). Every other body must merge: that is what
    // makes the check enough to keep a room's doc whole.
    let stored = Doc::new();
    stored
        .transact_mut()
        .apply_update(yrs::Update::decode_v1(&current).expect("current snapshot decodes"))
        .expect("current snapshot applies");
    let bad_parent = ykeep_core::merge::check_parents(&stored, body).is_err();
    let contains = marker.covers(&current_marker);
    // The relay's 409 path: merge the current snapshot in and retry. The merge must contain both.
    let merged = merge_updates([current.as_slice(), body]);
    if clashes || bad_parent {
        return;
    }
    let merged = merged.expect("two valid updates with distinct ids and type parents merge");
    let merged_marker = DurabilityMarker::of_update(&merged).expect("merged state is valid");
    assert!(
        merged_marker.covers(&current_marker),
        "merge lost the stored snapshot"
    );
    assert!(merged_marker.covers(&marker), "merge lost the saved body");
    if contains {
        // A body that contains the current snapshot is what the merge would produce anyway.
        assert!(marker.covers(&merged_marker));
    }
}
