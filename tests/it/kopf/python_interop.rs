//! Switching between Python Kopf (PyPI) and kopf-rs on a live object, over the fake's HTTPS front
//! (reference/kopf.md §1.8–1.11 and its byte-compatibility section): an object half-handled by one
//! (`create_fn` done, `create_pending` failed with a temporary error and waiting for its retry) is
//! finished by the other without re-running the done handler, with the retry count, the start time
//! and the retry delay carried over; the finished object is then seen by the first as fully handled
//! (a resume with no diff). The records and the diff-base one wrote are the bytes Kopf's own code
//! writes for the same state (`tests/python/kopf_encoding.py`).
//!
//! The Python side is `tests/python/interop_operator.py`; `KOPF_RS_PYTHON` names a Python with
//! `kopf` (.ci/run installs it). Unset, the tests print a notice and skip; set but broken, they fail.
//! Wall time: a few seconds each (Python's start-up, and the 2 s retry delay that must pass).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fake_apiserver::{FakeApiServer, ServeHandle, ServeOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kopf::{
    Clock, Context, DiffBaseStorage, HandlerError, KubeApiClient, Namespaces, Operator, Patch,
    ProgressRecord, ProgressStorage, RunOptions, RunningOperator,
};
use kube::api::{Api, PostParams};
use kube::runtime::wait::await_condition;
use kube::{CustomResourceExt, ResourceExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::{KopfExample, example};

/// Guard on anything waited for across processes (a cold Python start on a busy CI machine).
pub(super) const WAIT: Duration = Duration::from_secs(60);
/// The retry delay of the pending handler: short, since the finishing side must honour it.
const DELAY: Duration = Duration::from_secs(2);
pub(super) const TOKEN: &str = "interop-t0ken";
const PREFIX: &str = "kopf.zalando.org";
const DIFF_BASE: &str = "kopf.zalando.org/last-handled-configuration";

/// The Python with `kopf`, or `None` (the test skips) when `KOPF_RS_PYTHON` is unset.
pub(super) fn python() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("KOPF_RS_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!(
            "NOTICE: KOPF_RS_PYTHON is unset, so the Python Kopf interop tests are skipped (.ci/run sets it)"
        );
        return None;
    };
    let path = PathBuf::from(path);
    let output = std::process::Command::new(&path)
        .args(["-c", "import kopf, kubernetes"])
        .output()
        .unwrap_or_else(|e| panic!("KOPF_RS_PYTHON={path:?} cannot be run: {e}"));
    assert!(
        output.status.success(),
        "KOPF_RS_PYTHON={path:?} cannot import kopf (run .ci/clients.sh):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(path)
}

pub(super) fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(name)
}

