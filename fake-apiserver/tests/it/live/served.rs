//! `fake-apiserver serve` as a live cluster (its default) on the real clock: what a user of the
//! binary meets first, then kubectl (1.37, and 1.32 where the machine has it) driving workloads the
//! built-in controllers and simulated kubelets act on. Container start and run times are shortened
//! with `--rules`, so each test takes about a second of wall time; every test checks the objects on
//! the server, not only kubectl's exit status.

use std::time::{Duration, Instant};

use fake_apiserver::live::KUBERNETES_SERVICE_IP;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};

use crate::external::*;

/// Containers start 200 ms after binding; a Job's containers run for 300 ms and exit 0.
const QUICK: &str = "\
- match: {}
  startDelay: 200ms
- match: {ownerKind: Job}
  run: 300ms
";

/// Waits (on the real clock, through a watch) until the object satisfies `condition`.
async fn until<K>(api: &Api<K>, name: &str, condition: impl kube::runtime::wait::Condition<K>) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    tokio::time::timeout(WAIT, await_condition(api.clone(), name, condition))
        .await
        .unwrap_or_else(|_| panic!("{name} did not reach the condition in time"))
        .expect("the watch works")
        .unwrap_or_else(|| panic!("{name} is gone"))
}

/// The CA certificate (PEM) a kubeconfig written by `serve --tls` trusts.
fn kubeconfig_ca(served: &Served) -> String {
    use base64::Engine as _;
    let kubeconfig = kube::config::Kubeconfig::read_from(&served.kubeconfig).unwrap();
    let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
    let data = cluster.certificate_authority_data.as_deref().expect("the CA inline");
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data).unwrap()).unwrap()
}

#[tokio::test]
async fn serve_is_a_live_cluster_by_default_with_nodes_bootstrap_objects_and_pods_that_run() {
    let served = Served::spawn("serve-live", &[]).await;
    let client = served.client().await;

    let node = Api::<Node>::all(client.clone()).get("node-1").await.unwrap();
    let ready = node.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "True");
    let namespaces: Vec<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(namespaces, ["default", "kube-node-lease", "kube-public", "kube-system"]);
    let kubernetes = Api::<Service>::namespaced(client.clone(), "default").get("kubernetes").await.unwrap();
    assert_eq!(kubernetes.spec.unwrap().cluster_ip.as_deref(), Some(KUBERNETES_SERVICE_IP));
    let admin = Api::<ClusterRole>::all(client.clone()).get("cluster-admin").await.unwrap();
    assert_eq!(admin.rules.unwrap()[0].verbs, ["*"]);

    // Pods find the CA of the serving certificate in their namespace's `kube-root-ca.crt`.
    let ca = kubeconfig_ca(&served);
    let bundle = until(
        &Api::<ConfigMap>::namespaced(client.clone(), "default"),
        "kube-root-ca.crt",
        |cm: Option<&ConfigMap>| {
            cm.and_then(|c| c.data.as_ref()).and_then(|d| d.get("ca.crt")).is_some_and(|pem| *pem == ca)
        },
    )
    .await;
    assert!(bundle.data.unwrap()["ca.crt"].starts_with("-----BEGIN CERTIFICATE-----"));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod =
        json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}});
    let started = Instant::now();
    pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
    let running = until(&pods, "web", conditions::is_pod_running()).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "the default start delay is a second");
    assert_eq!(running.spec.unwrap().node_name.as_deref(), Some("node-1"));
    assert_eq!(running.status.unwrap().pod_ip.as_deref(), Some("10.244.0.2"));
}

#[tokio::test]
async fn serve_bare_is_the_plain_api_server_without_nodes_or_bootstrap_objects() {
    let served = Served::start("serve-bare").await;
    let client = served.client().await;
    assert!(Api::<Node>::all(client.clone()).list(&ListParams::default()).await.unwrap().items.is_empty());
    let accounts = Api::<ServiceAccount>::all(client.clone()).list(&ListParams::default()).await.unwrap();
    assert!(accounts.items.is_empty(), "no ServiceAccount controller");
    assert!(
        Api::<Service>::namespaced(client.clone(), "default").get_opt("kubernetes").await.unwrap().is_none()
    );
    assert!(Api::<ClusterRole>::all(client).get_opt("cluster-admin").await.unwrap().is_none());
}

