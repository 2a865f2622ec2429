// Shared by the cargo-fuzz target and by crates/relay/tests/reliability_fuzz_corpus.rs,
// which replays the committed corpus and every regression input under `cargo test`.
//! The relay's y-sync frame path: `ykeep_relay::protocol::parse`, then what the room does with
//! each message (decode the state vector / update / awareness, apply to the room's doc, log the
//! payload). The input is split into frames; each frame goes through the same steps as
//! `room::Room::handle_frame` (private), so a sequence exercises a stateful doc.
//!
//! Invariants beyond "no panic":
//! - a parsed payload range lies inside the frame, and re-encoding the payload parses back to it;
//! - every payload the room would commit to its log replays, after a restart, into a doc whose
//!   Yjs snapshot equals the live doc's (the log is the durability promise);
//! - the live doc's full state (what SyncStep2 and snapshot saves send) decodes and applies.
use ykeep_relay::protocol::{self, Frame};
use yrs::sync::awareness::AwarenessUpdate;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Text, Transact, Update};

fn base_doc() -> Doc {
    let doc = Doc::with_client_id(1);
    let t = doc.get_or_insert_text("t");
    t.insert(&mut doc.transact_mut(), 0, "hello world");
    t.remove_range(&mut doc.transact_mut(), 2, 3);
    doc
}

/// Runs one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let doc = base_doc();
    let base = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let mut log = Vec::new();
    // Frames: [len u8][bytes] ... (the rest of the input is one last frame).
    let mut rest = data;
    let mut frames = Vec::new();
    while !rest.is_empty() && frames.len() < 8 {
        let n = (rest[0] as usize).min(rest.len() - 1);
        if n == 0 {
            frames.push(&rest[1..]);
            break;
        }
        frames.push(&rest[1..1 + n]);
        rest = &rest[1 + n..];
    }
    for frame in frames {
        let Ok(parsed) = protocol::parse(frame) else {
            continue;
        };
        match parsed {
            Frame::SyncStep1 { sv } => {
                assert!(sv.end <= frame.len());
                if ykeep_core::merge::check_plausible_count(&frame[sv.clone()]).is_err() {
                    continue;
                }
                if let Ok(sv) = StateVector::decode_v1(&frame[sv]) {
                    let _ = doc.transact().encode_state_as_update_v1(&sv);
                }
            }
            Frame::SyncStep2 { update: range } | Frame::Update { update: range, .. } => {
                assert!(range.start <= range.end && range.end <= frame.len());
                let payload = &frame[range];
                // Re-encoding round-trips.
                let again = protocol::encode_update(payload);
                match protocol::parse(&again) {
                    Ok(Frame::Update { update, .. }) => assert_eq!(&again[update], payload),
                    other => panic!("re-encoded update parsed as {other:?}"),
                }
                // The room's own checks for one update decide what a room takes: the scratch
                // check, then the parent check on the doc as it is.
                let Ok(update) = protocol::checked_alone(payload) else {
                    continue;
                };
                if protocol::check_parents(&doc, payload).is_err() {
                    continue;
                }
                if update.is_empty() {
                    continue;
                }
                if doc.transact_mut().apply_update(update).is_ok() {
                    protocol::write_len_prefixed(&mut log, payload);
                }
            }
            Frame::Awareness { payload } => {
                if ykeep_core::merge::check_plausible_count(&frame[payload.clone()]).is_err() {
                    continue;
                }
                let _ = AwarenessUpdate::decode_v1(&frame[payload]);
            }
            Frame::Ykeep => {
                // Never panics; a message that decodes round-trips through its encoding.
                if let Ok(decoded @ ykeep_core::acks::Decoded::Message(m)) =
                    ykeep_core::acks::decode(frame)
                {
                    assert_eq!(ykeep_core::acks::decode(&m.encode()), Ok(decoded));
                }
            }
            Frame::AwarenessQuery | Frame::Auth | Frame::Unknown(_) => {}
        }
    }
    // Restart: the base state plus the logged payloads must rebuild the same document.
    let replayed = Doc::with_client_id(2);
    replayed
        .transact_mut()
        .apply_update(Update::decode_v1(&base).expect("base decodes"))
        .expect("base applies");
    for payload in protocol::read_len_prefixed(&log).expect("log splits") {
        let u =
            Update::decode_v1(payload).expect("a logged payload decoded once, so it decodes again");
        replayed
            .transact_mut()
            .apply_update(u)
            .expect("a logged payload applied once, so it applies again");
    }
    let live = doc.transact().snapshot();
    let again = replayed.transact().snapshot();
    assert_eq!(
        live.state_map, again.state_map,
        "replayed log differs from the live doc (state vector)"
    );
    assert!(
        live.delete_set.diff(&again.delete_set).is_empty()
            && again.delete_set.diff(&live.delete_set).is_empty(),
        "replayed log differs from the live doc (delete set)"
    );
    // What SyncStep2 and a snapshot save send decodes and applies.
    let full = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let fresh = Doc::new();
    fresh
        .transact_mut()
        .apply_update(Update::decode_v1(&full).expect("full state decodes"))
        .expect("full state applies");
}
