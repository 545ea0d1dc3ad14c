//! The reactor: watch streams per resource and namespace (`watching`), per-object workers
//! (`queueing`), one processing cycle per event (`processing`), the objects' memory (`inventory`),
//! and starting and stopping it all (`running`).

pub(crate) mod inventory;
pub(crate) mod processing;
pub(crate) mod queueing;
pub(crate) mod running;
pub(crate) mod watching;
