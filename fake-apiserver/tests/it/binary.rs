//! The `fake-apiserver serve` binary as a script or kubectl user meets it: the URL on the first line
//! of stdout, a kubeconfig that kube reads, requests that work, SIGTERM ending it with status 0, and
//! the journal written as JSON lines at exit.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::*;

const WAIT: Duration = Duration::from_secs(20);

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn serve_prints_its_url_first_writes_a_usable_kubeconfig_and_stops_on_sigterm() {
    let dir = scratch("binary-serve");
    let (kubeconfig, journal) = (dir.join("kubeconfig"), dir.join("journal.jsonl"));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["serve", "--bare", "--port", "0", "--tls", "--token", "b1n-t0ken", "--seed", "3"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--journal")
        .arg(&journal)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .expect("the URL in time")
        .unwrap()
        .expect("a first line");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).expect("the kubeconfig is written"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("kube reads the kubeconfig");
    assert_eq!(config.cluster_url.to_string().trim_end_matches('/'), url);
    let client = kube::Client::try_from(config).unwrap();
    let created = configmaps(&client).create(&PostParams::default(), &cm("a")).await.unwrap();
    let got = configmaps(&client).get("a").await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);

    let pid = child.id().expect("still running").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("it exits in time").unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");

    let lines: Vec<Value> = std::fs::read_to_string(&journal)
        .expect("the journal is written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let http: Vec<(&str, u64)> = lines
        .iter()
        .filter(|r| r["kind"] == "http")
        .map(|r| (r["method"].as_str().unwrap(), r["code"].as_u64().unwrap()))
        .collect();
    assert_eq!(http, vec![("POST", 201), ("GET", 200)]);
    assert!(
        lines
            .iter()
            .any(|r| r["kind"] == "operation" && r["verb"] == "create" && r["resource"] == "configmaps")
    );
}

#[tokio::test]
async fn serve_with_the_sharding_feature_gate_off_ignores_shard_selectors_and_refuses_unknown_gates() {
    let dir = scratch("binary-gates");
    let kubeconfig = dir.join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["serve", "--bare", "--port", "0", "--feature-gates", "ShardedListAndWatch=false"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(WAIT, stdout.next_line()).await.expect("the URL in time").unwrap().expect("a URL");
    let mut config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).expect("the kubeconfig is written"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("kube reads the kubeconfig");
    config.root_cert = Some(Vec::new());
    let client = kube::Client::try_from(config).unwrap();
    for name in ["a", "b", "c", "d"] {
        configmaps(&client).create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    // A range too narrow to hold any of four uids, were it honoured.
    let selector = "shardRange(object.metadata.uid, '0x0000000000000000', '0x0000000000000001')";
    let encoded: String = form_urlencoded::byte_serialize(selector.as_bytes()).collect();
    let req = http::Request::get(format!("/api/v1/namespaces/default/configmaps?shardSelector={encoded}"))
        .body(Vec::new())
        .unwrap();
    let list: Value = client.request(req).await.unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(4));
    assert!(list["metadata"].get("shardInfo").is_none());
    child.kill().await.unwrap();

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["serve", "--feature-gates", "NoSuchGate=true"])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unrecognized feature gate: NoSuchGate"));
}
