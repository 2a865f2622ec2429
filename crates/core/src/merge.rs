//! Yjs v1 update helpers over yrs: validate, merge (CRDT union), diff against a state vector.
//!
//! Every function takes and returns plain Yjs v1 updates, the format `Y.applyUpdate` reads.

use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// Why bytes could not be used as a Yjs update or state vector.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("not a Yjs v1 update: {0}")]
    Decode(String),
    #[error("the Yjs update could not be applied: {0}")]
    Apply(String),
    #[error("not a Yjs state vector: {0}")]
    StateVector(String),
    #[error("{0} trailing bytes after the Yjs update")]
    Trailing(usize),
    #[error("the update declares {declared} entries but holds only {available} bytes")]
    ImplausibleCount { declared: u64, available: usize },
}

/// Refuses a leading count larger than the bytes that follow it.
///
/// yrs reserves a decoded collection's declared size up front, so a few bytes declaring 2^28
/// clients would make the process touch hundreds of MB. An honest count never exceeds the
/// bytes after it (each entry takes at least one byte).
pub fn check_plausible_count(bytes: &[u8]) -> Result<(), MergeError> {
    let mut n: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let available = bytes.len() - i - 1;
            return if n <= available as u64 {
                Ok(())
            } else {
                Err(MergeError::ImplausibleCount {
                    declared: n,
                    available,
                })
            };
        }
    }
    Err(MergeError::Decode(
        "the leading count is not a valid varint".into(),
    ))
}

/// Refuses client ids yrs would alias to others (`crate::client_ids`).
fn check_client_ids(bytes: &[u8]) -> Result<(), MergeError> {
    match crate::client_ids::oversized_client_id(bytes) {
        Some(id) => Err(MergeError::Decode(format!(
            "client id {id} is over Yjs' 53-bit limit"
        ))),
        None => Ok(()),
    }
}

/// Decodes `bytes` as a Yjs v1 update, refusing what yrs would choke on later.
///
/// Guards found by fuzzing (`fuzz/regressions/`): an implausible leading count (allocation
/// bomb), a panic inside yrs' decoder, and updates that do not survive decode → encode →
/// decode (yrs keeps part of them pending and then panics in every later encode of the doc).
pub fn decode_update(bytes: &[u8]) -> Result<Update, MergeError> {
    check_plausible_count(bytes)?;
    check_client_ids(bytes)?;
    let guarded = std::panic::catch_unwind(|| {
        let update = Update::decode_v1(bytes).map_err(|e| MergeError::Decode(e.to_string()))?;
        Update::decode_v1(&update.encode_v1()).map_err(|e| {
            MergeError::Decode(format!("update does not survive a round trip: {e}"))
        })?;
        Ok(update)
    });
    guarded.unwrap_or_else(|_| Err(MergeError::Decode("malformed update".into())))
}

/// Applies one update to a doc, mapping yrs' error into ours.
pub fn apply_to(doc: &Doc, bytes: &[u8]) -> Result<(), MergeError> {
    let update = decode_update(bytes)?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.transact_mut().apply_update(update)
    }))
    .map_err(|_| MergeError::Apply("yrs panicked applying the update".into()))?
    .map_err(|e| MergeError::Apply(e.to_string()))
}

/// Loads a snapshot strictly: it must decode with no trailing bytes and apply to an empty
/// document. This is what a snapshot store accepts.
///
/// Content waiting for missing predecessors (pending) is accepted and kept: a relay that
/// received an out-of-order update still holds it in its snapshot, and refusing that snapshot
/// would leave the room unsaveable for good.
pub fn load_full_state(bytes: &[u8]) -> Result<Doc, MergeError> {
    use yrs::updates::decoder::{Decoder, DecoderV1};
    check_plausible_count(bytes)?;
    check_client_ids(bytes)?;
    let mut decoder = DecoderV1::from(bytes);
    let update = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Update::decode(&mut decoder).map_err(|e| MergeError::Decode(e.to_string()))
    }))
    .unwrap_or_else(|_| Err(MergeError::Decode("malformed update".into())))?;
    let rest = decoder.read_to_end().map(<[u8]>::len).unwrap_or(0);
    if rest > 0 {
        return Err(MergeError::Trailing(rest));
    }
    let update = decode_update(&update.encode_v1())?;
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| MergeError::Apply(e.to_string()))?;
    Ok(doc)
}

/// Checks that `bytes` is a Yjs v1 update that applies to an empty document, and that the
/// document it makes encodes to a state that decodes again (what every later save and sync
/// does with it).
pub fn validate_update(bytes: &[u8]) -> Result<(), MergeError> {
    validated_update(bytes).map(drop)
}

/// [`validate_update`], returning the decoded update for the caller's own apply (what the
/// relay does with every update before it touches a room's document).
///
/// One pass: the guarded decode with its round trip, the scratch-doc apply, one encode of the
/// scratch state and one decode of it, then a plain decode of the same bytes for the caller
/// (`Update` cannot be cloned and the scratch apply consumes its copy). `scripts/bench cpu`
/// measures what each part costs.
pub fn validated_update(bytes: &[u8]) -> Result<Update, MergeError> {
    let scratch_copy = decode_update(bytes)?;
    // A fixed client id: the scratch doc makes no edits of its own, and a random id costs an
    // RNG call per update.
    let doc = Doc::with_client_id(1);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.transact_mut().apply_update(scratch_copy)
    }))
    .map_err(|_| MergeError::Apply("yrs panicked applying the update".into()))?
    .map_err(|e| MergeError::Apply(e.to_string()))?;
    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }))
    .map_err(|_| MergeError::Apply("the document cannot be encoded after this update".into()))?;
    guarded_decode(&encoded).map_err(|e| {
        MergeError::Apply(format!("the document's state does not decode again: {e}"))
    })?;
    // The same bytes decoded a moment ago: this cannot fail, but stays guarded all the same.
    guarded_decode(bytes)
}

