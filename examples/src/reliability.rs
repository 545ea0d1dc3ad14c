//! The reliability harness: an operator with create, update and delete handlers, a daemon and a
//! timer, driven on [`KopfRunner`] through a schedule of user actions, API faults, watch faults and
//! operator crashes, a peer of higher priority appearing and vanishing, then left alone with the faults gone and checked against what an operator
//! promises. Shared by the property suite (`tests/it/kopf/reliability.rs`, proptest with shrinking)
//! and the fault matrix (`cargo run --release -p kopf-bench --bin fault-matrix`).
//!
//! A [`Scenario`] is data: a seed (uids, random faults, handler timings) and [`Step`]s. The same
//! scenario gives the same run, so a failure replays from its seed ([`scenario_from_seed`]) or from
//! the printed scenario.
//!
//! # The invariants ([`Report::violations`])
//! - **Every object's last change handled**: once quiet, every object's diff-base holds its current
//!   `spec.field`, no progress record is left, and some changing handler succeeded on that value.
//! - **No re-run after a persisted success**: a handler never starts for a change whose success is
//!   already stored on the object (checked in the handler, against the fake's store). Handlers are
//!   at-least-once: a re-run is allowed when the success was not stored, and counted by its cause —
//!   a crash ([`Report::reruns_after_crash`]) or graceful restart, or a failed patch; a re-run with
//!   neither is a violation.
//! - **No finalizer left behind**: every deleted object is gone, and one deleted while it had kopf's
//!   finalizer got its delete handler's success first.
//! - **No daemon for a gone object**: exactly one daemon runs per existing object, started by the
//!   current operator; none for gone objects or from a crashed operator. Timers run for every
//!   existing object and for no other.
//! - **No outcome lost**: `status.<handler>` holds the result of the handler's last successful run.
//! - **Ordered, gap-free watches**: from the fake's journal, every watch delivered its resource's
//!   changes in resourceVersion order with none missing up to the last one it reported, and every
//!   re-watch resumed no later than what the previous watch (or a re-list) had covered.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fake_apiserver::{Cluster, Journal, Verb};
use kopf::{Context, DiffBaseStorage, HandlerError, Operator, ProgressStorage};
use kopf_testing::{DirectApiClient, Fault, KopfRunner, RandomFaults, Runner};
use proptest::prelude::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

use crate::kopfexample::{KopfExample, example};

/// How many object names the scenarios use (`ex0` …): few, so actions collide.
pub const OBJECTS: u8 = 4;

/// The timer's interval.
pub const TIMER: Duration = Duration::from_secs(20);

/// The operator's `settings.watching.server_timeout`: its watches end and are re-opened this
/// often.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the quiet phase may take to converge before the run counts as stuck.
pub const CONVERGENCE_LIMIT: Duration = Duration::from_secs(2 * 3600);

const GROUP: &str = "kopf.dev";
const PLURAL: &str = "kopfexamples";
const RESOURCE: &str = "kopfexamples.kopf.dev";
const FINALIZER: &str = "kopf.zalando.org/KopfFinalizerMarker";
const PREFIX: &str = "kopf.zalando.org/";
/// The changing handlers whose outcomes land in the status.
const RESULT_HANDLERS: [&str; 3] = ["create_a", "create_b", "update_fn"];

/// A kind of fault a scenario turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Watches end early (after 0–2 events) and the server closes all watches at random steps
    /// (as it does for the other watch faults, so re-watches meet them).
    WatchDrop,
    /// Watches deliver nothing and never end; only the inactivity timeout gets the operator out.
    WatchStall,
    /// Watches start with 410 Gone, and the history is compacted at random steps.
    WatchGone,
    /// 409 Conflict on any patch.
    Conflict,
    /// 429 TooManyRequests with `Retry-After` of 1, 3 or 7 s on any request.
    Throttle,
    /// 500, 503 and 504 on any request.
    ServerError,
    /// 10 ms to 5 s of latency on any request.
    Latency,
    /// The operator aborted at a random moment (at whatever await point it is) and started again;
    /// small request latencies spread its await points over virtual time.
    Crash,
    /// The operator stopped gracefully at a random moment and started again.
    Restart,
    /// A peer of higher priority appears in the peering object (the operator pauses: watches,
    /// workers, daemons and timers) and vanishes — leaving gracefully or dying, its record then
    /// expiring after its lifetime.
    Peer,
}

