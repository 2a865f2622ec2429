//! ykeep: the browser client module. Placeholder until the client issue lands.
pub use ykeep_core as core;
