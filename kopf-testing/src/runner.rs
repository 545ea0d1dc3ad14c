//! [`KopfRunner`]: a whole operator against a fresh fake cluster inside one `#[tokio::test]`, on
//! tokio's paused clock.
//!
//! # What `settle()` waits for — exactly
//! It returns when, at the current virtual instant, nothing is left to do: no watch event queued for
//! an object, no operator task awake (processing an event, running a handler — async or blocking —,
//! posting an Event, sending a request), no own patch awaiting its watch echo, no watch stream
//! disconnected, no deadline of the operator's waits that has come without its task having run, no
//! request in flight inside the fake, no watch event undelivered by the fake — and, with
//! [`KopfRunner::live_cluster`], no controller of the live cluster with work due (a change it has
//! not processed, a reconciliation queued, a kubelet delay or back-off that has come). These are
//! counters kept by the reactor, the fake and its control plane, not sleeps or polling.
//!
//! It does not wait for what is due later: handler retry delays, timers, the consistency timeout
//! of a patch whose echo did not come, a container that starts in a second, a CronJob's next run. If in-progress work itself waits on virtual time — a handler
//! that sleeps, a request with injected latency, a watch reconnecting after its backoff — the
//! runtime's auto-advance moves the clock to finish it; `settle()` never moves the clock otherwise.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_apiserver::live::{ControlPlane, LiveCluster};
use fake_apiserver::{FakeApiServer, FaultRule, RandomFaults};
use kopf::{
    Activity, ApiClient, Clock, KubeApiClient, Namespaces, Operator, RunOptions, RunningOperator, Settings,
};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::adapter::DirectApiClient;
use crate::cluster::TestCluster;
use crate::rbac::{Forbidden, RbacMode};
use crate::report::Report;
use crate::timeline::{Recording, Timeline};

/// The runner's own operator's identity among peers ([`Runner::spawn_operator`]'s operators use
/// their labels).
pub const OPERATOR_IDENTITY: &str = "operator";

/// How long `settle()` may let virtual time pass for in-progress work before it gives up.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(3600);

/// Which client the operator talks through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// Straight into the fake's core (no HTTP, no JSON encoding): the fastest.
    Direct,
    /// `KubeApiClient` over the fake's tower Service: the production client path.
    KubeClient,
}

/// The builder of a test run.
#[must_use]
pub struct KopfRunner {
    operator: Operator,
    crds: Vec<Value>,
    objects: Vec<Value>,
    namespaces: Vec<String>,
    seed: u64,
    settings: Vec<SettingsChange>,
    adapter: Adapter,
    journal: Option<usize>,
    timeline: bool,
    live: Option<LiveCluster>,
    server_options: Vec<ServerChange>,
    rbac: Option<RbacMode>,
    expect_forbidden: bool,
}

/// A change to the operator's settings, applied before the start.
type SettingsChange = Box<dyn FnOnce(&mut Settings)>;

/// A change to the fake API server's options, applied before it is built.
type ServerChange = Box<dyn FnOnce(fake_apiserver::Builder) -> fake_apiserver::Builder>;

impl std::fmt::Debug for KopfRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KopfRunner")
            .field("seed", &self.seed)
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

/// A `wait_for` that ran out of virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout(pub Duration);

impl std::fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the condition did not hold within {:?} of virtual time", self.0)
    }
}

impl std::error::Error for WaitTimeout {}

impl KopfRunner {
    /// A run of this operator.
    pub fn new(operator: Operator) -> Self {
        Self {
            operator,
            crds: Vec::new(),
            objects: Vec::new(),
            namespaces: Vec::new(),
            seed: 0,
            settings: Vec::new(),
            adapter: Adapter::Direct,
            journal: None,
            timeline: true,
            live: None,
            server_options: Vec::new(),
            rbac: None,
            expect_forbidden: false,
        }
    }