impl FaultKind {
    /// Every kind, in the matrix's order.
    pub const ALL: [Self; 10] = [
        Self::WatchDrop,
        Self::WatchStall,
        Self::WatchGone,
        Self::Conflict,
        Self::Throttle,
        Self::ServerError,
        Self::Latency,
        Self::Crash,
        Self::Restart,
        Self::Peer,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::WatchDrop => "watch drop",
            Self::WatchStall => "watch stall",
            Self::WatchGone => "410 Gone",
            Self::Conflict => "409 on patches",
            Self::Throttle => "429 Retry-After",
            Self::ServerError => "500/503/504",
            Self::Latency => "latency",
            Self::Crash => "crash",
            Self::Restart => "restart",
            Self::Peer => "peer come/go",
        }
    }

    /// The seeded random faults of this kind, for the operator's requests only.
    fn random_faults(self, seed: u64) -> Option<RandomFaults> {
        let ms = Duration::from_millis;
        let (rate, faults, verb) = match self {
            Self::WatchDrop => {
                (0.5, vec![Fault::watch_drop(0), Fault::watch_drop(1), Fault::watch_drop(2)], None)
            }
            Self::WatchStall => (0.3, vec![Fault::watch_stall()], None),
            Self::WatchGone => (0.3, vec![Fault::watch_gone()], None),
            Self::Conflict => (0.25, vec![Fault::conflict()], Some(Verb::Patch)),
            Self::Throttle => (
                0.15,
                vec![Fault::too_many_requests(1), Fault::too_many_requests(3), Fault::too_many_requests(7)],
                None,
            ),
            Self::ServerError => (
                0.15,
                vec![Fault::internal_error(), Fault::service_unavailable(), Fault::gateway_timeout()],
                None,
            ),
            Self::Latency => (
                0.5,
                vec![
                    Fault::Latency(ms(10)),
                    Fault::Latency(ms(100)),
                    Fault::Latency(ms(1000)),
                    Fault::Latency(ms(5000)),
                ],
                None,
            ),
            Self::Crash => {
                (0.8, vec![Fault::Latency(ms(5)), Fault::Latency(ms(20)), Fault::Latency(ms(50))], None)
            }
            Self::Restart | Self::Peer => return None,
        };
        let mut random = RandomFaults::new(seed ^ self as u64, rate, faults).actor("kopf");
        if let Some(verb) = verb {
            random = random.verb(verb);
        }
        Some(random)
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create `ex<n>` (nothing if it exists).
    Create(u8),
    /// Set `ex<n>`'s `spec.field` to a value never used before (nothing if it does not exist).
    Update(u8),
    /// Delete `ex<n>` (nothing if it does not exist).
    Delete(u8),
    /// Let virtual time pass while the operator works.
    Wait(Duration),
    /// Wait until the operator has nothing left to do now.
    Settle,
    /// After this much virtual time, abort the operator and start it again.
    Crash(Duration),
    /// After this much virtual time, stop the operator gracefully and start it again.
    Restart(Duration),
    /// The server closes every open watch.
    DropWatches,
    /// The server compacts its watch history: resumed watches get 410 Gone.
    Compact,
    /// A peer of higher priority appears with a record of this lifetime (seconds) and, if given,
    /// leaves gracefully after this much virtual time (else its record expires).
    Peer(u64, Option<Duration>),
}

/// A schedule of steps with its faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Seeds the fake (uids), the random faults and the handlers' timings and failures.
    pub seed: u64,
    /// The faults turned on.
    pub kinds: Vec<FaultKind>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

fn wait() -> BoxedStrategy<Duration> {
    prop_oneof![
        4 => (0u64..5_000).prop_map(Duration::from_millis),
        1 => (5u64..150).prop_map(Duration::from_secs),
    ]
    .boxed()
}

fn step(kinds: &[FaultKind]) -> BoxedStrategy<Step> {
    let object = || 0..OBJECTS;
    let mut options: Vec<(u32, BoxedStrategy<Step>)> = vec![
        (4, object().prop_map(Step::Create).boxed()),
        (5, object().prop_map(Step::Update).boxed()),
        (2, object().prop_map(Step::Delete).boxed()),
        (3, wait().prop_map(Step::Wait).boxed()),
        (1, Just(Step::Settle).boxed()),
    ];
    let moment = || (0u64..3_000).prop_map(Duration::from_millis);
    if kinds.contains(&FaultKind::Crash) {
        options.push((3, moment().prop_map(Step::Crash).boxed()));
    }
    if kinds.contains(&FaultKind::Restart) {
        options.push((3, moment().prop_map(Step::Restart).boxed()));
    }
    if kinds.iter().any(|k| matches!(k, FaultKind::WatchDrop | FaultKind::WatchStall | FaultKind::WatchGone))
    {
        options.push((2, Just(Step::DropWatches).boxed()));
    }
    if kinds.contains(&FaultKind::WatchGone) {
        options.push((2, Just(Step::Compact).boxed()));
    }
    if kinds.contains(&FaultKind::Peer) {
        let leaves = prop::option::of((0u64..90_000).prop_map(Duration::from_millis));
        options.push((2, (5u64..120, leaves).prop_map(|(l, after)| Step::Peer(l, after)).boxed()));
    }
    prop::strategy::Union::new_weighted(options).boxed()
}

