//! Workload controllers on virtual time: Deployments (rollout, rolling update within surge and
//! unavailability, rollback, scaling, Recreate, progress deadline), StatefulSets, DaemonSets, Jobs,
//! CronJobs, EndpointSlices.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use fake_apiserver::live::{Controller, LiveCluster, NodeTemplate};
use fake_apiserver::{FakeApiServer, PatchType, Request, Response, Verb, WatchEvent};
use futures::StreamExt as _;
use serde_json::{Value, json};

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "initialDelaySeconds": 5, "periodSeconds": 10}}],
                },
            },
        },
    })
}

fn condition(object: &Value, kind: &str) -> Value {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .cloned()
        .unwrap_or(Value::Null)
}

fn available(server: &FakeApiServer, name: &str) -> bool {
    get(server, "apps", "deployments", "default", name)
        .is_some_and(|d| condition(&d, "Available")["status"] == "True")
}

fn complete(server: &FakeApiServer, name: &str) -> bool {
    get(server, "apps", "deployments", "default", name).is_some_and(|d| {
        let s = &d["status"];
        d["metadata"]["generation"] == s["observedGeneration"]
            && s["updatedReplicas"] == d["spec"]["replicas"]
            && s["replicas"] == d["spec"]["replicas"]
            && s["availableReplicas"] == d["spec"]["replicas"]
    })
}

fn replica_sets(server: &FakeApiServer) -> Vec<Value> {
    list::<Value>(server, "apps", "replicasets", "default")
}

/// Follows the Pods of an app through a watch: the most Pods alive at once and the fewest ready.
#[derive(Debug, Default)]
struct PodCensus {
    pods: BTreeMap<String, (bool, bool)>,
    max_alive: usize,
    min_ready: Option<usize>,
    primed: bool,
}

async fn census(server: &FakeApiServer, app: &str, initial: usize) -> Arc<Mutex<PodCensus>> {
    let mut req = Request::new(Verb::Watch, "", "v1", "pods").namespace("default");
    req.params.label_selector = Some(format!("app={app}"));
    let Response::Watch(mut stream) = server.cluster().handle(req).await.unwrap() else { panic!("a watch") };
    let census = Arc::new(Mutex::new(PodCensus::default()));
    let shared = census.clone();
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            let (object, gone) = match &event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => (o.value(), false),
                WatchEvent::Deleted(o) => (o.value(), true),
                _ => continue,
            };
            let mut c = shared.lock().unwrap();
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            if gone {
                c.pods.remove(&name);
            } else {
                let deleting = !object["metadata"]["deletionTimestamp"].is_null();
                let ready = condition(&object, "Ready")["status"] == "True" && !deleting;
                c.pods.insert(name, (!deleting, ready));
            }
            let alive = c.pods.values().filter(|(a, _)| *a).count();
            let ready = c.pods.values().filter(|(_, r)| *r).count();
            c.max_alive = c.max_alive.max(alive);
            // The initial events (one per existing Pod) build the picture; count from there on.
            c.primed |= c.pods.len() >= initial;
            if c.primed {
                c.min_ready = Some(c.min_ready.map_or(ready, |m| m.min(ready)));
            }
        }
    });
    census
}

