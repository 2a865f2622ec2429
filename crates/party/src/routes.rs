//! The URL shapes a party host answers, and its HTTP answers (the relay's, byte for byte).
//!
//! Every shape names one room, and the host addresses one Durable Object per room by its
//! canonical name (`kind/id`), so the stock providers' two URL forms can never become two
//! objects for one room:
//! - `/parties/{kind}/{id}` (y-partykit / y-partyserver with `party: kind`);
//! - `/parties/main/{kind}:{id}` (y-partykit's default party);
//! - `/rooms/{kind}/{id}` (y-websocket with `serverUrl = …/rooms/{kind}`, and the client module);
//! - `/rooms/{kind}/{id}/state` and `/rooms/{kind}/{id}/durable`.

use ykeep_core::contract::code;
use ykeep_core::{AddressError, ErrorBody, RoomName, StateTag};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A WebSocket of the room.
    Socket(RoomName),
    /// `GET /state[?sv=]`: the live room's state, or what the holder of `sv` lacks.
    State(RoomName),
    /// `GET /durable`: what the room's log holds and what the store confirmed.
    Durable(RoomName),
}

impl Route {
    pub fn room(&self) -> &RoomName {
        match self {
            Route::Socket(r) | Route::State(r) | Route::Durable(r) => r,
        }
    }
}

/// `Ok(None)`: not a path of ours (the app's own routes answer it).
pub fn route(path: &str) -> Result<Option<Route>, AddressError> {
    let parts: Vec<String> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(Some(match parts.as_slice() {
        ["parties", "main", room] => Route::Socket(RoomName::parse(room)?),
        ["parties", kind, id] => Route::Socket(RoomName::from_parts(kind, id)?),
        ["rooms", kind, id] => Route::Socket(RoomName::from_parts(kind, id)?),
        ["rooms", kind, id, "state"] => Route::State(RoomName::from_parts(kind, id)?),
        ["rooms", kind, id, "durable"] => Route::Durable(RoomName::from_parts(kind, id)?),
        _ => return Ok(None),
    }))
}

/// `%XX` escapes of one path segment (invalid ones are kept as they are).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP answer, for the host to send as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The `ETag` header, when the reply has one.
    pub etag: Option<String>,
}

impl HttpReply {
    pub fn bytes(body: Vec<u8>) -> Self {
        HttpReply {
            status: 200,
            content_type: "application/octet-stream",
            body,
            etag: None,
        }
    }

    pub fn json(status: u16, body: &impl serde::Serialize) -> Self {
        HttpReply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(body).unwrap_or_default(),
            etag: None,
        }
    }

    /// `304`: the asker holds the state with this tag already.
    pub fn not_modified(tag: &StateTag) -> Self {
        HttpReply {
            status: 304,
            content_type: "application/octet-stream",
            body: Vec::new(),
            etag: Some(tag.etag()),
        }
    }

    /// The contract's error shape.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::json(status, &ErrorBody::new(code, message))
    }

    pub fn bad_address(e: &AddressError) -> Self {
        Self::error(400, e.code(), e.to_string())
    }

    /// The room is not open on this host (the relay's answer too): the client's load chain
    /// goes on to the store.
    pub fn not_live() -> Self {
        Self::error(404, code::NOT_LIVE, "the room is not live on this relay")
    }

    pub fn bad_state_vector(detail: &str) -> Self {
        Self::error(
            400,
            code::BAD_STATE_VECTOR,
            format!("bad state vector: {detail}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(path: &str) -> String {
        route(path).unwrap().unwrap().room().to_string()
    }

    #[test]
    fn every_url_shape_names_the_same_room() {
        for path in [
            "/parties/document/d1",
            "/parties/main/document:d1",
            "/parties/main/document%3Ad1",
            "/rooms/document/d1",
            "/rooms/document/d1/",
            "/rooms/document/d1/state",
            "/rooms/document/d1/durable",
        ] {
            assert_eq!(room(path), "document/d1", "{path}");
        }
        assert!(matches!(
            route("/rooms/task/t/state"),
            Ok(Some(Route::State(_)))
        ));
        assert!(matches!(
            route("/rooms/task/t/durable"),
            Ok(Some(Route::Durable(_)))
        ));
        assert!(matches!(
            route("/parties/task/t"),
            Ok(Some(Route::Socket(_)))
        ));
    }

    #[test]
    fn other_paths_are_the_apps_and_bad_rooms_are_refused() {
        assert_eq!(route("/"), Ok(None));
        assert_eq!(route("/api/me"), Ok(None));
        assert_eq!(route("/rooms/document/d1/other"), Ok(None));
        assert!(matches!(
            route("/rooms/spreadsheet/x"),
            Err(AddressError::UnknownKind(_))
        ));
        assert!(route("/parties/main/no-kind").is_err());
    }
}
