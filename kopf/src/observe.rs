//! Observations: what the reactor did, reported as it happens to an optional [`Observer`] — watch
//! events, causes, handler outcomes, patches, Events posted. kopf-testing builds its timeline from
//! them; production operators can use them for metrics.

use serde_json::Value;

use crate::causation::Reason;

/// One thing the operator did or saw.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Observation {
    /// A watch event (or a listed object, with `event` = `LISTED`) reached the object's worker.
    WatchEvent {
        /// `plural.group`.
        resource: String,
        /// `LISTED`, `ADDED`, `MODIFIED` or `DELETED`.
        event: &'static str,
        /// Namespace, empty if cluster-scoped.
        namespace: String,
        /// Name.
        name: String,
        /// The object's resourceVersion.
        resource_version: String,
    },
    /// A changing cause was detected and has handlers to run.
    Cause {
        /// `plural.group`.
        resource: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The reason.
        reason: Reason,
    },
    /// A handler ran once.
    Handler {
        /// Handler id.
        id: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The attempt number (0 for the first).
        retry: u32,
        /// `success`, `temporary(…): message`, `permanent: message`.
        outcome: String,
    },
    /// A patch was sent.
    Patch {
        /// `plural.group`.
        resource: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// `status` for the status subresource.
        subresource: Option<&'static str>,
        /// The patch as sent (merge patch object or JSON-patch array).
        body: Value,
    },
    /// A step of a daemon's life: `stopping`, `still running` (cancellation polling), `cancelled`,
    /// `abandoned`, `exited` (ended by itself).
    Daemon {
        /// Handler id.
        id: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What happened.
        what: &'static str,
    },
    /// A list asked for a shard (`settings.watching.shard_selectors`) came back without
    /// `metadata.shardInfo`: the API server ignored the selector (no `ShardedListAndWatch`
    /// feature gate), so this operator gets every object, not only its shard's.
    Unsharded {
        /// `plural.group`.
        resource: String,
        /// The namespace listed, empty if cluster-wide.
        namespace: String,
        /// The selector sent.
        selector: String,
    },
    /// A peering object paused or resumed the operator.
    Peering {
        /// `name@namespace` (`name@` for the cluster-wide peering), or why the operator waits for
        /// the peering to exist.
        peering: String,
        /// Paused (true) or resumed.
        paused: bool,
        /// Why: the blocking peers, or that there are none.
        message: String,
    },
}

/// Receives observations. Implementations must be quick and must not block.
pub trait Observer: Send + Sync + 'static {
    /// Called for each observation, in order.
    fn observe(&self, observation: Observation);
}
