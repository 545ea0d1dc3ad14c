//! Running an operator (Kopf's `running` + `orchestration`): check the registration, discover the
//! resources the handlers name, start one watch stream per resource and namespace, and stop them
//! all gracefully when asked.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::processing::Scope;
use super::queueing::Dispatcher;
use super::watching::watch_resource;
use crate::activities::{ActivityKind, LoginClient, Probes};
use crate::client::{self, ApiClient};
use crate::engines::admission::Admission;
use crate::engines::indexing::Indexes;
use crate::engines::peering::{self, Supervisor};
use crate::engines::probing::Health;
use crate::error::OperatorError;
use crate::execution::{Runtime, posting};
use crate::observe::Observer;
use crate::operator::Operator;
use crate::primitives::activity::Activity;
use crate::primitives::clock::Clock;
use crate::primitives::metrics::Metrics;
use crate::primitives::tasks::OwnedTask;
use crate::primitives::toggles::ToggleSet;
use crate::structs::references::{Resource, ResourceSelector};

/// Which namespaces an operator serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Namespaces {
    /// All of them, with cluster-wide watches (`--all-namespaces`).
    #[default]
    All,
    /// These (exact names or Kopf's globs: `*`, `?`, `!` to exclude, comma-separated).
    Only(Vec<String>),
}

/// How an operator runs, beyond its handlers and settings.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// The namespaces served.
    pub namespaces: Namespaces,
    /// The clock (default: the wall clock); tests give a fixed base time.
    pub clock: Option<Clock>,
    /// Counters of work in progress, shared with a test harness.
    pub activity: Option<Activity>,
    /// Receives what the operator does.
    pub observer: Option<Arc<dyn Observer>>,
    /// How login handlers' credentials become an API client (default: a kube-rs client).
    pub connect: Option<crate::activities::Connect>,
    /// The operator's identity among its peers (default: Kopf's: `POD_ID`, or
    /// `user@host/YYYYmmddHHMMSS/xyz`).
    pub identity: Option<String>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("namespaces", &self.namespaces)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A running operator: stop it, wait for it, or abort it.
#[derive(Debug)]
pub struct RunningOperator {
    stop: watch::Sender<bool>,
    ready: watch::Receiver<bool>,
    ended: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<Result<(), OperatorError>>,
    activity: Activity,
    probes: Arc<std::sync::OnceLock<Probes>>,
    metrics: Metrics,
    paused: ToggleSet,
    liveness: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
}

/// Says "ended" when dropped: at the end of the operator's task, or when it is aborted.
struct EndGuard(watch::Sender<bool>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

impl RunningOperator {
    /// Resolves when the operator's watches are started (or it failed to start).
    pub async fn ready(&mut self) {
        let _ = self.ready.wait_for(|r| *r).await;
    }

    /// Resolves when the operator's task has ended, by a stop or by itself (e.g. a failed
    /// discovery); [`RunningOperator::join`] then gives the outcome at once.
    pub async fn ended(&mut self) {
        let _ = self.ended.wait_for(|e| *e).await;
    }

    /// Asks the operator to stop gracefully.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Waits for the operator to end.
    ///
    /// # Errors
    /// Why it could not run; a panic inside is reported as a startup error.
    pub async fn join(self) -> Result<(), OperatorError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(OperatorError::Startup(format!("the operator task ended abnormally: {e}"))),
        }
    }

    /// Aborts the operator at its current await point (a crash, for tests).
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the operator's task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// The values of the probe handlers (Kopf's liveness endpoint), by handler id; run at most
    /// every 10 s. Empty until the operator has started.
    pub async fn probe(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        match self.probes.get() {
            Some(probes) => probes.run().await,
            None => std::collections::BTreeMap::new(),
        }
    }

    /// The operator's metrics in Prometheus' text format (what `/metrics` of the liveness endpoint
    /// serves): handler runs, failures and durations, watch restarts, queue depths, the pause.
    pub fn metrics(&self) -> String {
        self.metrics.render(&self.activity, self.paused.is_on())
    }

    /// Whether peering pauses the operator now.
    pub fn is_paused(&self) -> bool {
        self.paused.is_on()
    }

    /// Where the liveness endpoint listens, once it does (`settings.liveness.endpoint`).
    pub fn liveness_addr(&self) -> Option<std::net::SocketAddr> {
        self.liveness.get().copied()
    }

    /// The operator's work-in-progress counters.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }
}

impl Operator {
    /// Runs the operator on a `kube::Client` until `stop` resolves, serving all namespaces.
    ///
    /// ```no_run
    /// # async fn demo(operator: kopf::Operator) -> anyhow::Result<()> {
    /// let client = kube::Client::try_default().await?;
    /// operator.run(client, async { let _ = tokio::signal::ctrl_c().await; }).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Misconfiguration, or a failed discovery.
    pub async fn run(
        self,
        client: kube::Client,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), OperatorError> {
        let running = self.spawn(Arc::new(client::KubeApiClient::new(client)), RunOptions::default())?;
        stop.await;
        running.stop();
        running.join().await
    }

