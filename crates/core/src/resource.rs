//! Resource addressing: `kind` is `document`, `diagram` or `task`; `id` is 1 to 128 chars of
//! `[A-Za-z0-9_-]`; a room is `kind/id`. Anything else is refused here, before any I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::quoted::Quoted;

/// Longest accepted resource id, in bytes (ids are ASCII).
pub const MAX_ID_LEN: usize = 128;

/// Why a kind, id or room name was refused. Messages are safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("unknown kind {}: expected one of document, diagram, task", Quoted(.0))]
    UnknownKind(String),
    #[error("resource id is empty")]
    EmptyId,
    #[error("resource id is {0} characters long; the limit is {MAX_ID_LEN}")]
    IdTooLong(usize),
    #[error("resource id may only contain A-Z, a-z, 0-9, '_' and '-'")]
    IdBadChar,
    #[error("room name {} is not of the form kind/id or kind:id", Quoted(.0))]
    BadRoomName(String),
}

impl AddressError {
    /// Stable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            AddressError::UnknownKind(_) => crate::contract::code::BAD_KIND,
            _ => crate::contract::code::BAD_ID,
        }
    }
}

/// The three resource types an app edits together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Document,
    Diagram,
    Task,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 3] = [
        ResourceKind::Document,
        ResourceKind::Diagram,
        ResourceKind::Task,
    ];

    /// The name used in URLs and tokens: `document`, `diagram`, `task`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Document => "document",
            ResourceKind::Diagram => "diagram",
            ResourceKind::Task => "task",
        }
    }

    /// The store table holding rows of this kind: `documents`, `diagrams`, `tasks`.
    pub fn table(self) -> &'static str {
        match self {
            ResourceKind::Document => "documents",
            ResourceKind::Diagram => "diagrams",
            ResourceKind::Task => "tasks",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceKind {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "document" => Ok(ResourceKind::Document),
            "diagram" => Ok(ResourceKind::Diagram),
            "task" => Ok(ResourceKind::Task),
            other => Err(AddressError::UnknownKind(truncate_for_message(other))),
        }
    }
}

/// A validated resource id: 1..=128 chars of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ResourceId(String);

impl ResourceId {
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() {
            return Err(AddressError::EmptyId);
        }
        if s.len() > MAX_ID_LEN {
            return Err(AddressError::IdTooLong(s.chars().count()));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(AddressError::IdBadChar);
        }
        Ok(ResourceId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ResourceId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ResourceId {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceId::parse(s)
    }
}

/// A room: one resource, `kind/id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName {
    pub kind: ResourceKind,
    pub id: ResourceId,
}

impl RoomName {
    pub fn new(kind: ResourceKind, id: ResourceId) -> Self {
        RoomName { kind, id }
    }

    /// Parses `kind` and `id` path segments.
    pub fn from_parts(kind: &str, id: &str) -> Result<Self, AddressError> {
        Ok(RoomName {
            kind: kind.parse()?,
            id: ResourceId::parse(id)?,
        })
    }

    /// Parses `kind/id` or `kind:id` (the PartyKit default party's room form).
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let (kind, id) = s
            .split_once('/')
            .or_else(|| s.split_once(':'))
            .ok_or_else(|| AddressError::BadRoomName(truncate_for_message(s)))?;
        Self::from_parts(kind, id)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

impl FromStr for RoomName {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RoomName::parse(s)
    }
}

/// Echoing a 10 kB hostile string back in an error helps nobody.
fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in ResourceKind::ALL {
            assert_eq!(kind.as_str().parse::<ResourceKind>().unwrap(), kind);
        }
        assert_eq!(ResourceKind::Task.table(), "tasks");
        assert!(matches!(
            "Document".parse::<ResourceKind>(),
            Err(AddressError::UnknownKind(_))
        ));
    }

    #[test]
    fn ids_are_validated() {
        assert!(ResourceId::parse("abc_DEF-123").is_ok());
        assert_eq!(ResourceId::parse(""), Err(AddressError::EmptyId));
        assert_eq!(
            ResourceId::parse(&"a".repeat(129)),
            Err(AddressError::IdTooLong(129))
        );
        assert!(ResourceId::parse(&"a".repeat(128)).is_ok());
        for bad in ["../etc", "a/b", "a b", "é", "a.b", "a%2F", "a\0"] {
            assert_eq!(
                ResourceId::parse(bad),
                Err(AddressError::IdBadChar),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn room_names() {
        let room = RoomName::parse("diagram/x1").unwrap();
        assert_eq!(room.to_string(), "diagram/x1");
        assert_eq!(RoomName::parse("task:t-9").unwrap().to_string(), "task/t-9");
        assert!(matches!(
            RoomName::parse("nothing"),
            Err(AddressError::BadRoomName(_))
        ));
        assert!(RoomName::parse("document/../../x").is_err());
        let long = "x".repeat(10_000);
        let err = RoomName::parse(&long).unwrap_err().to_string();
        assert!(
            err.len() < 100,
            "error message echoes the whole input: {err}"
        );
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<ResourceId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<ResourceId>("\"no/slash\"").is_err());
    }
}
