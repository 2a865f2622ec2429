//! The durability view: is what this browser holds also on the relay / in the store?
//!
//! Compared as Yjs snapshots (state vector + delete set) through `DurabilityMarker::covers`:
//! a state vector alone would call a delete-only edit durable before it is.

use ykeep_core::DurabilityMarker;
use ykeep_core::wire::DurableBody;

use crate::error::KeepError;

/// What `keep.durability()` resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct DurabilityView {
    /// Everything the page handed over is written to IndexedDB.
    pub local: bool,
    /// The relay's durable log covers this browser's state (None = relay not asked / down).
    pub relay: Option<bool>,
    /// The store's snapshot covers this browser's state.
    pub store: Option<bool>,
    pub store_snapshot_id: Option<String>,
    /// Milliseconds since the Unix epoch of the store's last confirmed save.
    pub saved_at: Option<i64>,
    /// Local edits not yet covered by any remote marker.
    pub pending_updates: usize,
    pub pending_bytes: usize,
    pub error: Option<String>,
}

/// The relay's `/durable` answer (`ykeep_core::wire::DurableBody`) with its markers decoded.
pub struct ParsedDurable {
    pub relay: DurabilityMarker,
    pub store: Option<DurabilityMarker>,
    pub store_snapshot_id: Option<String>,
    pub saved_at: Option<i64>,
}

/// The relay refused or garbled its `/durable` answer: `why` says how.
pub fn bad_durable(why: impl std::fmt::Display) -> KeepError {
    KeepError::Source {
        source_name: "relay",
        message: format!("bad /durable JSON: {why}"),
    }
}

/// Decodes the markers of the relay's `/durable` answer. The JSON itself is parsed by the
/// browser (`JSON.parse`, in the engine): the client module carries no JSON parser of its own.
pub fn parse_durable(body: DurableBody) -> Result<ParsedDurable, KeepError> {
    let decode = |m: Option<String>| -> Result<Option<DurabilityMarker>, KeepError> {
        m.map(|s| DurabilityMarker::from_base64(&s))
            .transpose()
            .map_err(Into::into)
    };
    Ok(ParsedDurable {
        relay: DurabilityMarker::from_base64(&body.relay)?,
        store: decode(body.store)?,
        store_snapshot_id: body.store_snapshot_id,
        saved_at: body.saved_at,
    })
}

/// The best marker of the two (the one covering the other; the relay's when neither does).
pub fn best_marker(p: &ParsedDurable) -> &DurabilityMarker {
    match &p.store {
        Some(s) if s.covers(&p.relay) && !p.relay.covers(s) => s,
        _ => &p.relay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Text, Transact};

    /// The relay's body as the engine reads it: JSON into the wire struct, then its markers.
    fn parse(json: &str) -> Result<ParsedDurable, KeepError> {
        parse_durable(serde_json::from_str(json).map_err(bad_durable)?)
    }

    #[test]
    fn parses_the_relay_body_and_compares_snapshots() {
        let d = Doc::with_client_id(1);
        d.get_or_insert_text("t")
            .insert(&mut d.transact_mut(), 0, "abc");
        let early = DurabilityMarker::of_txn(&d.transact());
        d.get_or_insert_text("t")
            .remove_range(&mut d.transact_mut(), 0, 1);
        let late = DurabilityMarker::of_txn(&d.transact());
        let json = format!(
            r#"{{"relay":"{}","store":"{}","storeSnapshotId":"s1","savedAt":5}}"#,
            late.to_base64(),
            early.to_base64()
        );
        let p = parse(&json).unwrap();
        assert_eq!(best_marker(&p), &late);
        assert!(p.relay.covers(&late));
        assert!(!p.store.as_ref().unwrap().covers(&late));
        assert_eq!(p.saved_at, Some(5));
        // The store's marker wins when it covers the relay's (the relay restarted empty).
        let json = format!(
            r#"{{"relay":"{}","store":"{}","storeSnapshotId":"s1","savedAt":5}}"#,
            early.to_base64(),
            late.to_base64()
        );
        assert_eq!(best_marker(&parse(&json).unwrap()), &late);
        let nothing_saved = format!(
            r#"{{"relay":"{}","store":null,"storeSnapshotId":null,"savedAt":null}}"#,
            early.to_base64()
        );
        let none = parse(&nothing_saved).unwrap();
        assert_eq!(best_marker(&none), &early);
        assert!(none.store.is_none() && none.saved_at.is_none());
        assert!(parse("{").is_err());
        assert!(parse(r#"{"relay":"%%"}"#).is_err());
        // The relay always sends its marker (wire::DurableBody); a body without one is refused.
        assert!(
            parse(r#"{"relay":null,"store":null,"storeSnapshotId":null,"savedAt":null}"#).is_err()
        );
    }
}
