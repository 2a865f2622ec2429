//! Wire framing: raw y-sync frames (ykeep, y-websocket) and the Hocuspocus adapter.
//!
//! y-sync: `[0 = sync, step, varuint len, bytes]` with step 0 = SyncStep1, 1 = SyncStep2,
//! 2 = Update. Hocuspocus puts the document name first (`varstring`) on every message, in both
//! directions, and answers nothing for a document until the client sent an auth message
//! `[name, 2 = Auth, 0 = Token, varstring token]` (sent with an empty token: the benchmark
//! server has no auth extension, so `onAuthenticate` accepts it).

pub fn write_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn read_var(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_var(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Which server protocol a socket speaks.
#[derive(Clone, Debug)]
pub enum Dialect {
    YSync,
    /// Hocuspocus: every message starts with this document name.
    Hocuspocus(String),
}

impl Dialect {
    fn prefix(&self, out: &mut Vec<u8>) {
        if let Dialect::Hocuspocus(name) = self {
            write_bytes(out, name.as_bytes());
        }
    }

    pub fn sync(&self, step: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        self.prefix(&mut out);
        out.push(0);
        out.push(step);
        write_bytes(&mut out, payload);
        out
    }

    pub fn update(&self, payload: &[u8]) -> Vec<u8> {
        self.sync(2, payload)
    }

    /// What a client sends right after connecting (before SyncStep1).
    pub fn hello(&self) -> Option<Vec<u8>> {
        match self {
            Dialect::YSync => None,
            Dialect::Hocuspocus(_) => {
                let mut out = Vec::new();
                self.prefix(&mut out);
                out.push(2); // Auth
                out.push(0); // Token
                write_bytes(&mut out, b"");
                Some(out)
            }
        }
    }

    /// Parses a server message: `Some((step, payload range))` for sync messages.
    pub fn parse_sync<'a>(&self, msg: &'a [u8]) -> Option<(u8, &'a [u8])> {
        let mut at = 0;
        if let Dialect::Hocuspocus(_) = self {
            let n = read_var(msg, &mut at)? as usize;
            at += n;
        }
        let tag = read_var(msg, &mut at)?;
        // Hocuspocus answers a SyncStep1 with type 4 (SyncReply) carrying a sync message.
        if tag != 0 && tag != 4 {
            return None;
        }
        let step = read_var(msg, &mut at)? as u8;
        let len = read_var(msg, &mut at)? as usize;
        let payload = msg.get(at..at + len)?;
        Some((step, payload))
    }
}