#[tokio::test]
async fn serve_refuses_a_rules_file_that_does_not_parse_and_live_options_with_bare() {
    let dir = scratch("serve-bad-rules");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, "- match: {image: nginx}\n  run: 3 parsecs\n").unwrap();
    let binary = env!("CARGO_BIN_EXE_fake-apiserver");
    let output = std::process::Command::new(binary)
        .args(["serve", "--port", "0", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot use the behaviour rules in"), "{stderr}");
    assert!(stderr.contains("parsecs"), "{stderr}");

    let output =
        std::process::Command::new(binary).args(["serve", "--bare", "--nodes", "2"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
    let output =
        std::process::Command::new(binary).args(["serve", "--without", "kube-proxy"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown controller \"kube-proxy\""));
}

/// `kubectl create deployment …` as kubectl builds it, created from JSON: the generator commands
/// send protobuf, which the fake does not decode (see `kubectl.rs`).
async fn create_generated(kubectl: &Kubectl, served: &Served, generator: &[&str], command: &[&str]) {
    let mut args = generator.to_vec();
    args.extend(["--dry-run=client", "-o", "json"]);
    if !command.is_empty() {
        args.push("--");
        args.extend_from_slice(command);
    }
    let manifest = kubectl.run(served, &args).await;
    kubectl.run_with_stdin(served, &["create", "-f", "-"], Some(&manifest)).await;
}

fn image_of(deployment: &Deployment) -> String {
    deployment.spec.template.spec.as_ref().unwrap().containers[0].image.clone().unwrap()
}

#[tokio::test]
async fn kubectl_rolls_out_a_deployment_scales_it_and_undoes_an_update_to_the_previous_image() {
    for kubectl in kubectls() {
        let served = Served::live("kubectl-rollout", QUICK, &[]).await;
        let client = served.client().await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        create_generated(
            &kubectl,
            &served,
            &["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"],
            &[],
        )
        .await;
        let out = kubectl.run(&served, &["rollout", "status", "deployment/web", "--timeout=60s"]).await;
        assert!(out.trim_end().ends_with("deployment \"web\" successfully rolled out"), "{out}");
        let status = deployments.get("web").await.unwrap().status.unwrap();
        assert_eq!(
            (status.ready_replicas, status.available_replicas, status.updated_replicas),
            (Some(2), Some(2), Some(2))
        );

        kubectl.run(&served, &["set", "image", "deployment/web", "nginx=nginx:1.28"]).await;
        let out = kubectl.run(&served, &["rollout", "status", "deployment/web", "--timeout=60s"]).await;
        assert!(out.contains("successfully rolled out"), "{out}");
        assert_eq!(image_of(&deployments.get("web").await.unwrap()), "nginx:1.28");

        let out = kubectl.run(&served, &["rollout", "undo", "deployment/web"]).await;
        assert_eq!(out.trim(), "deployment.apps/web rolled back");
        let out = kubectl.run(&served, &["rollout", "status", "deployment/web", "--timeout=60s"]).await;
        assert!(out.contains("successfully rolled out"), "{out}");
        let web = deployments.get("web").await.unwrap();
        assert_eq!(image_of(&web), "nginx:1.27");
        assert_eq!(web.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"], "3");
        let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), "default")
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        let mut history: Vec<(String, i32)> = replica_sets
            .items
            .iter()
            .map(|rs| {
                let revision =
                    rs.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"].clone();
                (revision, rs.spec.replicas.unwrap())
            })
            .collect();
        history.sort();
        assert_eq!(
            history,
            [("2".to_owned(), 0), ("3".to_owned(), 2)],
            "the 1.27 ReplicaSet is revision 3 again"
        );
        let pods = Api::<Pod>::namespaced(client.clone(), "default")
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        // The 1.28 Pods are still terminating (30 s of grace by default); the live ones run 1.27.
        let images: Vec<String> = pods
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| p.spec.as_ref().unwrap().containers[0].image.clone().unwrap())
            .collect();
        assert!(images.iter().all(|i| i == "nginx:1.27"), "{images:?}");

        let out = kubectl.run(&served, &["scale", "deployment/web", "--replicas=4"]).await;
        assert_eq!(out.trim(), "deployment.apps/web scaled");
        kubectl
            .run(
                &served,
                &["wait", "--for=jsonpath={.status.availableReplicas}=4", "deployment/web", "--timeout=60s"],
            )
            .await;
        let out = kubectl
            .run(&served, &["wait", "--for=condition=Available", "deployment/web", "--timeout=60s"])
            .await;
        assert_eq!(out.trim(), "deployment.apps/web condition met");
        let web = deployments.get("web").await.unwrap();
        assert_eq!(web.spec.replicas, Some(4));
        let available = web
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_.as_deref() == Some("Available"))
            .unwrap();
        assert_eq!(
            (available.status.as_deref().unwrap(), available.reason.as_deref()),
            ("True", Some("MinimumReplicasAvailable"))
        );
        let running = Api::<Pod>::namespaced(client, "default")
            .list(&ListParams::default().labels("app=web").fields("status.phase=Running"))
            .await
            .unwrap();
        let live = running.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count();
        assert_eq!(live, 4);
    }
}

