//! Operators that wait for what the cluster does, against the live fake cluster
//! (`KopfRunner::live_cluster`): the built-in controllers roll out Deployments and run Jobs, the
//! simulated kubelets start, probe, fail and pull on virtual time. Each scenario asserts the exact
//! virtual time it takes and runs twice with one seed to the same timeline.

use std::sync::Arc;
use std::time::Duration;

use fake_apiserver::live::{Behaviour, LiveCluster, Rule};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kopf::{Context, HandlerError, Operator};
use kopf_testing::KopfRunner;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The label an operator puts on its children, to watch only those.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kopf-live-test");

/// A web application: a Deployment of `replicas` Pods of `image`.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(group = "kopf.dev", version = "v1", kind = "WebApp", namespaced, status = "AppStatus")]
pub(crate) struct WebAppSpec {
    pub(crate) image: String,
    pub(crate) replicas: i32,
}

/// A batch run: a Job of `image`, run again when it fails, at most `attempts` times.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(group = "kopf.dev", version = "v1", kind = "BatchRun", namespaced, status = "AppStatus")]
pub(crate) struct BatchRunSpec {
    pub(crate) image: String,
    pub(crate) attempts: u32,
}

/// What the operators report.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub(crate) struct AppStatus {
    #[serde(default)]
    pub(crate) phase: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) attempts: u32,
}

/// The controller owner reference of a stored object, or a permanent error.
fn owner_of<K: kube::Resource<DynamicType = ()>>(parent: &K) -> Result<Value, HandlerError> {
    let owner = parent.controller_owner_ref(&()).ok_or_else(|| HandlerError::permanent("no name or uid"))?;
    Ok(serde_json::to_value(owner)?)
}

/// The name of the owner of this kind, from the body's owner references.
fn owner_name(body: &Value, kind: &str) -> Option<String> {
    body["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["controller"] == true)
        .and_then(|r| r["name"].as_str())
        .map(str::to_owned)
}

fn condition<'a>(body: &'a Value, kind: &str) -> Option<&'a Value> {
    body["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

/// The WebApp operator: makes a Deployment for each WebApp (with a readiness probe that passes 5 s
/// after a container starts) and follows it, marking the WebApp `Ready` only once the Deployment
/// is Available with every replica updated, `Failed` (with the Pods' reason) when its progress
/// deadline passes.
fn webapp_operator() -> Operator {
    Operator::new()
        .on_create(|app: Arc<WebApp>, ctx: Context| async move {
            let name = ctx.name().unwrap_or_default().to_owned();
            let deployment: Deployment = serde_json::from_value(json!({
                "metadata": {
                    "name": name,
                    "labels": {MANAGED_BY.0: MANAGED_BY.1, "app": name},
                    "ownerReferences": [owner_of(&*app)?],
                },
                "spec": {
                    "replicas": app.spec.replicas,
                    "progressDeadlineSeconds": 60,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{
                            "name": "web",
                            "image": app.spec.image,
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": 8080},
                                "initialDelaySeconds": 5,
                                "periodSeconds": 5,
                            },
                        }]},
                    },
                },
            }))?;
            ctx.api().create(ctx.namespace(), &deployment).await?;
            ctx.patch().merge(json!({"status": {"phase": "Progressing"}}));
            Ok::<_, HandlerError>(())
        })
        .id("create_deployment")
        .on_event(|_deployment: Arc<Deployment>, ctx: Context| async move {
            let body = ctx.body();
            let Some(app) = owner_name(body, "WebApp") else { return Ok(()) };
            let wanted = body["spec"]["replicas"].as_i64().unwrap_or(1);
            let status = &body["status"];
            let current = status["observedGeneration"] == body["metadata"]["generation"];
            let available = condition(body, "Available").is_some_and(|c| c["status"] == "True");
            let deadline_passed = condition(body, "Progressing")
                .is_some_and(|c| c["status"] == "False" && c["reason"] == "ProgressDeadlineExceeded");
            let (phase, message) = if current
                && available
                && status["updatedReplicas"] == wanted
                && status["availableReplicas"] == wanted
            {
                ("Ready", format!("{wanted} of {wanted} replicas available"))
            } else if deadline_passed {
                // Say why: the first waiting container of the Deployment's Pods.
                let pods: Vec<Pod> = ctx.api().list(ctx.namespace()).await?;
                let reason = pods
                    .iter()
                    .filter(|p| p.metadata.labels.as_ref().is_some_and(|l| l.get("app") == Some(&app)))
                    .filter_map(|p| {
                        p.status
                            .as_ref()?
                            .container_statuses
                            .as_ref()?
                            .first()?
                            .state
                            .as_ref()?
                            .waiting
                            .clone()
                    })
                    .map(|w| format!("{}: {}", w.reason.unwrap_or_default(), w.message.unwrap_or_default()))
                    .next()
                    .unwrap_or_default();
                ("Failed", reason)
            } else {
                ("Progressing", String::new())
            };
            let patch = json!({"status": {"phase": phase, "message": message}});
            ctx.api().patch::<WebApp>(ctx.namespace(), &app, patch, Some("status")).await?;
            Ok::<_, HandlerError>(())
        })
        .id("follow_deployment")
        .labels(MANAGED_BY.0, MANAGED_BY.1)
}

