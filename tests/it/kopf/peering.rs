//! Peering on KopfRunner (reference/kopf.md §1.17): operators sharing a peering object pause in
//! favour of higher (or equal) priorities, take over when a higher peer leaves or its record
//! expires, ignore it all when standalone, and obey `freeze`/`resume` from outside.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kopf::peering::{PeeringCommand, freeze, resume};
use kopf::{Context, HandlerError, KubeApiClient, Operator};
use kopf_testing::{DirectApiClient, KopfRunner, OperatorHandle, Runner};
use serde_json::{Value, json};

use crate::common::*;

/// Who ran which handler on which object, in order.
type Log = Arc<Mutex<Vec<(String, String)>>>;

/// An operator named `peer` with a creation handler that logs itself and stores `{"by": peer}`.
fn peer(name: &str, priority: i64, log: &Log) -> Operator {
    let (name, log) = (name.to_owned(), log.clone());
    Operator::new()
        .on_create(move |ex: Arc<KopfExample>, _ctx: Context| {
            let (name, log) = (name.clone(), log.clone());
            async move {
                log.lock().unwrap().push((name.clone(), ex.metadata.name.clone().unwrap_or_default()));
                Ok::<_, HandlerError>(json!({"by": name}))
            }
        })
        .id("create_fn")
        .settings(move |s| s.peering.priority = priority)
}

/// A runner with the example CRD, the peering CRDs and the cluster-wide peering object `default`.
fn peered() -> KopfRunner {
    cluster().with_peering_crds().with_objects([kopf::peering::object("default", None)])
}

/// A runner with the example CRD whose own operator stays out of the way (no handlers, standalone):
/// the peers are spawned on it.
fn cluster() -> KopfRunner {
    KopfRunner::new(Operator::new().settings(|s| s.peering.standalone = true)).with_crd::<KopfExample>()
}

/// Operators spawned by name on one runner, stopped, crashed and started by name; settled after
/// each step.
struct Peers {
    runner: Runner,
    handles: Vec<OperatorHandle>,
}

impl std::ops::Deref for Peers {
    type Target = Runner;
    fn deref(&self) -> &Runner {
        &self.runner
    }
}

impl Peers {
    async fn start(runner: KopfRunner, peers: Vec<(&str, Operator)>) -> Self {
        let mut this = Self { runner: runner.start().await, handles: Vec::new() };
        for (name, operator) in peers {
            this.add(name, operator).await;
        }
        this
    }

    async fn add(&mut self, name: &str, operator: Operator) {
        let handle = self.runner.spawn_operator(name, operator).await;
        self.handles.push(handle);
        self.runner.settle().await;
    }

    fn handle(&mut self, name: &str) -> &mut OperatorHandle {
        self.handles.iter_mut().find(|h| h.label() == name).unwrap_or_else(|| panic!("no peer {name}"))
    }

    /// A crash, not followed by a start.
    async fn kill(&mut self, name: &str) {
        self.handle(name).crash().await;
        self.runner.settle().await;
    }

    async fn stop(&mut self, name: &str) {
        self.handle(name).stop().await;
        self.runner.settle().await;
    }

    async fn restart(&mut self, name: &str) {
        self.handle(name).start().await;
        self.runner.settle().await;
    }

    fn is_running(&self, name: &str) -> bool {
        self.handles.iter().any(|h| h.label() == name && h.is_running())
    }
}

/// The cluster-wide peering object's `status`.
fn peering_status(runner: &Runner, name: &str) -> Value {
    runner
        .cluster()
        .raw()
        .object("kopf.dev", "clusterkopfpeerings", "", name)
        .map(|o| o.value()["status"].clone())
        .unwrap_or(Value::Null)
}

fn handled_by(runner: &Runner, name: &str) -> Option<String> {
    let ex = runner.cluster().peek::<KopfExample>(name)?;
    status(&ex)["create_fn"]["by"].as_str().map(str::to_owned)
}