/// `Update::decode_v1` with a plausible leading count and yrs' panics turned into errors.
fn guarded_decode(bytes: &[u8]) -> Result<Update, MergeError> {
    check_plausible_count(bytes)?;
    std::panic::catch_unwind(|| {
        Update::decode_v1(bytes).map_err(|e| MergeError::Decode(e.to_string()))
    })
    .unwrap_or_else(|_| Err(MergeError::Decode("malformed update".into())))
}

/// Merges updates into one update holding their union (order does not matter: CRDT merge).
///
/// The result is the full state of a document that applied all of them, so it is as compact
/// as a fresh `Y.encodeStateAsUpdate`. Empty inputs are skipped.
pub fn merge_updates<'a, I>(updates: I) -> Result<Vec<u8>, MergeError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let doc = Doc::new();
    for update in updates {
        if !update.is_empty() {
            apply_to(&doc, update)?;
        }
    }
    Ok(doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default()))
}

/// The part of `update` that a peer with state vector `sv` (v1-encoded) lacks.
pub fn diff_update(update: &[u8], sv: &[u8]) -> Result<Vec<u8>, MergeError> {
    let sv = decode_state_vector(sv)?;
    let doc = Doc::new();
    apply_to(&doc, update)?;
    Ok(doc.transact().encode_state_as_update_v1(&sv))
}

/// The v1-encoded state vector of the document an update describes.
pub fn state_vector_of(update: &[u8]) -> Result<Vec<u8>, MergeError> {
    Ok(decode_update(update)?.state_vector().encode_v1())
}

/// Decodes a v1 state vector (empty bytes = the empty state vector).
pub fn decode_state_vector(sv: &[u8]) -> Result<StateVector, MergeError> {
    if sv.is_empty() {
        return Ok(StateVector::default());
    }
    check_plausible_count(sv).map_err(|e| MergeError::StateVector(e.to_string()))?;
    StateVector::decode_v1(sv).map_err(|e| MergeError::StateVector(e.to_string()))
}

#[cfg(test)]
pub(crate) mod test_docs {
    use yrs::{Doc, GetString, ReadTxn, Text, Transact};

    /// A doc with a fixed client id holding `text` in the root text `t`.
    pub fn doc_with(client: u64, text: &str) -> Doc {
        let doc = Doc::with_client_id(client);
        let t = doc.get_or_insert_text("t");
        t.insert(&mut doc.transact_mut(), 0, text);
        doc
    }

    pub fn text_of(doc: &Doc) -> String {
        let t = doc.get_or_insert_text("t");
        t.get_string(&doc.transact())
    }

    /// The doc's full state as one v1 update.
    pub fn full(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    }
}

#[cfg(test)]
mod tests {
    use super::test_docs::*;
    use super::*;
    use yrs::Text;

    #[test]
    fn merge_is_a_union_in_any_order() {
        let a = doc_with(1, "hello ");
        let b = doc_with(2, "world");
        let (ua, ub) = (full(&a), full(&b));
        let ab = merge_updates([ua.as_slice(), ub.as_slice()]).unwrap();
        let ba = merge_updates([ub.as_slice(), ua.as_slice(), &[]]).unwrap();
        let (da, db) = (Doc::new(), Doc::new());
        apply_to(&da, &ab).unwrap();
        apply_to(&db, &ba).unwrap();
        let text = text_of(&da);
        assert_eq!(text, text_of(&db));
        assert!(text.contains("hello ") && text.contains("world"));
    }

    #[test]
    fn merge_keeps_deletions() {
        let a = doc_with(1, "abcdef");
        let before = full(&a);
        a.get_or_insert_text("t")
            .remove_range(&mut a.transact_mut(), 0, 3);
        let after = full(&a);
        let merged = merge_updates([before.as_slice(), after.as_slice()]).unwrap();
        let d = Doc::new();
        apply_to(&d, &merged).unwrap();
        assert_eq!(text_of(&d), "def");
    }

    #[test]
    fn diff_returns_only_what_is_missing() {
        let a = doc_with(1, "base");
        let base = full(&a);
        let sv = state_vector_of(&base).unwrap();
        a.get_or_insert_text("t")
            .insert(&mut a.transact_mut(), 4, "+more");
        let now = full(&a);
        let diff = diff_update(&now, &sv).unwrap();
        assert!(diff.len() < now.len());
        let d = Doc::new();
        apply_to(&d, &base).unwrap();
        apply_to(&d, &diff).unwrap();
        assert_eq!(text_of(&d), "base+more");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(validate_update(&[0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(validate_update(b"hello world, not yjs").is_err());
        assert!(validate_update(&full(&doc_with(3, "ok"))).is_ok());
        let update = validated_update(&full(&doc_with(3, "ok"))).unwrap();
        let doc = Doc::new();
        doc.transact_mut().apply_update(update).unwrap();
        assert_eq!(text_of(&doc), "ok");
        assert!(decode_state_vector(&[0xff]).is_err());
    }

    #[test]
    fn full_state_is_strict() {
        let whole = full(&doc_with(4, "complete"));
        assert_eq!(text_of(&load_full_state(&whole).unwrap()), "complete");
        let mut trailing = whole.clone();
        trailing.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            load_full_state(&trailing),
            Err(MergeError::Trailing(3))
        ));
        assert!(matches!(
            load_full_state(&[0u8; 16]),
            Err(MergeError::Trailing(14))
        ));
        assert!(load_full_state(b"hello world, not yjs").is_err());
    }
}
