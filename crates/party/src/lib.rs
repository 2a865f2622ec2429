//! ykeep-party: the ykeep room for a Cloudflare Durable Object.
//!
//! This crate is [`ykeep_room`] compiled to wasm32 for workerd, with what a Durable Object host
//! needs beside it: its settings from env bindings ([`config`]), its URL shapes and HTTP answers
//! ([`routes`]), the store's HTTP contract ([`ykeep_room::store_http`]) and the token rules
//! ([`ykeep_room::access`]). The TypeScript host in `party/` does the I/O and nothing else:
//! sockets, Durable Object storage, alarms and `fetch`. No rule of the room is written twice.
//!
//! The JavaScript API (wasm-bindgen) is in [`js`].

pub mod config;
mod console;
pub mod js;
pub mod routes;

pub use config::{Settings, SettingsError};
pub use routes::{HttpReply, Route, route};