fn lines(runner: &Runner, kind: &str, prefix: &str) -> Vec<String> {
    runner.timeline().of_kind(kind).into_iter().map(|e| e.text).filter(|t| t.starts_with(prefix)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_lower_priority_peer_pauses_while_a_higher_one_lives_and_takes_over_within_the_lifetime_after_it_dies()
 {
    let log = Log::default();
    let mut runner =
        Peers::start(peered(), vec![("high", peer("high", 10, &log)), ("low", peer("low", 1, &log))]).await;

    // Both records, in Kopf's format; only the lower one paused.
    let status = peering_status(&runner, "default");
    for (id, priority) in [("high", 10), ("low", 1)] {
        assert_eq!(status[id]["priority"], priority, "{status}");
        assert_eq!(status[id]["lifetime"], 60, "{status}");
        assert_eq!(status[id]["lastseen"], "2026-01-01T00:00:00+00:00", "{status}");
    }
    assert_eq!(
        lines(&runner, "peering", "[low]"),
        vec![
            "[low] paused by default@: in favour of [<Peer high: priority=10, lifetime=60, lastseen='2026-01-01T00:00:00+00:00'>]"
        ]
    );
    assert!(
        lines(&runner, "peering", "[high]").iter().all(|l| l.contains("resumed")),
        "{}",
        runner.timeline()
    );
    // The paused peer watches only the peering: its example stream is closed.
    assert_eq!(runner.cluster().raw().open_watches(), 3, "high: examples + peering; low: peering");

    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("high"));
    assert!(lines(&runner, "watch", "[low]").is_empty(), "the paused peer saw no example event");
    assert_eq!(*log.lock().unwrap(), vec![("high".to_owned(), "ex1".to_owned())]);

    // A crash: the record stays until it expires, and only then does the lower peer take over.
    runner.advance(Duration::from_secs(20)).await;
    let died = runner.elapsed();
    runner.kill("high").await;
    runner.cluster().create(example("ex2", "b")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex2"), None, "nobody handles while the dead peer's record lives");
    runner
        .wait_for(|_| handled_by(&runner, "ex2").is_some(), Duration::from_secs(120))
        .await
        .expect("the lower peer takes over");
    let takeover = runner.elapsed() - died;
    assert!(takeover <= Duration::from_secs(60), "within the lifetime: {takeover:?}");
    assert!(takeover > Duration::ZERO);
    assert_eq!(handled_by(&runner, "ex2").as_deref(), Some("low"));
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("high"), "ex1 is not handled again");
    let status = peering_status(&runner, "default");
    assert!(status.get("high").is_none(), "the dead record is cleaned: {status}");
    assert_eq!(status["low"]["priority"], 1);
    assert_eq!(log.lock().unwrap().len(), 2, "{:?}", log.lock().unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_graceful_exit_removes_the_record_and_the_lower_peer_resumes_at_once() {
    let log = Log::default();
    let mut runner =
        Peers::start(peered(), vec![("high", peer("high", 10, &log)), ("low", peer("low", 1, &log))]).await;
    runner.advance(Duration::from_secs(5)).await;
    let stopped = runner.elapsed();
    runner.stop("high").await;
    assert!(peering_status(&runner, "default").get("high").is_none());
    assert_eq!(
        lines(&runner, "peering", "[low]").last().unwrap(),
        "[low] resumed by default@: no higher or same-priority peers"
    );
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("low"));
    assert_eq!(runner.elapsed(), stopped, "no time passed");
}

#[tokio::test(start_paused = true)]
async fn a_higher_peer_starting_later_pauses_the_running_one_and_keep_alives_refresh_the_records() {
    let log = Log::default();
    let mut runner = Peers::start(peered(), vec![("low", peer("low", 1, &log))]).await;
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("low"));
    runner.add("high", peer("high", 10, &log)).await;
    assert_eq!(
        lines(&runner, "peering", "[low]").last().unwrap().split(':').next(),
        Some("[low] paused by default@")
    );
    runner.cluster().create(example("ex2", "b")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex2").as_deref(), Some("high"));
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("low"), "what low did is not redone");

    // An hour later both records are fresh: the keep-alives run every 50–55 s.
    runner.advance(Duration::from_secs(3600)).await;
    let status = peering_status(&runner, "default");
    let now = runner.clock().now();
    for id in ["low", "high"] {
        let lastseen: jiff::Timestamp = status[id]["lastseen"].as_str().unwrap().parse().unwrap();
        let age = now.duration_since(lastseen);
        assert!(age <= jiff::SignedDuration::from_secs(55), "{id}: {age:?}");
    }
    assert_eq!(lines(&runner, "peering", "[low]").iter().filter(|l| l.contains("resumed")).count(), 1);
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn peers_of_the_same_priority_both_pause_and_resume_when_one_leaves() {
    let log = Log::default();
    let mut runner = Peers::start(peered(), vec![("a", peer("a", 5, &log)), ("b", peer("b", 5, &log))]).await;
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex1"), None, "both are paused");
    assert!(lines(&runner, "peering", "[a]").last().unwrap().contains("conflicting with the same priority"));
    assert!(lines(&runner, "peering", "[b]").last().unwrap().contains("conflicting with the same priority"));
    runner.stop("b").await;
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("a"));
}

#[tokio::test(start_paused = true)]
async fn standalone_operators_ignore_peering() {
    let log = Log::default();
    let standalone = |name: &str| peer(name, 5, &log).settings(|s| s.peering.standalone = true);
    let runner = Peers::start(peered(), vec![("a", standalone("a")), ("b", standalone("b"))]).await;
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    let mut ran: Vec<String> = log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    ran.sort();
    assert_eq!(ran, vec!["a", "b"], "both handle: nothing pauses them");
    assert_eq!(peering_status(&runner, "default"), Value::Null, "no records are written");
    assert!(runner.timeline().of_kind("peering").is_empty());
}

#[tokio::test(start_paused = true)]
async fn freeze_pauses_lower_priorities_for_its_lifetime_and_resume_ends_it_at_once() {
    let log = Log::default();
    let runner = Peers::start(peered(), vec![("op", peer("op", 0, &log))]).await;
    let client = DirectApiClient::new(runner.cluster().raw().clone());
    let command = PeeringCommand::new("default").identity("admin@laptop").clock(runner.clock());
    assert_eq!(freeze(&client, &command, 300).await.unwrap(), 1);
    runner.settle().await;
    let status = peering_status(&runner, "default");
    assert_eq!(
        status["admin@laptop"],
        json!({"priority": 100, "lifetime": 300, "lastseen": "2026-01-01T00:00:00+00:00"})
    );
    runner.cluster().create(example("ex1", "a")).await;
    runner.advance(Duration::from_secs(100)).await;
    assert_eq!(handled_by(&runner, "ex1"), None, "frozen");
    assert_eq!(resume(&client, &command).await.unwrap(), 1);
    runner.settle().await;
    assert!(peering_status(&runner, "default").get("admin@laptop").is_none());
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("op"));

    // A freeze that is not resumed ends with its lifetime.
    let frozen = runner.elapsed();
    freeze(&client, &command.clone().priority(50), 30).await.unwrap();
    runner.cluster().create(example("ex2", "b")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex2"), None);
    runner.wait_for(|_| handled_by(&runner, "ex2").is_some(), Duration::from_secs(300)).await.unwrap();
    assert_eq!(runner.elapsed() - frozen, Duration::from_secs(30), "exactly at the record's deadline");
    assert!(
        peering_status(&runner, "default").get("admin@laptop").is_none(),
        "the expired freeze is cleaned"
    );
}

#[tokio::test(start_paused = true)]
async fn a_freeze_of_a_lower_priority_than_the_operator_does_not_pause_it() {
    let log = Log::default();
    let runner = Peers::start(peered(), vec![("op", peer("op", 200, &log))]).await;
    let client = DirectApiClient::new(runner.cluster().raw().clone());
    freeze(&client, &PeeringCommand::new("default").clock(runner.clock()), 300).await.unwrap();
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("op"));
}

