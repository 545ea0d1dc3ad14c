//! What a worker remembers about its object between cycles (Kopf's `ResourceMemory`).

use crate::engines::spawning::Spawned;
use crate::memo::Memo;
use crate::registry::DecodeCache;
use crate::structs::patch::PatchFn;

/// The in-memory state of one object.
#[derive(Default)]
pub(crate) struct ObjectMemory {
    /// The object's memo (a copy of the operator's at first sight).
    pub(crate) memo: Memo,
    /// First seen by a listing of this process.
    pub(crate) noticed_by_listing: bool,
    /// A changing cause finished (or had no handlers) once: no more resume handlers.
    pub(crate) fully_handled_once: bool,
    /// Transforms that conflicted (422), for the next cycle.
    pub(crate) leftover_fns: Vec<PatchFn>,
    /// The object's daemons and timers, if any.
    pub(crate) spawned: Option<Spawned>,
    /// Indexed once since the start (for the readiness barrier).
    pub(crate) indexed_once: bool,
    /// The body decoded for the handlers, while it is the same body.
    pub(crate) decoded: DecodeCache,
}

impl std::fmt::Debug for ObjectMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectMemory")
            .field("noticed_by_listing", &self.noticed_by_listing)
            .field("fully_handled_once", &self.fully_handled_once)
            .finish_non_exhaustive()
    }
}
