//! R27: server-side printing. `kubectl get` asks for a `meta.k8s.io/v1` Table and prints its
//! cells; `kubectl get -w` asks a watch for one-row Tables.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::*;
use crate::raw::{self, TABLE};

fn column_names(table: &Value) -> Vec<&str> {
    table["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect()
}

fn cells(table: &Value) -> Vec<Vec<Value>> {
    table["rows"].as_array().unwrap().iter().map(|r| r["cells"].as_array().unwrap().clone()).collect()
}

#[tokio::test(start_paused = true)]
async fn configmaps_list_as_a_table_of_name_data_and_age() {
    let server = server();
    let api = configmaps(&server.client());
    api.create(&PostParams::default(), &cm("first")).await.unwrap();
    tokio::time::advance(Duration::from_secs(150)).await;
    let mut second = cm("second");
    second.data.as_mut().unwrap().insert("more".into(), "x".into());
    api.create(&PostParams::default(), &second).await.unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;

    let answer = raw::get(&server, "/api/v1/namespaces/default/configmaps", TABLE).await;
    assert_eq!(answer.code, 200);
    let table = answer.body;
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    assert_eq!(column_names(&table), ["Name", "Data", "Age"]);
    assert_eq!(table["columnDefinitions"][0]["format"], "name");
    assert_eq!(
        cells(&table),
        [vec![json!("first"), json!(1), json!("3m")], vec![json!("second"), json!(2), json!("30s")]]
    );
    let object = &table["rows"][0]["object"];
    assert_eq!(
        (object["kind"].as_str(), object["apiVersion"].as_str()),
        (Some("PartialObjectMetadata"), Some("meta.k8s.io/v1"))
    );
    assert_eq!(object["metadata"]["name"], "first");
    assert!(object.get("data").is_none(), "rows carry metadata only by default");
    assert_eq!(table["metadata"]["resourceVersion"], server.cluster().resource_version().to_string());
}

#[tokio::test]
async fn a_get_is_a_one_row_table_and_include_object_chooses_what_rows_carry() {
    let server = server();
    configmaps(&server.client()).create(&PostParams::default(), &cm("one")).await.unwrap();
    let url = "/api/v1/namespaces/default/configmaps/one";
    let table = raw::get(&server, url, TABLE).await.body;
    assert_eq!(cells(&table), [vec![json!("one"), json!(1), json!("0s")]]);
    let whole = raw::get(&server, &format!("{url}?includeObject=Object"), TABLE).await.body;
    assert_eq!(whole["rows"][0]["object"]["kind"], "ConfigMap");
    assert_eq!(whole["rows"][0]["object"]["data"]["key"], "value");
    let none = raw::get(&server, &format!("{url}?includeObject=None"), TABLE).await.body;
    assert!(none["rows"][0].get("object").is_none());
    let bad = raw::get(&server, &format!("{url}?includeObject=Everything"), TABLE).await;
    assert_eq!((bad.code, bad.body["reason"].as_str()), (400, Some("BadRequest")));
    let beta = raw::get(&server, url, "application/json;as=Table;v=v1beta1;g=meta.k8s.io").await.body;
    assert_eq!(beta["apiVersion"], "meta.k8s.io/v1beta1");
}

#[tokio::test]
async fn a_request_accepting_no_media_type_the_server_speaks_is_not_acceptable() {
    let server = server();
    let answer =
        raw::get(&server, "/api/v1/namespaces/default/configmaps", "application/vnd.kubernetes.protobuf")
            .await;
    assert_eq!((answer.code, answer.body["reason"].as_str()), (406, Some("NotAcceptable")));
    let unknown =
        raw::get(&server, "/api/v1/namespaces/default/configmaps", "application/json;as=Nope;g=x;v=v1").await;
    assert_eq!(unknown.code, 406);
}

fn crd_with_printer_columns() -> CustomResourceDefinition {
    let mut crd = serde_json::to_value(KopfExample::crd()).unwrap();
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
        {"name": "Field", "type": "string", "jsonPath": ".spec.field", "description": "the field"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]);
    serde_json::from_value(crd).unwrap()
}

