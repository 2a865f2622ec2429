//! The store's HTTP contract (`docs/store-api.md`) as a sans-IO client: the request for each
//! store call, and what each answer means. The relay's `HttpStore` (reqwest) and the Durable
//! Object host (`fetch`) send these requests and hand the answers back here, so that both read
//! a store's answer by the same rules ([`StoreError::of_answer`]).
//!
//! The shared secret is the sender's to add (`Authorization: Bearer <secret>`): it never passes
//! through the room.

use serde::Deserialize;
use ykeep_core::wire::{self, Precondition, SaveReceipt};
use ykeep_core::{ErrorBody, RoomName};

use crate::store::{Refusal, StoreError, StoredSnapshot, body_head};

/// One request to the store, relative to its base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    /// Starts with `/`.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

/// A store's answer, as much of it as the contract reads.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub etag: Option<&'a str>,
    /// The `X-Ykeep-Saved-At` header.
    pub saved_at: Option<&'a str>,
    pub body: &'a [u8],
}

/// A user token check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed { user_id: Option<String> },
    Denied { reason: String },
}

pub fn snapshot_path(room: &RoomName) -> String {
    format!("/snapshots/{}/{}", room.kind, room.id)
}

/// `GET` of the snapshot; with `known`, `If-None-Match` makes an unchanged one a 304.
pub fn load(room: &RoomName, known: Option<&str>) -> Request {
    let headers = known
        .map(|id| vec![("if-none-match", wire::etag(id))])
        .unwrap_or_default();
    Request {
        method: "GET",
        path: snapshot_path(room),
        headers,
        body: None,
    }
}

/// `POST` of a full state under a precondition.
pub fn save(room: &RoomName, state: Vec<u8>, precondition: &Precondition) -> Request {
    let mut headers = vec![("content-type", "application/octet-stream".to_owned())];
    match precondition {
        Precondition::IfMatch(id) => headers.push(("if-match", wire::etag(id))),
        Precondition::IfNoneMatch => headers.push(("if-none-match", "*".to_owned())),
        // No header: the store refuses (409) a state that lacks its snapshot.
        Precondition::Contains => {}
    }
    Request {
        method: "POST",
        path: snapshot_path(room),
        headers,
        body: Some(state),
    }
}

/// `POST /collaboration/verify` of a user token for a room.
pub fn verify(token: &str, room: &RoomName) -> Request {
    let body = serde_json::json!({
        "token": token,
        "kind": room.kind.as_str(),
        "id": room.id.as_str(),
    });
    Request {
        method: "POST",
        path: "/collaboration/verify".to_owned(),
        headers: vec![("content-type", "application/json".to_owned())],
        body: Some(body.to_string().into_bytes()),
    }
}

