//! Async building blocks with no knowledge of Kubernetes: the virtual-time-safe clock.

pub(crate) mod activity;
pub(crate) mod clock;
pub(crate) mod globs;
pub(crate) mod metrics;
pub(crate) mod tasks;
pub(crate) mod toggles;
