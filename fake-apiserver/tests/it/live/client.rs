//! The acceptance scenarios through `kube::Client` with the live cluster on, in process on the
//! paused clock (skipped over HTTP(S): the simulated kubelets run on the fake's virtual clock).

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use fake_apiserver::live::{KUBERNETES_SERVICE_IP, LiveCluster};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;

use super::settle;
use crate::common::*;

fn live() -> FakeApiServer {
    FakeApiServer::builder().seed(1).live(LiveCluster::new()).build()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], "terminationGracePeriodSeconds": 5},
    }))
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_pod_created_through_the_api_reaches_running_then_ready_and_await_condition_returns() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let started = tokio::time::Instant::now();
    pods.create(&PostParams::default(), &pod("web")).await.unwrap();
    let running = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), "web", conditions::is_pod_running()),
    )
    .await
    .expect("running within a minute of virtual time")
    .unwrap()
    .unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1), "the default start delay");
    let status = running.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(running.spec.unwrap().node_name.as_deref(), Some("node-1"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.2"));
    assert_eq!(status.host_ip.as_deref(), Some("172.18.0.2"));
    let types: Vec<(String, String)> =
        status.conditions.unwrap().into_iter().map(|c| (c.type_, c.status)).collect();
    let expected = [
        ("PodReadyToStartContainers", "True"),
        ("Initialized", "True"),
        ("Ready", "True"),
        ("ContainersReady", "True"),
        ("PodScheduled", "True"),
    ];
    assert_eq!(types, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let container = &status.container_statuses.unwrap()[0];
    assert_eq!((container.ready, container.started, container.restart_count), (true, Some(true), 0));
}

#[tokio::test(start_paused = true)]
async fn a_watch_with_a_field_selector_on_the_pods_name_sees_it_go_running() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("other")).await.unwrap();
    let created = pods.create(&PostParams::default(), &pod("web")).await.unwrap();
    let params = WatchParams::default().fields("metadata.name=web");
    let mut events =
        pods.watch(&params, created.metadata.resource_version.as_deref().unwrap()).await.unwrap().boxed();
    let mut seen = Vec::new();
    while let Some(event) = events.try_next().await.unwrap() {
        let WatchEvent::Modified(pod) = event else { panic!("only modifications of web: {event:?}") };
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        seen.push((
            pod.metadata.name.clone().unwrap(),
            pod.spec.as_ref().unwrap().node_name.clone(),
            phase.clone(),
        ));
        if phase == "Running" {
            break;
        }
    }
    let node = Some("node-1".to_owned());
    assert_eq!(
        seen,
        [
            ("web".to_owned(), node.clone(), "Pending".to_owned()), // bound, PodScheduled=True
            ("web".to_owned(), node.clone(), "Pending".to_owned()), // the kubelet's first status
            ("web".to_owned(), node, "Running".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_replace_with_the_current_resource_version_works_and_a_stale_one_conflicts() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("web")).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), "web", conditions::is_pod_running()),
    )
    .await
    .unwrap()
    .unwrap();
    let mut current = pods.get("web").await.unwrap();
    let stale = current.clone();
    current.metadata.labels = Some([("tier".to_owned(), "front".to_owned())].into());
    let replaced = pods.replace("web", &PostParams::default(), &current).await.unwrap();
    assert_eq!(replaced.metadata.labels.unwrap()["tier"], "front");
    assert_eq!(replaced.status.unwrap().phase.as_deref(), Some("Running"), "a replace keeps the status");
    let Err(kube::Error::Api(status)) = pods.replace("web", &PostParams::default(), &stale).await else {
        panic!("a stale resourceVersion must conflict")
    };
    assert_eq!(status.code, 409);
}

