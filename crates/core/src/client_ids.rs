//! Reads a Yjs v1 update's structs from the bytes, the way yrs 0.28 decodes them, before yrs
//! does: client ids of 2^53 and above ([`oversized_client_id`]) and, for each struct, its id,
//! length, kind and the parent it names by id ([`each_struct`], what
//! `crate::merge::check_parents` reads).
//!
//! Yjs client ids are 53-bit (what a JS number holds exactly). yrs 0.28 keeps only the low 53
//! bits (`ClientID::new`; the check is a `debug_assert!`, so release builds drop the high bits
//! silently). A client id of 2^53 + 7 therefore aliases client 7. Fuzzing found a crafted update
//! using one: it passes every check on its own, but applied to a document that holds client 7's
//! real content it leaves a state that no longer decodes, so the room could never be saved again
//! (`fuzz/regressions/snapshot_save/`).
//!
//! The scan walks the v1 layout the way yrs 0.28's decoder reads it (structs with their origins,
//! parents and content, then the delete set), down to its quirks: counts, clocks and lengths are
//! `u32` varints that wrap as yrs' `read_var_u32` does, a JSON item holds count + 1 strings, an
//! item of length 0 is dropped without moving the clock. [`oversized_client_id`] is only a
//! filter: when the scan cannot follow the bytes it reports nothing and yrs' decoder has the
//! last word. [`each_struct`] says [`Unreadable`] instead, and its caller refuses the update.

/// The largest client id Yjs can produce.
pub const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// The first client id above [`MAX_CLIENT_ID`] found in `update`, if the scan can read it.
pub fn oversized_client_id(update: &[u8]) -> Option<u64> {
    let mut r = Reader { buf: update, at: 0 };
    r.scan(&mut |_| {}).ok().flatten()
}

/// What a struct holds, as far as a parent check cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructKind {
    /// A garbage-collected range.
    Gc,
    /// A hole the update leaves (yrs integrates nothing for it).
    Skip,
    /// An item whose content was deleted (`ContentDeleted`).
    Deleted,
    /// An item holding a shared type (array, map, text, XML, sub-document type).
    Type,
    /// An item holding any other content (text, JSON, binary, embed, format, `Any`, a doc).
    Content,
}

/// One struct of an update as yrs' decoder reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedStruct {
    pub client: u64,
    pub clock: u32,
    pub len: u32,
    pub kind: StructKind,
    /// `(client, clock)` of the item this one names as its parent. Only an item with no origins
    /// inside a nested type names one (other items take their parent from their neighbours, or
    /// name a root type).
    pub parent: Option<(u64, u32)>,
}

/// The scan could not follow the bytes as yrs' decoder does (truncated, unknown or malformed
/// bytes), or met a client id over [`MAX_CLIENT_ID`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