/// Scenarios with these faults: up to 30 steps (shrinking removes steps and shortens waits).
pub fn scenario(kinds: Vec<FaultKind>) -> impl Strategy<Value = Scenario> {
    let steps = prop::collection::vec(step(&kinds), 1..30);
    (any::<u64>(), steps).prop_map(move |(seed, steps)| Scenario { seed, kinds: kinds.clone(), steps })
}

/// Scenarios with a random set of faults.
pub fn any_scenario() -> impl Strategy<Value = Scenario> {
    prop::sample::subsequence(FaultKind::ALL.to_vec(), 0..=FaultKind::ALL.len()).prop_flat_map(scenario)
}

/// The scenario a seed stands for, with these faults: what the matrix runs, and how a seed
/// printed by a failure is replayed.
pub fn scenario_from_seed(seed: u64, kinds: &[FaultKind]) -> Scenario {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    match scenario(kinds.to_vec()).new_tree(&mut runner) {
        Ok(tree) => Scenario { seed, ..tree.current() },
        // The strategy has no filters, so it cannot reject; an empty scenario still runs.
        Err(_) => Scenario { seed, kinds: kinds.to_vec(), steps: Vec::new() },
    }
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Broken invariants, one line each (empty: the run is good).
    pub violations: Vec<String>,
    /// Changing handler runs.
    pub handler_runs: u64,
    /// Re-runs of a handler whose success was not stored because the operator crashed first.
    pub reruns_after_crash: u64,
    /// Re-runs of a handler whose success was not stored because the operator was restarted.
    pub reruns_after_restart: u64,
    /// Re-runs of a handler whose success was not stored because the patch failed.
    pub reruns_after_failed_patch: u64,
    /// Faults the fake injected.
    pub faults: u64,
    /// Watches the operator opened.
    pub watches: u64,
    /// Virtual time the run took.
    pub virtual_time: Duration,
    /// The timeline (empty unless asked for).
    pub timeline: String,
}

/// How to run a scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Keep and return the timeline (slower; for replays and failures).
    pub timeline: bool,
}

/// The ledger the handlers keep.
#[derive(Debug, Default)]
struct Ledger {
    runs: u64,
    /// The last success of a handler for a change: (handler, uid, change) → when.
    successes: BTreeMap<(String, String, String), Success>,
    /// The last successful result per handler and uid.
    results: BTreeMap<(String, String), Value>,
    /// The `spec.field` values a changing handler succeeded on, per uid.
    handled_fields: BTreeMap<String, BTreeSet<String>>,
    /// Daemons alive: uid → the operator incarnations that started them.
    daemons: BTreeMap<String, Vec<u64>>,
    /// Timer runs per uid since the last reset.
    timer_runs: BTreeMap<String, u64>,
    /// Objects deleted while they had kopf's finalizer: uid → name.
    deleted_with_finalizer: BTreeMap<String, String>,
    violations: Vec<String>,
    reruns_after_crash: u64,
    reruns_after_restart: u64,
    reruns_after_failed_patch: u64,
}

#[derive(Debug, Clone, Copy)]
struct Success {
    incarnation: u64,
    journal_seq: u64,
}

