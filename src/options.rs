//! Options of `new YKeep(doc, options)`, checked before any I/O.

use ykeep_core::RoomName;
use ykeep_core::quoted::Quoted;

use crate::error::KeepError;

/// Default per-source timeout of the load chain.
pub const DEFAULT_TIMEOUT_MS: u32 = 3000;
/// Default IndexedDB database name (one database per origin, rooms are keys inside it).
pub const DEFAULT_DB_NAME: &str = "ykeep";

#[derive(Debug, Clone, Default)]
pub struct RawOptions {
    pub kind: String,
    pub id: String,
    pub relay_url: Option<String>,
    pub store_url: Option<String>,
    pub token: Option<String>,
    pub timeout_ms: Option<u32>,
    pub compaction_floor_bytes: Option<u64>,
    pub db_name: Option<String>,
    /// `false` = no IndexedDB cache at all (load from the network only).
    pub indexeddb: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub room: RoomName,
    pub relay_url: Option<String>,
    pub store_url: Option<String>,
    pub token: Option<String>,
    pub timeout_ms: u32,
    pub compaction_floor_bytes: u64,
    pub db_name: String,
    pub indexeddb: bool,
}

fn base_url(name: &str, url: Option<String>) -> Result<Option<String>, KeepError> {
    match url {
        None => Ok(None),
        Some(u) if u.is_empty() => Ok(None),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            Ok(Some(u.trim_end_matches('/').to_string()))
        }
        Some(u) => Err(KeepError::Options(format!(
            "{name} must be an http(s) URL, got {}",
            Quoted(&u)
        ))),
    }
}

impl Options {
    pub fn parse(raw: RawOptions) -> Result<Options, KeepError> {
        let room = RoomName::from_parts(&raw.kind, &raw.id)?;
        let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(KeepError::Options("timeoutMs must be positive".into()));
        }
        Ok(Options {
            room,
            relay_url: base_url("relayUrl", raw.relay_url)?,
            store_url: base_url("storeUrl", raw.store_url)?,
            token: raw.token.filter(|t| !t.is_empty()),
            timeout_ms,
            compaction_floor_bytes: raw
                .compaction_floor_bytes
                .unwrap_or(ykeep_core::compaction::DEFAULT_FLOOR_BYTES),
            db_name: raw.db_name.unwrap_or_else(|| DEFAULT_DB_NAME.to_string()),
            indexeddb: raw.indexeddb.unwrap_or(true),
        })
    }

    /// `GET /rooms/{kind}/{id}/state[?sv=...]` on the relay.
    pub fn relay_state_url(&self, sv_b64: Option<&str>) -> Option<String> {
        let base = self.relay_url.as_ref()?;
        let mut url = format!("{base}/rooms/{}/{}/state", self.room.kind, self.room.id);
        if let Some(sv) = sv_b64.filter(|s| !s.is_empty()) {
            url.push_str("?sv=");
            url.push_str(sv);
        }
        Some(url)
    }

    pub fn relay_durable_url(&self) -> Option<String> {
        let base = self.relay_url.as_ref()?;
        Some(format!(
            "{base}/rooms/{}/{}/durable",
            self.room.kind, self.room.id
        ))
    }

    pub fn store_snapshot_url(&self) -> Option<String> {
        let base = self.store_url.as_ref()?;
        Some(format!(
            "{base}/snapshots/{}/{}",
            self.room.kind, self.room.id
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: &str, id: &str) -> RawOptions {
        RawOptions {
            kind: kind.into(),
            id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn urls_and_defaults() {
        let mut r = raw("document", "abc");
        r.relay_url = Some("http://127.0.0.1:9/".into());
        r.store_url = Some("https://s.example".into());
        let o = Options::parse(r).unwrap();
        assert_eq!(o.timeout_ms, 3000);
        assert_eq!(
            o.relay_state_url(Some("AQID")).unwrap(),
            "http://127.0.0.1:9/rooms/document/abc/state?sv=AQID"
        );
        assert_eq!(
            o.relay_state_url(None).unwrap(),
            "http://127.0.0.1:9/rooms/document/abc/state"
        );
        assert_eq!(
            o.relay_durable_url().unwrap(),
            "http://127.0.0.1:9/rooms/document/abc/durable"
        );
        assert_eq!(
            o.store_snapshot_url().unwrap(),
            "https://s.example/snapshots/document/abc"
        );
    }

    #[test]
    fn bad_input_is_refused_before_io() {
        assert!(Options::parse(raw("doc", "abc")).is_err());
        assert!(Options::parse(raw("document", "a/b")).is_err());
        let mut r = raw("task", "x");
        r.relay_url = Some("ws://nope".into());
        assert!(matches!(Options::parse(r), Err(KeepError::Options(_))));
    }
}
