//! Durability markers: Yjs snapshots (state vector + delete set), never bare state vectors.
//!
//! A state vector does not move when text is only deleted, so "is my edit saved?" must compare
//! delete sets too. A marker `m` covers an update `u` when every item `u` inserts is below
//! `m`'s state vector and every deletion `u` makes is in `m`'s delete set.

use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Snapshot, Transact};

use crate::b64;
use crate::merge::{MergeError, apply_to, decode_update};

#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error("durability marker is not base64url: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("durability marker is not an encoded Yjs snapshot: {0}")]
    Decode(String),
    #[error(transparent)]
    Update(#[from] MergeError),
}

/// What a place (the browser cache, the relay log, the store) holds, as a Yjs snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurabilityMarker(pub Snapshot);

impl DurabilityMarker {
    /// The marker of a document state held in a transaction.
    pub fn of_txn<T: ReadTxn>(txn: &T) -> Self {
        DurabilityMarker(txn.snapshot())
    }

    /// The marker of the document a full-state update describes.
    pub fn of_update(update: &[u8]) -> Result<Self, MarkerError> {
        let doc = Doc::new();
        if !update.is_empty() {
            apply_to(&doc, update)?;
        }
        Ok(Self::of_txn(&doc.transact()))
    }

    /// True when everything `other` describes is also in `self`.
    pub fn covers(&self, other: &DurabilityMarker) -> bool {
        let (mine, theirs) = (&self.0, &other.0);
        theirs
            .state_map
            .iter()
            .all(|(client, clock)| mine.state_map.get(client) >= *clock)
            && theirs.delete_set.diff(&mine.delete_set).is_empty()
    }

    /// True when the inserts and deletes of `update` (any update, incremental or full) are
    /// all in this marker.
    pub fn covers_update(&self, update: &[u8]) -> Result<bool, MarkerError> {
        let update = decode_update(update)?;
        let inserts_covered = update.insertions(true).iter().all(|(client, ranges)| {
            let known = self.0.state_map.get(client);
            ranges.iter().all(|r| r.end <= known)
        });
        Ok(inserts_covered && update.delete_set().diff(&self.0.delete_set).is_empty())
    }

    pub fn encode(&self) -> Vec<u8> {
        self.0.encode_v1()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MarkerError> {
        Snapshot::decode_v1(bytes)
            .map(DurabilityMarker)
            .map_err(|e| MarkerError::Decode(e.to_string()))
    }

    /// base64url of the encoded snapshot, as in the relay's `/durable` JSON.
    pub fn to_base64(&self) -> String {
        b64::encode(&self.encode())
    }

    pub fn from_base64(text: &str) -> Result<Self, MarkerError> {
        Self::decode(&b64::decode(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::test_docs::*;
    use yrs::Text;

    #[test]
    fn delete_only_edit_moves_the_marker() {
        let doc = doc_with(7, "abcdef");
        let before = DurabilityMarker::of_txn(&doc.transact());
        let mut delete = Vec::new();
        let t = doc.get_or_insert_text("t");
        {
            let mut txn = doc.transact_mut();
            t.remove_range(&mut txn, 1, 2);
            delete.extend(txn.encode_update_v1());
        }
        let after = DurabilityMarker::of_txn(&doc.transact());
        assert_eq!(
            before.0.state_map, after.0.state_map,
            "state vector must not move"
        );
        assert!(after.covers(&before));
        assert!(
            !before.covers(&after),
            "a state vector alone would call this covered"
        );
        assert!(!before.covers_update(&delete).unwrap());
        assert!(after.covers_update(&delete).unwrap());
    }

    #[test]
    fn inserts_are_covered_by_later_markers_only() {
        let doc = doc_with(9, "x");
        let early = DurabilityMarker::of_update(&full(&doc)).unwrap();
        let t = doc.get_or_insert_text("t");
        let insert = {
            let mut txn = doc.transact_mut();
            t.insert(&mut txn, 1, "yz");
            txn.encode_update_v1()
        };
        let late = DurabilityMarker::of_update(&full(&doc)).unwrap();
        assert!(!early.covers_update(&insert).unwrap());
        assert!(late.covers_update(&insert).unwrap());
        assert!(DurabilityMarker::default().covers(&DurabilityMarker::default()));
        assert!(!DurabilityMarker::default().covers(&late));
    }

    #[test]
    fn encoding_round_trips() {
        let doc = doc_with(11, "hello");
        doc.get_or_insert_text("t")
            .remove_range(&mut doc.transact_mut(), 0, 1);
        let m = DurabilityMarker::of_txn(&doc.transact());
        assert_eq!(DurabilityMarker::from_base64(&m.to_base64()).unwrap(), m);
        assert!(DurabilityMarker::from_base64("%%").is_err());
        assert!(DurabilityMarker::decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