pub(super) fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The fake with Kopf's example CRD, served over HTTPS with a token, and its kubeconfig on disk.
struct Cluster {
    server: FakeApiServer,
    /// Serves for as long as the cluster is used.
    _front: ServeHandle,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Cluster {
    async fn start(name: &str) -> Self {
        let server = FakeApiServer::builder().base_time(Clock::wall().now()).build();
        let crds: Api<CustomResourceDefinition> = Api::all(server.client());
        crds.create(&PostParams::default(), &KopfExample::crd()).await.unwrap();
        let front =
            server.serve(ServeOptions::default().tls(true).token(TOKEN)).await.expect("the front serves");
        let dir = scratch(name);
        let kubeconfig = dir.join("kubeconfig");
        front.write_kubeconfig(&kubeconfig).unwrap();
        Self { server, _front: front, dir, kubeconfig }
    }

    fn examples(&self) -> Api<KopfExample> {
        Api::namespaced(self.server.client(), "default")
    }

    /// Waits until ex1 satisfies `condition`; returns it as JSON.
    async fn wait_for(
        &self,
        what: &str,
        log: &dyn Fn() -> String,
        condition: impl Fn(&Value) -> bool,
    ) -> Value {
        let reached = await_condition(self.examples(), "ex1", move |ex: Option<&KopfExample>| {
            ex.is_some_and(|ex| condition(&serde_json::to_value(ex).unwrap()))
        });
        let found = tokio::time::timeout(WAIT, reached)
            .await
            .unwrap_or_else(|_| panic!("no {what} in time:\n{}", log()));
        serde_json::to_value(found.unwrap().expect("ex1 exists")).unwrap()
    }

    /// kopf-rs, in this process, through a client made from the written kubeconfig (HTTPS).
    async fn start_kopf_rs(&self, operator: Operator) -> RunningOperator {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let options =
            RunOptions { namespaces: Namespaces::Only(vec!["default".into()]), ..Default::default() };
        let mut running =
            operator.spawn(Arc::new(KubeApiClient::new(client)), options).expect("a valid operator");
        tokio::time::timeout(WAIT, running.ready()).await.expect("kopf-rs starts watching");
        running
    }

    /// Python Kopf running `interop_operator.py` in `mode` (`half` or `finish`).
    fn start_python(&self, python: &Path, mode: &str, run: &str) -> PythonKopf {
        let log = self.dir.join(format!("{run}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(python)
            .args(["-m", "kopf", "run", "--standalone", "--namespace", "default"])
            .arg(script("interop_operator.py"))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("INTEROP_MODE", mode)
            .env("INTEROP_DELAY", DELAY.as_secs().to_string())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("Python Kopf starts");
        PythonKopf { child, log }
    }
}

/// A Python Kopf process and the file it logs to (shared with the peering interop tests).
pub(super) struct PythonKopf {
    pub(super) child: tokio::process::Child,
    pub(super) log: PathBuf,
}

impl PythonKopf {
    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then a clean exit; returns the log.
    pub(super) async fn stop(mut self) -> String {
        let pid = self.child.id().expect("Kopf is still running").to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status =
            tokio::time::timeout(WAIT, self.child.wait()).await.expect("Kopf stops in time").unwrap();
        let log = self.log();
        assert_eq!(status.code(), Some(0), "{log}");
        log
    }
}

/// How many times each kopf-rs handler ran.
#[derive(Debug, Default)]
struct Runs {
    create_fn: AtomicU32,
    create_pending: AtomicU32,
    resume_fn: AtomicU32,
}

/// Kopf's timestamp format (`isoformat(timespec='microseconds')` of a UTC datetime).
fn kopf_time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// The kopf-rs side, with the Python side's handler ids: in `half` mode `create_pending` fails
/// with a temporary error; every result says who ran it.
fn kopf_rs_operator(half: bool, runs: Arc<Runs>) -> Operator {
    let (r1, r2, r3) = (runs.clone(), runs.clone(), runs);
    Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, ctx: Context| {
            r1.create_fn.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, HandlerError>(json!({"by": "kopf-rs", "retry": ctx.retry()})) }
        })
        .id("create_fn")
        .on_create(move |_ex: Arc<KopfExample>, ctx: Context| {
            r2.create_pending.fetch_add(1, Ordering::SeqCst);
            async move {
                if half {
                    return Err(HandlerError::temporary("not yet").with_delay(DELAY));
                }
                let ran_at = kopf_time(Clock::wall().now());
                Ok(json!({"by": "kopf-rs", "retry": ctx.retry(), "started": kopf_time(ctx.started()), "ran_at": ran_at}))
            }
        })
        .id("create_pending")
        .on_resume(move |_ex: Arc<KopfExample>, ctx: Context| {
            r3.resume_fn.fetch_add(1, Ordering::SeqCst);
            let reason = ctx.reason().map(|r| r.as_str());
            let diff: Vec<String> = ctx.diff().iter().map(ToString::to_string).collect();
            async move { Ok::<_, HandlerError>(json!({"by": "kopf-rs", "reason": reason, "diff": diff})) }
        })
        .id("resume_fn")
}

/// What Kopf's own code writes for this object: its progress records re-encoded, and the diff-base
/// it would store.
async fn kopf_encoding(python: &Path, object: &Value) -> Value {
    let mut child = tokio::process::Command::new(python)
        .arg(script("kopf_encoding.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(object.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("in time").unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The annotation of a handler's progress record.
fn record_key(id: &str) -> String {
    format!("{PREFIX}/{id}")
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

/// The object's progress records (annotations under the prefix, but the diff-base).
fn records(object: &Value) -> Vec<(String, String)> {
    let annotations = object["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    annotations
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with(&format!("{PREFIX}/")) && k != DIFF_BASE && !k.ends_with("/touch-dummy")
        })
        .map(|(k, v)| (k, v.as_str().unwrap().to_owned()))
        .collect()
}

/// Half-handled: create_fn's record says success, create_pending's says a failed try with a retry
/// scheduled.
fn is_half_handled(object: &Value) -> bool {
    let done = annotation(object, &record_key("create_fn"))
        .and_then(|r| serde_json::from_str::<ProgressRecord>(r).ok())
        .is_some_and(|r| r.success == Some(true));
    let pending = annotation(object, &record_key("create_pending"))
        .and_then(|r| serde_json::from_str::<ProgressRecord>(r).ok())
        .is_some_and(|r| r.retries >= Some(1) && r.delayed.is_some());
    done && pending && !object["status"]["create_fn"].is_null()
}

fn is_finished(object: &Value) -> bool {
    !object["status"]["create_pending"].is_null() && annotation(object, DIFF_BASE).is_some()
}

/// The diff-base kopf-rs stores for a body (its essence without the progress records).
fn kopf_rs_diff_base(object: &Value) -> String {
    let mut essence = DiffBaseStorage::default().build(object, &[]);
    ProgressStorage::default().clear(&mut essence);
    let patch = Patch::default();
    DiffBaseStorage::default().store(object, &patch, &essence);
    patch.snapshot()["metadata"]["annotations"][DIFF_BASE].as_str().unwrap().to_owned()
}

fn created_example() -> KopfExample {
    let mut ex = example("ex1", "interop");
    ex.labels_mut().insert("app".into(), "interop".into());
    ex
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_half_handled_by_python_kopf_is_finished_by_kopf_rs_without_rerunning_the_done_handler() {
    let Some(python) = python() else { return };
    let cluster = Cluster::start("interop-python-first").await;

    // Python Kopf: create_fn succeeds, create_pending fails and waits for its retry.
    let half = cluster.start_python(&python, "half", "python-half");
    cluster.examples().create(&PostParams::default(), &created_example()).await.unwrap();
    cluster.wait_for("half-handling by Python Kopf", &|| half.log(), is_half_handled).await;
    let log = half.stop().await;
    assert_eq!(log.matches("Handler 'create_fn' succeeded.").count(), 1, "{log}");
    let by_python = serde_json::to_value(cluster.examples().get("ex1").await.unwrap()).unwrap();
    assert_eq!(by_python["status"]["create_fn"], json!({"by": "python", "retry": 0}));

    // Kopf's records, read and re-encoded by kopf-rs, are the same bytes.
    for (key, encoded) in records(&by_python) {
        let record: ProgressRecord = serde_json::from_str(&encoded).unwrap();
        assert_eq!(record.encode(), encoded, "{key}");
    }
    let pending: ProgressRecord =
        serde_json::from_str(annotation(&by_python, &record_key("create_pending")).unwrap()).unwrap();
    assert_eq!(
        (pending.purpose.as_deref(), pending.success, pending.message.as_deref()),
        (Some("create"), Some(false), Some("not yet"))
    );

    // kopf-rs takes over: create_fn is not run again, create_pending runs as Kopf's next retry,
    // once Kopf's delay has passed.
    let runs = Arc::new(Runs::default());
    let running = cluster.start_kopf_rs(kopf_rs_operator(false, runs.clone())).await;
    let finished = cluster.wait_for("kopf-rs finishing", &String::new, is_finished).await;
    running.stop();
    running.join().await.expect("kopf-rs stops cleanly");
    assert_eq!(runs.create_fn.load(Ordering::SeqCst), 0, "the done handler is not re-run");
    assert_eq!(runs.create_pending.load(Ordering::SeqCst), 1);
    assert_eq!(runs.resume_fn.load(Ordering::SeqCst), 0, "a creation is never mixed with resuming");
    assert_eq!(finished["status"]["create_fn"], json!({"by": "python", "retry": 0}));
    let result = &finished["status"]["create_pending"];
    assert_eq!(
        (&result["by"], result["retry"].as_u64()),
        (&json!("kopf-rs"), pending.retries.map(u64::from))
    );
    assert_eq!(result["started"].as_str(), pending.started.as_deref(), "Kopf's start time is kept");
    assert!(
        result["ran_at"].as_str().unwrap() >= pending.delayed.as_deref().unwrap(),
        "Kopf's delay is honoured: {result}"
    );
    assert_eq!(records(&finished), [], "the records are purged when the creation is done");

    // The diff-base kopf-rs wrote is the one Kopf's code writes for this body.
    let kopf = kopf_encoding(&python, &finished).await;
    assert_eq!(annotation(&finished, DIFF_BASE), kopf["diff_base"].as_str());
    assert_eq!(
        annotation(&finished, DIFF_BASE),
        Some(
            "{\"spec\":{\"field\":\"interop\",\"items\":[\"item1\",\"item2\"]},\"metadata\":{\"labels\":{\"app\":\"interop\"}}}\n"
        )
    );

    // Python Kopf again: the object is fully handled; it resumes and sees no change.
    let again = cluster.start_python(&python, "finish", "python-resume");
    let resumed = cluster
        .wait_for("Python Kopf's resume", &|| again.log(), |o| !o["status"]["resume_fn"].is_null())
        .await;
    let log = again.stop().await;
    assert_eq!(
        resumed["status"]["resume_fn"],
        json!({"by": "python", "reason": "resume", "diff": []}),
        "{log}"
    );
    assert!(!log.contains("Handler 'create_"), "{log}");
    for bad in ["[WARNING", "[ERROR", "Traceback"] {
        assert!(!log.contains(bad), "{bad:?} in Kopf's log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_half_handled_by_kopf_rs_is_finished_by_python_kopf_without_rerunning_the_done_handler() {
    let Some(python) = python() else { return };
    let cluster = Cluster::start("interop-kopf-rs-first").await;

    // kopf-rs: create_fn succeeds, create_pending fails and waits for its retry.
    let runs = Arc::new(Runs::default());
    let running = cluster.start_kopf_rs(kopf_rs_operator(true, runs.clone())).await;
    cluster.examples().create(&PostParams::default(), &created_example()).await.unwrap();
    cluster.wait_for("half-handling by kopf-rs", &String::new, is_half_handled).await;
    running.stop();
    running.join().await.expect("kopf-rs stops cleanly");
    let by_kopf_rs = serde_json::to_value(cluster.examples().get("ex1").await.unwrap()).unwrap();
    assert_eq!(runs.create_fn.load(Ordering::SeqCst), 1);
    assert_eq!(by_kopf_rs["status"]["create_fn"], json!({"by": "kopf-rs", "retry": 0}));

    // kopf-rs's records are byte for byte what Kopf's code writes for the same state.
    let kopf = kopf_encoding(&python, &by_kopf_rs).await;
    let written = records(&by_kopf_rs);
    assert_eq!(
        written.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [record_key("create_fn"), record_key("create_pending")]
    );
    for (key, encoded) in &written {
        assert_eq!(kopf["records"][key].as_str(), Some(encoded.as_str()), "{key}");
    }
    let pending: ProgressRecord =
        serde_json::from_str(annotation(&by_kopf_rs, &record_key("create_pending")).unwrap()).unwrap();

    // Python Kopf takes over: create_fn is not run again, create_pending runs as the next retry.
    let finish = cluster.start_python(&python, "finish", "python-finish");
    let finished = cluster.wait_for("Python Kopf finishing", &|| finish.log(), is_finished).await;
    let log = finish.stop().await;
    assert!(!log.contains("Handler 'create_fn'"), "the done handler is not re-run:\n{log}");
    assert_eq!(log.matches("Handler 'create_pending' succeeded.").count(), 1, "{log}");
    for bad in ["[WARNING", "[ERROR", "Traceback"] {
        assert!(!log.contains(bad), "{bad:?} in Kopf's log:\n{log}");
    }
    assert_eq!(finished["status"]["create_fn"], json!({"by": "kopf-rs", "retry": 0}));
    let expected = json!({"by": "python", "retry": pending.retries, "started": pending.started});
    assert_eq!(
        finished["status"]["create_pending"], expected,
        "kopf-rs's retry count and start time are read"
    );
    assert_eq!(records(&finished), [], "the records are purged when the creation is done");

    // The diff-base Python Kopf wrote is the one kopf-rs writes for this body.
    assert_eq!(annotation(&finished, DIFF_BASE), Some(kopf_rs_diff_base(&finished).as_str()));

    // kopf-rs again: the object is fully handled; it resumes and sees no change.
    let runs = Arc::new(Runs::default());
    let running = cluster.start_kopf_rs(kopf_rs_operator(false, runs.clone())).await;
    let resumed =
        cluster.wait_for("kopf-rs's resume", &String::new, |o| !o["status"]["resume_fn"].is_null()).await;
    running.stop();
    running.join().await.expect("kopf-rs stops cleanly");
    assert_eq!(resumed["status"]["resume_fn"], json!({"by": "kopf-rs", "reason": "resume", "diff": []}));
    assert_eq!((runs.create_fn.load(Ordering::SeqCst), runs.create_pending.load(Ordering::SeqCst)), (0, 0));
}
