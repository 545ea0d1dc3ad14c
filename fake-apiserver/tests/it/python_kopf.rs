//! Python Kopf (PyPI) runs a small operator (`tests/python/kopf_operator.py`) against
//! `fake-apiserver serve --tls` with the kubeconfig the binary writes: creation, update and
//! deletion of a custom resource are handled, results land in the status, the diff-base
//! annotation is written, the finalizer is put on and taken off, and Kopf logs no warning, no error
//! and no traceback. Takes a few seconds of wall time (Python's start-up, Kopf's watch streams).

use std::process::Stdio;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::conditions::is_deleted;
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};

use crate::external::*;

const FINALIZER: &str = "kopf.zalando.org/KopfFinalizerMarker";
const DIFF_BASE: &str = "kopf.zalando.org/last-handled-configuration";

/// Waits until the object satisfies `condition` (guarded by [`WAIT`]) and returns it as JSON.
async fn wait_until(api: &Api<DynamicObject>, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let reached = await_condition(api.clone(), "ex1", move |o: Option<&DynamicObject>| {
        o.is_some_and(|o| condition(&json_of(o)))
    });
    let found =
        tokio::time::timeout(WAIT, reached).await.unwrap_or_else(|_| panic!("{what} in time")).unwrap();
    json_of(&found.expect("the object exists"))
}

#[tokio::test]
async fn python_kopf_handles_creation_update_and_deletion_over_tls_without_warnings() {
    let Some(python) = python() else { return };
    let served = Served::start("python-kopf").await;
    let client = served.client().await;
    let manifest = std::fs::read_to_string(test_file("manifests/kopfexample-crd.yaml")).unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&manifest).unwrap();
    Api::<CustomResourceDefinition>::all(client.clone()).create(&PostParams::default(), &crd).await.unwrap();

    let log_path = served.dir.join("kopf.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let operator = tokio::process::Command::new(python)
        .args(["-m", "kopf", "run", "--standalone", "--namespace", "default"])
        .arg(test_file("python/kopf_operator.py"))
        .env("KUBECONFIG", &served.kubeconfig)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("Python Kopf starts");
    let log = || std::fs::read_to_string(&log_path).unwrap();

    let examples = kopfexamples(&client);
    let object = json!({
        "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
        "metadata": {"name": "ex1", "labels": {"app": "demo"}},
        "spec": {"field": "hello", "items": ["a"]},
    });
    examples.create(&PostParams::default(), &serde_json::from_value(object).unwrap()).await.unwrap();
    let created = wait_until(&examples, "the creation handled", |o| {
        !o["status"]["create_fn"].is_null() && !o["metadata"]["annotations"][DIFF_BASE].is_null()
    })
    .await;
    assert_eq!(created["status"]["create_fn"], json!({"message": "created with field=hello"}), "{}", log());
    assert_eq!(created["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(
        created["metadata"]["annotations"][DIFF_BASE],
        "{\"spec\":{\"field\":\"hello\",\"items\":[\"a\"]},\"metadata\":{\"labels\":{\"app\":\"demo\"}}}\n"
    );

    examples
        .patch("ex1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"field": "changed"}})))
        .await
        .unwrap();
    let updated = wait_until(&examples, "the update handled", |o| !o["status"]["update_fn"].is_null()).await;
    assert_eq!(
        updated["status"]["update_fn"],
        json!({"changes": [["change", "spec.field", "hello", "changed"]]})
    );
    let diff_base: Value =
        serde_json::from_str(updated["metadata"]["annotations"][DIFF_BASE].as_str().unwrap()).unwrap();
    assert_eq!(diff_base["spec"]["field"], "changed", "{}", log());

    examples.delete("ex1", &Default::default()).await.unwrap();
    let gone =
        await_condition(examples.clone(), "ex1", is_deleted(updated["metadata"]["uid"].as_str().unwrap()));
    tokio::time::timeout(WAIT, gone)
        .await
        .unwrap_or_else(|_| panic!("Kopf releases its finalizer:\n{}", log()))
        .unwrap();

    let pid = operator.id().expect("Kopf still runs").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let output =
        tokio::time::timeout(WAIT, operator.wait_with_output()).await.expect("Kopf stops in time").unwrap();
    let log = log();
    assert_eq!(output.status.code(), Some(0), "{log}");
    for handled in [
        "Handler 'create_fn' succeeded.",
        "Handler 'update_fn' succeeded.",
        "Handler 'delete_fn' succeeded.",
        "cleaning up after ex1",
    ] {
        assert!(log.contains(handled), "{handled:?} not in Kopf's log:\n{log}");
    }
    for bad in ["[WARNING", "[ERROR", "Traceback"] {
        assert!(!log.contains(bad), "{bad:?} in Kopf's log:\n{log}");
    }
}