#[tokio::test(start_paused = true)]
async fn without_a_peering_object_auto_detection_runs_standalone_and_a_mandatory_peering_waits_for_it() {
    let log = Log::default();
    let auto = peer("auto", 0, &log);
    // Its own identity on the objects, so that it handles them after the auto one did.
    let mandatory = peer("mandatory", 0, &log).settings(|s| {
        s.peering.mandatory = true;
        s.peering.name = "team".into();
        *s = std::mem::take(s).with_identity("mandatory.kopf.dev");
    });
    let runner =
        Peers::start(cluster().with_peering_crds(), vec![("auto", auto), ("mandatory", mandatory)]).await;
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert_eq!(*log.lock().unwrap(), vec![("auto".to_owned(), "ex1".to_owned())], "only the auto one runs");
    assert_eq!(
        lines(&runner, "peering", "[mandatory]"),
        vec!["[mandatory] paused by team@: the peering object \"team\" is absent"]
    );
    let client = DirectApiClient::new(runner.cluster().raw().clone());
    kopf::ApiClient::create(&client, &cluster_peerings(), None, &kopf::peering::object("team", None))
        .await
        .unwrap();
    runner.settle().await;
    assert_eq!(log.lock().unwrap().last().unwrap(), &("mandatory".to_owned(), "ex1".to_owned()));
}

