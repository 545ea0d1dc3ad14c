//! The side-by-side benchmark (`bench/run.sh`, bin `bench-compare`): kopf-rs, Python Kopf and a
//! bare kube-runtime `Controller` handle the same workload against `fake-apiserver serve`, one fresh
//! server per contender and size.
//!
//! For N objects: the N `KopfExample`s are created before the operator starts (a backlog; the
//! create phase runs from the operator's spawn until every object carries its create result),
//! then each object's `spec.field` is changed once (until every object carries its update result),
//! then all are deleted (until every object is gone, its finalizer released). Handling is seen
//! through the harness's own watch on the server, never through the contenders' logs. Between
//! phases the harness waits until the operator's requests stop (the server's `/metrics` counters),
//! so each phase is charged with its own requests. A per-contender time cap ends a run: the phase
//! then reports how many objects were handled, and the later phases did not run.

pub mod procfs;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kopf_examples::kopfexample::{ExampleSpec, KopfExample};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{CustomResourceExt, Resource as _};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use procfs::ProcSample;

/// The user agent of the harness's own requests; every other client on the server is the operator.
pub const HARNESS_AGENT: &str = "kopf-bench-harness";
/// How many of the harness's writes are in flight at once.
const CONCURRENCY: usize = 16;
/// `spec.field` at creation, and after the update.
const CREATED: &str = "v1";
const UPDATED: &str = "v2";

/// One of the operators compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contender {
    /// kopf-rs (`bench-kopf-rs`).
    KopfRs,
    /// Python Kopf (`bench/contenders/kopf_operator.py`).
    Kopf,
    /// A bare kube-runtime `Controller` (`bench-kube-runtime`).
    KubeRuntime,
}

impl Contender {
    /// All of them, in report order.
    pub const ALL: [Contender; 3] = [Contender::KopfRs, Contender::Kopf, Contender::KubeRuntime];

    /// The name on the command line and in file names.
    pub fn key(self) -> &'static str {
        match self {
            Self::KopfRs => "kopf-rs",
            Self::Kopf => "kopf",
            Self::KubeRuntime => "kube-runtime",
        }
    }

    /// The name in the report.
    pub fn title(self) -> &'static str {
        match self {
            Self::KopfRs => "kopf-rs",
            Self::Kopf => "Kopf 1.45 (Python)",
            Self::KubeRuntime => "bare kube-runtime",
        }
    }

    /// Parses [`Contender::key`].
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.key() == key)
    }

    /// The status keys whose `field` shows the create and the update handled: Kopf's handler
    /// results are stored under the handler ids, the bare controller records `reconciled`.
    fn status_keys(self) -> (&'static str, &'static str) {
        match self {
            Self::KopfRs | Self::Kopf => ("create_fn", "update_fn"),
            Self::KubeRuntime => ("reconciled", "reconciled"),
        }
    }
}

/// Where the programs are and how long a contender may take.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `fake-apiserver`.
    pub fake_apiserver: PathBuf,
    /// The flag that makes `serve` a plain API server (no live-cluster controllers), if it has one.
    pub bare_flag: Option<String>,
    /// `bench-kopf-rs`.
    pub kopf_rs: PathBuf,
    /// `bench-kube-runtime`.
    pub kube_runtime: PathBuf,
    /// A Python with Kopf installed; Kopf is skipped without it.
    pub python: Option<PathBuf>,
    /// `bench/contenders/kopf_operator.py`.
    pub kopf_script: PathBuf,
    /// Logs, kubeconfigs.
    pub work_dir: PathBuf,
    /// The time cap of one contender at one size, all phases together.
    pub cap: Duration,
    /// `getconf CLK_TCK`.
    pub clock_ticks: u64,
}

/// The three phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    /// The backlog of N objects, from the operator's start.
    Create,
    /// One change of each object.
    Update,
    /// Deletion of all objects.
    Delete,
}

impl PhaseKind {
    /// All phases in order.
    pub const ALL: [PhaseKind; 3] = [PhaseKind::Create, PhaseKind::Update, PhaseKind::Delete];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// How a phase ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every object handled.
    Done,
    /// The cap was reached with this many objects handled.
    TimedOut {
        /// Objects handled by then.
        handled: usize,
    },
    /// The operator exited (or another failure) with this many objects handled.
    Failed {
        /// Objects handled by then.
        handled: usize,
        /// What happened.
        reason: String,
    },
    /// An earlier phase did not finish.
    NotRun,
}