/// Calls `each` for every struct of `update`, in the order of the bytes (the delete set is not
/// read).
pub fn each_struct(update: &[u8], mut each: impl FnMut(&ScannedStruct)) -> Result<(), Unreadable> {
    let mut r = Reader { buf: update, at: 0 };
    match r.structs(&mut each) {
        Ok(None) => Ok(()),
        Ok(Some(_)) | Err(Lost) => Err(Unreadable),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

/// The scan lost its way (truncated or unknown bytes).
struct Lost;

type Step<T> = Result<T, Lost>;

/// `Some(id)`: the first client id over the limit, where the scan stopped.
type Found = Option<u64>;

const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;

impl Reader<'_> {
    /// The structs, then the delete set; `Some(id)` for the first oversized id.
    fn scan(&mut self, each: &mut impl FnMut(&ScannedStruct)) -> Step<Found> {
        if let Some(id) = self.structs(each)? {
            return Ok(Some(id));
        }
        let ds_clients = self.var_u32()?;
        for _ in 0..ds_clients {
            if let Some(id) = self.client()? {
                return Ok(Some(id));
            }
            let ranges = self.var_u32()?;
            for _ in 0..ranges {
                self.var_u32()?; // clock
                self.var_u32()?; // length
            }
        }
        Ok(None)
    }

    fn structs(&mut self, each: &mut impl FnMut(&ScannedStruct)) -> Step<Found> {
        let clients = self.var_u32()?;
        for _ in 0..clients {
            let structs = self.var_u32()?;
            let client = match self.client_value()? {
                Err(oversized) => return Ok(Some(oversized)),
                Ok(client) => client,
            };
            let mut clock = self.var_u32()?;
            for _ in 0..structs {
                match self.block(client, clock)? {
                    Err(oversized) => return Ok(Some(oversized)),
                    // An item of length 0 is dropped by yrs without moving the clock.
                    Ok(None) => {}
                    Ok(Some(s)) => {
                        each(&s);
                        clock = clock.wrapping_add(s.len);
                    }
                }
            }
        }
        Ok(None)
    }

    fn byte(&mut self) -> Step<u8> {
        let b = *self.buf.get(self.at).ok_or(Lost)?;
        self.at += 1;
        Ok(b)
    }

    /// yrs' `read_var_u32`: up to 11 bytes, bits shifted with `wrapping_shl` (so a shift of 35
    /// lands at bit 3) and bits past 32 dropped.
    fn var_u32(&mut self) -> Step<u32> {
        let mut n: u32 = 0;
        let mut shift: u32 = 0;
        loop {
            let b = self.byte()?;
            n |= u32::from(b & 0x7f).wrapping_shl(shift);
            shift += 7;
            if b < 0x80 {
                return Ok(n);
            }
            if shift > 70 {
                return Err(Lost);
            }
        }
    }

    /// yrs' `read_var_u64` (what it reads a `usize` count with).
    fn var_u64(&mut self) -> Step<u64> {
        let mut n: u64 = 0;
        let mut shift: u32 = 0;
        loop {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).wrapping_shl(shift);
            shift += 7;
            if b < 0x80 {
                return Ok(n);
            }
            if shift > 70 {
                return Err(Lost);
            }
        }
    }

    /// A signed varint (yrs' `read_var_i64`): sign in bit 6 of the first byte, up to 11 bytes.
    fn var_int(&mut self) -> Step<()> {
        let mut b = self.byte()?;
        let mut shift = 6;
        while b & 0x80 != 0 {
            b = self.byte()?;
            shift += 7;
            if b & 0x80 != 0 && shift > 70 {
                return Err(Lost);
            }
        }
        Ok(())
    }

    fn skip(&mut self, n: u32) -> Step<&[u8]> {
        let start = self.at;
        let end = start.checked_add(n as usize).ok_or(Lost)?;
        if end > self.buf.len() {
            return Err(Lost);
        }
        self.at = end;
        Ok(&self.buf[start..end])
    }

    /// A length-prefixed byte buffer.
    fn bytes(&mut self) -> Step<()> {
        let n = self.var_u32()?;
        self.skip(n).map(drop)
    }

    /// A length-prefixed string (yrs refuses bytes that are not UTF-8); its length in UTF-16
    /// units, what a string item's clock length is.
    fn string(&mut self) -> Step<u32> {
        let n = self.var_u32()?;
        let s = std::str::from_utf8(self.skip(n)?).map_err(|_| Lost)?;
        Ok(s.chars().map(|c| c.len_utf16() as u32).sum())
    }

    /// A client id; `Some` when it is over the limit. An overlong varint (more than the 8 bytes
    /// 53 bits need; yrs reads up to 10 and ignores bits past 64) counts as over the limit, with
    /// the bits that fit.
    fn client(&mut self) -> Step<Option<u64>> {
        Ok(self.client_value()?.err())
    }

    /// A client id: `Ok(id)` within the limit, `Err(id)` over it (see [`Reader::client`]).
    fn client_value(&mut self) -> Step<Result<u64, u64>> {
        let mut id: u64 = 0;
        for n in 0..16 {
            let b = self.byte()?;
            if n < 10 {
                id |= u64::from(b & 0x7f).checked_shl(7 * n).unwrap_or(0);
            }
            if b & 0x80 == 0 {
                let over = n >= 8 || id > MAX_CLIENT_ID;
                return Ok(if over {
                    Err(id.max(MAX_CLIENT_ID + 1))
                } else {
                    Ok(id)
                });
            }
        }
        Err(Lost)
    }

    /// An id (client, clock); `Err` with the client when it is over the limit.
    fn id(&mut self) -> Step<Result<(u64, u32), u64>> {
        let client = self.client_value()?;
        let clock = self.var_u32()?;
        Ok(client.map(|c| (c, clock)))
    }

    /// One struct at `client`'s `clock`; `Ok(None)` for an item yrs drops (length 0).
    fn block(&mut self, client: u64, clock: u32) -> Step<Result<Option<ScannedStruct>, u64>> {
        let info = self.byte()?;
        let at = |len, kind, parent| ScannedStruct {
            client,
            clock,
            len,
            kind,
            parent,
        };
        if info == 0 || info == 10 {
            // GC or skip: a length only (yrs refuses 0).
            let len = self.var_u32()?;
            if len == 0 {
                return Err(Lost);
            }
            let kind = if info == 0 {
                StructKind::Gc
            } else {
                StructKind::Skip
            };
            return Ok(Ok(Some(at(len, kind, None))));
        }
        if info & HAS_ORIGIN != 0 {
            if let Err(id) = self.id()? {
                return Ok(Err(id));
            }
        }
        if info & HAS_RIGHT_ORIGIN != 0 {
            if let Err(id) = self.id()? {
                return Ok(Err(id));
            }
        }
        let mut parent = None;
        if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
            // The parent: a root type's name, or the id of the item holding the type.
            if self.var_u32()? == 1 {
                self.string()?;
            } else {
                match self.id()? {
                    Err(id) => return Ok(Err(id)),
                    Ok(id) => parent = Some(id),
                }
            }
            if info & HAS_PARENT_SUB != 0 {
                self.string()?;
            }
        }
        let (len, kind) = self.content(info & 0x0f)?;
        Ok(Ok((len > 0).then(|| at(len, kind, parent))))
    }

    /// An item's content: its length (in clock units) and kind.
    fn content(&mut self, kind: u8) -> Step<(u32, StructKind)> {
        let other = StructKind::Content;
        Ok(match kind {
            1 => (self.var_u32()?, StructKind::Deleted),
            2 => {
                // JSON: yrs reads count + 1 strings (a count over i32::MAX fails its reserve).
                let n = i32::try_from(self.var_u32()?).map_err(|_| Lost)?;
                for _ in 0..=n {
                    self.string()?;
                }
                (n as u32 + 1, other)
            }
            3 => {
                self.bytes()?; // binary
                (1, other)
            }
            4 => (self.string()?, other),
            5 => {
                self.string()?; // embed: JSON text
                (1, other)
            }
            6 => {
                // format: key + JSON text
                self.string()?;
                self.string()?;
                (1, other)
            }
            7 => {
                // a type: its ref (one byte), and a name for XML elements (3)
                match self.byte()? {
                    3 => {
                        self.string()?;
                    }
                    0..=6 | 9 | 15 => {}
                    _ => return Err(Lost),
                }
                (1, StructKind::Type)
            }
            8 => {
                let n = self.var_u32()?;
                for _ in 0..n {
                    self.any(0)?;
                }
                (n, other)
            }
            9 => {
                // a sub-document: guid + options
                self.string()?;
                self.any(0)?;
                (1, other)
            }
            _ => return Err(Lost),
        })
    }

    /// One lib0 `Any` value (nested at most 1024 deep: the scan's own stack stays small).
    fn any(&mut self, depth: u32) -> Step<()> {
        if depth > 1024 {
            return Err(Lost);
        }
        match self.byte()? {
            127 | 126 | 121 | 120 => Ok(()), // undefined, null, false, true
            125 => self.var_int(),
            124 => self.skip(4).map(drop),
            123 | 122 => self.skip(8).map(drop), // float64, bigint64
            119 => self.string().map(drop),
            116 => self.bytes(), // Uint8Array
            118 => {
                let n = self.var_u64()?;
                for _ in 0..n {
                    self.string()?;
                    self.any(depth + 1)?;
                }
                Ok(())
            }
            117 => {
                let n = self.var_u64()?;
                for _ in 0..n {
                    self.any(depth + 1)?;
                }
                Ok(())
            }
            _ => Err(Lost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::test_docs::*;
    use yrs::updates::decoder::Decode;
    use yrs::{
        Any, Array, Doc, Map, MapPrelim, Text, Transact, Update, XmlElementPrelim, XmlFragment,
        XmlTextPrelim,
    };

    #[test]
    fn ordinary_updates_have_no_oversized_ids() {
        let doc = doc_with(MAX_CLIENT_ID, "hello");
        let arr = doc.get_or_insert_array("a");
        let map = doc.get_or_insert_map("m");
        let xml = doc.get_or_insert_xml_fragment("x");
        {
            let mut txn = doc.transact_mut();
            arr.insert_range(
                &mut txn,
                0,
                [
                    Any::from(1.5),
                    Any::from("two"),
                    Any::from(vec![Any::from(true), Any::Null]),
                    Any::from(-3i64),
                ],
            );
            map.insert(&mut txn, "k", Any::from(1i64 << 60));
            map.insert(&mut txn, "f", Any::from(0.25f32 as f64));
            map.insert(&mut txn, "bytes", Any::from(vec![1u8, 2, 3]));
            xml.insert(&mut txn, 0, XmlTextPrelim::new("x"));
        }
        arr.remove_range(&mut doc.transact_mut(), 1, 1);
        let state = full(&doc);
        let mut r = Reader { buf: &state, at: 0 };
        assert!(
            matches!(r.scan(&mut |_| {}), Ok(None)),
            "the scan reads an ordinary update to its end"
        );
        assert_eq!(r.at, state.len());
        assert_eq!(oversized_client_id(&full(&Doc::new())), None);
    }

    #[test]
    fn an_id_of_2_pow_53_or_more_is_found() {
        // One client, one struct: client 2^53 + 7, clock 0, a string item in root "t".
        let mut update = vec![1, 1];
        let mut id = (1u64 << 53) + 7;
        while id >= 0x80 {
            update.push((id as u8 & 0x7f) | 0x80);
            id >>= 7;
        }
        update.push(id as u8);
        update.extend_from_slice(&[0, 4, 1, 1, b't', 2, b'h', b'i', 0]);
        assert_eq!(oversized_client_id(&update), Some((1 << 53) + 7));
        // An overlong varint for a small id (what the fuzzed input used) is over the limit too.
        let overlong = [
            1, 1, 0x87, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0, 4, 1, 1, b't',
            2, b'h', b'i', 0,
        ];
        assert!(oversized_client_id(&overlong).is_some());
        // Garbage is not this scan's business: yrs' decoder refuses it.
        assert_eq!(oversized_client_id(&[0xff; 3]), None);
    }
    /// Every struct of `update` as `each_struct` reads it, checked against yrs' own decode: the
    /// same id ranges (yrs' insertions, GC'ed ones included).
    fn structs_as_yrs_reads_them(update: &[u8]) -> Vec<ScannedStruct> {
        let mut out = Vec::new();
        each_struct(update, |s| out.push(*s)).expect("the scan follows an ordinary update");
        let mut ours = yrs::IdSet::new();
        for s in out.iter().filter(|s| s.kind != StructKind::Skip) {
            ours.insert(yrs::ID::new(yrs::ClientID::new(s.client), s.clock), s.len);
        }
        let theirs = Update::decode_v1(update).unwrap().insertions(true);
        assert!(
            ours.diff(&theirs).is_empty() && theirs.diff(&ours).is_empty(),
            "scan {ours:?} vs yrs {theirs:?}"
        );
        out
    }

    #[test]
    fn each_struct_reads_ids_lengths_kinds_and_parents_as_yrs_does() {
        let doc = doc_with(5, "h\u{e9}llo \u{1F600}!"); // 2-byte and 4-byte (surrogate pair) chars
        let map = doc.get_or_insert_map("m");
        let xml = doc.get_or_insert_xml_fragment("x");
        {
            let mut txn = doc.transact_mut();
            let inner = map.insert(&mut txn, "inner", MapPrelim::default());
            inner.insert(
                &mut txn,
                "a",
                Any::from(vec![Any::from(1i64), Any::from("b")]),
            );
            inner.insert(&mut txn, "b", Any::from(2.5));
            let p = xml.insert(&mut txn, 0, XmlElementPrelim::empty("p"));
            p.insert(&mut txn, 0, XmlTextPrelim::new("x\u{1F600}y"));
        }
        let t = doc.get_or_insert_text("t");
        t.remove_range(&mut doc.transact_mut(), 1, 3);
        let structs = structs_as_yrs_reads_them(&full(&doc));
        let kinds = |k| structs.iter().filter(|s| s.kind == k).count();
        assert_eq!(kinds(StructKind::Type), 3, "inner, p and its text");
        assert!(kinds(StructKind::Deleted) >= 1);
        // The first entries of `inner` and the text inside `p` name their parent by id.
        let parents: Vec<_> = structs.iter().filter_map(|s| s.parent).collect();
        let types: Vec<_> = structs
            .iter()
            .filter(|s| s.kind == StructKind::Type)
            .map(|s| (s.client, s.clock))
            .collect();
        assert_eq!(parents.len(), 4, "{structs:?}");
        assert!(parents.iter().all(|p| types.contains(p)));
        // An empty doc, and a text of astral characters only.
        structs_as_yrs_reads_them(&full(&Doc::new()));
        structs_as_yrs_reads_them(&full(&doc_with(6, "\u{1F600}\u{1F601}")));
    }

    #[test]
    fn each_struct_follows_yrs_varint_quirks_and_refuses_what_it_cannot_read() {
        // The parent kind written as 2^32 + 1 (5 bytes): yrs reads u32 varints wrapping, so
        // to it this is 1, a root type's name ("t"), not an id.
        let wrapped = [
            1, 1, 13, 0, 0x04, 0x81, 0x80, 0x80, 0x80, 0x10, 1, b't', 1, b'x', 0,
        ];
        let structs = structs_as_yrs_reads_them(&wrapped);
        assert_eq!(structs.len(), 1);
        assert_eq!(structs[0].parent, None);
        // An empty string item is dropped by yrs without moving the clock.
        let empty_then_x = [
            1, 2, 13, 0, 0x04, 1, 1, b't', 0, 0x04, 1, 1, b't', 1, b'x', 0,
        ];
        let structs = structs_as_yrs_reads_them(&empty_then_x);
        assert_eq!((structs.len(), structs[0].clock), (1, 0));
        // Truncated, or an unknown content kind: unreadable.
        let ok = full(&doc_with(3, "abc"));
        assert!(each_struct(&ok[..ok.len() - 3], |_| {}).is_err());
        assert!(each_struct(&[1, 1, 13, 0, 0x0b, 1, 1, b't', 0], |_| {}).is_err());
    }
}
