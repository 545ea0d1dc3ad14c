//! # A fake cluster that behaves like a live one
//!
//! The fake API server stores what clients write; a real cluster also *acts* on it: the scheduler
//! places Pods, kubelets run them, Deployments roll out, Jobs complete, Services get endpoints.
//! With [`crate::Builder::live`] the fake does that too — the control plane of DESIGN.md §3 layer 4
//! — deterministically and on the fake's clock, so under a paused tokio clock a test of "the
//! operator waits for its Deployment to roll out" takes milliseconds and repeats exactly.
//!
//! ```
//! use std::time::Duration;
//! use fake_apiserver::FakeApiServer;
//! use fake_apiserver::live::LiveCluster;
//! use k8s_openapi::api::core::v1::Pod;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), fake_apiserver::ApiError> {
//! let server = FakeApiServer::builder().live(LiveCluster::new()).build();
//! let pods = server.cluster().api::<Pod>(Some("default"));
//! let pod: Pod = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "web"},
//!     "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
//! })).unwrap();
//! pods.create(&pod).await?;
//! tokio::time::sleep(Duration::from_secs(2)).await;      // virtual: the container starts after 1 s
//! let pod = pods.get("web").await?;
//! let status = pod.status.unwrap();
//! assert_eq!(status.phase.as_deref(), Some("Running"));
//! assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("node-1"));
//! assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.2"));
//! # Ok(()) }
//! ```
//!
//! What it is made of:
//! - [`bootstrap`](self) — a fresh cluster's objects: system namespaces, the `kubernetes`
//!   Service and EndpointSlice, the bootstrap RBAC roles (`cluster-admin`, `admin`, `edit`, `view`,
//!   `system:*`), PriorityClasses, the default StorageClass, Nodes with their Leases.
//! - The controllers ([`Controller`]), each a small loop reacting to the fake's own watch events
//!   and clock, each switchable: the scheduler; Deployment, ReplicaSet, StatefulSet, DaemonSet, Job
//!   and CronJob controllers; EndpointSlices; the ServiceAccount and root-CA publishers; the volume
//!   binder; the node lifecycle controller.
//! - The simulated kubelets: Pod lifecycles with declared container behaviour ([`Rule`],
//!   [`Behaviour`], and `fake.kopf.dev/*` annotations), Node status and Lease renewals, Nodes made
//!   NotReady or stopped ([`NodeHealth`]).
//!
//! All of it runs in one task (`manager`), a client of the core like any other: it lists and
//! watches through [`crate::Cluster::handle`] and writes through it, journaled under each
//! controller's name. [`ControlPlane`] counts its pending work so kopf-testing's `settle()` stays
//! exact, and exposes its next deadline so `advance()` fires kubelet delays, back-offs and CronJob
//! schedules in order.

mod behaviour;
mod bootstrap;
mod config;
mod control;
mod cron;
mod cronjob;
mod daemonset;
mod deployment;
mod endpointslice;
mod job;
mod kubelet;
mod manager;
mod nodes;
mod publishers;
mod quantity;
pub(crate) mod rbac;
mod replicaset;
mod scheduler;
mod selector;
mod statefulset;
mod templates;
mod volumes;
mod world;

use std::sync::Arc;

pub use behaviour::{
    ANNOTATION_PREFIX, Behaviour, DEFAULT_START_DELAY, Pull, Readiness, Rule, RuleMatch, RulesError, Run,
    parse_duration,
};
pub use bootstrap::{KUBERNETES_SERVICE_IP, SYSTEM_NAMESPACES};
pub use config::{Controller, LiveCluster, NodeTemplate, UnknownController};
pub use control::{ControlPlane, NODE_HEALTH_ANNOTATION, NodeHealth};
pub use cron::{CronError, Schedule};
pub use job::TRACKING_FINALIZER;
pub use publishers::ROOT_CA_CONFIGMAP;
pub use volumes::DEFAULT_STORAGE_CLASS;

use crate::cluster::Cluster;
use manager::{Manager, Reconciler};

/// A running control plane, owned by the [`crate::FakeApiServer`]s that share it: the task stops
/// when the last of them goes.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) control: ControlPlane,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes the bootstrap objects and starts the controllers. Must run inside the tokio runtime
/// whose clock the cluster follows.
pub(crate) fn start(cluster: &Cluster, live: &LiveCluster, seed: u64) -> Arc<Running> {
    let root_ca = live.root_ca.clone().unwrap_or_else(|| bootstrap::seeded_ca(seed));
    cluster.with_state(|state| bootstrap::bootstrap(state, live, &root_ca));
    let shared = Arc::new(control::Shared::new(live.controllers.clone(), live.rules.clone(), root_ca));
    let mut loops: Vec<Box<dyn Reconciler>> = Vec::new();
    for controller in Controller::ALL {
        if !live.has(controller) {
            continue;
        }
        match controller {
            Controller::ServiceAccount => loops.push(Box::new(publishers::ServiceAccounts)),
            Controller::RootCaPublisher => loops.push(Box::new(publishers::RootCaPublisher)),
            Controller::VolumeBinder => loops.push(Box::new(volumes::VolumeBinder)),
            Controller::Scheduler => loops.push(Box::<scheduler::Scheduler>::default()),
            Controller::Kubelet => {
                loops.push(Box::<kubelet::Kubelet>::default());
                loops.push(Box::<nodes::NodeAgent>::default());
            }
            Controller::NodeLifecycle => loops.push(Box::new(nodes::NodeLifecycle)),
            Controller::Deployment => loops.push(Box::new(deployment::Deployments)),
            Controller::ReplicaSet => loops.push(Box::new(replicaset::ReplicaSets)),
            Controller::StatefulSet => loops.push(Box::new(statefulset::StatefulSets)),
            Controller::DaemonSet => loops.push(Box::new(daemonset::DaemonSets)),
            Controller::Job => loops.push(Box::<job::Jobs>::default()),
            Controller::CronJob => loops.push(Box::new(cronjob::CronJobs)),
            Controller::EndpointSlice => loops.push(Box::new(endpointslice::EndpointSlices)),
        }
    }
    let manager = Manager::new(cluster.clone(), shared.clone(), loops);
    let task = tokio::spawn(manager.run());
    Arc::new(Running { control: ControlPlane { shared, cluster: cluster.clone() }, task })
}