    /// Runs the operator as its ServiceAccount (`default/kopf-operator`) with RBAC enforced and
    /// only the RBAC it generates for itself ([`kopf::rbac`], against the fake's discovery, for the
    /// runner's namespaces) installed. Any 403 the operator meets is in the timeline (`forbidden`)
    /// and fails the test at the next [`Runner::settle`] (or `advance`/`wait_for`), with the
    /// server's message — unless [`KopfRunner::expect_forbidden`]. Operators added with
    /// [`Runner::spawn_operator`] run as the same ServiceAccount.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use k8s_openapi::api::core::v1::ConfigMap;
    /// use kopf::{Context, HandlerError, Operator};
    /// let operator = Operator::new()
    ///     .on_create(|_: Arc<ConfigMap>, _: Context| async move { Ok::<_, HandlerError>(()) });
    /// let runner = kopf_testing::KopfRunner::new(operator).with_generated_rbac().start().await;
    /// let permissions: Vec<String> = runner.rbac().unwrap().permissions().map(|p| p.to_string()).collect();
    /// assert_eq!(permissions, ["list configmaps (core) cluster-wide", "patch configmaps (core) cluster-wide", "watch configmaps (core) cluster-wide"]);
    /// # }
    /// ```
    pub fn with_generated_rbac(mut self) -> Self {
        self.rbac = Some(RbacMode::Generated);
        self
    }

    /// Runs the operator as the ServiceAccount of `rbac`, with exactly that RBAC installed and
    /// enforced (see [`KopfRunner::with_generated_rbac`]).
    pub fn with_rbac(mut self, rbac: kopf::Rbac) -> Self {
        self.rbac = Some(RbacMode::Given(rbac));
        self
    }

    /// 403s are expected: they are recorded ([`Runner::forbidden`]) instead of failing the test,
    /// and once one has happened, waiting ([`Runner::settle`]) ends at once — an operator refused
    /// its watch retries forever and would never settle.
    pub fn expect_forbidden(mut self) -> Self {
        self.expect_forbidden = true;
        self
    }

    /// Changes the fake API server's options before it is built, e.g. to turn a feature gate off.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use kopf_testing::KopfRunner;
    /// let runner = KopfRunner::new(kopf::Operator::new())
    ///     .configure_server(|server| server.sharded_list_and_watch(false))
    ///     .start()
    ///     .await;
    /// assert!(!runner.server().cluster().sharded_list_and_watch());
    /// # }
    /// ```
    pub fn configure_server(
        mut self,
        f: impl FnOnce(fake_apiserver::Builder) -> fake_apiserver::Builder + 'static,
    ) -> Self {
        self.server_options.push(Box::new(f));
        self
    }

    /// Installs the CRD of a `#[derive(CustomResource)]` type before the operator starts.
    pub fn with_crd<K: kube::CustomResourceExt>(mut self) -> Self {
        self.crds.push(serde_json::to_value(K::crd()).unwrap_or(Value::Null));
        self
    }

    /// Installs a CRD given as JSON.
    pub fn with_crd_json(mut self, crd: Value) -> Self {
        self.crds.push(crd);
        self
    }

    /// Installs Kopf's peering CRDs (`ClusterKopfPeering` and `KopfPeering`, [`kopf::peering::crds`]);
    /// the peering objects themselves come with [`KopfRunner::with_objects`] and
    /// [`kopf::peering::object`].
    pub fn with_peering_crds(mut self) -> Self {
        self.crds
            .extend(kopf::peering::crds().iter().map(|crd| serde_json::to_value(crd).unwrap_or(Value::Null)));
        self
    }

    /// Objects that exist before the operator starts (found by its initial listing: resume).
    pub fn with_objects<T: Serialize>(mut self, objects: impl IntoIterator<Item = T>) -> Self {
        self.objects.extend(objects.into_iter().map(|o| serde_json::to_value(o).unwrap_or(Value::Null)));
        self
    }