/// What the handlers share with the harness.
#[derive(Debug, Default)]
struct World {
    seed: u64,
    cluster: OnceLock<Cluster>,
    /// Bumped at every crash or restart, before the operator is stopped.
    incarnation: AtomicU64,
    /// Incarnations that began with a graceful restart.
    restarts: Mutex<BTreeSet<u64>>,
    ledger: Mutex<Ledger>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn hash(parts: &[&str], seed: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    parts.hash(&mut h);
    h.finish()
}

/// Whether the object as stored records `handler`'s success for `change`.
fn persisted(handler: &str, uid: &str, change: &str, body: &Value) -> bool {
    if body["metadata"]["uid"].as_str() != Some(uid) {
        return false;
    }
    if ProgressStorage::default().fetch(handler, body).is_some_and(|r| r.success == Some(true)) {
        return true;
    }
    let diffbase = DiffBaseStorage::default().fetch(body);
    match handler {
        "create_a" | "create_b" => diffbase.is_some(),
        "update_fn" => diffbase.is_some_and(|d| d["spec"]["field"].as_str() == Some(change)),
        _ => false,
    }
}

impl World {
    fn cluster(&self) -> Option<&Cluster> {
        self.cluster.get()
    }

    fn incarnation(&self) -> u64 {
        self.incarnation.load(Ordering::SeqCst)
    }

    /// A changing handler starts: check and classify it. Returns the operator incarnation it runs
    /// in, which its success is attributed to (a crash may bump the incarnation while it runs).
    fn begin(&self, handler: &str, uid: &str, change: &str, name: &str) -> u64 {
        let incarnation = self.incarnation();
        let Some(cluster) = self.cluster() else { return incarnation };
        let stored = cluster.object(GROUP, PLURAL, "default", name).map(|o| o.value());
        let persisted = stored.as_ref().is_some_and(|b| persisted(handler, uid, change, b));
        let mut ledger = lock(&self.ledger);
        ledger.runs += 1;
        let key = (handler.to_owned(), uid.to_owned(), change.to_owned());
        if persisted {
            ledger.violations.push(format!(
                "{handler} started for {name} (uid {uid}, change {change:?}) although its success is stored on the object"
            ));
            return incarnation;
        }
        let Some(previous) = ledger.successes.get(&key).copied() else { return incarnation };
        if previous.incarnation != incarnation {
            let restarted =
                lock(&self.restarts).range(previous.incarnation + 1..=incarnation).next().is_some();
            if restarted {
                ledger.reruns_after_restart += 1;
            } else {
                ledger.reruns_after_crash += 1;
            }
            return incarnation;
        }
        let failed_patch = cluster.journal(|j| {
            j.operations().any(|op| {
                op.seq > previous.journal_seq
                    && op.actor == "kopf"
                    && op.verb == Verb::Patch
                    && op.name.as_deref() == Some(name)
                    && op.code >= 400
            })
        });
        if failed_patch {
            ledger.reruns_after_failed_patch += 1;
        } else {
            ledger.violations.push(format!(
                "{handler} ran again for {name} (uid {uid}, change {change:?}) with no crash, restart or failed patch since its success"
            ));
        }
        incarnation
    }

    /// A changing handler that began in operator `incarnation` succeeds (not the current
    /// incarnation: a crash at the very instant of its return has already bumped it).
    fn succeed(&self, incarnation: u64, handler: &str, uid: &str, change: &str, field: &str, result: &Value) {
        let journal_seq = self.cluster().map_or(0, |c| c.journal(Journal::last_seq));
        let mut ledger = lock(&self.ledger);
        ledger.successes.insert(
            (handler.to_owned(), uid.to_owned(), change.to_owned()),
            Success { incarnation, journal_seq },
        );
        ledger.results.insert((handler.to_owned(), uid.to_owned()), result.clone());
        ledger.handled_fields.entry(uid.to_owned()).or_default().insert(field.to_owned());
    }
}

/// Counts a daemon alive while it lives (an aborted daemon drops it too).
struct DaemonAlive {
    world: Arc<World>,
    uid: String,
    incarnation: u64,
}

impl DaemonAlive {
    fn new(world: Arc<World>, uid: String) -> Self {
        let incarnation = world.incarnation();
        lock(&world.ledger).daemons.entry(uid.clone()).or_default().push(incarnation);
        Self { world, uid, incarnation }
    }
}

impl Drop for DaemonAlive {
    fn drop(&mut self) {
        let mut ledger = lock(&self.world.ledger);
        if let Some(list) = ledger.daemons.get_mut(&self.uid) {
            if let Some(i) = list.iter().position(|i| *i == self.incarnation) {
                list.remove(i);
            }
            if list.is_empty() {
                ledger.daemons.remove(&self.uid);
            }
        }
    }
}

/// Which change a changing handler handles.
#[derive(Debug, Clone, Copy)]
enum Cause {
    Create,
    Update,
    Delete,
}

fn changing(
    world: &Arc<World>,
    handler: &'static str,
    cause: Cause,
) -> impl Fn(Arc<KopfExample>, Context) -> futures::future::BoxFuture<'static, Result<Value, HandlerError>>
+ Send
+ Sync
+ 'static {
    let world = world.clone();
    move |ex: Arc<KopfExample>, ctx: Context| {
        let world = world.clone();
        let uid = ctx.uid().unwrap_or_default().to_owned();
        let name = ctx.name().unwrap_or_default().to_owned();
        let field = ex.spec.field.clone();
        let change = match cause {
            Cause::Create | Cause::Delete => uid.clone(),
            Cause::Update => field.clone(),
        };
        let retry = ctx.retry();
        Box::pin(async move {
            let incarnation = world.begin(handler, &uid, &change, &name);
            let h = hash(&[handler, &uid, &change], world.seed);
            // Handlers take 0–800 ms of virtual time, so crashes find them mid-run.
            tokio::time::sleep(Duration::from_millis(h % 801)).await;
            if (h >> 16).is_multiple_of(5) && retry == 0 {
                return Err(HandlerError::temporary("not yet").with_delay(Duration::from_secs(2)));
            }
            let result = json!({"field": field});
            world.succeed(incarnation, handler, &uid, &change, &field, &result);
            Ok(result)
        })
    }
}

