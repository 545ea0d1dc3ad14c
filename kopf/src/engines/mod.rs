//! Background engines running beside the per-object workers: daemons and timers (spawned per
//! object by `spawning`), their stop flags, and the bridge that runs blocking daemons on the
//! operator's clock.

pub(crate) mod admission;
pub(crate) mod bridge;
pub(crate) mod daemons;
pub(crate) mod indexing;
pub(crate) mod peering;
pub(crate) mod probing;
pub(crate) mod spawning;
pub(crate) mod stopping;
pub(crate) mod timers;
