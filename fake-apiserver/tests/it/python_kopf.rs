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

async fn create_example(
    examples: &Api<DynamicObject>,
    n: usize,
    uids: &mut std::collections::BTreeMap<String, String>,
) {
    let object = json!({
        "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
        "metadata": {"name": format!("ex{n:02}")}, "spec": {"field": "x"},
    });
    let created =
        examples.create(&PostParams::default(), &serde_json::from_value(object).unwrap()).await.unwrap();
    uids.insert(created.metadata.name.clone().unwrap(), created.metadata.uid.unwrap());
}

/// Python Kopf 1.45 with `settings.watching.shard_selectors` (the lower half of the uid hash space)
/// against `fake-apiserver serve`: its lists and watches carry the `shardSelector`, it handles the
/// objects of its range — those there before it started (its list) and those created later (its
/// watch) — and never receives, let alone touches, the others (the server's journal of watch
/// deliveries names only objects of its range).
#[tokio::test]
async fn python_kopf_with_a_shard_selector_handles_only_the_objects_of_its_range() {
    let Some(python) = python() else { return };
    const SELECTOR: &str = "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')";
    let shard = fake_apiserver::ShardSelector::parse(SELECTOR).unwrap();
    let journal = scratch("python-kopf-sharded-journal").join("journal.jsonl");
    let served =
        Served::spawn("python-kopf-sharded", &["--bare", "--journal", journal.to_str().unwrap()]).await;
    let client = served.client().await;
    let manifest = std::fs::read_to_string(test_file("manifests/kopfexample-crd.yaml")).unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&manifest).unwrap();
    Api::<CustomResourceDefinition>::all(client.clone()).create(&PostParams::default(), &crd).await.unwrap();
    let examples = kopfexamples(&client);
    let mut uids = std::collections::BTreeMap::new();
    for n in 0..20 {
        create_example(&examples, n, &mut uids).await; // found by Kopf's initial list
    }

    let log_path = served.dir.join("kopf.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let operator = tokio::process::Command::new(python)
        .args(["-m", "kopf", "run", "--standalone", "--namespace", "default"])
        .arg(test_file("python/kopf_sharded.py"))
        .env("KUBECONFIG", &served.kubeconfig)
        .env("KOPF_SHARD_SELECTOR", SELECTOR)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("Python Kopf starts");
    let log = || std::fs::read_to_string(&log_path).unwrap();
    let mine = |uids: &std::collections::BTreeMap<String, String>| -> Vec<String> {
        uids.iter().filter(|(_, uid)| shard.matches(uid, "default")).map(|(n, _)| n.clone()).collect()
    };
    // Read object by object (no watch of the test's own in the journal), polling with a deadline.
    let handled = async |names: &[String]| {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut all = true;
            for name in names {
                let o = json_of(&examples.get(name).await.unwrap());
                all &= !o["status"]["create_fn"].is_null();
            }
            if all {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "Kopf handles its range in time:\n{}", log());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    handled(&mine(&uids)).await;
    for n in 20..40 {
        create_example(&examples, n, &mut uids).await; // delivered by Kopf's watch
    }
    let in_range = mine(&uids);
    assert!(!in_range.is_empty() && in_range.len() < uids.len(), "40 uids fall in both halves");
    handled(&in_range).await;

    let pid = operator.id().expect("Kopf still runs").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let output =
        tokio::time::timeout(WAIT, operator.wait_with_output()).await.expect("Kopf stops in time").unwrap();
    let log = log();
    assert_eq!(output.status.code(), Some(0), "{log}");
    for (name, uid) in &uids {
        let o = json_of(&examples.get(name).await.unwrap());
        if in_range.contains(name) {
            assert_eq!(o["status"]["create_fn"], json!({"uid": uid}), "{name}:\n{log}");
        } else {
            assert!(o["status"].is_null(), "{name} is outside Kopf's range: {o}");
            let annotations = o["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
            assert!(!annotations.keys().any(|k| k.starts_with("kopf.zalando.org/")), "{name}: {o}");
        }
    }
    for bad in ["[WARNING", "[ERROR", "Traceback"] {
        assert!(!log.contains(bad), "{bad:?} in Kopf's log:\n{log}");
    }

    served.stop().await;
    let records: Vec<Value> = std::fs::read_to_string(&journal)
        .expect("the journal is written")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let collection_reads: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "http" && r["method"] == "GET")
        .filter_map(|r| r["path"].as_str())
        .filter(|p| p.split('?').next().unwrap().ends_with("/kopfexamples"))
        .collect();
    assert!(collection_reads.len() >= 2, "Kopf listed and watched: {collection_reads:?}");
    for path in &collection_reads {
        assert!(path.contains("shardSelector=shardRange"), "Kopf sent its selector: {path}");
    }
    let delivered: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r["kind"] == "delivery" && r["name"].as_str().is_some_and(|n| n.starts_with("ex")))
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(!delivered.is_empty(), "the later objects came by watch");
    for name in &delivered {
        assert!(in_range.iter().any(|n| n == name), "{name} was delivered but is outside the range");
    }
}