async fn drained(server: &FakeApiServer) {
    while server.cluster().watches_with_backlog() > 0 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_deployment_becomes_available_when_its_pods_pass_their_readiness_probe() {
    let server = live(LiveCluster::new());
    create(&server, deployment("web", 3, "nginx:1.27")).await;
    let took = until(&server, Duration::from_secs(120), |s| available(s, "web")).await;
    assert_eq!(took, Duration::from_secs(11), "started at 1 s, first passing probe tick at 5 s ≤ 10 s after");
    let d = get(&server, "apps", "deployments", "default", "web").unwrap();
    let s = &d["status"];
    assert_eq!(
        (
            s["replicas"].clone(),
            s["updatedReplicas"].clone(),
            s["readyReplicas"].clone(),
            s["availableReplicas"].clone()
        ),
        (json!(3), json!(3), json!(3), json!(3))
    );
    assert_eq!(s["observedGeneration"], d["metadata"]["generation"]);
    assert_eq!(condition(&d, "Available")["reason"], "MinimumReplicasAvailable");
    let progressing = condition(&d, "Progressing");
    assert_eq!(
        (progressing["status"].as_str(), progressing["reason"].as_str()),
        (Some("True"), Some("NewReplicaSetAvailable"))
    );
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    let rs = &replica_sets(&server)[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"].as_str().unwrap();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(rs["metadata"]["ownerReferences"][0]["name"], "web");
    assert_eq!(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash);
    let pods: Vec<Value> = list(&server, "", "pods", "default");
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter().all(|p| p["metadata"]["name"].as_str().unwrap().starts_with(&format!("web-{hash}-")))
    );
}

#[tokio::test(start_paused = true)]
async fn a_rolling_update_stays_within_max_surge_and_max_unavailable_and_keeps_the_old_replica_set() {
    let server = live(LiveCluster::new());
    create(&server, deployment("web", 4, "nginx:1.27")).await;
    until(&server, Duration::from_secs(120), |s| complete(s, "web")).await;
    let census = census(&server, "web", 4).await;
    patch(
        &server,
        "apps",
        "deployments",
        Some("default"),
        "web",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}),
    )
    .await;
    let took = until(&server, Duration::from_secs(300), |s| complete(s, "web")).await;
    assert_eq!(took, Duration::from_secs(22), "two waves of two new Pods, each ready 11 s after it was made");
    drained(&server).await;
    {
        let c = census.lock().unwrap();
        assert_eq!(c.max_alive, 5, "replicas + maxSurge (25 % of 4, rounded up)");
        assert_eq!(c.min_ready, Some(3), "replicas - maxUnavailable (25 % of 4, rounded down)");
    }
    let mut sets = replica_sets(&server);
    sets.sort_by_key(|rs| {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str().unwrap().to_owned()
    });
    assert_eq!(sets.len(), 2, "the old ReplicaSet stays as history");
    assert_eq!(
        (sets[0]["spec"]["replicas"].clone(), sets[1]["spec"]["replicas"].clone()),
        (json!(0), json!(4))
    );
    assert_eq!(sets[1]["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.28");
    let d = get(&server, "apps", "deployments", "default", "web").unwrap();
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");

    // Rolling back brings the old template — and its ReplicaSet — back as revision 3.
    patch(
        &server,
        "apps",
        "deployments",
        Some("default"),
        "web",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
    )
    .await;
    until(&server, Duration::from_secs(300), |s| complete(s, "web")).await;
    let old = replica_sets(&server)
        .into_iter()
        .find(|rs| rs["metadata"]["name"] == sets[0]["metadata"]["name"])
        .unwrap();
    assert_eq!(old["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
    assert_eq!(old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "1");
    assert_eq!(old["spec"]["replicas"], 4);
    let d = get(&server, "apps", "deployments", "default", "web").unwrap();
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
    assert_eq!(replica_sets(&server).len(), 2, "no third ReplicaSet");
}

#[tokio::test(start_paused = true)]
async fn scaling_through_the_scale_subresource_drives_the_replica_set() {
    let server = live(LiveCluster::new());
    create(&server, deployment("web", 2, "nginx:1.27")).await;
    until(&server, Duration::from_secs(120), |s| complete(s, "web")).await;
    let mut req = Request::new(Verb::Patch, "apps", "v1", "deployments")
        .namespace("default")
        .name("web")
        .subresource("scale");
    req.patch_type = Some(PatchType::Merge);
    req.body = Some(json!({"spec": {"replicas": 5}}));
    server.cluster().handle(req).await.unwrap();
    let took = until(&server, Duration::from_secs(120), |s| complete(s, "web")).await;
    assert_eq!(took, Duration::from_secs(11));
    assert_eq!(replica_sets(&server)[0]["spec"]["replicas"], 5);
    assert_eq!(
        replica_sets(&server)[0]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "5"
    );
    let scale = server
        .cluster()
        .handle(
            Request::new(Verb::Get, "apps", "v1", "deployments")
                .namespace("default")
                .name("web")
                .subresource("scale"),
        )
        .await
        .unwrap();
    let Response::Status(scale) = scale else { panic!("a Scale") };
    assert_eq!(
        (scale["spec"]["replicas"].clone(), scale["status"]["replicas"].clone()),
        (json!(5), json!(5))
    );
    assert_eq!(scale["status"]["selector"], "app=web");
}

#[tokio::test(start_paused = true)]
async fn an_image_that_fails_to_pull_never_becomes_available_and_the_progress_deadline_expires() {
    let server = live(LiveCluster::new());
    let mut d = deployment("broken", 1, "registry.example/missing:1");
    d["spec"]["progressDeadlineSeconds"] = json!(60);
    d["spec"]["template"]["metadata"]["annotations"] = json!({"fake.kopf.dev/pull": "fail"});
    create(&server, d).await;
    let took = until(&server, Duration::from_secs(600), |s| {
        get(s, "apps", "deployments", "default", "broken")
            .is_some_and(|d| condition(&d, "Progressing")["status"] == "False")
    })
    .await;
    assert_eq!(took, Duration::from_secs(61), "the deadline passed at 60 s; the controller looks 1 s later");
    let d = get(&server, "apps", "deployments", "default", "broken").unwrap();
    assert_eq!(condition(&d, "Progressing")["reason"], "ProgressDeadlineExceeded");
    assert_eq!(condition(&d, "Available")["status"], "False");
    let pod = &list::<Value>(&server, "", "pods", "default")[0];
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert!(matches!(waiting["reason"].as_str(), Some("ErrImagePull" | "ImagePullBackOff")), "{waiting}");
    assert_eq!(pod["status"]["phase"], "Pending");
}

#[tokio::test(start_paused = true)]
async fn a_recreate_deployment_starts_new_pods_only_after_the_old_ones_are_gone() {
    let server = live(LiveCluster::new());
    let mut d = deployment("db", 2, "postgres:16");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    create(&server, d).await;
    until(&server, Duration::from_secs(120), |s| complete(s, "db")).await;
    let changed_at = server.cluster().clock().now();
    let census = census(&server, "db", 2).await;
    patch(
        &server,
        "apps",
        "deployments",
        Some("default"),
        "db",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "postgres:17"}]}}}}),
    )
    .await;
    let took = until(&server, Duration::from_secs(300), |s| complete(s, "db")).await;
    assert_eq!(took, Duration::from_secs(5 + 11), "5 s of grace for the old Pods, then 11 s to ready");
    drained(&server).await;
    assert_eq!(census.lock().unwrap().max_alive, 2, "never old and new Pods together");
    let new_rs = replica_sets(&server).into_iter().find(|rs| rs["spec"]["replicas"] == 2).unwrap();
    let created: jiff::Timestamp = new_rs["metadata"]["creationTimestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        created,
        changed_at + jiff::SignedDuration::from_secs(5),
        "made when the last old Pod was gone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_statefulset_makes_its_pods_in_order_each_with_a_bound_claim() {
    let server = live(LiveCluster::new());
    create(&server, json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "replicas": 3, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}],
        },
    })).await;
    let mut created_at = Vec::new();
    for i in 0..3 {
        let name = format!("db-{i}");
        let took =
            until(&server, Duration::from_secs(60), |s| get(s, "", "pods", "default", &name).is_some()).await;
        created_at.push(took);
    }
    assert_eq!(
        created_at,
        [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(1)],
        "each after the previous is Running and Ready (1 s each)"
    );
    until(&server, Duration::from_secs(60), |s| {
        get(s, "apps", "statefulsets", "default", "db").is_some_and(|d| d["status"]["readyReplicas"] == 3)
    })
    .await;
    for i in 0..3 {
        let pod = get(&server, "", "pods", "default", &format!("db-{i}")).unwrap();
        assert_eq!(pod["spec"]["hostname"], format!("db-{i}"));
        assert_eq!(pod["spec"]["subdomain"], "db");
        assert_eq!(pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"], i.to_string());
        let claim = get(&server, "", "persistentvolumeclaims", "default", &format!("data-db-{i}")).unwrap();
        assert_eq!(claim["status"]["phase"], "Bound");
        assert_eq!(claim["status"]["capacity"]["storage"], "2Gi");
        let volume =
            get(&server, "", "persistentvolumes", "", claim["spec"]["volumeName"].as_str().unwrap()).unwrap();
        assert_eq!(volume["status"]["phase"], "Bound");
        assert_eq!(volume["spec"]["claimRef"]["name"], format!("data-db-{i}"));
        assert_eq!(pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], format!("data-db-{i}"));
    }
    let set = get(&server, "apps", "statefulsets", "default", "db").unwrap();
    assert_eq!(set["status"]["currentRevision"], set["status"]["updateRevision"]);
    // Scaling down removes the highest ordinal and keeps its claim.
    patch(&server, "apps", "statefulsets", Some("default"), "db", json!({"spec": {"replicas": 2}})).await;
    until(&server, Duration::from_secs(120), |s| get(s, "", "pods", "default", "db-2").is_none()).await;
    assert!(get(&server, "", "pods", "default", "db-1").is_some());
    assert!(
        get(&server, "", "persistentvolumeclaims", "default", "data-db-2").is_some(),
        "Retain keeps claims"
    );
}