fn operator(world: &Arc<World>) -> Operator {
    let daemon_world = world.clone();
    let timer_world = world.clone();
    Operator::new()
        .on_create(changing(world, "create_a", Cause::Create))
        .id("create_a")
        .on_create(changing(world, "create_b", Cause::Create))
        .id("create_b")
        .on_update(changing(world, "update_fn", Cause::Update))
        .id("update_fn")
        .on_delete(changing(world, "delete_fn", Cause::Delete))
        .id("delete_fn")
        .daemon(move |_ex: Arc<KopfExample>, ctx: Context| {
            let world = daemon_world.clone();
            async move {
                let _alive = DaemonAlive::new(world, ctx.uid().unwrap_or_default().to_owned());
                ctx.stopped().until_set().await;
                Ok::<_, HandlerError>(())
            }
        })
        .id("daemon")
        .timer(TIMER, move |_ex: Arc<KopfExample>, ctx: Context| {
            let uid = ctx.uid().unwrap_or_default().to_owned();
            *lock(&timer_world.ledger).timer_runs.entry(uid).or_default() += 1;
            async { Ok::<_, HandlerError>(()) }
        })
        .id("tick")
}

/// Runs a scenario and checks the invariants.
///
/// # Panics
/// Outside a current-thread runtime with a paused clock (KopfRunner's requirement).
pub async fn run(scenario: &Scenario, options: RunOptions) -> Report {
    let world = Arc::new(World { seed: scenario.seed, ..World::default() });
    let mut builder = KopfRunner::new(operator(&world))
        .with_crd::<KopfExample>()
        // Watches end every minute (`timeoutSeconds`), so watch faults get their chances.
        .settings(|s| s.watching.server_timeout = Some(WATCH_TIMEOUT))
        .seed(scenario.seed)
        .timeline(options.timeline);
    let peering = scenario.kinds.contains(&FaultKind::Peer);
    if peering {
        // The operator finds the peering served and uses it (Kopf's auto-detection).
        builder = builder.with_peering_crds().with_objects([kopf::peering::object(PEERING, None)]);
    }
    let mut runner = builder.start().await;
    let cluster = runner.server().cluster().clone();
    let _ = world.cluster.set(cluster.clone());
    let started = tokio::time::Instant::now();
    for kind in &scenario.kinds {
        if let Some(faults) = kind.random_faults(scenario.seed) {
            runner.random_faults(faults);
        }
    }
    let mut values = 0u32;
    for step in &scenario.steps {
        runner.timeline().record("step", format!("{step:?}"));
        perform(&mut runner, &world, step, &mut values).await;
    }
    runner.timeline().record("step", "faults cleared; quiet");
    runner.clear_faults();
    if peering {
        // The peer leaves for good (if it had not already).
        let _ = kopf::peering::resume(&DirectApiClient::new(cluster.clone()), &peer_command(&runner)).await;
    }
    let mut report = Report::default();
    // Quiet means the objects handled and the operator caught up with what is gone: a deletion
    // behind a stalled watch reaches it only when it reads the object back or re-watches, so its
    // daemons are checked once it has, within the same limit.
    let quiet = |c: &kopf_testing::TestCluster| {
        converged(c.raw()).is_none() && daemons_of_gone_objects(c.raw(), &world).is_empty()
    };
    if peering {
        // The peer is gone, but the operator learns it from its peering watch (which faults may
        // have stalled until its inactivity timeout): quiet begins once it has resumed.
        if runner.wait_for(|_| !runner.is_paused(), CONVERGENCE_LIMIT).await.is_err() {
            report.violations.push(format!("still paused {CONVERGENCE_LIMIT:?} after the peer left"));
        }
    }
    let converged = runner.wait_for(quiet, CONVERGENCE_LIMIT).await.is_ok();
    if !converged {
        let why = converged_now(&cluster);
        report.violations.push(format!("not converged {CONVERGENCE_LIMIT:?} after the faults ended: {why}"));
    }
    check_objects(&cluster, &world, &mut report);
    // Timers run for every existing object and no other.
    lock(&world.ledger).timer_runs.clear();
    runner.advance(TIMER * 2 + Duration::from_secs(1)).await;
    check_timers(&cluster, &world, &mut report);
    check_watches(&cluster, &mut report);
    let ledger = std::mem::take(&mut *lock(&world.ledger));
    report.violations.splice(0..0, ledger.violations);
    report.handler_runs = ledger.runs;
    report.reruns_after_crash = ledger.reruns_after_crash;
    report.reruns_after_restart = ledger.reruns_after_restart;
    report.reruns_after_failed_patch = ledger.reruns_after_failed_patch;
    report.faults = cluster.journal(|j| j.operations().filter(|o| o.fault.is_some()).count() as u64);
    report.watches = cluster.journal(|j| j.deliveries().filter(|d| d.event == "OPENED").count() as u64);
    report.virtual_time = started.elapsed();
    if options.timeline {
        report.timeline = runner.timeline().to_string();
    }
    runner.stop().await;
    report
}

