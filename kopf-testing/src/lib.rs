//! # kopf-testing
//!
//! [`KopfRunner`] runs a whole kopf-rs operator against a fresh in-memory Kubernetes API server
//! inside one `#[tokio::test]`, on tokio's paused clock: an hour of an operator's life — creates,
//! retries, timers, restarts, faults — in milliseconds, the same every run.
//!
//! ```
//! use std::sync::Arc;
//! use kopf::{Body, Context, HandlerError, Operator};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kopf_testing::KopfRunner;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let operator = Operator::new().on_create(|_cm: Arc<ConfigMap>, _ctx: Context| async move {
//!     Ok::<_, HandlerError>(json!({"message": "hello"}))
//! }).id("create_fn");
//! let runner = KopfRunner::new(operator).start().await;
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! runner.cluster().create(cm).await;
//! runner.settle().await;                                    // no sleeps: exact quiescence
//! let cm: ConfigMap = runner.cluster().get("settings").await;
//! assert!(cm.metadata.annotations.unwrap().contains_key("kopf.zalando.org/last-handled-configuration"));
//! # }
//! ```
//!
//! - [`Runner::settle`] returns when nothing is left to do at the current virtual instant;
//!   [`Runner::advance`] lets time pass with every timer and retry firing in order;
//!   [`Runner::wait_for`] waits for a condition on virtual time.
//! - [`Runner::restart`] and [`Runner::crash`] stop the operator gracefully or abruptly and start it
//!   again on the same cluster; [`Runner::spawn_operator`] runs more operators (replicas, peers) on
//!   it, each with an [`OperatorHandle`] to stop, crash and start it.
//! - Admission handlers are served to the fake in process ([`InProcessWebhookServer`]): with
//!   `settings.admission.managed` set, the fake calls them on writes, on virtual time.
//! - Faults come from the fake's plan ([`FaultRule`], [`RandomFaults`]); the [`Timeline`] records what
//!   happened and is printed when a test fails.

/// Guides, with every code block compiled as a doc test.
pub mod guides {
    #[doc = include_str!("../docs/testing.md")]
    pub mod testing {}
    #[doc = include_str!("../docs/virtual-time.md")]
    pub mod virtual_time {}
    #[doc = include_str!("../docs/faults.md")]
    pub mod faults {}
}

mod adapter;
mod cluster;
mod operators;
mod rbac;
mod report;
mod runner;
mod timeline;
mod webhooks;

pub use adapter::DirectApiClient;
pub use cluster::{TestCluster, TestObject};
pub use fake_apiserver::{Fault, FaultRule, RandomFaults, Verb};
pub use operators::OperatorHandle;
pub use report::{Report, Runs};
pub use runner::{Adapter, KopfRunner, OPERATOR_IDENTITY, Runner, SETTLE_LIMIT, WaitTimeout};
pub use timeline::{Entry, Timeline};
pub use webhooks::{IN_PROCESS_WEBHOOK_URL, InProcessWebhookServer};