#[tokio::test]
async fn kubectl_waits_for_a_created_job_to_complete() {
    for kubectl in kubectls() {
        let served = Served::live("kubectl-job", QUICK, &[]).await;
        let client = served.client().await;
        create_generated(&kubectl, &served, &["create", "job", "once", "--image=busybox:1.37"], &["true"])
            .await;
        let out =
            kubectl.run(&served, &["wait", "--for=condition=complete", "job/once", "--timeout=60s"]).await;
        assert_eq!(out.trim(), "job.batch/once condition met");
        let job = Api::<Job>::namespaced(client.clone(), "default").get("once").await.unwrap();
        let status = job.status.unwrap();
        assert_eq!((status.succeeded, status.failed.unwrap_or(0)), (Some(1), 0));
        assert!(status.completion_time.is_some());
        let pods = Api::<Pod>::namespaced(client, "default")
            .list(&ListParams::default().labels("job-name=once"))
            .await
            .unwrap();
        assert_eq!(pods.items.len(), 1);
        let pod = &pods.items[0];
        assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
        let terminated = pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!((terminated.exit_code, terminated.reason.as_deref()), (0, Some("Completed")));
    }
}

#[tokio::test]
async fn kubectl_get_pods_wide_shows_the_node_and_ip_of_each_pod() {
    for kubectl in kubectls() {
        let served = Served::live("kubectl-wide", QUICK, &["--nodes", "2"]).await;
        let client = served.client().await;
        create_generated(
            &kubectl,
            &served,
            &["create", "deployment", "spread", "--image=nginx:1.27", "--replicas=4"],
            &[],
        )
        .await;
        kubectl.run(&served, &["rollout", "status", "deployment/spread", "--timeout=60s"]).await;
        let table = kubectl.run(&served, &["get", "pods", "-o", "wide"]).await;
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(&header[..7], ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"], "{table}");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows.len(), 4, "{table}");
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let mut nodes = std::collections::BTreeSet::new();
        for row in rows {
            let pod = pods.get(row[0]).await.unwrap();
            let (spec, status) = (pod.spec.unwrap(), pod.status.unwrap());
            assert_eq!((row[1], row[2]), ("1/1", "Running"), "{table}");
            assert_eq!(Some(row[5]), status.pod_ip.as_deref(), "{table}");
            assert_eq!(Some(row[6]), spec.node_name.as_deref(), "{table}");
            nodes.insert(row[6].to_owned());
        }
        assert_eq!(
            nodes.into_iter().collect::<Vec<_>>(),
            ["node-1", "node-2"],
            "the scheduler spreads the replicas"
        );
    }
}

#[tokio::test]
async fn kubectl_delete_pod_returns_once_the_grace_period_is_over_and_the_pod_is_gone() {
    for kubectl in kubectls() {
        let served = Served::live("kubectl-delete-pod", QUICK, &[]).await;
        let client = served.client().await;
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let pod: Value = json!({
            "metadata": {"name": "graceful"},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}], "terminationGracePeriodSeconds": 2},
        });
        pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
        until(&pods, "graceful", conditions::is_pod_running()).await;
        let deleting = tokio::spawn({
            let pods = pods.clone();
            async move {
                until(&pods, "graceful", |p: Option<&Pod>| {
                    p.is_some_and(|p| p.metadata.deletion_timestamp.is_some())
                })
                .await
            }
        });
        let started = Instant::now();
        let out = kubectl.run(&served, &["delete", "pod", "graceful"]).await;
        let took = started.elapsed();
        assert!(out.starts_with("pod \"graceful\" deleted"), "{out}");
        assert!(took >= Duration::from_secs(2), "kubectl returned after {took:?}, before the grace period");
        let terminating = deleting.await.unwrap();
        assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(2));
        assert!(pods.get_opt("graceful").await.unwrap().is_none());
    }
}