    /// Namespaces to create, and to serve (instead of all namespaces).
    pub fn namespaces<S: Into<String>>(mut self, namespaces: impl IntoIterator<Item = S>) -> Self {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Seeds uids and generated names (and so the whole timeline).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Changes the operator's settings.
    pub fn settings(mut self, f: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.settings.push(Box::new(f));
        self
    }

    /// Chooses the client path (default: [`Adapter::Direct`]).
    pub fn adapter(mut self, adapter: Adapter) -> Self {
        self.adapter = adapter;
        self
    }

    /// How many records the fake's journal keeps (0 turns it off), e.g. for long benchmarks.
    pub fn journal(mut self, records: usize) -> Self {
        self.journal = Some(records);
        self
    }

    /// Runs the fake as a live cluster ([`fake_apiserver::live`]): bootstrap objects, the built-in
    /// controllers, simulated Nodes and kubelets, all on the test's virtual clock. `settle()` then
    /// also waits for the controllers, and `advance()` and `wait_for()` fire their deadlines
    /// (kubelet delays, back-offs, CronJob schedules) in order. Off by default.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use fake_apiserver::live::LiveCluster;
    /// use kopf_testing::KopfRunner;
    /// let runner = KopfRunner::new(kopf::Operator::new()).live_cluster(LiveCluster::new().nodes(2)).start().await;
    /// let nodes = runner.server().cluster().objects("", "nodes");
    /// assert_eq!(nodes.len(), 2);
    /// # }
    /// ```
    pub fn live_cluster(mut self, live: LiveCluster) -> Self {
        self.live = Some(live);
        self
    }

    /// Whether to keep a timeline (default: yes); long benchmarks turn it off to save memory.
    pub fn timeline(mut self, enabled: bool) -> Self {
        self.timeline = enabled;
        self
    }

    /// Starts the fake cluster and the operator, and settles.
    ///
    /// # Panics
    /// Outside a current-thread runtime with a paused clock (`#[tokio::test(start_paused = true)]`),
    /// or if the operator's registration is invalid — both are mistakes in the test.
    pub async fn start(self) -> Runner {
        check_runtime();
        let mut server = FakeApiServer::builder().seed(self.seed);
        if let Some(records) = self.journal {
            server = server.journal(records);
        }
        if let Some(live) = self.live {
            server = server.live(live);
        }
        for f in self.server_options {
            server = f(server);
        }
        let server = server.build();
        let base: jiff::Timestamp =
            fake_apiserver::DEFAULT_BASE_TIME.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let clock = Clock::new(base);
        let timeline = Timeline::new(Instant::now(), self.timeline);
        let cluster = TestCluster::new(server.cluster().clone());
        for crd in self.crds {
            let api = server.cluster().api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(None);
            let crd = serde_json::from_value(crd).unwrap_or_else(|e| panic!("not a CRD: {e}"));
            api.create(&crd).await.unwrap_or_else(|e| panic!("installing a CRD failed: {e}"));
        }
        for ns in &self.namespaces {
            let api = server.cluster().api::<k8s_openapi::api::core::v1::Namespace>(None);
            if api.get_opt(ns).await.ok().flatten().is_none() {
                let mut namespace = k8s_openapi::api::core::v1::Namespace::default();
                namespace.metadata.name = Some(ns.clone());
                api.create(&namespace)
                    .await
                    .unwrap_or_else(|e| panic!("creating namespace {ns} failed: {e}"));
            }
        }
        for object in self.objects {
            create_raw(&server, object).await;
        }
        let mut operator = self.operator;
        for f in self.settings {
            operator = operator.settings(f);
        }
        // Admission handlers are served in process: no socket under the paused clock.
        let webhooks = crate::webhooks::InProcessWebhookServer::new(server.cluster().clone());
        operator = operator.settings(move |s| s.admission.server = Some(Arc::new(webhooks)));
        if let Err(errors) = operator.check() {
            panic!("the operator is misconfigured: {errors:?}");
        }
        let namespaces =
            if self.namespaces.is_empty() { Namespaces::All } else { Namespaces::Only(self.namespaces) };
        let (rbac, identity) = match self.rbac {
            Some(mode) => {
                let (rbac, identity) = crate::rbac::install(&server, &operator, mode, &namespaces).await;
                (Some(rbac), Some(identity))
            }
            None => (None, None),
        };
        let inner: Arc<dyn ApiClient> = match (self.adapter, identity) {
            (Adapter::Direct, None) => Arc::new(DirectApiClient::new(server.cluster().clone())),
            (Adapter::Direct, Some(identity)) => {
                Arc::new(DirectApiClient::new(server.cluster().clone()).as_user(identity))
            }
            (Adapter::KubeClient, None) => Arc::new(KubeApiClient::new(server.client())),
            (Adapter::KubeClient, Some(identity)) => Arc::new(KubeApiClient::new(server.client_as(identity))),
        };
        let forbidden = Forbidden::default();
        let client: Arc<dyn ApiClient> = Arc::new(Recording {
            inner: inner.clone(),
            timeline: timeline.clone(),
            prefix: String::new(),
            forbidden: forbidden.clone(),
        });
        let mut runner = Runner {
            server,
            cluster,
            operator,
            client,
            clock,
            timeline,
            namespaces,
            running: None,
            activity: Activity::default(),
            adapter_client: inner,
            extras: Arc::default(),
            next_extra: AtomicU64::new(0),
            rbac,
            forbidden,
            expect_forbidden: self.expect_forbidden,
        };
        runner.launch().await;
        runner.settle().await;
        runner
    }
}

pub(crate) async fn create_raw(server: &FakeApiServer, object: Value) {
    let (group, version) = match object["apiVersion"].as_str().unwrap_or_default().rsplit_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), object["apiVersion"].as_str().unwrap_or_default().to_owned()),
    };
    let kind = object["kind"].as_str().unwrap_or_default();
    let info = server
        .cluster()
        .resources()
        .into_iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .unwrap_or_else(|| panic!("no served resource for {group}/{version} {kind}"));
    let mut req = fake_apiserver::Request::new(fake_apiserver::Verb::Create, &group, &version, &info.plural)
        .body(object.clone());
    if info.namespaced {
        req.namespace = Some(object["metadata"]["namespace"].as_str().unwrap_or("default").to_owned());
    }
    req.actor = "test".into();
    if let Err(e) = server.cluster().handle(req).await {
        panic!("creating an initial object failed: {e}");
    }
}

