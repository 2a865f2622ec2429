//! The host's settings, read from the Durable Object's env bindings under the relay's names
//! (`docs/party.md` lists them). A bad value is an error that names the binding; a missing one
//! takes the relay's default.

use ykeep_core::SchedulePolicy;
use ykeep_room::RoomConfig;

use ykeep_room::defaults;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `YKEEP_STORE_URL`, without a trailing slash.
    pub store_url: String,
    /// `YKEEP_SECRET`: the store's shared secret.
    pub secret: String,
    /// `YKEEP_DEV_ALLOW_ALL`: no token check (development only; logged at every start).
    pub allow_all: bool,
    pub room: RoomConfig,
    pub store_timeout_ms: u64,
    pub auth_cache_ms: u64,
    pub max_frame_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "{0} is not set: the Durable Object needs it (see the wrangler.toml example in party/)"
    )]
    Missing(&'static str),
    #[error("{name}={value:?} is not {what}")]
    Invalid {
        name: &'static str,
        value: String,
        what: &'static str,
    },
}

impl Settings {
    /// `get(name)` is the binding's value, if set.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let text = |name: &'static str| get(name).filter(|v| !v.trim().is_empty());
        let number = |name: &'static str, default: u64| -> Result<u64, SettingsError> {
            match text(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| SettingsError::Invalid {
                    name,
                    value: v,
                    what: "a whole number",
                }),
            }
        };
        let allow_all = match text("YKEEP_DEV_ALLOW_ALL").as_deref().map(str::trim) {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => {
                return Err(SettingsError::Invalid {
                    name: "YKEEP_DEV_ALLOW_ALL",
                    value: other.to_owned(),
                    what: "true, false, 1 or 0",
                });
            }
        };
        let store_url = text("YKEEP_STORE_URL").ok_or(SettingsError::Missing("YKEEP_STORE_URL"))?;
        let store_url = store_url.trim().trim_end_matches('/').to_owned();
        if !(store_url.starts_with("http://") || store_url.starts_with("https://")) {
            return Err(SettingsError::Invalid {
                name: "YKEEP_STORE_URL",
                value: store_url,
                what: "an http:// or https:// URL",
            });
        }
        let secret = text("YKEEP_SECRET").ok_or(SettingsError::Missing("YKEEP_SECRET"))?;
        let policy = SchedulePolicy {
            save_interval_ms: number(
                "YKEEP_SAVE_INTERVAL_MS",
                SchedulePolicy::DEFAULT.save_interval_ms,
            )?,
            debounce_ms: number(
                "YKEEP_SAVE_DEBOUNCE_MS",
                SchedulePolicy::DEFAULT.debounce_ms,
            )?,
        };
        Ok(Settings {
            store_url,
            secret,
            allow_all,
            room: RoomConfig {
                policy,
                poll_every_ms: number("YKEEP_STORE_POLL_MS", defaults::STORE_POLL_MS)?,
                max_snapshot_bytes: number(
                    "YKEEP_MAX_SNAPSHOT_BYTES",
                    defaults::MAX_SNAPSHOT_BYTES as u64,
                )? as usize,
            },
            store_timeout_ms: number("YKEEP_STORE_TIMEOUT_MS", defaults::STORE_TIMEOUT_MS)?,
            auth_cache_ms: number("YKEEP_AUTH_CACHE_MS", defaults::AUTH_CACHE_MS)?,
            max_frame_bytes: number("YKEEP_MAX_FRAME_BYTES", defaults::MAX_FRAME_BYTES as u64)?
                as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env(|k| env.get(k).cloned())
    }

    #[test]
    fn bindings_take_the_relays_names_and_defaults() {
        let base = [
            ("YKEEP_STORE_URL", "http://127.0.0.1:9/"),
            ("YKEEP_SECRET", "s"),
        ];
        let s = settings(&base).unwrap();
        assert_eq!(s.store_url, "http://127.0.0.1:9");
        assert_eq!(s.room.policy, SchedulePolicy::DEFAULT);
        assert!(!s.allow_all);
        let mut with = base.to_vec();
        with.extend([
            ("YKEEP_SAVE_DEBOUNCE_MS", "5000"),
            ("YKEEP_DEV_ALLOW_ALL", "true"),
        ]);
        let s = settings(&with).unwrap();
        assert_eq!((s.room.policy.debounce_ms, s.allow_all), (5000, true));
    }

    #[test]
    fn a_bad_binding_is_named() {
        assert_eq!(
            settings(&[("YKEEP_SECRET", "s")]),
            Err(SettingsError::Missing("YKEEP_STORE_URL"))
        );
        let err = settings(&[
            ("YKEEP_STORE_URL", "http://x"),
            ("YKEEP_SECRET", "s"),
            ("YKEEP_SAVE_INTERVAL_MS", "30s"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "YKEEP_SAVE_INTERVAL_MS=\"30s\" is not a whole number"
        );
        assert!(settings(&[("YKEEP_STORE_URL", "store.example"), ("YKEEP_SECRET", "s")]).is_err());
    }
}
