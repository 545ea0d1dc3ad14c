//! Plain data: diffs, patches, handler ids, resource references, finalizers, shards. No I/O.

pub(crate) mod diff;
pub(crate) mod finalizers;
pub(crate) mod ids;
pub(crate) mod patch;
pub(crate) mod references;
pub(crate) mod sharding;