fn cluster_peerings() -> kopf::Resource {
    kopf::Resource {
        group: "kopf.dev".into(),
        version: "v1".into(),
        plural: "clusterkopfpeerings".into(),
        kind: "ClusterKopfPeering".into(),
        singular: "clusterkopfpeering".into(),
        namespaced: false,
        preferred: true,
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_mandatory_peering_pauses_until_its_crd_and_object_appear() {
    let log = Log::default();
    let operator = peer("op", 0, &log).settings(|s| s.peering.mandatory = true);
    let runner = Peers::start(cluster(), vec![("op", operator)]).await;
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(
        lines(&runner, "peering", "[op]"),
        vec!["[op] paused by default@: the peering CRD is missing"]
    );
    let client = DirectApiClient::new(runner.cluster().raw().clone());
    let crds = kopf::Resource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        plural: "customresourcedefinitions".into(),
        kind: "CustomResourceDefinition".into(),
        ..Default::default()
    };
    for crd in kopf::peering::crds() {
        kopf::ApiClient::create(&client, &crds, None, &serde_json::to_value(crd).unwrap()).await.unwrap();
    }
    runner.settle().await;
    assert!(log.lock().unwrap().is_empty(), "the CRD alone is not enough: the object is missing");
    kopf::ApiClient::create(&client, &cluster_peerings(), None, &kopf::peering::object("default", None))
        .await
        .unwrap();
    runner.settle().await;
    assert_eq!(*log.lock().unwrap(), vec![("op".to_owned(), "ex1".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn namespaced_operators_peer_through_the_kopfpeering_of_each_namespace() {
    let log = Log::default();
    let namespaced = cluster()
        .namespaces(["default"])
        .with_peering_crds()
        .with_objects([kopf::peering::object("default", Some("default"))]);
    let runner =
        Peers::start(namespaced, vec![("high", peer("high", 10, &log)), ("low", peer("low", 1, &log))]).await;
    let stored = runner.cluster().raw().object("kopf.dev", "kopfpeerings", "default", "default").unwrap();
    let status = stored.value()["status"].clone();
    assert_eq!(
        (status["high"]["priority"].clone(), status["low"]["priority"].clone()),
        (json!(10), json!(1))
    );
    assert!(lines(&runner, "peering", "[low]")[0].starts_with("[low] paused by default@default"));
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("high"));
}

#[tokio::test(start_paused = true)]
async fn a_pause_stops_daemons_and_timers_and_a_resume_respawns_them() {
    let starts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = starts.clone();
    let operator = Operator::new()
        .daemon(move |_ex: Arc<KopfExample>, ctx: Context| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                ctx.stopped().until_set().await;
                Ok::<_, HandlerError>(json!(ctx.stopped().reason().map(|r| r.as_str())))
            }
        })
        .id("daemon_fn")
        .timer(Duration::from_secs(10), |_ex: Arc<KopfExample>, _ctx: Context| async move {
            Ok::<_, HandlerError>(())
        })
        .id("timer_fn");
    let runner = Peers::start(peered(), vec![("op", operator)]).await;
    runner.cluster().create(example("ex1", "a")).await;
    runner.advance(Duration::from_secs(25)).await;
    let timer_runs = |r: &Runner| lines(r, "handler", "[op] timer_fn").len();
    let before = timer_runs(&runner);
    assert!(before >= 2, "{}", runner.timeline());
    let client = DirectApiClient::new(runner.cluster().raw().clone());
    let command = PeeringCommand::new("default").clock(runner.clock());
    freeze(&client, &command, 3600).await.unwrap();
    runner.advance(Duration::from_secs(100)).await;
    assert_eq!(timer_runs(&runner), before, "no timer runs while paused");
    assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 1);
    let stopped = lines(&runner, "patch", "[op] kopfexamples.kopf.dev/status");
    assert!(stopped.iter().any(|l| l.contains(r#""daemon_fn":"OPERATOR_PAUSING""#)), "{}", runner.timeline());
    resume(&client, &command).await.unwrap();
    runner.advance(Duration::from_secs(15)).await;
    assert!(timer_runs(&runner) > before, "the timer is back");
    assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 2, "the daemon is back");
}

#[tokio::test(start_paused = true)]
async fn peering_works_over_the_kube_client_too() {
    let log = Log::default();
    let runner = Peers::start(
        peered().adapter(kopf_testing::Adapter::KubeClient),
        vec![("high", peer("high", 10, &log)), ("low", peer("low", 1, &log))],
    )
    .await;
    let client = KubeApiClient::new(runner.server().client());
    let command = PeeringCommand::new("default").priority(20).clock(runner.clock());
    freeze(&client, &command, 60).await.unwrap();
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    assert!(log.lock().unwrap().is_empty(), "both paused by the freeze");
    resume(&client, &command).await.unwrap();
    runner.settle().await;
    assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("high"));
}

/// The seeded random schedule: its own small generator (SplitMix64), so a seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One handler run, as the handler saw it.
#[derive(Debug, Clone)]
struct Run {
    peer: &'static str,
    object: String,
    handler: &'static str,
    /// The change it handled: the object's `spec.field`.
    value: String,
    started: jiff::Timestamp,
    /// `None`: aborted by a crash.
    ended: Option<jiff::Timestamp>,
    /// The body it got already showed its success.
    body_done: bool,
    /// The stored object showed its success when it started.
    stored_done: bool,
}

/// A span in which a peering record (an operator's or a freeze's) was alive.
#[derive(Debug, Clone)]
struct Alive {
    identity: String,
    priority: i64,
    from: jiff::Timestamp,
    until: Option<jiff::Timestamp>,
}

const PEERS: [(&str, i64); 3] = [("p0", 30), ("p1", 20), ("p2", 10)];
const LIFETIME: u64 = 20;
/// How late a peer may see a record and still run handlers: the watch's reconnection backoff
/// (0.1 s) with a margin. Everything else happens at the same virtual instant.
const WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);

/// The cluster and clock, bound once the runner exists (handlers run only after that).
type Bound = Arc<std::sync::OnceLock<(fake_apiserver::Cluster, kopf::Clock)>>;

fn done(body: &Value, handler: &str) -> bool {
    match handler {
        "create_fn" => !body["status"]["create_fn"].is_null(),
        _ => body["status"]["update_fn/spec.field"]["value"] == body["spec"]["field"],
    }
}

fn schedule_peer(name: &'static str, priority: i64, runs: &Arc<Mutex<Vec<Run>>>, bound: &Bound) -> Operator {
    let handler = move |id: &'static str| {
        let (runs, bound) = (runs.clone(), bound.clone());
        move |ex: Arc<KopfExample>, _ctx: Context| {
            let (runs, bound) = (runs.clone(), bound.clone());
            async move {
                let (cluster, clock) = bound.get().expect("bound before any object exists").clone();
                let object = ex.metadata.name.clone().unwrap_or_default();
                let stored =
                    cluster.object("kopf.dev", "kopfexamples", "default", &object).map(|o| o.value());
                let value = ex.spec.field.clone();
                let index = {
                    let mut runs = runs.lock().unwrap();
                    runs.push(Run {
                        peer: name,
                        object: object.clone(),
                        handler: id,
                        value: value.clone(),
                        started: clock.now(),
                        ended: None,
                        body_done: done(&serde_json::to_value(&*ex).unwrap(), id),
                        stored_done: stored.is_some_and(|s| done(&s, id)),
                    });
                    runs.len() - 1
                };
                // Handlers take time, so that pauses and crashes land in the middle of some.
                let millis = (object.len() as u64 * 7919 + value.len() as u64 * 104_729) % 3000;
                tokio::time::sleep(Duration::from_millis(millis)).await;
                runs.lock().unwrap()[index].ended = Some(clock.now());
                Ok::<_, HandlerError>(json!({"value": value, "by": name}))
            }
        }
    };
    Operator::new()
        .on_create(handler("create_fn"))
        .id("create_fn")
        .on_update(handler("update_fn"))
        .id("update_fn")
        .field("spec.field")
        .settings(move |s| {
            s.peering.priority = priority;
            s.peering.lifetime = LIFETIME;
        })
}

