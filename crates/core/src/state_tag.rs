//! State tags: a digest of what a document holds (its state vector and its delete set), the same
//! for the same content whatever order it arrived in.
//!
//! A page with a warm cache sends its cache's tag with `GET /rooms/{kind}/{id}/state` as
//! `If-None-Match`; a room whose state has that tag answers `304` and no body, so a repeat page
//! open downloads nothing when nothing changed. Any other answer is the usual diff against `?sv=`.
//!
//! Equal tags mean equal content: a Yjs document is the set of items below its state vector
//! (every client's clocks from 0) plus its delete set. The client builds its side with
//! [`Holding`], which extends a state vector only over contiguous clocks, so a cache with a gap
//! never claims items it lacks; such a cache has no tag ([`Holding::tag`] is `None`) and loads
//! the diff.
//!
//! The digest is 128-bit FNV-1a over a canonical encoding (clients in ascending order, each
//! client's deleted ranges merged and sorted), written out here rather than taken from a hasher
//! whose output may change between Rust releases: the relay and the browser must agree.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use yrs::{IdSet, StateVector, Update};

use crate::DurabilityMarker;
use crate::quoted::Quoted;

/// The tag of a document state. Shown as `t1.` and 32 hex digits (`t1` = this digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateTag(u128);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ykeep state tag (t1. and 32 hex digits): {}", Quoted(&.0))]
pub struct BadStateTag(pub String);

const PREFIX: &str = "t1.";

impl StateTag {
    /// The tag of the state a marker (snapshot) describes.
    pub fn of(marker: &DurabilityMarker) -> StateTag {
        digest(&marker.0.state_map, &marker.0.delete_set)
    }

    pub fn parse(text: &str) -> Result<StateTag, BadStateTag> {
        let bad = || BadStateTag(text.chars().take(64).collect());
        let hex = text.strip_prefix(PREFIX).ok_or_else(bad)?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u128::from_str_radix(hex, 16)
            .map(StateTag)
            .map_err(|_| bad())
    }

    /// The first state tag an `If-None-Match` header names (quoted or not, weak or strong).
    /// Anything else in it (a snapshot id, `*`) names no state, so it is not an error: such a
    /// request gets the state, as with no header.
    pub fn from_if_none_match(header: &str) -> Option<StateTag> {
        crate::wire::etag_list(header)?
            .into_iter()
            .find_map(|t| StateTag::parse(t).ok())
    }

    /// The tag as an `ETag` header value (quoted).
    pub fn etag(&self) -> String {
        crate::wire::etag(&self.to_string())
    }
}

impl fmt::Display for StateTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{:032x}", self.0)
    }
}

struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u128::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
}

fn digest(sv: &StateVector, ds: &IdSet) -> StateTag {
    let mut h = Fnv128(Fnv128::OFFSET);
    let clients: BTreeMap<u64, u32> = sv
        .iter()
        .filter(|(_, clock)| **clock > 0)
        .map(|(c, clock)| (c.get(), *clock))
        .collect();
    h.write(&(clients.len() as u64).to_le_bytes());
    for (client, clock) in clients {
        h.write(&client.to_le_bytes());
        h.write(&clock.to_le_bytes());
    }
    let deleted: Vec<(u64, Vec<Range<u32>>)> = ds
        .iter()
        .map(|(client, ranges)| (client.get(), merged(ranges.iter().cloned())))
        .filter(|(_, ranges)| !ranges.is_empty())
        .collect();
    h.write(&(deleted.len() as u64).to_le_bytes());
    for (client, ranges) in deleted {
        h.write(&client.to_le_bytes());
        h.write(&(ranges.len() as u64).to_le_bytes());
        for r in ranges {
            h.write(&r.start.to_le_bytes());
            h.write(&r.end.to_le_bytes());
        }
    }
    StateTag(h.0)
}

