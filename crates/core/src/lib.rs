//! ykeep-core: everything the browser client, the relay and the snapshot store share.
//!
//! No I/O lives here: no sockets, no files, no clocks. Functions take bytes and return bytes;
//! policies take events and a `now` and return actions. Everything is tested natively.
//!
//! Error messages format their values with `Display` only (strings through [`Quoted`], not
//! `{:?}`): the browser client is built with `-Zfmt-debug=none`, where every `{:?}` prints
//! nothing (`scripts/build-wasm`).

pub mod acks;
pub mod b64;
pub mod client_ids;
pub mod compaction;
pub mod contract;
pub mod error_body;
pub mod markers;
pub mod merge;
pub mod quoted;
pub mod resource;
pub mod schedule;
pub mod state_tag;
pub mod wire;

pub use contract::{CONTRACT_VERSION, ContractInfo};
pub use error_body::{ErrorBody, ErrorDetail};
pub use markers::{DurabilityMarker, MarkerError};
pub use merge::{
    MergeError, diff_update, load_full_state, merge_updates, state_vector_of, validate_update,
    validated_update,
};
pub use resource::{AddressError, ResourceId, ResourceKind, RoomName};
pub use schedule::{Action as SaveAction, Event as SaveEvent, SaveSchedule, SchedulePolicy};
pub use state_tag::{Holding, StateTag};
