//! The store's answers as a room hears them, whichever host asked over whichever transport.

use ykeep_core::DurabilityMarker;

/// A snapshot as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub bytes: Vec<u8>,
    pub snapshot_id: String,
    pub saved_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store says the resource was deleted through the contract: its error body carries
    /// the code `resource_deleted`. The only answer on which a room lets go of its log (into
    /// the host's quarantine, not into nothing).
    #[error("the store says this resource was deleted (resource_deleted)")]
    Deleted,
    /// The precondition failed.
    #[error("the store's snapshot changed (now {current:?})")]
    Conflict { current: Option<String> },
    #[error("the store refused the snapshot as too large")]
    TooLarge,
    #[error("the store is unreachable: {0}")]
    Unreachable(String),
    /// Any other non-success answer, `not_found` and every 404 without the contract's
    /// `resource_deleted` among them (a wrong URL, host or id looks exactly like this).
    #[error(transparent)]
    Refused(Refusal),
}

/// A non-success answer of the store, as much of it as a log line needs to find the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {url} answered {status}{}: {body_head:?}", code_part(.code))]
pub struct Refusal {
    pub method: &'static str,
    pub url: String,
    pub status: u16,
    /// The contract's `error.code`, when the body is the contract's JSON error.
    pub code: Option<String>,
    /// The first bytes of the body, as text (see [`body_head`]).
    pub body_head: String,
}

impl StoreError {
    /// The rule for every non-success answer of the store, whichever transport carried it:
    /// only a 404 whose contract code is `resource_deleted` is a deletion; a 409 with a contract
    /// code is a conflict (`current`: the snapshot id it names); a 413 is "too large"; anything
    /// else is refused (a wrong URL, host or id looks exactly like a `not_found`).
    pub fn of_answer(refusal: Refusal, current: Option<String>) -> StoreError {
        use ykeep_core::contract::code;
        match (refusal.status, refusal.code.as_deref()) {
            (404, Some(code::RESOURCE_DELETED)) => StoreError::Deleted,
            (409, Some(_)) => StoreError::Conflict { current },
            (413, _) => StoreError::TooLarge,
            _ => StoreError::Refused(refusal),
        }
    }

    /// On a load: the row has no snapshot yet, or there is no row with that id. Either way
    /// there is nothing to merge, and the save that follows carries `If-None-Match: *`, so it
    /// can never replace a snapshot it did not see.
    pub fn is_nothing_to_merge(&self) -> bool {
        matches!(self, StoreError::Refused(r)
            if r.is_unknown_id() || r.code.as_deref() == Some(ykeep_core::contract::code::NO_SNAPSHOT))
    }
}

impl Refusal {
    /// A 404 whose body is the contract's own `not_found`: the store has no row with that id.
    pub fn is_unknown_id(&self) -> bool {
        self.status == 404 && self.code.as_deref() == Some(ykeep_core::contract::code::NOT_FOUND)
    }
}

fn code_part(code: &Option<String>) -> String {
    match code {
        Some(code) => format!(" {code}"),
        None => " (no contract error code)".into(),
    }
}

/// How many bytes of a refused answer go into the log.
pub const BODY_HEAD_BYTES: usize = 160;

/// The first [`BODY_HEAD_BYTES`] of a body as one line of text (invalid UTF-8 replaced,
/// whitespace runs collapsed), for log lines and start-up errors.
pub fn body_head(body: &[u8]) -> String {
    let head = &body[..body.len().min(BODY_HEAD_BYTES)];
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !c.is_control()));
    }
    if body.len() > BODY_HEAD_BYTES {
        out.push('…');
    }
    out
}

/// What a room knows about the store's copy of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreView {
    /// Not heard from the store since the room opened (it was down at cold start): the next
    /// save fetches and merges its snapshot first. The fields are what the log last recorded.
    Unheard(Held),
    /// The room's doc holds the store's current snapshot (or the store has none).
    Synced(Held),
    /// The last save had to include store content the room's doc cannot take: the next save
    /// fetches and merges the store's snapshot again rather than replace it.
    Unmergeable(Held),
}

/// The store snapshot a room last knew of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Held {
    pub snapshot_id: Option<String>,
    pub marker: Option<Vec<u8>>,
    pub saved_at: Option<i64>,
}

impl Held {
    pub fn of(snapshot: &StoredSnapshot) -> Self {
        Held {
            snapshot_id: Some(snapshot.snapshot_id.clone()),
            marker: DurabilityMarker::of_update(&snapshot.bytes)
                .ok()
                .map(|m| m.encode()),
            saved_at: snapshot.saved_at,
        }
    }
}

impl StoreView {
    pub fn held(&self) -> &Held {
        match self {
            StoreView::Unheard(h) | StoreView::Synced(h) | StoreView::Unmergeable(h) => h,
        }
    }

    /// The next save must fetch and merge the store's snapshot before it may replace it.
    pub fn must_fetch(&self) -> bool {
        !matches!(self, StoreView::Synced(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykeep_core::contract::code;

    fn answer(status: u16, code: Option<&str>) -> StoreError {
        let refusal = Refusal {
            method: "POST",
            url: "http://store/snapshots/document/d1".into(),
            status,
            code: code.map(str::to_owned),
            body_head: String::new(),
        };
        StoreError::of_answer(refusal, Some("s2".into()))
    }

    #[test]
    fn only_resource_deleted_is_a_deletion() {
        assert_eq!(
            answer(404, Some(code::RESOURCE_DELETED)),
            StoreError::Deleted
        );
        for other in [
            answer(404, Some(code::NOT_FOUND)),
            answer(404, None),
            answer(410, Some(code::RESOURCE_DELETED)),
            answer(500, Some(code::RESOURCE_DELETED)),
        ] {
            assert!(matches!(other, StoreError::Refused(_)), "{other:?}");
        }
        assert_eq!(
            answer(409, Some(code::CONFLICT)),
            StoreError::Conflict {
                current: Some("s2".into())
            }
        );
        assert!(
            matches!(answer(409, None), StoreError::Refused(_)),
            "a 409 page from a proxy is no contract conflict"
        );
        assert_eq!(answer(413, None), StoreError::TooLarge);
        assert!(answer(404, Some(code::NOT_FOUND)).is_nothing_to_merge());
        assert!(answer(404, Some(code::NO_SNAPSHOT)).is_nothing_to_merge());
        assert!(!answer(404, None).is_nothing_to_merge());
        assert!(!answer(503, Some(code::SNAPSHOT_UNAVAILABLE)).is_nothing_to_merge());
    }
}