#[tokio::test(start_paused = true)]
async fn a_daemonset_runs_one_pod_on_each_node_whose_taints_it_tolerates() {
    let config =
        LiveCluster::new().nodes(2).node(NodeTemplate::new("gpu-1").taint("gpu", "true", "NoSchedule"));
    let server = live(config);
    create(&server, json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "agent:1"}]}},
        },
    })).await;
    until(&server, Duration::from_secs(60), |s| {
        get(s, "apps", "daemonsets", "kube-system", "agent").is_some_and(|d| d["status"]["numberReady"] == 2)
    })
    .await;
    let pods: Vec<Value> = list(&server, "", "pods", "kube-system");
    let mut nodes: Vec<&str> = pods.iter().map(|p| p["spec"]["nodeName"].as_str().unwrap()).collect();
    nodes.sort();
    assert_eq!(nodes, ["node-1", "node-2"], "not on the tainted node");
    let ds = get(&server, "apps", "daemonsets", "kube-system", "agent").unwrap();
    assert_eq!(ds["status"]["desiredNumberScheduled"], 2);
    // A new Node gets its daemon Pod.
    create(&server, json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-3", "labels": {"kubernetes.io/hostname": "node-3"}}})).await;
    until(&server, Duration::from_secs(60), |s| {
        get(s, "apps", "daemonsets", "kube-system", "agent").is_some_and(|d| d["status"]["numberReady"] == 3)
    })
    .await;
}

