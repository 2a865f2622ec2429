//! Finds client ids of 2^53 and above in a Yjs v1 update.
//!
//! Yjs client ids are 53-bit (what a JS number holds exactly). yrs 0.28 keeps only the low 53
//! bits (`ClientID::new`; the check is a `debug_assert!`, so release builds drop the high bits
//! silently). A client id of 2^53 + 7 therefore aliases client 7. Fuzzing found a crafted update
//! using one: it passes every check on its own, but applied to a document that holds client 7's
//! real content it leaves a state that no longer decodes, so the room could never be saved again
//! (`fuzz/regressions/snapshot_save/`). This scan reads the ids from the bytes, before yrs does.
//!
//! The scan walks the v1 layout the way yrs 0.28's decoder reads it (structs with their origins,
//! parents and content, then the delete set; where yrs and Yjs differ, as in a JSON item's
//! string count, it follows yrs, the decoder whose ids it guards). It is only a filter: when it
//! cannot follow the bytes it reports nothing and yrs' decoder has the last word, so an update
//! it does not understand is never refused because of the scan.

/// The largest client id Yjs can produce.
pub const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// The first client id above [`MAX_CLIENT_ID`] found in `update`, if the scan can read it.
pub fn oversized_client_id(update: &[u8]) -> Option<u64> {
    let mut r = Reader { buf: update, at: 0 };
    r.scan().ok().flatten()
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

/// The scan lost its way (truncated or unknown bytes): it reports nothing.
struct Lost;

type Step<T> = Result<T, Lost>;

impl Reader<'_> {
    /// `Some(id)` for the first oversized id; `None` when every id is in range.
    fn scan(&mut self) -> Step<Option<u64>> {
        let clients = self.var()?;
        for _ in 0..clients {
            let structs = self.var()?;
            if let Some(id) = self.client()? {
                return Ok(Some(id));
            }
            self.var()?; // clock
            for _ in 0..structs {
                if let Some(id) = self.block()? {
                    return Ok(Some(id));
                }
            }
        }
        let ds_clients = self.var()?;
        for _ in 0..ds_clients {
            if let Some(id) = self.client()? {
                return Ok(Some(id));
            }
            let ranges = self.var()?;
            for _ in 0..ranges {
                self.var()?;
                self.var()?;
            }
        }
        Ok(None)
    }

    fn byte(&mut self) -> Step<u8> {
        let b = *self.buf.get(self.at).ok_or(Lost)?;
        self.at += 1;
        Ok(b)
    }

    fn var(&mut self) -> Step<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Lost)
    }

    /// A signed varint (lib0 `readVarInt`): sign in bit 6 of the first byte.
    fn var_int(&mut self) -> Step<()> {
        let mut b = self.byte()?;
        let mut more = b & 0x80 != 0;
        let mut left = 10;
        while more {
            left -= 1;
            if left == 0 {
                return Err(Lost);
            }
            b = self.byte()?;
            more = b & 0x80 != 0;
        }
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Step<()> {
        let n = usize::try_from(n).map_err(|_| Lost)?;
        let end = self.at.checked_add(n).ok_or(Lost)?;
        if end > self.buf.len() {
            return Err(Lost);
        }
        self.at = end;
        Ok(())
    }

    /// A length-prefixed string or byte buffer.
    fn bytes(&mut self) -> Step<()> {
        let n = self.var()?;
        self.skip(n)
    }

    /// A client id; `Some` when it is over the limit. An overlong varint (more than the 8 bytes
    /// 53 bits need; yrs reads up to 10 and ignores bits past 64) counts as over the limit, with
    /// the bits that fit.
    fn client(&mut self) -> Step<Option<u64>> {
        let mut id: u64 = 0;
        for n in 0..16 {
            let b = self.byte()?;
            if n < 10 {
                id |= u64::from(b & 0x7f).checked_shl(7 * n).unwrap_or(0);
            }
            if b & 0x80 == 0 {
                let over = n >= 8 || id > MAX_CLIENT_ID;
                return Ok(over.then_some(id.max(MAX_CLIENT_ID + 1)));
            }
        }
        Err(Lost)
    }

    /// An id (client, clock); `Some` when its client is over the limit.
    fn id(&mut self) -> Step<Option<u64>> {
        let client = self.client()?;
        self.var()?;
        Ok(client)
    }

    fn block(&mut self) -> Step<Option<u64>> {
        const HAS_ORIGIN: u8 = 0b1000_0000;
        const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
        const HAS_PARENT_SUB: u8 = 0b0010_0000;
        let info = self.byte()?;
        if info == 0 || info == 10 {
            // GC or skip: a length only.
            self.var()?;
            return Ok(None);
        }
        if info & HAS_ORIGIN != 0 {
            if let Some(id) = self.id()? {
                return Ok(Some(id));
            }
        }
        if info & HAS_RIGHT_ORIGIN != 0 {
            if let Some(id) = self.id()? {
                return Ok(Some(id));
            }
        }
        if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
            // The parent: a root type's name, or the id of the item holding the type.
            if self.var()? == 1 {
                self.bytes()?;
            } else if let Some(id) = self.id()? {
                return Ok(Some(id));
            }
            if info & HAS_PARENT_SUB != 0 {
                self.bytes()?;
            }
        }
        self.content(info & 0x0f)?;
        Ok(None)
    }

    fn content(&mut self, kind: u8) -> Step<()> {
        match kind {
            1 => {
                self.var()?; // deleted: a length
            }
            2 => {
                // JSON: yrs reads count + 1 strings
                let n = self.var()?;
                for _ in 0..=n {
                    self.bytes()?;
                }
            }
            3..=5 => self.bytes()?, // binary, string, embed (JSON text)
            6 => {
                // format: key + JSON value
                self.bytes()?;
                self.bytes()?;
            }
            7 => {
                // a type: its ref, and a name for XML elements (3)
                match self.var()? {
                    3 => self.bytes()?,
                    0..=6 | 9 | 15 => {}
                    _ => return Err(Lost),
                }
            }
            8 => {
                let n = self.var()?;
                for _ in 0..n {
                    self.any(0)?;
                }
            }
            9 => {
                // a sub-document: guid + options
                self.bytes()?;
                self.any(0)?;
            }
            _ => return Err(Lost),
        }
        Ok(())
    }

    /// One lib0 `Any` value.
    fn any(&mut self, depth: u32) -> Step<()> {
        if depth > 64 {
            return Err(Lost);
        }
        match self.byte()? {
            127 | 126 | 121 | 120 => Ok(()), // undefined, null, false, true
            125 => self.var_int(),
            124 => self.skip(4),
            123 | 122 => self.skip(8), // float64, bigint64
            119 | 116 => self.bytes(), // string, Uint8Array
            118 => {
                let n = self.var()?;
                for _ in 0..n {
                    self.bytes()?;
                    self.any(depth + 1)?;
                }
                Ok(())
            }
            117 => {
                let n = self.var()?;
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
    use yrs::{Any, Array, Doc, Map, Transact, XmlFragment, XmlTextPrelim};

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
            matches!(r.scan(), Ok(None)),
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
}
