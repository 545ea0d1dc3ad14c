//! [`ControlPlane`]: the handle on a running live cluster — its work counters for exact settling on
//! virtual time, its behaviour rules, its CA, and the Node switches tests flip.
//!
//! The counters follow kopf's activity discipline: the control plane's one task counts itself awake
//! from the moment it is spawned and stops counting only while it waits, with the deadline of its
//! next timer registered. So [`ControlPlane::is_idle`] means: no controller has anything to do at
//! the current instant — no change unprocessed (the fake counts undelivered watch events itself),
//! no queued reconciliation, no kubelet delay, back-off or schedule that has come due.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::behaviour::Rule;
use super::config::Controller;
use crate::cluster::Cluster;
use crate::error::Result;
use crate::request::{PatchType, Request, Verb};

/// The annotation on a Node that says how its simulated kubelet is doing (see [`NodeHealth`]).
pub const NODE_HEALTH_ANNOTATION: &str = "fake.kopf.dev/kubelet";

/// How a Node's simulated kubelet behaves, set with [`ControlPlane::set_node_health`] or the
/// `fake.kopf.dev/kubelet` annotation on the Node (`ready`, `not-ready`, `stopped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeHealth {
    /// Posts `Ready=True` and renews its Lease (the default).
    Ready,
    /// Runs, but posts `Ready=False` (`KubeletNotReady`): the node lifecycle controller taints the
    /// Node `not-ready` and evicts its Pods once their toleration (300 s by default) runs out.
    NotReady,
    /// Stopped: no Lease renewals, no status, no Pod changes. After the node monitor grace period
    /// (50 s) the Node's conditions go `Unknown`, it is tainted `unreachable` and its Pods are
    /// evicted — and stay Terminating, since nothing on the Node can finish them.
    Stopped,
}

impl NodeHealth {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::NotReady => "not-ready",
            Self::Stopped => "stopped",
        }
    }

    pub(crate) fn parse(value: Option<&str>) -> Self {
        match value {
            Some("not-ready") => Self::NotReady,
            Some("stopped") => Self::Stopped,
            _ => Self::Ready,
        }
    }
}

/// State shared by the control plane's task and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The task is running (not waiting).
    awake: AtomicBool,
    /// The deadline of the waiting task's next timer.
    deadline: Mutex<Option<Instant>>,
    changed: Notify,
    /// Wakes the waiting task for a change of settings.
    pub(crate) poke: Notify,
    pub(crate) poked: AtomicBool,
    pub(crate) rules: Mutex<Vec<Rule>>,
    pub(crate) root_ca: Mutex<String>,
    pub(crate) controllers: BTreeSet<Controller>,
    /// The ids of the control plane's open watches (their undelivered events are its work).
    pub(crate) watches: Mutex<Vec<u64>>,
    requests: AtomicU64,
    reconciles: AtomicU64,
}

impl Shared {
    pub(crate) fn new(controllers: BTreeSet<Controller>, rules: Vec<Rule>, root_ca: String) -> Self {
        Self {
            awake: AtomicBool::new(true),
            deadline: Mutex::new(None),
            changed: Notify::new(),
            poke: Notify::new(),
            poked: AtomicBool::new(false),
            rules: Mutex::new(rules),
            root_ca: Mutex::new(root_ca),
            controllers,
            watches: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            reconciles: AtomicU64::new(0),
        }
    }

    /// The task stops counting itself awake and registers its next deadline.
    pub(crate) fn park(&self, deadline: Option<Instant>) {
        *lock(&self.deadline) = deadline;
        self.awake.store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// The task runs again: awake first, then the deadline goes (never a moment with neither).
    pub(crate) fn unpark(&self) {
        self.awake.store(true, Ordering::SeqCst);
        *lock(&self.deadline) = None;
        self.changed.notify_waiters();
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_reconcile(&self) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A handle on a live cluster's control plane. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cluster: Cluster,
}

impl ControlPlane {
    /// Whether no controller has work due at the current (virtual) instant: the control plane's
    /// task waits, none of its timers has come, and none of its watches holds an undelivered event.
    pub fn is_idle(&self) -> bool {
        if self.shared.awake.load(Ordering::SeqCst) {
            return false;
        }
        if lock(&self.shared.deadline).is_some_and(|d| d <= Instant::now()) {
            return false;
        }
        let watches = lock(&self.shared.watches).clone();
        !self.cluster.watches_have_backlog(&watches)
    }

    /// Waits until the control plane is idle at the current instant ([`ControlPlane::is_idle`]);
    /// never moves the clock itself.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use fake_apiserver::{FakeApiServer, live::LiveCluster};
    /// let server = FakeApiServer::builder().live(LiveCluster::new()).build();
    /// let control = server.control_plane().unwrap();
    /// control.settle().await;
    /// assert!(control.is_idle());
    /// // The controllers made the namespaces' ServiceAccounts and CA bundles.
    /// assert!(server.cluster().object("", "serviceaccounts", "kube-system", "default").is_some());
    /// # }
    /// ```
    pub async fn settle(&self) {
        loop {
            let changed = self.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_idle() {
                return;
            }
            changed.await;
        }
    }

    /// The next instant a controller has work due (a kubelet delay, a back-off, a schedule).
    pub fn next_deadline(&self) -> Option<Instant> {
        *lock(&self.shared.deadline)
    }

    /// Resolves at the next change of [`ControlPlane::is_idle`]'s inputs. Create it before checking
    /// them, so a change in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.shared.changed.notified()
    }

    /// The controllers that run.
    pub fn controllers(&self) -> &BTreeSet<Controller> {
        &self.shared.controllers
    }

    /// How many API requests the controllers have made.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// How many reconciliations the controllers have run.
    pub fn reconciles(&self) -> u64 {
        self.shared.reconciles.load(Ordering::Relaxed)
    }

    /// The container behaviour rules, in order.
    pub fn rules(&self) -> Vec<Rule> {
        lock(&self.shared.rules).clone()
    }

    /// Replaces the behaviour rules; Pods bound from now on follow them.
    pub fn set_rules(&self, rules: impl IntoIterator<Item = Rule>) {
        *lock(&self.shared.rules) = rules.into_iter().collect();
    }

    /// Adds a behaviour rule after the others (it overrides them where it matches).
    pub fn add_rule(&self, rule: Rule) {
        lock(&self.shared.rules).push(rule);
    }

    /// The CA certificate (PEM) published in every namespace's `kube-root-ca.crt`.
    pub fn root_ca(&self) -> String {
        lock(&self.shared.root_ca).clone()
    }

    /// Publishes another CA certificate (e.g. the one `serve --tls` made) in every namespace.
    pub fn set_root_ca(&self, pem: impl Into<String>) {
        *lock(&self.shared.root_ca) = pem.into();
        self.shared.poked.store(true, Ordering::SeqCst);
        self.shared.awake.store(true, Ordering::SeqCst);
        self.shared.poke.notify_one();
    }

    /// Sets how a Node's kubelet behaves, through the `fake.kopf.dev/kubelet` annotation (a
    /// merge patch of the Node, as `kubectl annotate node` does).
    ///
    /// # Errors
    /// The API's error, e.g. NotFound for an unknown Node.
    pub async fn set_node_health(&self, node: &str, health: NodeHealth) -> Result<()> {
        let mut req = Request::new(Verb::Patch, "", "v1", "nodes")
            .name(node)
            .patch_type(PatchType::Merge)
            .body(json!({"metadata": {"annotations": {NODE_HEALTH_ANNOTATION: health.as_str()}}}));
        req.actor = "test".into();
        self.cluster.handle(req).await.map(drop)
    }
}