async fn perform(runner: &mut Runner, world: &Arc<World>, step: &Step, values: &mut u32) {
    let cluster = runner.server().cluster().clone();
    let api = cluster.api::<KopfExample>(Some("default"));
    let name = |i: &u8| format!("ex{i}");
    match step {
        Step::Create(i) => {
            *values += 1;
            let _ = api.create(&example(&name(i), &format!("v{values}"))).await;
        }
        Step::Update(i) => {
            *values += 1;
            let _ = api.merge(&name(i), json!({"spec": {"field": format!("v{values}")}})).await;
        }
        Step::Delete(i) => {
            if let Some(object) = cluster.object(GROUP, PLURAL, "default", &name(i))
                && object.finalizers().iter().any(|f| f == FINALIZER)
            {
                lock(&world.ledger).deleted_with_finalizer.insert(object.uid().to_owned(), name(i));
            }
            let _ = api.delete(&name(i)).await;
        }
        Step::Wait(d) => tokio::time::sleep(*d).await,
        Step::Settle => runner.settle().await,
        Step::Crash(d) => {
            tokio::time::sleep(*d).await;
            world.incarnation.fetch_add(1, Ordering::SeqCst);
            runner.crash().await;
        }
        Step::Restart(d) => {
            tokio::time::sleep(*d).await;
            let next = world.incarnation.fetch_add(1, Ordering::SeqCst) + 1;
            lock(&world.restarts).insert(next);
            runner.restart().await;
        }
        Step::DropWatches => cluster.drop_watches(),
        Step::Compact => cluster.compact(),
        Step::Peer(lifetime, leaves_after) => {
            let client = DirectApiClient::new(cluster.clone());
            let command = peer_command(runner);
            // The peer's own requests may fail like anyone's: then it did not appear (or leaves
            // when its record expires).
            let _ = kopf::peering::freeze(&client, &command, *lifetime).await;
            if let Some(after) = leaves_after {
                tokio::time::sleep(*after).await;
                let _ = kopf::peering::resume(&client, &command).await;
            }
        }
    }
}

/// The peering object the operator and the peer share.
const PEERING: &str = "default";

/// The peer: a record of priority 100 (above the operator's 0) on the operator's clock.
fn peer_command(runner: &Runner) -> kopf::peering::PeeringCommand {
    kopf::peering::PeeringCommand::new(PEERING).identity("peer@elsewhere").clock(runner.clock())
}