/// Any non-success answer: only the contract's `resource_deleted` code means the resource was
/// deleted; anything else (no body, an HTML page from a wrong URL, an unknown code,
/// `not_found`) is a [`Refusal`] that keeps the URL, status and body head.
pub fn error_of(method: &'static str, url: &str, status: u16, body: &[u8]) -> StoreError {
    let detail: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let refusal = Refusal {
        method,
        url: url.to_owned(),
        status,
        code: detail.as_ref().map(|b| b.error.code.clone()),
        body_head: body_head(body),
    };
    StoreError::of_answer(refusal, detail.and_then(|b| b.error.current_snapshot_id))
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The answer to [`load`]: `Ok(None)` when unchanged (304), when the row has no snapshot, or
/// when there is no row (the save that follows carries `If-None-Match: *`).
pub fn load_answer(url: &str, answer: Answer) -> Result<Option<StoredSnapshot>, StoreError> {
    if answer.status == 304 {
        return Ok(None);
    }
    if !is_success(answer.status) {
        return match error_of("GET", url, answer.status, answer.body) {
            e if e.is_nothing_to_merge() => Ok(None),
            e => Err(e),
        };
    }
    Ok(Some(StoredSnapshot {
        bytes: answer.body.to_vec(),
        snapshot_id: answer
            .etag
            .map(|t| wire::unquote_etag(t).to_owned())
            .unwrap_or_default(),
        saved_at: answer.saved_at.and_then(|v| v.trim().parse().ok()),
    }))
}

/// The answer to [`save`].
pub fn save_answer(url: &str, status: u16, body: &[u8]) -> Result<SaveReceipt, StoreError> {
    if !is_success(status) {
        return Err(error_of("POST", url, status, body));
    }
    serde_json::from_slice(body).map_err(|e| {
        StoreError::Unreachable(format!(
            "POST {url} answered {status} with no save receipt ({e}): {:?}",
            body_head(body)
        ))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReply {
    allowed: bool,
    user_id: Option<String>,
    reason: Option<String>,
}

/// The answer to [`verify`].
pub fn verify_answer(url: &str, status: u16, body: &[u8]) -> Result<Verdict, StoreError> {
    if !is_success(status) {
        return Err(error_of("POST", url, status, body));
    }
    let reply: VerifyReply = serde_json::from_slice(body).map_err(|e| {
        StoreError::Unreachable(format!(
            "POST {url} answered {status} with no verdict ({e}): {:?}",
            body_head(body)
        ))
    })?;
    Ok(if reply.allowed {
        Verdict::Allowed {
            user_id: reply.user_id,
        }
    } else {
        Verdict::Denied {
            reason: reply.reason.unwrap_or_else(|| "denied".into()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykeep_core::contract::code;

    const URL: &str = "http://store/snapshots/document/d1";

    fn answer(status: u16, body: &[u8]) -> Answer<'_> {
        Answer {
            status,
            etag: Some("W/\"s1\""),
            saved_at: Some("1700"),
            body,
        }
    }

    #[test]
    fn a_load_reads_the_snapshot_and_only_contract_absences_as_nothing() {
        let got = load_answer(URL, answer(200, b"\x00\x00")).unwrap().unwrap();
        assert_eq!(
            (got.snapshot_id.as_str(), got.saved_at, got.bytes.len()),
            ("s1", Some(1700), 2)
        );
        assert_eq!(load_answer(URL, answer(304, b"")).unwrap(), None);
        let no_row = ErrorBody::new(code::NOT_FOUND, "no row");
        let no_row = serde_json::to_vec(&no_row).unwrap();
        assert_eq!(load_answer(URL, answer(404, &no_row)).unwrap(), None);
        let deleted = serde_json::to_vec(&ErrorBody::new(code::RESOURCE_DELETED, "gone")).unwrap();
        assert_eq!(
            load_answer(URL, answer(404, &deleted)),
            Err(StoreError::Deleted)
        );
        match load_answer(URL, answer(404, b"<html>Not Found</html>")) {
            Err(StoreError::Refused(r)) => {
                assert_eq!((r.status, r.code, r.url.as_str()), (404, None, URL));
                assert_eq!(r.body_head, "<html>Not Found</html>");
            }
            other => panic!("a 404 page is no contract answer: {other:?}"),
        }
    }

    #[test]
    fn a_save_names_its_precondition_and_reads_conflicts() {
        let room = RoomName::parse("document/d1").unwrap();
        let req = save(&room, vec![1], &Precondition::IfMatch("s1".into()));
        assert_eq!(
            (req.method, req.path.as_str()),
            ("POST", "/snapshots/document/d1")
        );
        assert!(req.headers.contains(&("if-match", "\"s1\"".to_owned())));
        let req = save(&room, vec![1], &Precondition::IfNoneMatch);
        assert!(req.headers.contains(&("if-none-match", "*".to_owned())));
        let conflict =
            ErrorBody::new(code::CONFLICT, "changed").with_current_snapshot(Some("s2".into()));
        let conflict = serde_json::to_vec(&conflict).unwrap();
        assert_eq!(
            save_answer(URL, 409, &conflict),
            Err(StoreError::Conflict {
                current: Some("s2".into())
            })
        );
        assert!(matches!(
            save_answer(URL, 200, b"<html>ok</html>"),
            Err(StoreError::Unreachable(_))
        ));
    }

    #[test]
    fn a_verdict_is_read_from_the_verify_answer() {
        let allowed = br#"{"allowed":true,"userId":"u1"}"#;
        assert_eq!(
            verify_answer(URL, 200, allowed),
            Ok(Verdict::Allowed {
                user_id: Some("u1".into())
            })
        );
        let denied = br#"{"allowed":false,"reason":"wrong_resource"}"#;
        assert_eq!(
            verify_answer(URL, 200, denied),
            Ok(Verdict::Denied {
                reason: "wrong_resource".into()
            })
        );
        assert!(matches!(
            verify_answer(URL, 502, b"bad gateway"),
            Err(StoreError::Refused(_))
        ));
    }
}
