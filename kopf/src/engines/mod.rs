//! Background engines running beside the per-object workers: timers.

pub(crate) mod timers;