fn job(name: &str, completions: i64, parallelism: i64, annotations: Value) -> Value {
    let mut job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "completions": completions, "parallelism": parallelism, "backoffLimit": 2,
            "template": {"metadata": {}, "spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox"}]}},
        },
    });
    job["spec"]["template"]["metadata"]["annotations"] = annotations;
    job
}

fn job_condition(server: &FakeApiServer, name: &str, kind: &str) -> bool {
    get(server, "batch", "jobs", "default", name).is_some_and(|j| condition(&j, kind)["status"] == "True")
}

#[tokio::test(start_paused = true)]
async fn a_job_runs_its_completions_in_parallel_and_completes() {
    let server = live(LiveCluster::new());
    create(&server, job("batch", 3, 2, json!({"fake.kopf.dev/run": "5s"}))).await;
    let took = until(&server, Duration::from_secs(120), |s| job_condition(s, "batch", "Complete")).await;
    assert_eq!(took, Duration::from_secs(12), "two Pods from 0 s to 6 s, the third from 6 s to 12 s");
    let j = get(&server, "batch", "jobs", "default", "batch").unwrap();
    assert_eq!((j["status"]["succeeded"].clone(), j["status"]["active"].clone()), (json!(3), json!(0)));
    assert_eq!(condition(&j, "SuccessCriteriaMet")["status"], "True");
    assert_eq!(j["status"]["completionTime"], "2026-01-01T00:00:12Z");
    let pods: Vec<Value> = list(&server, "", "pods", "default");
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Succeeded");
        assert!(pod["metadata"]["finalizers"].is_null(), "tracking finalizer removed once counted");
        assert_eq!(pod["metadata"]["labels"]["batch.kubernetes.io/job-name"], "batch");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_job_is_retried_with_back_off_until_its_backoff_limit_fails_it() {
    let server = live(LiveCluster::new());
    create(&server, job("flaky", 1, 1, json!({"fake.kopf.dev/run": "5s", "fake.kopf.dev/exit-code": "1"})))
        .await;
    let took = until(&server, Duration::from_secs(600), |s| job_condition(s, "flaky", "Failed")).await;
    assert_eq!(
        took,
        Duration::from_secs(48),
        "fails at 6 s, 22 s and 48 s: replacements 10 s and 20 s after a failure"
    );
    let j = get(&server, "batch", "jobs", "default", "flaky").unwrap();
    assert_eq!(j["status"]["failed"], 3);
    let failed = condition(&j, "Failed");
    assert_eq!(
        (failed["reason"].as_str(), failed["message"].as_str()),
        (Some("BackoffLimitExceeded"), Some("Job has reached the specified backoff limit"))
    );
    assert_eq!(condition(&j, "FailureTarget")["status"], "True");
    let mut starts: Vec<String> = list::<Value>(&server, "", "pods", "default")
        .iter()
        .map(|p| p["metadata"]["creationTimestamp"].as_str().unwrap().to_owned())
        .collect();
    starts.sort();
    assert_eq!(starts, ["2026-01-01T00:00:00Z", "2026-01-01T00:00:16Z", "2026-01-01T00:00:42Z"]);
}

#[tokio::test(start_paused = true)]
async fn a_cronjob_runs_every_hour_for_a_day_and_keeps_the_last_three_jobs() {
    let server = live(LiveCluster::new());
    create(&server, json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "report", "namespace": "default"},
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "r", "image": "report:1"}]}}}},
        },
    })).await;
    advance(&server, Duration::from_secs(24 * 3600 + 10)).await;
    let created = server.cluster().journal(|j| {
        j.operations()
            .filter(|o| {
                o.actor == "cronjob-controller" && o.verb == Verb::Create && o.resource == "jobs.batch"
            })
            .count()
    });
    assert_eq!(created, 24, "one Job an hour");
    let mut jobs: Vec<String> = list::<Value>(&server, "batch", "jobs", "default")
        .iter()
        .map(|j| j["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    jobs.sort();
    let minute = |h: i64| (1_767_225_600 + h * 3600) / 60; // 2026-01-01T00:00:00Z + h hours, in minutes
    assert_eq!(jobs, [22, 23, 24].map(|h| format!("report-{}", minute(h))), "successfulJobsHistoryLimit = 3");
    let cj = get(&server, "batch", "cronjobs", "default", "report").unwrap();
    assert_eq!(cj["status"]["lastScheduleTime"], "2026-01-02T00:00:00Z");
    assert_eq!(
        cj["status"]["lastSuccessfulTime"], "2026-01-02T00:00:02Z",
        "100 ms late, a 1 s start, a 1 s run"
    );
    assert!(cj["status"]["active"].is_null());
}

#[tokio::test(start_paused = true)]
async fn endpoint_slices_list_the_ready_pods_of_a_service_and_drop_deleted_ones() {
    let server = live(LiveCluster::new());
    create(&server, deployment("web", 2, "nginx:1.27")).await;
    create(&server, json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    })).await;
    until(&server, Duration::from_secs(120), |s| complete(s, "web")).await;
    let slice = list::<Value>(&server, "discovery.k8s.io", "endpointslices", "default")
        .into_iter()
        .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "web")
        .unwrap();
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
        "the named targetPort resolved"
    );
    let mut addresses: Vec<&str> =
        slice["endpoints"].as_array().unwrap().iter().map(|e| e["addresses"][0].as_str().unwrap()).collect();
    addresses.sort();
    assert_eq!(addresses, ["10.244.0.2", "10.244.0.3"]);
    assert!(
        slice["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["conditions"]["ready"] == true && e["nodeName"] == "node-1")
    );
    let victim = slice["endpoints"][0]["targetRef"]["name"].as_str().unwrap().to_owned();
    let mut del = Request::new(Verb::Delete, "", "v1", "pods").namespace("default").name(&victim);
    del.actor = "test".into();
    server.cluster().handle(del).await.unwrap();
    settle(&server).await;
    let slice = get(
        &server,
        "discovery.k8s.io",
        "endpointslices",
        "default",
        slice["metadata"]["name"].as_str().unwrap(),
    )
    .unwrap();
    let gone = slice["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["targetRef"]["name"] == victim.as_str())
        .unwrap();
    assert_eq!(gone["conditions"], json!({"ready": false, "serving": true, "terminating": true}));
    advance(&server, Duration::from_secs(5)).await;
    let slice = get(
        &server,
        "discovery.k8s.io",
        "endpointslices",
        "default",
        slice["metadata"]["name"].as_str().unwrap(),
    )
    .unwrap();
    assert!(
        slice["endpoints"].as_array().unwrap().iter().all(|e| e["targetRef"]["name"] != victim.as_str()),
        "gone after its grace period"
    );
}

#[tokio::test(start_paused = true)]
async fn a_controller_that_is_off_leaves_its_objects_alone() {
    let server = live(LiveCluster::new().without(Controller::Deployment));
    create(&server, deployment("web", 2, "nginx:1.27")).await;
    advance(&server, Duration::from_secs(60)).await;
    assert!(replica_sets(&server).is_empty());
    assert!(get(&server, "apps", "deployments", "default", "web").unwrap()["status"].is_null());
}
