//! Developer mode and deployment manifests of an example program: `--fake-cluster` runs the
//! operator on an embedded fake cluster that kubectl can use, and `manifests` prints objects the
//! API server accepts.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(60);

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("KOPF_RS_KUBECTL").map(PathBuf::from);
    if path.is_none() {
        eprintln!("NOTICE: KOPF_RS_KUBECTL is unset (.ci/clients.sh sets it); skipping the kubectl part");
    }
    path
}

fn manifests() -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_example"))
        .args(["01-minimal", "--liveness", "http://0.0.0.0:8080/healthz", "--priority", "10"])
        .args(["manifests", "--image", "example:1", "--deploy-namespace", "default"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("a JSON List")
}

#[tokio::test]
async fn the_generated_manifests_are_accepted_by_the_api_server_in_a_dry_run() {
    let list = manifests();
    let items = list["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]
    );
    let role = &items[2];
    assert_eq!(
        role["rules"],
        serde_json::json!([
            {"apiGroups": ["kopf.dev"], "resources": ["kopfexamples"], "verbs": ["list", "watch", "patch"]},
            {"apiGroups": ["kopf.dev"], "resources": ["kopfexamples/status"], "verbs": ["patch"]},
        ]),
        "the generated RBAC, from the declared CRD"
    );
    assert_eq!(items[3]["subjects"][0]["name"], items[1]["metadata"]["name"], "bound to the ServiceAccount");
    let container = &items[4]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!([
            "--all-namespaces",
            "--priority",
            "10",
            "--liveness",
            "http://0.0.0.0:8080/healthz"
        ]),
        "the run's flags given to `manifests` are the container's"
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        serde_json::json!({"path": "/healthz", "port": "liveness"})
    );

    let server = FakeApiServer::builder().build();
    for item in items {
        let (group, version) = match item["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", item["apiVersion"].as_str().unwrap()),
        };
        let gvk = GroupVersionKind::gvk(group, version, item["kind"].as_str().unwrap());
        let resource = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = match item["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(server.client(), ns, &resource),
            None => Api::all_with(server.client(), &resource),
        };
        let object: DynamicObject = serde_json::from_value(item.clone()).unwrap();
        let params = PostParams { dry_run: true, ..PostParams::default() };
        api.create(&params, &object).await.unwrap_or_else(|e| panic!("{} rejected: {e}", gvk.kind));
    }

    let Some(kubectl) = kubectl() else { return };
    let front = fake_apiserver::http::serve(
        &server,
        fake_apiserver::ServeOptions::default().tls(true).token("manifests"),
    )
    .await
    .unwrap();
    let dir = scratch("manifests");
    front.write_kubeconfig(dir.join("kubeconfig")).unwrap();
    // Each item as its own document (JSON is YAML): kubectl's client-side validation of a `List`
    // asks the fake for an OpenAPI document it does not serve (a gap of the fake, noted).
    let documents: Vec<String> = items.iter().map(|i| serde_json::to_string(i).unwrap()).collect();
    std::fs::write(dir.join("manifests.yaml"), documents.join("\n---\n")).unwrap();
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .args(["apply", "--dry-run=server", "-f"])
        .arg(dir.join("manifests.yaml"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("deployment.apps/kopf-operator created (server dry run)"), "{stdout}");
    front.shutdown().await;
}

#[tokio::test]
async fn developer_mode_serves_a_fake_cluster_where_kubectl_sees_the_handler_result() {
    let Some(kubectl) = kubectl() else { return };
    let dir = scratch("dev-mode");
    let kubeconfig = dir.join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_example"))
        .args(["01-minimal", "--fake-cluster", "--log-format", "plain", "--fake-kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let announced = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("kubeconfig: ") {
                return true;
            }
        }
        false
    })
    .await;
    if announced != Ok(true) {
        let output = child.wait_with_output().await.unwrap();
        panic!("the program did not announce its kubeconfig: {}", String::from_utf8_lossy(&output.stderr));
    }

    let object = r#"{"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
                     "metadata": {"name": "ex1", "namespace": "default"}, "spec": {"field": "x"}}"#;
    std::fs::write(dir.join("object.json"), object).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(&kubectl).arg("--kubeconfig").arg(&kubeconfig).args(args).output().unwrap()
    };
    let applied = run(&["apply", "-f", dir.join("object.json").to_str().unwrap()]);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let started = Instant::now();
    let status = loop {
        let got = run(&["get", "kopfexample", "ex1", "-n", "default", "-o", "json"]);
        assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
        let body: Value = serde_json::from_slice(&got.stdout).unwrap();
        if !body["status"]["create_fn"].is_null() {
            break body["status"].clone();
        }
        assert!(started.elapsed() < WAIT, "not handled in time: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["create_fn"]["message"], "hello world");

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exit = tokio::time::timeout(WAIT, child.wait()).await.expect("it exits in time").unwrap();
    assert_eq!(exit.code(), Some(0));
}