#[tokio::test(start_paused = true)]
async fn custom_resources_print_their_additional_printer_columns() {
    let server = server();
    let client = server.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd_with_printer_columns())
        .await
        .unwrap();
    let mut ex = example("ex1", "hello");
    ex.spec.replicas = 3;
    examples(&client).create(&PostParams::default(), &ex).await.unwrap();
    tokio::time::advance(Duration::from_secs(7200)).await;
    let table = raw::get(&server, "/apis/kopf.dev/v1/namespaces/default/kopfexamples", TABLE).await.body;
    assert_eq!(column_names(&table), ["Name", "Field", "Replicas", "Message", "Age"]);
    let definitions = table["columnDefinitions"].as_array().unwrap();
    assert_eq!(
        (definitions[1]["type"].as_str(), definitions[1]["description"].as_str()),
        (Some("string"), Some("the field"))
    );
    assert_eq!(
        definitions[2]["description"],
        "Custom resource definition column (in JSONPath format): .spec.replicas"
    );
    assert_eq!(
        (definitions[3]["priority"].as_i64(), definitions[4]["type"].as_str()),
        (Some(1), Some("date"))
    );
    assert_eq!(cells(&table), [vec![json!("ex1"), json!("hello"), json!(3), Value::Null, json!("120m")]]);
}

#[tokio::test]
async fn custom_resources_without_printer_columns_print_name_and_age() {
    let server = server();
    let client = server.client();
    install_crd(&client).await;
    examples(&client).create(&PostParams::default(), &example("ex1", "x")).await.unwrap();
    let table = raw::get(&server, "/apis/kopf.dev/v1/namespaces/default/kopfexamples", TABLE).await.body;
    assert_eq!(column_names(&table), ["Name", "Age"]);
    assert_eq!(cells(&table), [vec![json!("ex1"), json!("0s")]]);
}

#[tokio::test]
async fn a_table_watch_sends_one_row_per_event_and_the_columns_once() {
    let server = server();
    let api = configmaps(&server.client());
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut lines = raw::watch(&server, "/api/v1/namespaces/default/configmaps?watch=true", TABLE).await;
    let first = lines.next().await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k2": "v2"}}))).await.unwrap();
    let second = lines.next().await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let third = lines.next().await.unwrap();
    let kinds: Vec<&str> = [&first, &second, &third].iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
    assert_eq!(first["object"]["kind"], "Table");
    assert_eq!(column_names(&first["object"]), ["Name", "Data", "Age"]);
    assert!(column_names(&second["object"]).is_empty(), "later events leave the column definitions out");
    assert_eq!(cells(&second["object"]), [vec![json!("a"), json!(2), json!("0s")]]);
    assert_eq!(third["object"]["rows"][0]["object"]["metadata"]["name"], "a");
}

#[tokio::test]
async fn pods_print_ready_status_and_restarts_as_kubectl_shows_them() {
    let server = server();
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}, {"name": "side", "image": "busybox"}], "nodeName": "node-1"},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {
        "phase": "Running",
        "podIPs": [{"ip": "10.0.0.7"}],
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {"name": "app", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}},
            {"name": "side", "image": "busybox", "imageID": "", "ready": false, "restartCount": 4,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        ],
    }});
    pods.patch_status("web", &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
    let table = raw::get(&server, "/api/v1/namespaces/default/pods", TABLE).await.body;
    assert_eq!(
        column_names(&table),
        ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
    );
    assert_eq!(table["columnDefinitions"][5]["priority"], 1, "the wide columns");
    assert_eq!(
        cells(&table),
        [vec![
            json!("web"),
            json!("1/2"),
            json!("CrashLoopBackOff"),
            json!("4"),
            json!("0s"),
            json!("10.0.0.7"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>")
        ]]
    );
}

#[tokio::test]
async fn deployments_print_ready_up_to_date_and_available() {
    let server = server();
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}},
        },
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &deployment).await.unwrap();
    let status =
        json!({"status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    deployments.patch_status("web", &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
    let table = raw::get(&server, "/apis/apps/v1/namespaces/default/deployments/web", TABLE).await.body;
    assert_eq!(
        column_names(&table),
        ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    );
    assert_eq!(
        cells(&table),
        [vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("0s"),
            json!("app"),
            json!("nginx:1"),
            json!("app=web")
        ]]
    );
}

#[tokio::test]
async fn namespaces_print_their_phase_and_other_built_ins_their_name_and_age() {
    let server = server();
    let table = raw::get(&server, "/api/v1/namespaces/default", TABLE).await.body;
    assert_eq!(column_names(&table), ["Name", "Status", "Age"]);
    assert_eq!(cells(&table)[0][0], "default");
    let leases = raw::get(&server, "/apis/coordination.k8s.io/v1/leases", TABLE).await.body;
    assert_eq!(column_names(&leases), ["Name", "Age"]);
    assert!(cells(&leases).is_empty());
}