fn check_runtime() {
    let handle = tokio::runtime::Handle::try_current().unwrap_or_else(|_| {
        panic!("KopfRunner needs a tokio runtime: use #[tokio::test(start_paused = true)]")
    });
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
        panic!(
            "KopfRunner needs the current-thread runtime (the default of #[tokio::test]) for virtual time"
        );
    }
    let a = Instant::now();
    let spin = std::time::Instant::now();
    while spin.elapsed() < Duration::from_micros(50) {
        std::hint::spin_loop();
    }
    if Instant::now() != a {
        panic!("KopfRunner needs a paused clock: use #[tokio::test(start_paused = true)]");
    }
}

/// A running test: the fake cluster, the operator, virtual time.
pub struct Runner {
    server: FakeApiServer,
    cluster: TestCluster,
    operator: Operator,
    client: Arc<dyn ApiClient>,
    pub(crate) clock: Clock,
    pub(crate) timeline: Timeline,
    pub(crate) namespaces: Namespaces,
    running: Option<RunningOperator>,
    activity: Activity,
    /// The adapter's client without the runner's recording (extra operators record their own).
    pub(crate) adapter_client: Arc<dyn ApiClient>,
    /// The work counters of the extra operators now running ([`Runner::spawn_operator`]).
    pub(crate) extras: Extras,
    pub(crate) next_extra: AtomicU64,
    /// The RBAC the operators run under, if any.
    rbac: Option<kopf::Rbac>,
    /// The 403s every operator of the run met.
    pub(crate) forbidden: Forbidden,
    expect_forbidden: bool,
}

/// The extra operators' activities, by operator id; `settle()` waits for all of them.
pub(crate) type Extras = Arc<Mutex<BTreeMap<u64, Activity>>>;

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("activity", &self.activity.snapshot()).finish_non_exhaustive()
    }
}