    /// Starts the operator in a task on any [`ApiClient`].
    ///
    /// # Errors
    /// Misconfiguration (reported before anything starts).
    pub fn spawn(
        self,
        client: Arc<dyn ApiClient>,
        options: RunOptions,
    ) -> Result<RunningOperator, OperatorError> {
        let (registry, mut settings, memo) = self.into_parts().map_err(OperatorError::Registration)?;
        // Kopf: the cluster-wide peering for cluster-wide operators, the namespaced one otherwise.
        settings.peering.clusterwide = options.namespaces == Namespaces::All;
        let identity = options.identity.clone().unwrap_or_else(|| peering::detect_own_id(false));
        let activity = options.activity.clone().unwrap_or_default();
        let clock = options.clock.unwrap_or_else(Clock::wall);
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready) = watch::channel(false);
        let (ended_tx, ended) = watch::channel(false);
        let settings = Arc::new(settings);
        let awake = activity.awake();
        let task_activity = activity.clone();
        let probes: Arc<std::sync::OnceLock<Probes>> = Arc::default();
        let metrics = Metrics::default();
        let task_metrics = metrics.clone();
        let paused = ToggleSet::default();
        let task_paused = paused.clone();
        let liveness: Arc<std::sync::OnceLock<std::net::SocketAddr>> = Arc::default();
        let task_liveness = liveness.clone();
        let task_probes = probes.clone();
        let task = tokio::spawn(async move {
            let _ended = EndGuard(ended_tx);
            let _awake = awake;
            let activity = task_activity;
            let (poster, poster_task) = posting::spawn(
                client.clone(),
                settings.posting.clone(),
                clock,
                activity.clone(),
                "default".into(),
            );
            let blocking =
                settings.execution.max_workers.map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
            let mut rt = Runtime {
                client: client.clone(),
                settings: settings.clone(),
                clock,
                activity: activity.clone(),
                poster,
                observer: options.observer.clone(),
                blocking,
                indexes: Indexes::new(registry.index_ids()),
                paused: task_paused,
                metrics: task_metrics,
            };
            // Login handlers replace the given client with one logged in (and re-logged after 401s).
            let logins = registry.activities(ActivityKind::Login);
            if !logins.is_empty() {
                let connect = options.connect.clone().unwrap_or_else(crate::activities::kube_connect);
                rt.client = Arc::new(LoginClient::new(rt.clone(), memo.clone(), logins, connect));
            }
            // Startup handlers: before any watching; they may change the settings.
            let startups = registry.activities(ActivityKind::Startup);
            if !startups.is_empty() {
                let slot = Arc::new(std::sync::Mutex::new((*settings).clone()));
                if let Err(e) = crate::activities::run_all(&rt, &memo, &startups, Some(slot.clone())).await {
                    ready_tx.send_replace(true);
                    poster_task.abort();
                    return Err(OperatorError::Startup(e));
                }
                let changed = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                rt.blocking =
                    changed.execution.max_workers.map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
                rt.settings = Arc::new(changed);
            }
            let settings = rt.settings.clone();
            let client = rt.client.clone();
            let _ = task_probes.set(Probes {
                rt: rt.clone(),
                memo: memo.clone(),
                handlers: registry.activities(ActivityKind::Probe),
                cache: Arc::default(),
            });
            // The liveness endpoint, from now on (its probes run the probe handlers).
            let mut _health = None;
            if let (Some(endpoint), Some(probes)) = (&settings.liveness.endpoint, task_probes.get()) {
                let health = Health {
                    probes: probes.clone(),
                    metrics: rt.metrics.clone(),
                    activity: activity.clone(),
                    paused: rt.paused.clone(),
                };
                match crate::engines::probing::serve(endpoint, health).await {
                    Ok((addr, task)) => {
                        let _ = task_liveness.set(addr);
                        _health = Some(task);
                    }
                    Err(e) => {
                        ready_tx.send_replace(true);
                        poster_task.abort();
                        return Err(OperatorError::Startup(e));
                    }
                }
            }
            let resources = match client::retrying::retrying(&settings.networking, || client.discover()).await
            {
                Ok(resources) => resources,
                Err(e) => {
                    ready_tx.send_replace(true);
                    poster_task.abort();
                    return Err(OperatorError::Discovery(e));
                }
            };
            // The served namespaces, once (globs are matched against the namespaces listed now).
            let served = match &options.namespaces {
                Namespaces::All => None,
                Namespaces::Only(patterns) => Some(namespaces_matching(&rt, patterns).await),
            };
            // Peering before any watching: its toggles hold the watch streams until the peers are
            // known.
            let peering = Supervisor::start(&rt, &resources, served.clone(), &identity);
            // Admission: the webhook server and the managed configurations, before watching.
            let webhook_resources = resolve(&registry.webhook_selectors(), &resources);
            let admission = match Admission::start(&rt, &memo, registry.webhooks(), webhook_resources).await {
                Ok(admission) => admission,
                Err(e) => {
                    ready_tx.send_replace(true);
                    poster_task.abort();
                    return Err(OperatorError::Startup(e));
                }
            };
            let mut plan = Vec::new();
            for resource in resolve(&registry.selectors(), &resources) {
                let handlers = registry.for_resource(&resource);
                let extra_fields = handlers.extra_fields();
                let scope = Arc::new(Scope { resource: resource.clone(), handlers, extra_fields });
                let resource = Arc::new(resource);
                let namespaces: Vec<Option<String>> = match (&served, resource.namespaced) {
                    (None, _) | (_, false) => vec![None],
                    (Some(names), true) => names.iter().cloned().map(Some).collect(),
                };
                plan.push((scope, resource, namespaces));
            }
            // The readiness barrier: every stream of an indexed resource must list first.
            let indexed_streams: usize = plan
                .iter()
                .filter(|(scope, ..)| !scope.handlers.indexing.is_empty())
                .map(|p| p.2.len())
                .sum();
            rt.indexes.expect_streams(indexed_streams);
            let mut watchers = Vec::new();
            for (scope, resource, namespaces) in plan {
                for namespace in namespaces {
                    let dispatcher = Dispatcher::new(rt.clone(), scope.clone(), memo.clone());
                    let awake = activity.awake();
                    let (rt, resource, stop) = (rt.clone(), resource.clone(), stop_rx.clone());
                    watchers.push(OwnedTask::spawn(async move {
                        let _awake = awake;
                        watch_resource(rt, resource, namespace, dispatcher, stop).await;
                    }));
                }
            }
            ready_tx.send_replace(true);
            let mut stop = stop_rx.clone();
            let _ = activity.wait(None, stop.wait_for(|s| *s)).await;
            for watcher in watchers {
                let _ = activity.wait(None, watcher.join()).await;
            }
            // The handlers are done: leave the peering (the keep-alives remove our records).
            if let Some(peering) = peering {
                peering.stop(&rt).await;
            }
            if let Some(admission) = admission {
                admission.stop(&rt).await;
            }
            let cleanups = registry.activities(ActivityKind::Cleanup);
            if let Err(e) = crate::activities::run_all(&rt, &memo, &cleanups, None).await {
                tracing::error!(error = %e, "A cleanup handler failed.");
            }
            // Let queued Events go out (for up to 5 s), then stop the poster.
            drop(rt);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                let changed = activity.changed();
                if activity.get(crate::primitives::activity::Counter::PendingPosts) <= 0
                    || tokio::time::Instant::now() >= deadline
                {
                    break;
                }
                activity.wait(Some(deadline), changed).await;
            }
            poster_task.abort();
            Ok(())
        });
        Ok(RunningOperator { stop, ready, ended, task, activity, probes, metrics, paused, liveness })
    }
}

