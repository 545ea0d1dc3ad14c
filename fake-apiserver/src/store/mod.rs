//! Storage: immutable object versions and the change log that watches read.

pub(crate) mod history;
pub(crate) mod objects;