/// One phase's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Which phase.
    pub kind: PhaseKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall seconds from the phase's start until every object was handled (or it ended).
    pub seconds: f64,
    /// The operator's requests in the phase, by `VERB resource[/subresource]`.
    pub requests: BTreeMap<String, u64>,
    /// CPU seconds of the operator in the phase (until its requests stopped).
    pub operator_cpu: f64,
    /// CPU seconds of the fake server in the phase (serving the harness too).
    pub fake_cpu: f64,
}

impl Phase {
    /// The operator's requests in the phase.
    pub fn request_total(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// One contender at one size.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Who.
    pub contender: Contender,
    /// How many objects.
    pub objects: usize,
    /// The phases, in order (not-run ones included).
    pub phases: Vec<Phase>,
    /// Seconds from the operator's spawn until the first object carried its create result.
    pub first_handled: Option<f64>,
    /// The operator process at the end.
    pub operator: ProcSample,
    /// The fake server at the end.
    pub fake: ProcSample,
    /// The operator's log (its stdout and stderr).
    pub log: PathBuf,
}

impl Run {
    /// Whether every phase finished.
    pub fn complete(&self) -> bool {
        self.phases.iter().all(|p| p.outcome == Outcome::Done)
    }

    /// Wall seconds of the finished phases together.
    pub fn total_seconds(&self) -> f64 {
        self.phases.iter().filter(|p| p.outcome != Outcome::NotRun).map(|p| p.seconds).sum()
    }

    /// Objects handled per second over the three phases (3N handlings), if all finished.
    pub fn throughput(&self) -> Option<f64> {
        self.complete().then(|| (3 * self.objects) as f64 / self.total_seconds())
    }

    /// One phase.
    pub fn phase(&self, kind: PhaseKind) -> &Phase {
        self.phases.iter().find(|p| p.kind == kind).unwrap_or(&self.phases[0])
    }

    /// The operator's requests over all phases per handling (3N), if all finished.
    pub fn requests_per_object(&self) -> Option<f64> {
        let total: u64 = self.phases.iter().map(Phase::request_total).sum();
        self.complete().then(|| total as f64 / (3 * self.objects) as f64)
    }

    /// The operator's CPU seconds per handling, if all finished.
    pub fn cpu_per_object(&self) -> Option<f64> {
        let total: f64 = self.phases.iter().map(|p| p.operator_cpu).sum();
        self.complete().then(|| total / (3 * self.objects) as f64)
    }
}

/// What the harness's watch has seen so far.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    existing: usize,
    created: usize,
    updated: usize,
    deleted: usize,
    first_created: Option<Instant>,
}

impl Counts {
    fn handled(&self, kind: PhaseKind) -> usize {
        match kind {
            PhaseKind::Create => self.created,
            PhaseKind::Update => self.updated,
            PhaseKind::Delete => self.deleted,
        }
    }
}

/// The few fields of an object the harness reads (the rest is skipped while parsing).
#[derive(Debug, Clone, Deserialize)]
struct Probe {
    metadata: ProbeMeta,
    #[serde(default)]
    status: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProbeMeta {
    name: String,
    resource_version: String,
}

#[derive(Debug, Default)]
struct Tracker {
    keys: (&'static str, &'static str),
    /// Per object: create seen handled, update seen handled.
    objects: HashMap<String, (bool, bool)>,
    counts: Counts,
}

impl Tracker {
    fn observe(&mut self, probe: &Probe) {
        let field_is = |key: &str, value: &str| {
            probe
                .status
                .as_ref()
                .and_then(|s| s.get(key))
                .and_then(|r| r.get("field"))
                .and_then(|f| f.as_str())
                == Some(value)
        };
        let counts = &mut self.counts;
        let seen = self.objects.entry(probe.metadata.name.clone()).or_insert_with(|| {
            counts.existing += 1;
            (false, false)
        });
        if !seen.0 && field_is(self.keys.0, CREATED) {
            seen.0 = true;
            counts.created += 1;
            counts.first_created.get_or_insert_with(Instant::now);
        }
        if !seen.1 && field_is(self.keys.1, UPDATED) {
            seen.1 = true;
            counts.updated += 1;
        }
    }

