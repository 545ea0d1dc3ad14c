//! Peering between Python Kopf (PyPI) and kopf-rs on one fake server over HTTPS
//! (reference/kopf.md §1.17): each reads the other's keep-alive records in the shared
//! `KopfPeering`, the lower priority pauses, and it takes over when the higher one leaves (its record
//! removed) or dies (its record expires). Lifetimes are 6 s, so a takeover takes seconds.
//!
//! The Python side is `tests/python/peering_operator.py`; `KOPF_RS_PYTHON` names a Python with
//! `kopf` (.ci/run installs it). Unset, the tests print a notice and skip; set but broken, they fail.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, ServeHandle, ServeOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kopf::{
    ApiClient, Clock, Context, HandlerError, KubeApiClient, Namespaces, Observation, Observer, Operator,
    RunOptions, RunningOperator,
};
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use super::python_interop::{PythonKopf, TOKEN, WAIT, python, scratch, script};
use crate::common::{KopfExample, example};

const LIFETIME: u64 = 6;
/// How often a condition on the cluster is checked.
const POLL: Duration = Duration::from_millis(50);

struct Cluster {
    server: FakeApiServer,
    _front: ServeHandle,
    dir: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
}

impl Cluster {
    /// The example CRD, the peering CRDs and the `KopfPeering` `default/default`.
    async fn start(name: &str) -> Self {
        let server = FakeApiServer::builder().base_time(Clock::wall().now()).build();
        let crds: Api<CustomResourceDefinition> = Api::all(server.client());
        crds.create(&PostParams::default(), &KopfExample::crd()).await.unwrap();
        for crd in kopf::peering::crds() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        let client = KubeApiClient::new(server.client());
        let peerings = client
            .discover()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.group == "kopf.dev" && r.plural == "kopfpeerings")
            .expect("the peering CRD is served");
        client
            .create(&peerings, Some("default"), &kopf::peering::object("default", Some("default")))
            .await
            .unwrap();
        let front =
            server.serve(ServeOptions::default().tls(true).token(TOKEN)).await.expect("the front serves");
        let dir = scratch(name);
        let kubeconfig = dir.join("kubeconfig");
        front.write_kubeconfig(&kubeconfig).unwrap();
        Self { server, _front: front, dir, kubeconfig }
    }

    fn peering(&self) -> Value {
        self.server
            .cluster()
            .object("kopf.dev", "kopfpeerings", "default", "default")
            .map(|o| o.value()["status"].clone())
            .unwrap_or(Value::Null)
    }

    fn handled_by(&self, name: &str) -> Option<String> {
        let object = self.server.cluster().object("kopf.dev", "kopfexamples", "default", name)?;
        object.value()["status"]["create_fn"]["by"].as_str().map(str::to_owned)
    }

    async fn create(&self, name: &str) {
        let examples: Api<KopfExample> = Api::namespaced(self.server.client(), "default");
        examples.create(&PostParams::default(), &example(name, "peering")).await.unwrap();
    }

    /// Polls until `condition` holds (at most [`WAIT`]); how long it took.
    async fn wait_for(
        &self,
        what: &str,
        log: &dyn Fn() -> String,
        condition: impl Fn(&Self) -> bool,
    ) -> Duration {
        let started = Instant::now();
        while !condition(self) {
            assert!(started.elapsed() < WAIT, "no {what} in time:\n{}", log());
            tokio::time::sleep(POLL).await;
        }
        started.elapsed()
    }

    /// kopf-rs in this process, through the written kubeconfig (HTTPS), as the peer `kopf-rs`.
    async fn start_kopf_rs(&self, priority: i64, runs: &Arc<AtomicU32>, seen: &Seen) -> RunningOperator {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let runs = runs.clone();
        let operator = Operator::new()
            .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
                runs.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, HandlerError>(json!({"by": "kopf-rs"})) }
            })
            .id("create_fn")
            .settings(move |s| {
                s.peering.priority = priority;
                s.peering.lifetime = LIFETIME;
            });
        let options = RunOptions {
            namespaces: Namespaces::Only(vec!["default".into()]),
            identity: Some("kopf-rs".into()),
            observer: Some(Arc::new(seen.clone())),
            ..Default::default()
        };
        let mut running =
            operator.spawn(Arc::new(KubeApiClient::new(client)), options).expect("a valid operator");
        tokio::time::timeout(WAIT, running.ready()).await.expect("kopf-rs starts");
        running
    }

    fn start_python(&self, python: &Path, priority: i64, run: &str) -> PythonKopf {
        let log = self.dir.join(format!("{run}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(python)
            .args(["-m", "kopf", "run", "--namespace", "default", "--priority", &priority.to_string()])
            .arg(script("peering_operator.py"))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PEERING_LIFETIME", LIFETIME.to_string())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("Python Kopf starts");
        PythonKopf { child, log }
    }
}

/// The peering decisions kopf-rs reported: (paused, message).
#[derive(Debug, Clone, Default)]
struct Seen(Arc<Mutex<Vec<(bool, String)>>>);

impl Observer for Seen {
    fn observe(&self, observation: Observation) {
        if let Observation::Peering { paused, message, .. } = observation {
            self.0.lock().unwrap().push((paused, message));
        }
    }
}

impl Seen {
    fn last(&self) -> Option<(bool, String)> {
        self.0.lock().unwrap().last().cloned()
    }

    fn dump(&self) -> String {
        format!("{:?}", self.0.lock().unwrap())
    }
}

/// Python Kopf's own record: the key that is not kopf-rs's.
fn python_record(status: &Value) -> Option<(String, Value)> {
    status.as_object()?.iter().find(|(k, _)| *k != "kopf-rs").map(|(k, v)| (k.clone(), v.clone()))
}

fn assert_clean(log: &str) {
    for bad in ["[ERROR", "Traceback"] {
        assert!(!log.contains(bad), "{bad:?} in Kopf's log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kopf_rs_pauses_for_a_higher_python_kopf_and_resumes_when_it_leaves() {
    let Some(python) = python() else { return };
    let cluster = Cluster::start("peering-python-high").await;
    let high = cluster.start_python(&python, 100, "python-high");
    cluster.wait_for("Python Kopf's record", &|| high.log(), |c| python_record(&c.peering()).is_some()).await;
    let (python_id, record) = python_record(&cluster.peering()).unwrap();
    assert_eq!((record["priority"].clone(), record["lifetime"].clone()), (json!(100), json!(LIFETIME)));

    let (runs, seen) = (Arc::new(AtomicU32::new(0)), Seen::default());
    let running = cluster.start_kopf_rs(10, &runs, &seen).await;
    cluster.wait_for("kopf-rs's pause", &|| seen.dump(), |_| seen.last().is_some_and(|(p, _)| p)).await;
    let (_, message) = seen.last().unwrap();
    assert!(message.contains(&format!("<Peer {python_id}: priority=100, lifetime={LIFETIME}")), "{message}");
    // kopf-rs's keep-alive writes its record concurrently with the watch that paused it (as in
    // Kopf), so the record may land just after the pause.
    let peering = || cluster.peering().to_string();
    cluster.wait_for("kopf-rs's record", &peering, |c| c.peering()["kopf-rs"]["priority"] == 10).await;

    cluster.create("ex1").await;
    cluster.wait_for("Python Kopf's handling", &|| high.log(), |c| c.handled_by("ex1").is_some()).await;
    assert_eq!(cluster.handled_by("ex1").as_deref(), Some("python"));

    // Python Kopf exits gracefully: its record goes, and kopf-rs resumes at once.
    let log = high.stop().await;
    assert_clean(&log);
    assert!(python_record(&cluster.peering()).is_none(), "Kopf removed its record: {}", cluster.peering());
    cluster.wait_for("kopf-rs's resume", &|| seen.dump(), |_| seen.last().is_some_and(|(p, _)| !p)).await;
    cluster.create("ex2").await;
    cluster.wait_for("kopf-rs's handling", &String::new, |c| c.handled_by("ex2").is_some()).await;
    assert_eq!(cluster.handled_by("ex2").as_deref(), Some("kopf-rs"));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "ex1 was Python Kopf's and stays so");
    running.stop();
    running.join().await.expect("kopf-rs stops cleanly");
    assert!(cluster.peering().get("kopf-rs").is_none(), "kopf-rs removed its record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kopf_pauses_for_a_higher_kopf_rs_and_takes_over_when_its_record_expires() {
    let Some(python) = python() else { return };
    let cluster = Cluster::start("peering-kopf-rs-high").await;
    let (runs, seen) = (Arc::new(AtomicU32::new(0)), Seen::default());
    let running = cluster.start_kopf_rs(100, &runs, &seen).await;
    cluster.wait_for("kopf-rs's record", &String::new, |c| !c.peering()["kopf-rs"].is_null()).await;

    let low = cluster.start_python(&python, 10, "python-low");
    cluster
        .wait_for("Python Kopf's pause", &|| low.log(), |_| {
            low.log().contains("Pausing operations in favour of [<Peer kopf-rs: priority=100, lifetime=6")
        })
        .await;
    assert_eq!(seen.last().map(|(p, _)| p), Some(false), "kopf-rs is not paused by a lower peer");
    cluster.create("ex1").await;
    cluster.wait_for("kopf-rs's handling", &|| low.log(), |c| c.handled_by("ex1").is_some()).await;
    assert_eq!(cluster.handled_by("ex1").as_deref(), Some("kopf-rs"));

    // kopf-rs dies: its record stays until lastseen + lifetime, then Python Kopf takes over.
    let lastseen: jiff::Timestamp =
        cluster.peering()["kopf-rs"]["lastseen"].as_str().unwrap().parse().unwrap();
    running.abort();
    let _ = running.join().await;
    let died = Clock::wall().now();
    cluster.create("ex2").await;
    let waited =
        cluster.wait_for("Python Kopf's takeover", &|| low.log(), |c| c.handled_by("ex2").is_some()).await;
    let expiry = lastseen + jiff::SignedDuration::from_secs(LIFETIME as i64);
    let handled_at = Clock::wall().now();
    assert!(handled_at >= expiry, "not before the record expired: {handled_at} < {expiry}");
    assert!(
        waited <= Duration::from_secs(LIFETIME + 3),
        "within the lifetime: {waited:?} after the crash at {died}"
    );
    assert_eq!(cluster.handled_by("ex2").as_deref(), Some("python"));
    let log = low.stop().await;
    assert!(log.contains("Resuming operations after the pause."), "{log}");
    assert_eq!(log.matches("Handler 'create_fn' succeeded.").count(), 1, "only ex2:\n{log}");
    assert_clean(&log);
    assert!(
        cluster.peering().get("kopf-rs").is_none(),
        "Kopf cleaned the dead record: {}",
        cluster.peering()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
