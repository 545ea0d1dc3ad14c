//! Where kopf keeps its memory on the object itself, byte-compatible with Kopf: handler progress
//! records in annotations (`kopf.zalando.org/<handler-id>`), the diff-base ("essence") in
//! `kopf.zalando.org/last-handled-configuration`, and the naming conventions behind the keys.

pub(crate) mod conventions;
pub(crate) mod diffbase;
pub(crate) mod progress;
pub(crate) mod pyjson;

pub use diffbase::DiffBaseStorage;
pub use progress::{ProgressRecord, ProgressStorage};