/// Ranges sorted by start with overlapping and adjacent ones joined, empty ones dropped.
fn merged(ranges: impl Iterator<Item = Range<u32>>) -> Vec<Range<u32>> {
    let mut all: Vec<Range<u32>> = ranges.filter(|r| r.start < r.end).collect();
    all.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u32>> = Vec::with_capacity(all.len());
    for r in all {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// What a cache holds: a known state's marker, then the updates appended after it, in order.
#[derive(Debug, Clone, Default)]
pub struct Holding {
    sv: StateVector,
    ds: IdSet,
    /// An update inserted clocks beyond what came before it (a write that failed in between):
    /// the cache does not hold everything below its clocks, so it has no tag.
    gap: bool,
}

impl Holding {
    pub fn new(marker: DurabilityMarker) -> Holding {
        Holding {
            sv: marker.0.state_map,
            ds: marker.0.delete_set,
            gap: false,
        }
    }

    /// Adds an update's inserts (as far as they are contiguous) and deletions.
    pub fn add(&mut self, update: &Update) {
        for (client, ranges) in update.insertions(true).iter() {
            let mut end = self.sv.get(client);
            for r in merged(ranges.iter().cloned()) {
                if r.start > end {
                    self.gap = true;
                    break;
                }
                end = end.max(r.end);
            }
            self.sv.set_max(*client, end);
        }
        self.ds.merge_with(update.delete_set().clone());
    }

    /// The state vector of what is held (never above it: a gap stops a client's clock).
    pub fn state_vector(&self) -> &StateVector {
        &self.sv
    }

    /// The tag of what is held; `None` when an update left a gap.
    pub fn tag(&self) -> Option<StateTag> {
        (!self.gap).then(|| digest(&self.sv, &self.ds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::test_docs::*;
    use yrs::updates::decoder::Decode;
    use yrs::{ReadTxn, Text, Transact};

    fn tag_of(doc: &yrs::Doc) -> StateTag {
        StateTag::of(&DurabilityMarker::of_txn(&doc.transact()))
    }

    fn edit(doc: &yrs::Doc, f: impl FnOnce(&yrs::TextRef, &mut yrs::TransactionMut)) -> Update {
        let t = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        f(&t, &mut txn);
        Update::decode_v1(&txn.encode_update_v1()).unwrap()
    }

    #[test]
    fn same_content_same_tag_whatever_the_order() {
        let (a, b) = (doc_with(1, "hello "), doc_with(2, "world"));
        let (ua, ub) = (full(&a), full(&b));
        let (x, y) = (yrs::Doc::new(), yrs::Doc::new());
        crate::merge::apply_to(&x, &ua).unwrap();
        crate::merge::apply_to(&x, &ub).unwrap();
        crate::merge::apply_to(&y, &ub).unwrap();
        crate::merge::apply_to(&y, &ua).unwrap();
        assert_eq!(tag_of(&x), tag_of(&y));
        assert_ne!(tag_of(&x), tag_of(&a));
    }

    #[test]
    fn a_delete_changes_the_tag_though_the_state_vector_stays() {
        let doc = doc_with(3, "abcdef");
        let before = tag_of(&doc);
        edit(&doc, |t, txn| t.remove_range(txn, 1, 2));
        assert_ne!(tag_of(&doc), before);
    }

    #[test]
    fn a_holding_built_from_appended_updates_has_the_documents_tag() {
        let doc = doc_with(4, "abc");
        let mut held = Holding::new(DurabilityMarker::of_txn(&doc.transact()));
        let insert = edit(&doc, |t, txn| t.insert(txn, 3, "def"));
        let delete = edit(&doc, |t, txn| t.remove_range(txn, 0, 2));
        held.add(&insert);
        held.add(&delete);
        assert_eq!(held.tag(), Some(tag_of(&doc)));
        assert_eq!(held.state_vector(), &doc.transact().state_vector());
    }

    #[test]
    fn a_gap_leaves_no_tag_and_stops_the_clock() {
        let doc = doc_with(5, "abc");
        let mut held = Holding::new(DurabilityMarker::of_txn(&doc.transact()));
        let _lost = edit(&doc, |t, txn| t.insert(txn, 3, "d"));
        let after = edit(&doc, |t, txn| t.insert(txn, 4, "e"));
        held.add(&after);
        assert_eq!(held.tag(), None);
        assert_eq!(
            held.state_vector().get(&yrs::ClientID::new(5)),
            3,
            "clocks 3.. are not all held"
        );
    }

    #[test]
    fn tags_print_and_parse() {
        let tag = tag_of(&doc_with(6, "x"));
        let text = tag.to_string();
        assert!(text.starts_with("t1.") && text.len() == 35, "{text}");
        assert_eq!(StateTag::parse(&text), Ok(tag));
        for bad in ["", "t1.", "t2.00000000000000000000000000000000", "t1.zz"] {
            assert!(StateTag::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(StateTag::from_if_none_match(&tag.etag()), Some(tag));
        let list = format!("\"abc\", W/{}", tag.etag());
        assert_eq!(StateTag::from_if_none_match(&list), Some(tag));
        assert_eq!(StateTag::from_if_none_match("*"), None);
        assert_eq!(StateTag::from_if_none_match("\"t1.12\""), None);
        // The empty document's tag is fixed: a change here breaks every tag already stored.
        assert_eq!(
            StateTag::of(&DurabilityMarker::default()).to_string(),
            "t1.f1f90b7bf705b5ef1517163834145e4d"
        );
    }

    #[test]
    fn the_hash_is_fnv1a_128() {
        let mut h = Fnv128(Fnv128::OFFSET);
        h.write(b"foobar");
        assert_eq!(h.0, 0x343e1662793c64bf6f0d3597ba446f18);
    }

    #[test]
    fn ranges_are_joined_before_hashing() {
        let split = IdSet::from_iter([(yrs::ClientID::new(7), vec![0..2, 2..5])]);
        let whole = IdSet::from_iter([(yrs::ClientID::new(7), std::iter::once(0..5))]);
        let sv = StateVector::default();
        assert_eq!(digest(&sv, &split), digest(&sv, &whole));
    }
}
