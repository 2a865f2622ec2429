//! The ykeep extension message: acknowledgements by tier (DESIGN.md "Saved means saved").
//!
//! y-sync has no acknowledgement. A connection that opts in (the in-band [`Message::OptIn`], or
//! the query parameter [`QUERY_PARAM`]`=`[`QUERY_VALUE`] on the WebSocket URL) gets
//! [`Message::Welcome`], then an answer to each [`Message::Mark`] it sends:
//! [`Message::Committed`] once the relay's durable log holds every update the connection sent
//! before the mark, and [`Message::Saved`] once a store save covers them.
//!
//! Why marks, and not a count of the connection's update frames: the page's provider
//! (y-websocket, y-partykit) sends the updates, and the page cannot see what it sent. A mark
//! the page sends after its updates travels on the same ordered socket, so its echo tells the
//! page exactly which of its edits are in. Marks are the page's own numbers (its count of
//! updates), opaque to the relay.
//!
//! Every message is `[MESSAGE_TYPE, kind varuint, (n varuint)]`: 2 to 11 bytes. The type is
//! chosen outside every known y-sync extension: y-websocket uses 0-3, Hocuspocus 0-8, y-sweet
//! 102. Kinds this build does not know are ignored, so that later kinds can be added.

use std::fmt;

/// The first byte of every ykeep message.
pub const MESSAGE_TYPE: u8 = 107;
/// `?ykeep=acks` on the WebSocket URL opts a connection in from its first message.
pub const QUERY_PARAM: &str = "ykeep";
pub const QUERY_VALUE: &str = "acks";

const OPT_IN: u64 = 0;
const MARK: u64 = 1;
const WELCOME: u64 = 2;
const COMMITTED: u64 = 3;
const SAVED: u64 = 4;

/// One ykeep message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Page → relay: send acknowledgements on this connection.
    OptIn,
    /// Page → relay: every update this connection sent before this message is covered by `n`.
    Mark(u64),
    /// Relay → page: acknowledgements are on. The relay's SyncStep1 went before it, so a mark
    /// sent on receipt follows the page's SyncStep2.
    Welcome,
    /// Relay → page: mark `n` and everything before it are in the relay's durable log.
    Committed(u64),
    /// Relay → page: mark `n` and everything before it are in the snapshot store.
    Saved(u64),
}

/// What [`decode`] makes of a message of type [`MESSAGE_TYPE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    Message(Message),
    /// A kind this build does not know: ignore it.
    UnknownKind(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("not a ykeep message ({})", first_byte(*.0))]
    NotYkeep(Option<u8>),
    #[error("malformed ykeep message: {0}")]
    Malformed(&'static str),
}

fn first_byte(b: Option<u8>) -> String {
    match b {
        Some(b) => format!("first byte {b}"),
        None => "empty frame".into(),
    }
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, n) = match *self {
            Message::OptIn => (OPT_IN, None),
            Message::Mark(n) => (MARK, Some(n)),
            Message::Welcome => (WELCOME, None),
            Message::Committed(n) => (COMMITTED, Some(n)),
            Message::Saved(n) => (SAVED, Some(n)),
        };
        let mut out = Vec::with_capacity(12);
        out.push(MESSAGE_TYPE);
        write_var(&mut out, kind);
        if let Some(n) = n {
            write_var(&mut out, n);
        }
        out
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Decodes one ykeep message. Trailing bytes after a known kind are refused; an unknown kind's
/// body is not read.
pub fn decode(frame: &[u8]) -> Result<Decoded, AckError> {
    match frame.first() {
        Some(&MESSAGE_TYPE) => {}
        other => return Err(AckError::NotYkeep(other.copied())),
    }
    let mut rest = &frame[1..];
    let kind = read_var(&mut rest)?;
    let message = match kind {
        OPT_IN => Message::OptIn,
        WELCOME => Message::Welcome,
        MARK => Message::Mark(read_var(&mut rest)?),
        COMMITTED => Message::Committed(read_var(&mut rest)?),
        SAVED => Message::Saved(read_var(&mut rest)?),
        other => return Ok(Decoded::UnknownKind(other)),
    };
    if !rest.is_empty() {
        return Err(AckError::Malformed("bytes after the message"));
    }
    Ok(Decoded::Message(message))
}

fn write_var(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_var(bytes: &mut &[u8]) -> Result<u64, AckError> {
    let mut n: u64 = 0;
    for i in 0..10 {
        let Some((&b, rest)) = bytes.split_first() else {
            return Err(AckError::Malformed("truncated number"));
        };
        *bytes = rest;
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            return Err(AckError::Malformed("number over 64 bits"));
        }
        n |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(AckError::Malformed("number over 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_and_stays_small() {
        let all = [
            Message::OptIn,
            Message::Welcome,
            Message::Mark(0),
            Message::Mark(127),
            Message::Committed(128),
            Message::Saved(u64::MAX),
        ];
        for m in all {
            let bytes = m.encode();
            assert_eq!(decode(&bytes), Ok(Decoded::Message(m)), "{m}");
            assert!(bytes.len() <= 12, "{m}: {} bytes", bytes.len());
        }
        assert_eq!(Message::OptIn.encode(), [MESSAGE_TYPE, 0]);
        assert_eq!(Message::Mark(300).encode(), [MESSAGE_TYPE, 1, 0xac, 0x02]);
    }

    #[test]
    fn bad_input_is_refused_and_unknown_kinds_are_not() {
        assert_eq!(decode(&[]), Err(AckError::NotYkeep(None)));
        assert_eq!(decode(&[0, 0]), Err(AckError::NotYkeep(Some(0))));
        assert!(matches!(
            decode(&[MESSAGE_TYPE]),
            Err(AckError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[MESSAGE_TYPE, 1]),
            Err(AckError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[MESSAGE_TYPE, 1, 0x80]),
            Err(AckError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[MESSAGE_TYPE, 0, 0]),
            Err(AckError::Malformed(_))
        ));
        let too_long = [
            MESSAGE_TYPE,
            1,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x7f,
        ];
        assert!(matches!(decode(&too_long), Err(AckError::Malformed(_))));
        assert_eq!(
            decode(&[MESSAGE_TYPE, 9, 1, 2, 3]),
            Ok(Decoded::UnknownKind(9))
        );
    }
}