    fn deleted(&mut self, name: &str) {
        if self.objects.remove(name).is_some() {
            self.counts.deleted += 1;
        }
    }
}

/// The request counters of the fake's `/metrics`: `VERB resource[/sub]` → count, for every client
/// but the harness.
pub fn operator_requests(metrics: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let Some((labels, value)) = line.rsplit_once("} ") else { continue };
        let labels = parse_labels(&labels["apiserver_request_total{".len()..]);
        let Ok(value) = value.trim().parse::<u64>() else { continue };
        let get = |k: &str| labels.get(k).map(String::as_str).unwrap_or_default();
        if get("client") == HARNESS_AGENT {
            continue;
        }
        let mut key = format!("{} {}", get("verb"), get("resource"));
        if !get("subresource").is_empty() {
            key = format!("{key}/{}", get("subresource"));
        }
        *out.entry(key).or_default() += value;
    }
    out
}

fn parse_labels(text: &str) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

fn difference(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0).min(*n)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// A running `fake-apiserver serve`.
struct Fake {
    child: Child,
    client: kube::Client,
    kubeconfig: PathBuf,
}

impl Fake {
    async fn start(setup: &Setup, tag: &str) -> anyhow::Result<Self> {
        let kubeconfig = setup.work_dir.join(format!("{tag}.kubeconfig"));
        let log = std::fs::File::create(setup.work_dir.join(format!("{tag}.fake.log")))?;
        let mut command = Command::new(&setup.fake_apiserver);
        command.args(["serve", "--port", "0", "--kubeconfig"]).arg(&kubeconfig);
        if let Some(flag) = &setup.bare_flag {
            command.arg(flag);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", setup.fake_apiserver.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("fake-apiserver printed no URL within 30 s")??
            .context("fake-apiserver ended before printing its URL")?;
        let mut config = kube::Config::new(url.parse().with_context(|| format!("bad URL {url:?}"))?);
        config.headers.push((http::header::USER_AGENT, http::HeaderValue::from_static(HARNESS_AGENT)));
        config.read_timeout = Some(Duration::from_secs(600));
        let client = kube::Client::try_from(config)?;
        Ok(Self { child, client, kubeconfig })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn metrics(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        Ok(operator_requests(&self.client.request_text(request).await?))
    }

    async fn install_crd(&self) -> anyhow::Result<()> {
        Api::<CustomResourceDefinition>::all(self.client.clone())
            .create(&PostParams::default(), &KopfExample::crd())
            .await?;
        let api: Api<KopfExample> = Api::all(self.client.clone());
        let deadline = Instant::now() + Duration::from_secs(10);
        while api.list(&ListParams::default().limit(1)).await.is_err() {
            if Instant::now() > deadline {
                bail!("the KopfExample resource was not served within 10 s of its CRD");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

/// Asks a process to stop with SIGTERM, then kills it after `grace`.
async fn stop(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Streams the objects' changes into the tracker, resuming after the server ends a watch.
async fn watch_objects(
    client: kube::Client,
    tracker: Arc<Mutex<Tracker>>,
    tx: watch::Sender<Counts>,
) -> anyhow::Result<()> {
    let path = KopfExample::url_path(&(), None);
    let request = kube::core::Request::new(&path);
    let list: serde_json::Value = client.request(request.list(&ListParams::default().limit(1))?).await?;
    let mut rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_owned();
    loop {
        let params = WatchParams::default().timeout(290);
        let mut events = Box::pin(client.request_events::<Probe>(request.watch(&params, &rv)?).await?);
        while let Some(event) = events.try_next().await? {
            let mut tracker = tracker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match event {
                WatchEvent::Added(probe) | WatchEvent::Modified(probe) => {
                    tracker.observe(&probe);
                    rv = probe.metadata.resource_version;
                }
                WatchEvent::Deleted(probe) => {
                    tracker.deleted(&probe.metadata.name);
                    rv = probe.metadata.resource_version;
                }
                WatchEvent::Bookmark(bookmark) => rv = bookmark.metadata.resource_version,
                WatchEvent::Error(e) => bail!("the harness's watch failed: {e:?}"),
            }
            tx.send_replace(tracker.counts);
        }
    }
}

/// Runs `f(i)` for i in 0..n, [`CONCURRENCY`] at a time.
async fn for_each_object<F, Fut>(n: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    futures::stream::iter(0..n).map(f).buffer_unordered(CONCURRENCY).try_collect::<()>().await
}

fn object_name(i: usize) -> String {
    format!("ex-{i:05}")
}

/// How waiting for a phase ended.
enum Wait {
    Done,
    TimedOut(usize),
    Exited(usize, ExitStatus),
}

async fn wait_for(
    rx: &mut watch::Receiver<Counts>,
    operator: &mut Child,
    kind: PhaseKind,
    target: usize,
    deadline: tokio::time::Instant,
) -> anyhow::Result<Wait> {
    loop {
        let handled = rx.borrow().handled(kind);
        if handled >= target {
            return Ok(Wait::Done);
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    bail!("the harness's watch ended");
                }
            }
            () = tokio::time::sleep_until(deadline) => return Ok(Wait::TimedOut(handled)),
            status = operator.wait() => return Ok(Wait::Exited(handled, status?)),
        }
    }
}

/// Waits until the operator's request counters stop moving (no change over 600 ms; at most 10 s),
/// so a phase is charged with the requests its handling caused (Events posted after the fact,
/// the last patch of a handling).
async fn quiesce(fake: &Fake) -> anyhow::Result<BTreeMap<String, u64>> {
    let started = Instant::now();
    let mut last = fake.metrics().await?;
    let mut stable = 0;
    while stable < 3 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = fake.metrics().await?;
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
    }
    Ok(last)
}

/// Runs one contender on `objects` objects against a fresh fake server.
///
/// # Errors
/// When the harness itself cannot do its part (start the server, create objects, watch); an
/// operator that fails or is too slow is reported in the [`Run`], not as an error.
pub async fn run(setup: &Setup, contender: Contender, objects: usize) -> anyhow::Result<Run> {
    let tag = format!("{}-{objects}", contender.key());
    let mut fake = Fake::start(setup, &tag).await?;
    let fake_pid = fake.pid().context("the fake server has no pid")?;
    fake.install_crd().await?;
    eprintln!("[{tag}] server up, creating {objects} objects");

    let tracker = Arc::new(Mutex::new(Tracker { keys: contender.status_keys(), ..Default::default() }));
    let (tx, mut rx) = watch::channel(Counts::default());
    let watcher = tokio::spawn(watch_objects(fake.client.clone(), tracker.clone(), tx));

    let api: Api<KopfExample> = Api::namespaced(fake.client.clone(), "default");
    for_each_object(objects, |i| {
        let api = api.clone();
        async move {
            let spec = ExampleSpec { field: CREATED.into(), items: vec!["item1".into(), "item2".into()] };
            let mut ex = KopfExample::new(&object_name(i), spec);
            ex.metadata.namespace = Some("default".into());
            api.create(&PostParams::default(), &ex).await?;
            Ok(())
        }
    })
    .await?;
    while rx.borrow().existing < objects {
        rx.changed().await.context("the harness's watch ended")?;
    }

    eprintln!("[{tag}] objects created, starting the operator");
    let log = setup.work_dir.join(format!("{tag}.log"));
    let log_file = std::fs::File::create(&log)?;
    let mut argv: Vec<std::ffi::OsString> = match contender {
        Contender::KopfRs => {
            vec![setup.kopf_rs.clone().into(), "--standalone".into(), "--all-namespaces".into()]
        }
        Contender::Kopf => {
            let python = setup.python.as_ref().context("no Python with Kopf")?;
            let args = ["-m", "kopf", "run", "--standalone", "--all-namespaces"];
            let mut argv = vec![python.clone().into_os_string()];
            argv.extend(args.map(Into::into));
            argv.push(setup.kopf_script.clone().into());
            argv
        }
        Contender::KubeRuntime => vec![setup.kube_runtime.clone().into()],
    };
    // For profiling only: `KOPF_BENCH_WRAP="perf record -g -o p.data --"` runs the operator under
    // that command (the CPU and memory figures are then the wrapper's).
    if let Ok(wrap) = std::env::var("KOPF_BENCH_WRAP") {
        let mut wrapped: Vec<std::ffi::OsString> = wrap.split_whitespace().map(Into::into).collect();
        wrapped.append(&mut argv);
        argv = wrapped;
    }
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    let mut metrics = fake.metrics().await?;
    let mut fake_before = procfs::sample(fake_pid, setup.clock_ticks).unwrap_or_default();
    let spawned = Instant::now();
    let deadline = tokio::time::Instant::from_std(spawned + setup.cap);
    let mut operator = command
        .env("KUBECONFIG", &fake.kubeconfig)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the {} operator", contender.key()))?;
    let operator_pid = operator.id().context("the operator has no pid")?;
    let mut operator_before = ProcSample::default();
    let mut last_operator = ProcSample::default();

    let mut phases = Vec::new();
    let mut running = true;
    for kind in PhaseKind::ALL {
        if !running {
            phases.push(Phase {
                kind,
                outcome: Outcome::NotRun,
                seconds: 0.0,
                requests: BTreeMap::new(),
                operator_cpu: 0.0,
                fake_cpu: 0.0,
            });
            continue;
        }
        let started = if kind == PhaseKind::Create { spawned } else { Instant::now() };
        let writes = match kind {
            PhaseKind::Create => Ok(()),
            PhaseKind::Update => {
                for_each_object(objects, |i| {
                    let api = api.clone();
                    async move {
                        let patch = Patch::Merge(json!({"spec": {"field": UPDATED}}));
                        api.patch(&object_name(i), &PatchParams::default(), &patch).await?;
                        Ok(())
                    }
                })
                .await
            }
            PhaseKind::Delete => {
                for_each_object(objects, |i| {
                    let api = api.clone();
                    async move {
                        api.delete(&object_name(i), &DeleteParams::default()).await?;
                        Ok(())
                    }
                })
                .await
            }
        };
        writes.with_context(|| format!("the harness's {} requests failed", kind.name()))?;
        let wait = wait_for(&mut rx, &mut operator, kind, objects, deadline).await?;
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match wait {
            Wait::Done => Outcome::Done,
            Wait::TimedOut(handled) => Outcome::TimedOut { handled },
            Wait::Exited(handled, status) => {
                Outcome::Failed { handled, reason: format!("the operator exited ({status})") }
            }
        };
        running = outcome == Outcome::Done;
        let after = if running { quiesce(&fake).await? } else { fake.metrics().await? };
        let operator_now = procfs::sample(operator_pid, setup.clock_ticks).unwrap_or(last_operator);
        let fake_now = procfs::sample(fake_pid, setup.clock_ticks).unwrap_or_default();
        phases.push(Phase {
            kind,
            outcome,
            seconds,
            requests: difference(&after, &metrics),
            operator_cpu: operator_now.cpu_seconds - operator_before.cpu_seconds,
            fake_cpu: fake_now.cpu_seconds - fake_before.cpu_seconds,
        });
        metrics = after;
        operator_before = operator_now;
        last_operator = operator_now;
        fake_before = fake_now;
    }
    let first_handled = rx.borrow().first_created.map(|t| t.duration_since(spawned).as_secs_f64());
    let operator_end = procfs::sample(operator_pid, setup.clock_ticks).unwrap_or(last_operator);
    let fake_end = procfs::sample(fake_pid, setup.clock_ticks).unwrap_or_default();
    stop(&mut operator, Duration::from_secs(10)).await;
    watcher.abort();
    stop(&mut fake.child, Duration::from_secs(10)).await;
    Ok(Run { contender, objects, phases, first_handled, operator: operator_end, fake: fake_end, log })
}

/// The last lines of a log, for a failed run.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_requests_leave_out_the_harness_and_join_subresources() {
        let text = "# HELP apiserver_request_total x\n\
            apiserver_request_total{client=\"kopf-bench-harness\",code=\"201\",group=\"kopf.dev\",resource=\"kopfexamples\",subresource=\"\",verb=\"POST\"} 100\n\
            apiserver_request_total{client=\"kopf\",code=\"200\",group=\"kopf.dev\",resource=\"kopfexamples\",subresource=\"status\",verb=\"PATCH\"} 7\n\
            apiserver_request_total{client=\"a \\\"b\\\"\",code=\"409\",group=\"kopf.dev\",resource=\"kopfexamples\",subresource=\"status\",verb=\"PATCH\"} 2\n\
            apiserver_request_total{client=\"kopf\",code=\"201\",group=\"\",resource=\"events\",subresource=\"\",verb=\"POST\"} 3\n";
        let counts = operator_requests(text);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![("PATCH kopfexamples/status".to_owned(), 9), ("POST events".to_owned(), 3)]
        );
    }
}