/// The alive span of `identity` at `at`, if any.
fn span_at<'a>(alive: &'a [Alive], identity: &str, at: jiff::Timestamp) -> Option<&'a Alive> {
    alive.iter().rev().find(|a| a.identity == identity && a.from <= at && a.until.is_none_or(|u| at < u))
}

/// Runs one seeded schedule of creations, changes, starts, graceful stops, crashes, freezes and
/// resumes on three peers of distinct priorities, then checks every handler run against the
/// peering records' lifetimes (derived from the schedule and the stored `lastseen`).
async fn random_schedule(seed: u64, steps: usize) {
    let runs: Arc<Mutex<Vec<Run>>> = Arc::default();
    let bound: Bound = Arc::default();
    let peers = PEERS.iter().map(|(name, priority)| (*name, schedule_peer(name, *priority, &runs, &bound)));
    let mut runner = Peers::start(peered().seed(seed), peers.collect()).await;
    let _ = bound.set((runner.cluster().raw().clone(), runner.clock()));
    let now = |runner: &Peers| runner.clock().now();
    let mut alive: Vec<Alive> = PEERS
        .iter()
        .map(|(name, priority)| Alive {
            identity: (*name).to_owned(),
            priority: *priority,
            from: now(&runner),
            until: None,
        })
        .collect();
    let mut kills: Vec<(&str, jiff::Timestamp)> = Vec::new();
    let client = DirectApiClient::new(runner.cluster().raw().clone());
    let admin = PeeringCommand::new("default").identity("admin").clock(runner.clock());
    let mut objects: Vec<String> = Vec::new();
    let mut counter = 0u64;
    let mut rng = Rng(seed);
    fn close(alive: &mut [Alive], identity: &str, at: jiff::Timestamp) {
        for a in alive.iter_mut().filter(|a| a.identity == identity && a.until.is_none_or(|u| u > at)) {
            a.until = Some(at);
        }
    }
    for _ in 0..steps {
        let at = now(&runner);
        let pick = rng.below(100);
        let (peer, priority) = PEERS[rng.below(PEERS.len() as u64) as usize];
        match pick {
            0..=24 => {
                let name = format!("ex{}", objects.len());
                runner.cluster().create(example(&name, "0")).await;
                objects.push(name);
            }
            25..=49 if !objects.is_empty() => {
                let name = objects[rng.below(objects.len() as u64) as usize].clone();
                counter += 1;
                let field = json!({"spec": {"field": format!("c{counter}")}});
                runner.cluster().patch::<KopfExample>(&name, field).await;
            }
            50..=59 if runner.is_running(peer) => {
                // A crash: the record lives on until its lastseen + lifetime.
                let lastseen: Option<jiff::Timestamp> = peering_status(&runner, "default")[peer]["lastseen"]
                    .as_str()
                    .and_then(|s| s.parse().ok());
                runner.kill(peer).await;
                kills.push((peer, at));
                if let Some(lastseen) = lastseen {
                    close(&mut alive, peer, lastseen + jiff::SignedDuration::from_secs(LIFETIME as i64));
                }
            }
            60..=67 if runner.is_running(peer) => {
                runner.stop(peer).await;
                close(&mut alive, peer, at);
            }
            68..=79 if !runner.is_running(peer) => {
                runner.restart(peer).await;
                alive.push(Alive { identity: peer.to_owned(), priority, from: at, until: None });
            }
            80..=87 => {
                let priority = [5, 15, 20, 25, 40][rng.below(5) as usize];
                let lifetime = 5 + rng.below(36);
                close(&mut alive, "admin", at);
                freeze(&client, &admin.clone().priority(priority), lifetime).await.unwrap();
                let until = at + jiff::SignedDuration::from_secs(lifetime as i64);
                alive.push(Alive { identity: "admin".into(), priority, from: at, until: Some(until) });
            }
            88..=91 => {
                resume(&client, &admin).await.unwrap();
                close(&mut alive, "admin", at);
            }
            _ => {}
        }
        runner.advance(Duration::from_millis(rng.below(15_000))).await;
    }

    // The end: no freeze, every peer up; the highest handles whatever is left.
    resume(&client, &admin).await.unwrap();
    close(&mut alive, "admin", now(&runner));
    for (name, priority) in PEERS {
        if !runner.is_running(name) {
            alive.push(Alive { identity: name.to_owned(), priority, from: now(&runner), until: None });
            runner.restart(name).await;
        }
    }
    let all_done = |c: &kopf_testing::TestCluster| {
        objects.iter().all(|name| {
            c.peek::<KopfExample>(name).is_some_and(|ex| {
                let body = serde_json::to_value(&ex).unwrap();
                done(&body, "create_fn") && (ex.spec.field == "0" || done(&body, "update_fn"))
            })
        })
    };
    runner
        .wait_for(all_done, Duration::from_secs(2 * LIFETIME + 60))
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: not everything was handled: {e}\n{}", runner.timeline()));

    let mut runs = runs.lock().unwrap().clone();
    for run in &mut runs {
        if run.ended.is_none() {
            // Aborted by the first crash of its peer after it started.
            run.ended = kills.iter().find(|(p, at)| *p == run.peer && *at >= run.started).map(|k| k.1);
        }
    }
    let priority = |peer: &str| PEERS.iter().find(|p| p.0 == peer).unwrap().1;
    let mut overlaps = 0;
    for run in &runs {
        assert!(!run.body_done, "seed {seed}: {run:?} ran from a body that shows it done");
        assert!(!run.stored_done, "seed {seed}: {run:?} ran after its success was stored");
        // No record of a higher or equal priority alive for longer than the window.
        let blockers: Vec<&Alive> = alive
            .iter()
            .filter(|a| a.identity != run.peer && a.priority >= priority(run.peer))
            .filter(|a| a.from + WINDOW <= run.started && a.until.is_none_or(|u| run.started < u))
            .collect();
        assert!(
            blockers.is_empty(),
            "seed {seed}: {run:?} ran while {blockers:?} lived\n{}",
            runner.timeline()
        );
        // Two peers at once only if one of them started before it could see the other's record.
        for other in runs.iter().filter(|o| o.peer != run.peer && o.started >= run.started) {
            if other.started >= run.ended.unwrap_or(jiff::Timestamp::MAX) {
                continue;
            }
            overlaps += 1;
            let unseen = |early: &Run, late: &Run| {
                span_at(&alive, late.peer, late.started).is_none_or(|a| early.started < a.from + WINDOW)
            };
            let late_unseen =
                span_at(&alive, run.peer, other.started).is_none_or(|a| other.started < a.from + WINDOW);
            assert!(
                unseen(run, other) || late_unseen,
                "seed {seed}: {run:?} and {other:?} overlap outside the window\n{}",
                runner.timeline()
            );
        }
    }
    // A peer never handles one change twice; two peers only inside the window (counted above).
    let mut seen = std::collections::BTreeMap::new();
    for run in runs.iter().filter(|r| r.ended.is_some()) {
        let key = (run.peer, run.object.as_str(), run.handler, run.value.as_str());
        *seen.entry(key).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "seed {seed}: handled twice by one peer: {twice:?}");
    eprintln!(
        "seed {seed}: {} runs, {} objects, {overlaps} overlapping runs inside the window",
        runs.len(),
        objects.len()
    );
}

#[tokio::test(start_paused = true)]
async fn over_random_schedules_no_two_peers_run_handlers_at_once_outside_the_window_and_nothing_done_runs_again()
 {
    for seed in 1..=6 {
        random_schedule(seed, 80).await;
    }
}
