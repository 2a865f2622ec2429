//! The y-sync wire format, parsed without copying.
//!
//! A frame is `[messageType varuint, ...]`; sync messages are `[0, step varuint, varbuf]` with
//! step 0 = SyncStep1 (state vector), 1 = SyncStep2 (update), 2 = Update; awareness is
//! `[1, varbuf]`. The relay needs the byte range of the payload so that an incoming Update frame
//! can be forwarded to every other peer as the same shared buffer.

use std::ops::Range;

use yrs::encoding::read::{Cursor, Read};

const MSG_SYNC: u8 = 0;
/// The first byte of an awareness message.
pub const MSG_AWARENESS: u8 = 1;
const SYNC_STEP1: u8 = 0;
const SYNC_STEP2: u8 = 1;
const SYNC_UPDATE: u8 = 2;

/// One parsed y-sync message; ranges index into the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SyncStep1 {
        sv: Range<usize>,
    },
    SyncStep2 {
        update: Range<usize>,
    },
    Update {
        update: Range<usize>,
        end: usize,
    },
    Awareness {
        payload: Range<usize>,
    },
    AwarenessQuery,
    Auth,
    /// A ykeep extension message (`ykeep_core::acks`), decoded by the room.
    Ykeep,
    /// A message type this relay does not handle (ignored, as y-websocket does).
    Unknown(u64),
}

#[derive(Debug, thiserror::Error)]
#[error("malformed y-sync message: {0}")]
pub struct ProtocolError(String);

/// Parses the first message of a frame (y-websocket sends one message per frame).
pub fn parse(frame: &[u8]) -> Result<Frame, ProtocolError> {
    let mut cur = Cursor::new(frame);
    let tag: u64 = cur.read_var().map_err(err)?;
    match tag {
        0 => {
            let step: u64 = cur.read_var().map_err(err)?;
            let range = read_buf_range(&mut cur)?;
            match step {
                0 => Ok(Frame::SyncStep1 { sv: range }),
                1 => Ok(Frame::SyncStep2 { update: range }),
                2 => {
                    let end = range.end;
                    Ok(Frame::Update { update: range, end })
                }
                _ => Err(ProtocolError(format!("unknown sync step {step}"))),
            }
        }
        1 => Ok(Frame::Awareness {
            payload: read_buf_range(&mut cur)?,
        }),
        2 => Ok(Frame::Auth),
        3 => Ok(Frame::AwarenessQuery),
        t if t == u64::from(ykeep_core::acks::MESSAGE_TYPE) => Ok(Frame::Ykeep),
        other => Ok(Frame::Unknown(other)),
    }
}

fn read_buf_range(cur: &mut Cursor<'_>) -> Result<Range<usize>, ProtocolError> {
    let len: u64 = cur.read_var().map_err(err)?;
    let start = cur.next;
    let len = usize::try_from(len).map_err(|_| ProtocolError("length overflows".into()))?;
    if start.checked_add(len).is_none_or(|end| end > cur.buf.len()) {
        return Err(ProtocolError(format!(
            "payload of {len} bytes announced, {} present",
            cur.buf.len() - start
        )));
    }
    cur.next = start + len;
    Ok(start..start + len)
}

fn err(e: yrs::encoding::read::Error) -> ProtocolError {
    ProtocolError(e.to_string())
}

fn sync_frame(step: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 7);
    out.push(MSG_SYNC);
    out.push(step);
    write_len_prefixed(&mut out, payload);
    out
}

/// `[0, 0, sv]`: SyncStep1 with a v1-encoded state vector.
pub fn encode_step1(sv: &[u8]) -> Vec<u8> {
    sync_frame(SYNC_STEP1, sv)
}

/// `[0, 1, update]`: SyncStep2 (the reply to a SyncStep1).
pub fn encode_step2(update: &[u8]) -> Vec<u8> {
    sync_frame(SYNC_STEP2, update)
}

/// `[0, 2, update]`: an incremental update.
pub fn encode_update(update: &[u8]) -> Vec<u8> {
    sync_frame(SYNC_UPDATE, update)
}

/// Offset of the payload in a frame built by [`encode_update`] for a payload of `len` bytes.
pub fn update_payload_offset(len: usize) -> usize {
    2 + varint_len(len as u64)
}

/// `[1, payload]`: an awareness update (payload = encoded `AwarenessUpdate`).
pub fn encode_awareness(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    out.push(MSG_AWARENESS);
    write_len_prefixed(&mut out, payload);
    out
}

/// True when the leading varint of `bytes` (the entry count of a Yjs update, state vector or
/// awareness update) is not larger than the bytes that follow. yrs reserves the declared count
/// up front, so a few bytes declaring 2^28 entries would make it touch hundreds of MB; every
/// entry takes at least one byte, so a larger count cannot be honest.
pub fn plausible_count(bytes: &[u8]) -> bool {
    let mut n: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return n <= (bytes.len() - i - 1) as u64;
        }
    }
    bytes.len() < 10
}

/// Checks one Yjs update before it touches the room's doc (`ykeep_core::merge`): a plausible
/// count, no panic in yrs' decoder, a decode → encode → decode round trip, and on its own it
/// applies to a scratch doc whose state encodes and decodes again. Fuzzing found updates
/// failing each of these that yrs would otherwise take and then panic on in every later
/// encode of the room (`fuzz/regressions/`). The room runs [`check_parents`] too, on its doc
/// just before the apply.
pub fn checked_alone(payload: &[u8]) -> Result<yrs::Update, ProtocolError> {
    ykeep_core::validated_update(payload).map_err(|e| ProtocolError(e.to_string()))
}