#[tokio::test(start_paused = true)]
async fn a_delete_with_a_grace_period_completes_after_it_and_delete_and_finalize_returns() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("web")).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), "web", conditions::is_pod_running()),
    )
    .await
    .unwrap()
    .unwrap();
    let started = tokio::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(60),
        kube::runtime::wait::delete::delete_and_finalize(
            pods.clone(),
            "web",
            &DeleteParams::default().grace_period(3),
        ),
    )
    .await
    .expect("deleted within a minute of virtual time")
    .unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3), "gone when the grace period ends");
    assert!(pods.get_opt("web").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn the_kubernetes_service_and_the_cluster_admin_role_can_be_read() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    let service = Api::<Service>::namespaced(client.clone(), "default").get("kubernetes").await.unwrap();
    let spec = service.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some(KUBERNETES_SERVICE_IP));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("https"), 443, Some("TCP"))
    );
    let admin = Api::<ClusterRole>::all(client.clone()).get("cluster-admin").await.unwrap();
    let rules = admin.rules.unwrap();
    assert_eq!(rules[0].verbs, ["*"]);
    assert_eq!(rules[0].api_groups.as_deref(), Some(&["*".to_owned()][..]));
    let binding = Api::<ClusterRoleBinding>::all(client).get("cluster-admin").await.unwrap();
    assert_eq!(binding.role_ref.name, "cluster-admin");
    assert_eq!(binding.subjects.unwrap()[0].name, "system:masters");
}

#[tokio::test(start_paused = true)]
async fn pods_in_every_namespace_jobs_cluster_wide_and_nodes_list() {
    let server = FakeApiServer::builder().seed(1).live(LiveCluster::new().nodes(2)).build();
    let Some(client) = clock_bound_client(&server) else { return };
    for namespace in ["default", "kube-system"] {
        Api::<Pod>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &pod("p"))
            .await
            .unwrap();
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}},
        }))
        .unwrap();
        Api::<Job>::namespaced(client.clone(), namespace).create(&PostParams::default(), &job).await.unwrap();
    }
    let pods: Vec<(String, String)> = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| (p.metadata.namespace.unwrap(), p.metadata.name.unwrap()))
        .collect();
    // The Jobs' Pods are made by the Job controller at once (virtual time has not moved).
    assert_eq!(pods.len(), 4, "{pods:?}");
    assert_eq!(pods.iter().filter(|(_, name)| name == "p").count(), 2, "{pods:?}");
    let jobs = Api::<Job>::all(client.clone()).list(&ListParams::default()).await.unwrap();
    let jobs: Vec<String> = jobs.items.into_iter().map(|j| j.metadata.namespace.unwrap()).collect();
    assert_eq!(jobs, ["default", "kube-system"]);
    let nodes = Api::<Node>::all(client).list(&ListParams::default()).await.unwrap();
    let nodes: Vec<String> = nodes.items.into_iter().map(|n| n.metadata.name.unwrap()).collect();
    assert_eq!(nodes, ["node-1", "node-2"]);
}

#[tokio::test(start_paused = true)]
async fn a_cordoned_node_is_tainted_and_gets_no_new_pods_until_it_is_uncordoned() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    let nodes: Api<Node> = Api::all(client.clone());
    let cordoned = nodes.cordon("node-1").await.unwrap();
    assert_eq!(cordoned.spec.unwrap().unschedulable, Some(true));
    settle(&server).await;
    let taints = nodes.get("node-1").await.unwrap().spec.unwrap().taints.unwrap();
    let taints: Vec<(String, String)> = taints.into_iter().map(|t| (t.key, t.effect)).collect();
    assert_eq!(taints, [("node.kubernetes.io/unschedulable".to_owned(), "NoSchedule".to_owned())]);

    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("web")).await.unwrap();
    settle(&server).await;
    let pending = pods.get("web").await.unwrap();
    let scheduled =
        pending.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "PodScheduled").unwrap();
    assert_eq!((scheduled.status.as_str(), scheduled.reason.as_deref()), ("False", Some("Unschedulable")));
    assert_eq!(
        scheduled.message.as_deref(),
        Some(
            "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )
    );

    nodes.uncordon("node-1").await.unwrap();
    let running = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods, "web", conditions::is_pod_running()),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(running.spec.unwrap().node_name.as_deref(), Some("node-1"));
}