/// The served resources the selectors name: exact ones as named; by name, the preferred version,
/// preferring the core group when a name is ambiguous (as Kopf does), skipping other ambiguities.
pub(crate) fn resolve(selectors: &[ResourceSelector], resources: &[Resource]) -> Vec<Resource> {
    let mut out: Vec<Resource> = Vec::new();
    for selector in selectors {
        let matching: Vec<&Resource> = resources.iter().filter(|r| selector.matches(r)).collect();
        let chosen = match matching.as_slice() {
            [] => {
                tracing::warn!(%selector, "no served resource matches; its handlers will not run");
                None
            }
            [one] => Some(*one),
            many => match many.iter().find(|r| r.group.is_empty()) {
                Some(core) => Some(*core),
                None => {
                    let names: Vec<String> = many.iter().map(|r| r.to_string()).collect();
                    tracing::warn!(%selector, ?names, "ambiguous resource selector; its handlers will not run");
                    None
                }
            },
        };
        if let Some(resource) = chosen
            && !out.contains(resource)
        {
            out.push(resource.clone());
        }
    }
    out
}

/// The namespaces matching Kopf's glob patterns, listed once at start.
async fn namespaces_matching(rt: &Runtime, patterns: &[String]) -> Vec<String> {
    let exact = patterns.iter().all(|p| !p.contains(['*', '?', '!', ',']));
    if exact {
        return patterns.to_vec();
    }
    let namespaces = Resource {
        group: String::new(),
        version: "v1".into(),
        plural: "namespaces".into(),
        kind: "Namespace".into(),
        singular: "namespace".into(),
        short_names: vec!["ns".into()],
        namespaced: false,
        status_subresource: true,
        preferred: true,
    };
    let selectors = super::watching::selectors_for(&rt.settings, &namespaces);
    match rt.client.list(&namespaces, None, &selectors).await {
        Ok(list) => list
            .items
            .iter()
            .filter_map(|ns| ns["metadata"]["name"].as_str())
            .filter(|name| crate::primitives::globs::matches(patterns, name))
            .map(str::to_owned)
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list namespaces; using only the exact names");
            patterns.iter().filter(|p| !p.contains(['*', '?', '!', ','])).cloned().collect()
        }
    }
}