/// [`checked_alone`] for a run of updates the room will apply in this order, on one scratch
/// doc (`ykeep_core::merge::validated_run`). An error names no culprit; the room then checks
/// the run one update at a time.
pub fn checked_run(payloads: &[&[u8]]) -> Result<Vec<yrs::Update>, ProtocolError> {
    ykeep_core::merge::validated_run(payloads).map_err(|e| ProtocolError(e.to_string()))
}

/// No item may name as its parent an item of `doc` (or of the update) that is neither a type
/// nor deleted: yrs would fail on it half-way through the apply, with part of the update
/// already in the doc (`ykeep_core::merge::check_parents`). It reads the doc as it is, so the
/// room runs it just before each update's own apply (an earlier update may add the parent).
pub fn check_parents(doc: &yrs::Doc, payload: &[u8]) -> Result<(), ProtocolError> {
    ykeep_core::merge::check_parents(doc, payload).map_err(|e| ProtocolError(e.to_string()))
}

pub fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Appends `[varuint len, bytes]` to `out` (the local log's batch record format).
pub fn write_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut n = bytes.len() as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(bytes);
}

/// Splits a buffer written by [`write_len_prefixed`] back into its parts.
pub fn read_len_prefixed(buf: &[u8]) -> Result<Vec<&[u8]>, ProtocolError> {
    let mut cur = Cursor::new(buf);
    let mut parts = Vec::new();
    while cur.has_content() {
        let range = read_buf_range(&mut cur)?;
        parts.push(&buf[range]);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let update = vec![7u8; 300];
        let frame = encode_update(&update);
        let Frame::Update { update: r, end } = parse(&frame).unwrap() else {
            panic!()
        };
        assert_eq!(&frame[r.clone()], update.as_slice());
        assert_eq!(r.start, update_payload_offset(update.len()));
        assert_eq!(end, frame.len());
        assert!(matches!(
            parse(&encode_step1(&[0])).unwrap(),
            Frame::SyncStep1 { .. }
        ));
        assert!(matches!(
            parse(&encode_step2(&[0, 0])).unwrap(),
            Frame::SyncStep2 { .. }
        ));
        assert!(matches!(
            parse(&encode_awareness(&[0])).unwrap(),
            Frame::Awareness { .. }
        ));
        assert_eq!(parse(&[3]).unwrap(), Frame::AwarenessQuery);
        assert_eq!(parse(&[9, 0]).unwrap(), Frame::Unknown(9));
    }

    #[test]
    fn malformed_frames_are_refused() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0]).is_err());
        assert!(parse(&[0, 7, 0]).is_err());
        assert!(
            parse(&[0, 2, 10, 1, 2]).is_err(),
            "announced length beyond the frame"
        );
        assert!(
            parse(&[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
    }

    #[test]
    fn hostile_updates_are_refused_cheaply() {
        // 2^27 clients declared in 6 bytes (an allocation bomb for yrs).
        assert!(!plausible_count(&[0x80, 0x80, 0x80, 0x40, 0, 0]));
        assert!(checked_alone(&[0x80, 0x80, 0x80, 0x40, 0, 0]).is_err());
        // Found by cargo fuzz: accepted by yrs, poisons every later encode of the doc.
        assert!(checked_alone(&[1, 1, 3, 3, 2, 4, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(plausible_count(&[0, 0]));
        assert!(checked_alone(&[0, 0]).is_ok());
    }

    /// Fuzz finding c1d9159b: an item naming a room's text item (7#7) as its parent, behind an
    /// insert by client 200 that yrs would put in the doc before failing on it. The room
    /// refuses it with the doc as it was: nothing to log, nothing to forward.
    #[test]
    fn an_update_naming_a_text_item_as_parent_is_refused_with_the_doc_untouched() {
        use yrs::{ReadTxn, StateVector, Text, Transact};
        let room = yrs::Doc::with_client_id(7);
        let t = room.get_or_insert_text("t");
        t.insert(&mut room.transact_mut(), 0, "stored snapshot");
        t.remove_range(&mut room.transact_mut(), 0, 7);
        let state = |doc: &yrs::Doc| {
            let txn = doc.transact();
            let full = txn.encode_state_as_update_v1(&StateVector::default());
            (full, ykeep_core::DurabilityMarker::of_txn(&txn))
        };
        let before = state(&room);
        let finding = include_bytes!(
            "../../../fuzz/regressions/snapshot_save/crash-c1d9159bc159df44c1d313ccde20189c9554d62c"
        );
        let insert = {
            let other = yrs::Doc::with_client_id(200);
            let t = other.get_or_insert_text("t");
            t.insert(&mut other.transact_mut(), 0, "NEW");
            other
                .transact()
                .encode_state_as_update_v1(&StateVector::default())
        };
        let bad = yrs::merge_updates_v1([insert.as_slice(), finding]).unwrap();
        assert!(checked_alone(&bad).is_ok(), "fine on its own");
        assert!(
            check_parents(&yrs::Doc::new(), &bad).is_ok(),
            "fine where 7#7 is missing"
        );
        let err = check_parents(&room, &bad).unwrap_err();
        assert!(err.to_string().contains("<7#7>"), "{err}");
        assert_eq!(state(&room), before);
    }

    #[test]
    fn len_prefixed_round_trip() {
        let mut buf = Vec::new();
        write_len_prefixed(&mut buf, b"a");
        write_len_prefixed(&mut buf, &[5u8; 200]);
        write_len_prefixed(&mut buf, b"");
        let parts = read_len_prefixed(&buf).unwrap();
        assert_eq!(parts, vec![&b"a"[..], &[5u8; 200][..], &b""[..]]);
        assert!(read_len_prefixed(&[5, 1]).is_err());
    }
}