#[tokio::test(start_paused = true)]
async fn a_custom_resources_scale_subresource_reads_and_patches_spec_and_status_in_step() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    install_crd(&client).await;
    let api = examples(&client);
    let mut ex = example("ex1", "v");
    ex.spec.replicas = 2;
    api.create(&PostParams::default(), &ex).await.unwrap();
    api.patch_status("ex1", &PatchParams::default(), &Patch::Merge(json!({"status": {"replicas": 1}})))
        .await
        .unwrap();
    let scale = api.get_scale("ex1").await.unwrap();
    assert_eq!((scale.spec.unwrap().replicas, scale.status.unwrap().replicas), (Some(2), 1));

    let scaled = api
        .patch_scale("ex1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    let stored = api.get("ex1").await.unwrap();
    assert_eq!((stored.spec.replicas, stored.status.unwrap().replicas), (5, 1));
    api.patch_status("ex1", &PatchParams::default(), &Patch::Merge(json!({"status": {"replicas": 5}})))
        .await
        .unwrap();
    let scale = api.get_scale("ex1").await.unwrap();
    assert_eq!((scale.spec.unwrap().replicas, scale.status.unwrap().replicas), (Some(5), 5));
}

/// A container that runs a second and exits 1, under `restartPolicy: Always`: when each run
/// starts and ends, in virtual seconds since the Pod was created, and the status in back-off.
#[tokio::test(start_paused = true)]
async fn a_crash_looping_pods_restarts_follow_the_kubelets_back_off_of_10_s_doubling_to_5_min() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut crashing = pod("crash");
    crashing.metadata.annotations = Some(
        [("fake.kopf.dev/run", "1s"), ("fake.kopf.dev/exit-code", "1")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    );
    let started = tokio::time::Instant::now();
    pods.create(&PostParams::default(), &crashing).await.unwrap();
    let mut starts = Vec::new();
    let mut back_off_messages = Vec::new();
    let mut last = None;
    crate::live::until(&server, Duration::from_secs(3600), |server| {
        let pod = crate::live::get(server, "", "pods", "default", "crash").unwrap();
        let container = &pod["status"]["containerStatuses"][0];
        let key = (
            container["restartCount"].as_u64().unwrap_or(0),
            container["state"].as_object().and_then(|s| s.keys().next().cloned()),
        );
        if last.as_ref() != Some(&key) {
            let at = started.elapsed().as_secs();
            match key.1.as_deref() {
                Some("running") => starts.push((key.0, at)),
                Some("waiting") if container["state"]["waiting"]["reason"] == "CrashLoopBackOff" => {
                    back_off_messages
                        .push(container["state"]["waiting"]["message"].as_str().unwrap().to_owned());
                }
                _ => {}
            }
            last = Some(key);
        }
        starts.len() == 9
    })
    .await;
    // Runs of a second: the first crash restarts at once, later ones wait 10 s, 20 s, … 5 min.
    assert_eq!(starts, [(0, 1), (1, 2), (2, 13), (3, 34), (4, 75), (5, 156), (6, 317), (7, 618), (8, 919)],);
    let pod = pods.get("crash").await.unwrap();
    let uid = pod.metadata.uid.clone().unwrap();
    let expected: Vec<String> = ["10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s"]
        .map(|d| format!("back-off {d} restarting failed container=app pod=crash_default({uid})"))
        .into();
    assert_eq!(back_off_messages, expected);
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let last_state = status.container_statuses.unwrap()[0].last_state.clone().unwrap().terminated.unwrap();
    assert_eq!((last_state.exit_code, last_state.reason.as_deref()), (1, Some("Error")));
}
