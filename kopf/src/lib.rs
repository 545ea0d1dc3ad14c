//! # kopf — the Kubernetes Operator Pythonic Framework, in Rust
//!
//! Handlers are closures; the framework hides list, watch and patch, remembers on the object
//! itself what it has handled (byte-compatible with Python Kopf's annotations), survives restarts,
//! retries failures, and never re-runs a handler whose success it has recorded.
//!
//! ```
//! use std::sync::Arc;
//! use kopf::{Body, Context, HandlerError, Operator};
//! use serde_json::json;
//!
//! fn operator() -> Operator {
//!     Operator::new()
//!         .on_create(|ex: Arc<Body>, ctx: Context| async move {
//!             ctx.info(format!("created with field={}", ex["spec"]["field"]));
//!             Ok::<_, HandlerError>(json!({"message": "hello"}))   // stored in status.create_fn
//!         })
//!         .resource("kopfexamples.kopf.dev")
//!         .id("create_fn")
//!         .on_update(|_ex: Arc<Body>, ctx: Context| async move {
//!             for change in ctx.diff() {
//!                 ctx.info(format!("{} {:?}", change.op.as_str(), change.field));
//!             }
//!             Ok::<_, HandlerError>(())
//!         })
//!         .resource("kopfexamples.kopf.dev")
//! }
//! assert!(operator().check().is_ok());
//! ```
//!
//! Typed handlers take any `kube::Resource` (`#[derive(CustomResource)]` types, k8s-openapi
//! built-ins) and need no `.resource(..)`. Run an operator with [`Operator::run`] on a
//! `kube::Client`, with [`run`] as a `kopf run`-style program, or test it with kopf-testing's
//! `KopfRunner` against an in-memory cluster on virtual time.
//!
//! ## Module map (lower layers never import higher ones)
//! `operator`, `cli`, `hierarchies` → `reactor` (running, watching, queueing, processing, inventory) → `engines`
//! (timers) → `registry`, `causation`, `context` → `execution` (handlers, progression,
//! application, posting) → `client` → `settings`, `persistence` → `structs`, `memo`, `observe` →
//! `primitives` (clock, activity, globs).

mod activities;
mod causation;
#[cfg(feature = "cli")]
mod cli;
mod client;
mod context;
mod engines;
mod error;
mod execution;
mod hierarchies;
mod login;
mod manifests;
mod memo;
mod observe;
mod operator;
mod persistence;
mod primitives;
mod rbac;
mod reactor;
mod registry;
mod settings;
mod structs;
#[cfg(feature = "webhooks")]
mod webhooks;

pub use activities::{Connect, ConnectionInfo};
pub use causation::Reason;
#[cfg(feature = "cli")]
pub use cli::{Cli, Command, FreezeArgs, PeeringTarget, ResumeArgs, run, run_with};
pub use client::{
    Api, ApiClient, BoxFuture, Error as ApiError, KubeApiClient, ObjectList, PatchBody, RawEvent,
    Result as ApiResult, Selectors, Typed,
};
pub use context::Context;
pub use engines::admission::{
    AdmissionServer, Operation, ServingWebhook, WebhookError, WebhookFn, WebhookRequest,
};
pub use engines::indexing::Index;
pub use engines::stopping::{StopReason, Stopped};
pub use error::{ErrorsMode, HandlerError, OperatorError, RegistrationError};
pub use execution::subhandlers::Subhandler;
pub use hierarchies::{
    Adoption, HierarchyError, adjust_namespace, adopt, append_owner_reference, harmonize_naming, label,
    owner_reference, remove_owner_reference,
};
pub use login::{LoginError, LoginOptions, SERVICE_ACCOUNT_DIR, login};
pub use manifests::{ManifestOptions, manifests};
pub use memo::Memo;
pub use observe::{Observation, Observer};
pub use operator::{BlockingFuture, Body, HandlerObject, HandlerOutput, HandlerReturn, Operator, blocking};
pub use persistence::{DiffBaseStorage, ProgressRecord, ProgressStorage};
pub use primitives::activity::{Activity, ActivityGuard, Counter};
pub use primitives::clock::Clock;
pub use rbac::{Permission, Rbac, RbacOptions, declared_resources, rbac};
pub use reactor::running::{Namespaces, RunOptions, RunningOperator};
pub use registry::{MetaFilter, MetaPredicate, ValueFilter, ValuePredicate, WhenArgs};
pub use settings::{
    AdmissionSettings, BackgroundSettings, ExecutionSettings, Level, LivenessSettings, NetworkingSettings,
    PeeringSettings, PersistenceSettings, PostingSettings, QueueingSettings, Settings, WatchingSettings,
};
pub use structs::diff::{Diff, DiffItem, DiffOp, diff};
pub use structs::patch::Patch;
pub use structs::references::{Resource, ResourceSelector, SelectorKey, SelectorMapping};
pub use structs::sharding::{SHARD_COUNT_VAR, SHARD_INDEX_VAR, Shard, ShardError, ShardField, shard_hash};
#[cfg(feature = "webhooks")]
pub use webhooks::WebhookServer;

/// Guides, with every code block compiled as a doc test.
pub mod guides {
    #[doc = include_str!("../docs/handlers.md")]
    pub mod handlers {}
    #[doc = include_str!("../docs/migration.md")]
    pub mod migration {}
    #[doc = include_str!("../docs/sharding.md")]
    pub mod sharding {}
    #[doc = include_str!("../docs/deployment.md")]
    pub mod deployment {}
}

/// Peering: the CRDs and objects operators peer through, and the `freeze`/`resume` commands
/// (see [`PeeringSettings`] for how operators pause in favour of each other).
pub mod peering {
    pub use crate::engines::peering::{
        PeeringCommand, PeeringError, crds, detect_own_id, freeze, object, resume,
    };
}

/// What most operators need: `use kopf::prelude::*;`.
pub mod prelude {
    pub use crate::{Body, Context, ErrorsMode, HandlerError, MetaFilter, Operator, ValueFilter};
    pub use kube::CustomResource;
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::json;
    pub use std::sync::Arc;
    pub use std::time::Duration;
}
