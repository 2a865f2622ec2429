//! A minimal WebSocket reader on a raw TCP socket: the handshake, masked client frames, and
//! unmasked server frames parsed straight out of large reads. The readers cost next to nothing
//! per message, so 50 of them on this 2-core machine measure the relay, not the readers.

use std::time::Instant;

use std::net::Ipv4Addr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::net::{TcpSocket, TcpStream};

pub struct RawWs {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    /// A fragmented message so far (RFC 6455 5.4: the relay sends large ones in fragments).
    partial: Option<Vec<u8>>,
}

impl RawWs {
    pub async fn connect(url: &str) -> std::io::Result<RawWs> {
        Self::connect_from(url, None).await
    }

    /// [`RawWs::connect`] from the loopback address `source` (one source address runs out of
    /// ephemeral ports near 28,000 connections to one server port).
    pub async fn connect_from(url: &str, source: Option<Ipv4Addr>) -> std::io::Result<RawWs> {
        let rest = url.strip_prefix("ws://").unwrap_or(url);
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut sock = match source {
            None => TcpStream::connect(host).await?,
            Some(ip) => {
                let to: std::net::SocketAddr = host.parse().map_err(std::io::Error::other)?;
                let socket = TcpSocket::new_v4()?;
                socket.bind((ip, 0).into())?;
                socket.connect(to).await?
            }
        };
        sock.set_nodelay(true)?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        sock.write_all(req.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1 << 16);
        loop {
            let mut chunk = [0u8; 4096];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other("closed during handshake"));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                if !head.starts_with("HTTP/1.1 101") {
                    return Err(std::io::Error::other(format!("handshake refused: {head}")));
                }
                buf.drain(..end + 4);
                return Ok(RawWs {
                    sock,
                    buf,
                    start: 0,
                    partial: None,
                });
            }
        }
    }

    /// Sends one binary frame (masked with a zero key, so the payload is written as is).
    pub async fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.send_op(0x82, payload).await
    }

    async fn send_op(&mut self, first: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 14);
        out.push(first);
        let n = payload.len();
        if n < 126 {
            out.push(0x80 | n as u8);
        } else if n < 65536 {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(payload);
        self.sock.write_all(&out).await
    }

    /// Reads what the socket has (at least one byte) and calls `f(payload, now)` for every
    /// complete binary/text data frame. Returns false when the socket closed.
    pub async fn read_some<F: FnMut(&[u8], Instant)>(&mut self, mut f: F) -> std::io::Result<bool> {
        if self.start > 0 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < 1 << 16 {
            self.buf.reserve(1 << 16);
        }
        // read_buf appends into spare capacity: cancel-safe.
        let n = self.sock.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Ok(false);
        }
        let now = Instant::now();
        let mut pings: Vec<Vec<u8>> = Vec::new();
        loop {
            let b = &self.buf[self.start..];
            if b.len() < 2 {
                break;
            }
            let op = b[0] & 0x0f;
            let masked = b[1] & 0x80 != 0;
            let (plen, mut at) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 10 => (
                    u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                l => (l as usize, 2),
            };
            if masked {
                at += 4;
            }
            if b.len() < at + plen {
                break;
            }
            if op == 8 {
                return Ok(false);
            }
            let fin = b[0] & 0x80 != 0;
            let payload = &b[at..at + plen];
            if (op == 1 || op == 2) && fin {
                f(payload, now);
            } else if op == 1 || op == 2 {
                self.partial = Some(payload.to_vec());
            } else if op == 0 {
                let whole = self.partial.get_or_insert_with(Vec::new);
                whole.extend_from_slice(payload);
                if fin {
                    let whole = self.partial.take().unwrap_or_default();
                    f(&whole, now);
                }
            } else if op == 9 {
                pings.push(b[at..at + plen].to_vec());
            }
            self.start += at + plen;
        }
        for p in pings {
            self.send_op(0x8a, &p).await?;
        }
        Ok(true)
    }
}