fn webapp(name: &str, image: &str, replicas: i32) -> WebApp {
    let mut app = WebApp::new(name, WebAppSpec { image: image.into(), replicas });
    app.metadata.namespace = Some("default".into());
    app
}

/// Runs a WebApp of `image` until it is Ready or Failed; the virtual time that took, its status,
/// and the timeline.
async fn run_webapp(live: LiveCluster, image: &str) -> (Duration, AppStatus, String) {
    let runner =
        KopfRunner::new(webapp_operator()).with_crd::<WebApp>().live_cluster(live).seed(5).start().await;
    runner.cluster().create(webapp("shop", image, 3)).await;
    let started = runner.elapsed();
    runner
        .wait_for(
            |cluster| {
                cluster
                    .peek::<WebApp>("shop")
                    .and_then(|a| a.status)
                    .is_some_and(|s| s.phase == "Ready" || s.phase == "Failed")
            },
            Duration::from_secs(600),
        )
        .await
        .expect("the WebApp is Ready or Failed within 10 minutes of virtual time");
    let took = runner.elapsed() - started;
    let status = runner.cluster().peek::<WebApp>("shop").and_then(|a| a.status).unwrap();
    if status.phase == "Ready" {
        // Ready only once the Deployment is Available with all three replicas ready.
        let deployment: Deployment = runner.cluster().get("shop").await;
        let body = serde_json::to_value(&deployment).unwrap();
        assert_eq!(condition(&body, "Available").unwrap()["status"], "True");
        assert_eq!(body["status"]["readyReplicas"], 3);
        let pods: Vec<Pod> = runner.cluster().list().await;
        let ready = pods
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        assert_eq!(ready, 3);
    }
    let timeline = actions(&runner.timeline().to_string());
    runner.stop().await;
    (took, status, timeline)
}

#[tokio::test(start_paused = true)]
async fn a_webapp_is_marked_ready_only_when_its_deployment_is_available_at_the_same_virtual_time_each_run() {
    let (took, status, timeline) = run_webapp(LiveCluster::new(), "nginx:1.27").await;
    // Bound at once, started after 1 s, ready at the first probe 5 s later.
    assert_eq!(took, Duration::from_secs(6), "{timeline}");
    assert_eq!((status.phase.as_str(), status.message.as_str()), ("Ready", "3 of 3 replicas available"));
    let progressing = timeline.lines().filter(|l| l.contains("follow_deployment default/shop")).count();
    assert!(progressing > 1, "the operator followed the rollout through several changes:\n{timeline}");
    assert_eq!(run_webapp(LiveCluster::new(), "nginx:1.27").await, (took, status, timeline));
}

#[tokio::test(start_paused = true)]
async fn a_webapp_whose_image_cannot_be_pulled_is_reported_failed_when_the_progress_deadline_passes() {
    let live = || LiveCluster::new().rule(Rule::image("registry.example/*", Behaviour::pull_fails()));
    let (took, status, timeline) = run_webapp(live(), "registry.example/shop:broken").await;
    assert_eq!(took, Duration::from_secs(61), "{timeline}");
    assert_eq!(status.phase, "Failed");
    assert_eq!(status.message, "ImagePullBackOff: Back-off pulling image \"registry.example/shop:broken\"");
    assert_eq!(run_webapp(live(), "registry.example/shop:broken").await, (took, status, timeline));
}