impl Runner {
    async fn launch(&mut self) {
        self.activity = Activity::default();
        let options = RunOptions {
            namespaces: self.namespaces.clone(),
            clock: Some(self.clock),
            activity: Some(self.activity.clone()),
            observer: Some(Arc::new(self.timeline.clone())),
            // Login handlers are called (and again after 401s), but the fake needs no credentials:
            // the operator keeps talking through the runner's adapter.
            connect: Some(Arc::new({
                let client = self.client.clone();
                move |_info: &kopf::ConnectionInfo| Ok(client.clone())
            })),
            // A fixed identity among peers, so a test's peering records repeat.
            identity: Some(OPERATOR_IDENTITY.to_owned()),
        };
        let mut running = self
            .operator
            .clone()
            .spawn(self.client.clone(), options)
            .unwrap_or_else(|e| panic!("the operator did not start: {e}"));
        running.ready().await;
        self.running = Some(running);
        self.timeline.record("runner", "operator started");
    }

    /// The operator's probe values (Kopf's liveness endpoint), by probe handler id.
    pub async fn probe(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        match &self.running {
            Some(running) => running.probe().await,
            None => std::collections::BTreeMap::new(),
        }
    }

    /// The fake cluster, for the test's own reads and writes.
    pub fn cluster(&self) -> &TestCluster {
        &self.cluster
    }

    /// The fake API server (its client, service, journal).
    pub fn server(&self) -> &FakeApiServer {
        &self.server
    }

    /// The RBAC the operator runs under ([`KopfRunner::with_generated_rbac`],
    /// [`KopfRunner::with_rbac`]).
    pub fn rbac(&self) -> Option<&kopf::Rbac> {
        self.rbac.as_ref()
    }

    /// The 403s the operator met so far: what it asked and the server's message.
    pub fn forbidden(&self) -> Vec<String> {
        self.forbidden.all()
    }

    /// The timeline so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// What the handlers did so far, per handler and object ([`Report`]).
    pub fn report(&self) -> Report {
        self.timeline.report()
    }

    /// The operator's counters of work in progress.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The operators' clock (the fake's base time plus virtual time), e.g. for the `lastseen` of
    /// peering commands.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Whether peering pauses the runner's operator now (a higher-priority peer is alive); `false`
    /// while it is not running.
    pub fn is_paused(&self) -> bool {
        self.running.as_ref().is_some_and(RunningOperator::is_paused)
    }

    /// Virtual time since the runner started.
    pub fn elapsed(&self) -> Duration {
        Duration::try_from(
            self.clock.now().duration_since(
                fake_apiserver::DEFAULT_BASE_TIME
                    .parse::<jiff::Timestamp>()
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            ),
        )
        .unwrap_or_default()
    }

    /// Adds a scripted fault to the fake's plan.
    pub fn fault(&self, rule: FaultRule) {
        self.server.cluster().faults(|plan| plan.add(rule));
    }

    /// Adds seeded random faults to the fake's plan.
    pub fn random_faults(&self, faults: RandomFaults) {
        self.server.cluster().faults(|plan| plan.add_random(faults));
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.server.cluster().faults(fake_apiserver::FaultPlan::clear);
    }

    /// The work counters of every operator running: the runner's and the extra ones.
    fn activities(&self) -> Vec<Activity> {
        let extras = self.extras.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::iter::once(self.activity.clone()).chain(extras.values().cloned()).collect()
    }

    fn settled(&self) -> bool {
        let cluster = self.server.cluster();
        self.activities().iter().all(Activity::is_idle)
            && cluster.in_flight() == 0
            && cluster.watches_with_backlog() == 0
            && self.server.control_plane().is_none_or(ControlPlane::is_idle)
    }