/// Why the cluster is not yet quiet and handled, if it is not.
fn converged(cluster: &Cluster) -> Option<String> {
    for object in cluster.objects(GROUP, PLURAL) {
        let body = object.value();
        let name = object.name();
        if object.is_deleting() {
            return Some(format!("{name} is still being deleted (finalizers {:?})", object.finalizers()));
        }
        let field = body["spec"]["field"].as_str().unwrap_or_default();
        let diffbase = DiffBaseStorage::default().fetch(&body);
        if diffbase.as_ref().and_then(|d| d["spec"]["field"].as_str()) != Some(field) {
            return Some(format!("{name}'s diff-base does not hold its spec.field {field:?}: {diffbase:?}"));
        }
        let annotations = body["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
        let leftovers: Vec<&String> = annotations
            .keys()
            .filter(|k| {
                k.starts_with(PREFIX)
                    && !k.ends_with("last-handled-configuration")
                    && !k.ends_with("touch-dummy")
            })
            .collect();
        if !leftovers.is_empty() {
            return Some(format!("{name} keeps progress records {leftovers:?}"));
        }
    }
    None
}

/// The uids of gone objects that daemons still run for.
fn daemons_of_gone_objects(cluster: &Cluster, world: &World) -> Vec<String> {
    let objects = cluster.objects(GROUP, PLURAL);
    let existing: BTreeSet<&str> = objects.iter().map(|o| o.uid()).collect();
    lock(&world.ledger).daemons.keys().filter(|uid| !existing.contains(uid.as_str())).cloned().collect()
}

fn converged_now(cluster: &Cluster) -> String {
    converged(cluster).unwrap_or_else(|| "converged only now".to_owned())
}

fn check_objects(cluster: &Cluster, world: &World, report: &mut Report) {
    let ledger = lock(&world.ledger);
    let objects = cluster.objects(GROUP, PLURAL);
    let existing: BTreeSet<&str> = objects.iter().map(|o| o.uid()).collect();
    for object in &objects {
        let body = object.value();
        let (name, uid) = (object.name(), object.uid());
        let field = body["spec"]["field"].as_str().unwrap_or_default();
        if !ledger.handled_fields.get(uid).is_some_and(|f| f.contains(field)) {
            report.violations.push(format!("{name}'s last change (spec.field {field:?}) was never handled"));
        }
        for handler in RESULT_HANDLERS {
            let stored = &body["status"][handler];
            match ledger.results.get(&(handler.to_owned(), uid.to_owned())) {
                Some(result) if stored != result => report.violations.push(format!(
                    "{name}'s status.{handler} is {stored}, not its last successful result {result}"
                )),
                None if handler != "update_fn" => {
                    report.violations.push(format!("{handler} never succeeded for {name}"))
                }
                _ => {}
            }
        }
        let daemons = ledger.daemons.get(uid).cloned().unwrap_or_default();
        if daemons != [world.incarnation()] {
            report.violations.push(format!(
                "{name} has daemons from operator incarnations {daemons:?}, not one from the current {}",
                world.incarnation()
            ));
        }
    }
    for (uid, incarnations) in &ledger.daemons {
        if !existing.contains(uid.as_str()) {
            report.violations.push(format!("daemons {incarnations:?} still run for the gone object {uid}"));
        }
    }
    for (uid, name) in &ledger.deleted_with_finalizer {
        if existing.contains(uid.as_str()) {
            continue; // still being deleted: reported as not converged
        }
        let handled = ledger.successes.keys().any(|(h, u, _)| h == "delete_fn" && u == uid);
        if !handled {
            report.violations.push(format!(
                "{name} (uid {uid}) was deleted with kopf's finalizer but its delete handler never succeeded"
            ));
        }
    }
}

fn check_timers(cluster: &Cluster, world: &World, report: &mut Report) {
    let ledger = lock(&world.ledger);
    let objects = cluster.objects(GROUP, PLURAL);
    let existing: BTreeSet<&str> = objects.iter().map(|o| o.uid()).collect();
    for object in &objects {
        if !ledger.timer_runs.contains_key(object.uid()) {
            report.violations.push(format!("the timer did not run for {} in two intervals", object.name()));
        }
    }
    for uid in ledger.timer_runs.keys() {
        if !existing.contains(uid.as_str()) {
            report.violations.push(format!("the timer ran for the gone object {uid}"));
        }
    }
}

/// Checks, from the journal, that every watch was ordered and gap-free and that every re-watch
/// resumed where the previous watch (or a re-list) left off.
fn check_watches(cluster: &Cluster, report: &mut Report) {
    let problems = cluster.journal(|journal| watch_problems(journal, RESOURCE, "kopf"));
    report.violations.extend(problems);
}

/// What one watch delivered, from the journal.
#[derive(Debug, Default)]
struct WatchSeen {
    opened_seq: u64,
    namespace: String,
    start: u64,
    /// Object events: (rv, event, namespace, name).
    events: Vec<(u64, String, String, String)>,
    /// The highest resourceVersion covered (last object event or bookmark).
    up_to: u64,
    problems: Vec<String>,
    ended: bool,
}

/// Problems with the watches of `resource`, and with `actor`'s re-watches of it.
pub fn watch_problems(journal: &Journal, resource: &str, actor: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if journal.dropped() > 0 {
        problems
            .push(format!("the journal dropped {} records; watches cannot be checked", journal.dropped()));
        return problems;
    }
    // Changes of the resource, by resourceVersion.
    let revisions: Vec<(u64, &str, &str, &str)> = journal
        .revisions()
        .filter(|r| r.resource == resource)
        .map(|r| (r.resource_version, r.event, &*r.namespace, &*r.name))
        .collect();
    let mut watches: BTreeMap<u64, WatchSeen> = BTreeMap::new();
    for d in journal.deliveries().filter(|d| &*d.resource == resource) {
        let w = watches.entry(d.watch).or_default();
        match d.event {
            "OPENED" => {
                w.opened_seq = d.seq;
                w.namespace = d.namespace.to_string();
                w.start = d.resource_version;
                w.up_to = d.resource_version;
            }
            "CLOSED" => w.ended = true,
            _ if w.ended => w.problems.push(format!("{} after the watch ended", d.event)),
            "BOOKMARK" => {
                if d.resource_version < w.up_to {
                    w.problems.push(format!("bookmark {} after {}", d.resource_version, w.up_to));
                }
                w.up_to = w.up_to.max(d.resource_version);
            }
            "ERROR" => w.ended = true,
            event => {
                if d.resource_version <= w.up_to {
                    w.problems.push(format!("{event} {} after {}", d.resource_version, w.up_to));
                }
                w.up_to = w.up_to.max(d.resource_version);
                w.events.push((
                    d.resource_version,
                    event.to_owned(),
                    d.namespace.to_string(),
                    d.name.to_string(),
                ));
            }
        }
    }
    for (id, w) in &watches {
        let start = revisions.partition_point(|r| r.0 <= w.start);
        let end = revisions.partition_point(|r| r.0 <= w.up_to);
        let expected: Vec<(u64, String, String, String)> = revisions[start..end]
            .iter()
            .filter(|r| w.namespace.is_empty() || r.2 == w.namespace)
            .map(|r| (r.0, r.1.to_owned(), r.2.to_owned(), r.3.to_owned()))
            .collect();
        if w.events != expected {
            let delivered: BTreeSet<u64> = w.events.iter().map(|e| e.0).collect();
            let missing: Vec<u64> =
                expected.iter().map(|e| e.0).filter(|rv| !delivered.contains(rv)).collect();
            problems.push(format!(
                "watch {id} of {resource} from rv {} up to {}: missing {missing:?}, delivered {:?}",
                w.start,
                w.up_to,
                w.events.iter().map(|e| e.0).collect::<Vec<_>>()
            ));
        }
        for p in &w.problems {
            problems.push(format!("watch {id} of {resource}: out of order: {p}"));
        }
    }
    // Re-watches: each starts no later than what the previous watch of the same namespace covered,
    // or a list made since it opened.
    let lists: Vec<(u64, Option<String>, u64)> = journal
        .operations()
        .filter(|o| o.verb == Verb::List && o.resource == resource && o.actor == actor && o.code == 200)
        .filter_map(|o| Some((o.seq, o.namespace.clone(), o.resource_version?)))
        .collect();
    let mut previous: BTreeMap<&str, &WatchSeen> = BTreeMap::new();
    for (id, w) in &watches {
        if let Some(prev) = previous.get(w.namespace.as_str()) {
            let namespace = (!w.namespace.is_empty()).then(|| w.namespace.clone());
            let relisted = lists
                .iter()
                .filter(|l| l.0 > prev.opened_seq && l.0 < w.opened_seq && l.1 == namespace)
                .map(|l| l.2)
                .max()
                .unwrap_or(0);
            let covered = prev.up_to.max(relisted);
            if w.start > covered {
                problems.push(format!(
                    "watch {id} of {resource} resumed from rv {} but only {covered} was seen: changes skipped",
                    w.start
                ));
            }
        }
        previous.insert(w.namespace.as_str(), w);
    }
    problems
}