/// The BatchRun operator: runs attempt 1 as a Job (`backoffLimit: 0`, its Pods labelled with the
/// attempt) and, when an attempt's Job fails, the next one, up to `spec.attempts`; reports
/// `Succeeded` or `Failed` with the attempts made.
fn batch_operator() -> Operator {
    async fn start_attempt(
        ctx: &Context,
        run: &str,
        owner: Value,
        image: &str,
        attempt: u32,
    ) -> Result<(), HandlerError> {
        let job: Job = serde_json::from_value(json!({
            "metadata": {
                "name": format!("{run}-{attempt}"),
                "labels": {MANAGED_BY.0: MANAGED_BY.1, "attempt": attempt.to_string()},
                "ownerReferences": [owner],
            },
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": {"attempt": attempt.to_string()}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": image}]},
                },
            },
        }))?;
        match ctx.api().create(ctx.namespace(), &job).await {
            // Seen again (a later change of the failed Job): the attempt exists already.
            Ok(_) | Err(kopf::ApiError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
    Operator::new()
        .on_create(|run: Arc<BatchRun>, ctx: Context| async move {
            let name = ctx.name().unwrap_or_default().to_owned();
            start_attempt(&ctx, &name, owner_of(&*run)?, &run.spec.image, 1).await?;
            ctx.patch().merge(json!({"status": {"phase": "Running", "attempts": 1}}));
            Ok::<_, HandlerError>(())
        })
        .id("first_attempt")
        .on_event(|_job: Arc<Job>, ctx: Context| async move {
            let body = ctx.body();
            let Some(name) = owner_name(body, "BatchRun") else { return Ok(()) };
            let attempt: u32 = body["metadata"]["labels"]["attempt"].as_str().and_then(|a| a.parse().ok()).unwrap_or(1);
            let done = |kind: &str| condition(body, kind).is_some_and(|c| c["status"] == "True");
            let status = if done("Complete") {
                json!({"phase": "Succeeded", "attempts": attempt})
            } else if done("Failed") {
                let Some(run) = ctx.api().get::<BatchRun>(ctx.namespace(), &name).await? else { return Ok(()) };
                if attempt < run.spec.attempts {
                    start_attempt(&ctx, &name, owner_of(&run)?, &run.spec.image, attempt + 1).await?;
                    json!({"phase": "Running", "attempts": attempt + 1, "message": format!("attempt {attempt} failed")})
                } else {
                    json!({"phase": "Failed", "attempts": attempt, "message": format!("attempt {attempt} failed")})
                }
            } else {
                return Ok(());
            };
            // Only the latest attempt's Job speaks for the run.
            let latest = ctx.api().get::<BatchRun>(ctx.namespace(), &name).await?.and_then(|r| r.status).map_or(1, |s| s.attempts);
            if attempt >= latest {
                ctx.api().patch::<BatchRun>(ctx.namespace(), &name, json!({"status": status}), Some("status")).await?;
            }
            Ok::<_, HandlerError>(())
        })
        .id("follow_job")
        .labels(MANAGED_BY.0, MANAGED_BY.1)
}

/// Runs a BatchRun of `attempts` whose first `failing` attempts exit 1 after 2 s (the others
/// exit 0 after the default second); the virtual time until it ended, its status, the timeline.
async fn run_batch(attempts: u32, failing: u32) -> (Duration, AppStatus, String) {
    let mut live = LiveCluster::new();
    for attempt in 1..=failing {
        live = live.rule(Rule::labels(
            [("attempt", attempt.to_string())],
            Behaviour::exits_after(Duration::from_secs(2), 1),
        ));
    }
    let runner =
        KopfRunner::new(batch_operator()).with_crd::<BatchRun>().live_cluster(live).seed(9).start().await;
    let mut run = BatchRun::new("nightly", BatchRunSpec { image: "report:1".into(), attempts });
    run.metadata.namespace = Some("default".into());
    runner.cluster().create(run).await;
    let started = runner.elapsed();
    runner
        .wait_for(
            |cluster| {
                cluster
                    .peek::<BatchRun>("nightly")
                    .and_then(|r| r.status)
                    .is_some_and(|s| s.phase == "Succeeded" || s.phase == "Failed")
            },
            Duration::from_secs(600),
        )
        .await
        .expect("the run ends within 10 minutes of virtual time");
    let took = runner.elapsed() - started;
    let status = runner.cluster().peek::<BatchRun>("nightly").and_then(|r| r.status).unwrap();
    let jobs: Vec<Job> = runner.cluster().list().await;
    let mut names: Vec<String> = jobs.into_iter().filter_map(|j| j.metadata.name).collect();
    names.sort();
    let expected: Vec<String> = (1..=status.attempts).map(|a| format!("nightly-{a}")).collect();
    assert_eq!(names, expected, "one Job per attempt");
    let timeline = actions(&runner.timeline().to_string());
    runner.stop().await;
    (took, status, timeline)
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_is_retried_by_the_operator_until_an_attempt_succeeds_at_the_same_virtual_time_each_run()
{
    let (took, status, timeline) = run_batch(5, 2).await;
    // Each failing attempt: started 1 s after binding, failed 2 s later; the third runs 1 s.
    assert_eq!(took, Duration::from_secs(8), "{timeline}");
    assert_eq!((status.phase.as_str(), status.attempts), ("Succeeded", 3));
    assert_eq!(run_batch(5, 2).await, (took, status, timeline));
}

#[tokio::test(start_paused = true)]
async fn a_job_that_fails_every_attempt_is_reported_failed_after_the_last_one() {
    let (took, status, timeline) = run_batch(2, 5).await;
    assert_eq!(took, Duration::from_secs(6), "{timeline}");
    assert_eq!(
        (status.phase.as_str(), status.attempts, status.message.as_str()),
        ("Failed", 2, "attempt 2 failed")
    );
    assert_eq!(run_batch(2, 5).await, (took, status, timeline));
}

/// The operator's own actions in a timeline (causes, handler runs, patches, API errors), without
/// the watch events: events of different resources that arrive at the same virtual instant come
/// through separate watch tasks, and their interleaving under a loaded machine may differ between
/// runs; what the operator does with them must not.
fn actions(timeline: &str) -> String {
    timeline.lines().filter(|line| !line.contains("  watch  ")).map(|line| format!("{line}\n")).collect()
}