    /// Waits until nothing is left to do at the current virtual instant (see the module docs).
    ///
    /// # Panics
    /// If in-progress work keeps the operator busy for more than [`SETTLE_LIMIT`] of virtual time
    /// (e.g. a watch failing forever), with the counters and the timeline; or if the operator
    /// stopped by itself.
    pub async fn settle(&self) {
        let started = Instant::now();
        loop {
            if self.forbidden.first().is_some() {
                if self.expect_forbidden {
                    return;
                }
                panic!(
                    "the operator was refused by RBAC (403):\n  {}\nunder the permissions:\n  {}\n{}",
                    self.forbidden.all().join("\n  "),
                    self.rbac
                        .as_ref()
                        .map(|r| r.permissions().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))
                        .unwrap_or_default(),
                    self.timeline
                );
            }
            let activities = self.activities();
            let mut changes: Vec<_> = activities.iter().map(|a| Box::pin(a.changed())).collect();
            for change in &mut changes {
                change.as_mut().enable();
            }
            let changed = futures::future::select_all(changes);
            tokio::pin!(changed);
            // The live cluster's controllers count their own work; a change there wakes us too
            // (a `Notified` hears every notification sent after it was made, polled or not).
            let controllers = self.server.control_plane().map(ControlPlane::changed);
            let controllers = async move {
                match controllers {
                    Some(c) => c.await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(controllers);
            if self.settled() {
                return;
            }
            if let Some(running) = &self.running
                && running.is_finished()
            {
                panic!("the operator stopped by itself\n{}", self.timeline);
            }
            if started.elapsed() > SETTLE_LIMIT {
                panic!(
                    "settle() did not settle within {SETTLE_LIMIT:?} of virtual time: {:?}, fake in flight {}, watches with backlog {}, live controllers idle {:?}\n{}",
                    activities.iter().map(Activity::snapshot).collect::<Vec<_>>(),
                    self.server.cluster().in_flight(),
                    self.server.cluster().watches_with_backlog(),
                    self.server.control_plane().map(ControlPlane::is_idle),
                    self.timeline
                );
            }
            tokio::select! {
                biased;
                _ = &mut changed => {}
                () = &mut controllers => {}
            }
        }
    }

    /// Lets `duration` of virtual time pass: every deadline up to now + `duration` fires in order,
    /// each followed by its consequences; then settles.
    pub async fn advance(&self, duration: Duration) {
        self.settle().await;
        tokio::time::sleep_until(Instant::now() + duration).await;
        self.settle().await;
    }

    /// Lets virtual time pass until the predicate holds (checked whenever the operator settles),
    /// at most `timeout`.
    ///
    /// # Errors
    /// [`WaitTimeout`] if it did not hold in time.
    pub async fn wait_for(
        &self,
        mut predicate: impl FnMut(&TestCluster) -> bool,
        timeout: Duration,
    ) -> Result<(), WaitTimeout> {
        let limit = Instant::now() + timeout;
        loop {
            self.settle().await;
            if predicate(&self.cluster) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= limit {
                return Err(WaitTimeout(timeout));
            }
            let controllers = self.server.control_plane().and_then(ControlPlane::next_deadline);
            let operators = self.activities().iter().filter_map(Activity::next_deadline).min();
            let next = [operators, controllers]
                .into_iter()
                .flatten()
                .filter(|d| *d > now)
                .min()
                .map_or(limit, |d| d.min(limit));
            tokio::time::sleep_until(next).await;
        }
    }

    /// Stops the operator gracefully and starts it again on the same cluster.
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
            if let Err(e) = running.join().await {
                panic!("the operator failed while stopping: {e}");
            }
        }
        self.timeline.record("runner", "operator stopped gracefully");
        self.launch().await;
        self.settle().await;
    }

    /// Aborts the operator at its current await point (e.g. mid-handler) and starts it again.
    pub async fn crash(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
            let _ = running.join().await;
        }
        self.timeline.record("runner", "operator crashed");
        self.launch().await;
        self.settle().await;
    }

    /// Stops the operator gracefully.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
            let _ = running.join().await;
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- KopfRunner timeline ---\n{}--- end of timeline ---", self.timeline);
        }
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}
