//! R25: aggregated discovery (`apidiscovery.k8s.io/v2`), chosen by the `Accept` header as kubectl
//! asks for it, generated from the registry so CRDs appear and disappear; legacy documents otherwise.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};

use crate::common::*;
use crate::raw::{self, DISCOVERY};

fn group<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["items"].as_array()?.iter().find(|g| g["metadata"]["name"].as_str().unwrap_or_default() == name)
}

fn resource<'a>(group: &'a Value, version: &str, plural: &str) -> Option<&'a Value> {
    let version = group["versions"].as_array()?.iter().find(|v| v["version"] == version)?;
    version["resources"].as_array()?.iter().find(|r| r["resource"] == plural)
}

#[tokio::test]
async fn aggregated_discovery_of_apis_answers_with_the_content_type_client_go_checks() {
    let server = server();
    let answer = raw::get(&server, "/apis", DISCOVERY).await;
    assert_eq!(answer.code, 200);
    assert_eq!(answer.content_type, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    assert_eq!(answer.body["kind"], "APIGroupDiscoveryList");
    assert_eq!(answer.body["apiVersion"], "apidiscovery.k8s.io/v2");
    let apps = group(&answer.body, "apps").expect("the apps group is listed");
    assert_eq!(apps["versions"][0]["freshness"], "Current");
    let deployments = resource(apps, "v1", "deployments").expect("deployments are listed");
    assert_eq!(deployments["responseKind"], json!({"group": "apps", "version": "v1", "kind": "Deployment"}));
    assert_eq!(deployments["scope"], "Namespaced");
    assert_eq!(deployments["singularResource"], "deployment");
    assert_eq!(deployments["shortNames"], json!(["deploy"]));
    assert_eq!(deployments["categories"], json!(["all"]));
    assert!(deployments["verbs"].as_array().unwrap().contains(&json!("watch")));
    let subresources = deployments["subresources"].as_array().unwrap();
    let scale = subresources.iter().find(|s| s["subresource"] == "scale").expect("scale is listed");
    assert_eq!(scale["responseKind"], json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}));
    let status = subresources.iter().find(|s| s["subresource"] == "status").expect("status is listed");
    assert_eq!(status["responseKind"]["kind"], "Deployment");
    assert!(group(&answer.body, "").is_none(), "the core group is served at /api only");
}

#[tokio::test]
async fn aggregated_discovery_of_api_lists_the_core_group_with_its_resources() {
    let server = server();
    let answer = raw::get(&server, "/api", DISCOVERY).await;
    assert_eq!(answer.content_type, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    let items = answer.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one item: the core group");
    let pods = resource(&items[0], "v1", "pods").expect("pods are listed");
    assert_eq!(pods["responseKind"], json!({"group": "", "version": "v1", "kind": "Pod"}));
    assert_eq!(pods["shortNames"], json!(["po"]));
    let namespaces = resource(&items[0], "v1", "namespaces").unwrap();
    assert_eq!(namespaces["scope"], "Cluster");
    let finalize =
        namespaces["subresources"].as_array().unwrap().iter().find(|s| s["subresource"] == "finalize");
    assert_eq!(finalize.unwrap()["verbs"], json!(["update"]));
}

#[tokio::test]
async fn a_crd_is_in_aggregated_discovery_once_created_and_gone_once_deleted() {
    let server = server();
    let client = server.client();
    let before = raw::get(&server, "/apis", DISCOVERY).await;
    assert!(group(&before.body, "kopf.dev").is_none());
    install_crd(&client).await;
    let after = raw::get(&server, "/apis", DISCOVERY).await;
    let kopf = group(&after.body, "kopf.dev").expect("the CRD's group is listed");
    let examples = resource(kopf, "v1", "kopfexamples").expect("the CRD's resource is listed");
    assert_eq!(
        examples["responseKind"],
        json!({"group": "kopf.dev", "version": "v1", "kind": "KopfExample"})
    );
    assert_eq!(examples["singularResource"], "kopfexample");
    let subresources: Vec<&str> = examples["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert_eq!(subresources, ["status", "scale"]);
    Api::<CustomResourceDefinition>::all(client)
        .delete("kopfexamples.kopf.dev", &DeleteParams::default())
        .await
        .unwrap();
    let gone = raw::get(&server, "/apis", DISCOVERY).await;
    assert!(group(&gone.body, "kopf.dev").is_none(), "a deleted CRD's group is no longer listed");
}

#[tokio::test]
async fn plain_json_requests_get_the_legacy_documents() {
    let server = server();
    let apis = raw::get(&server, "/apis", "application/json").await;
    assert_eq!(apis.content_type, "application/json");
    assert_eq!(apis.body["kind"], "APIGroupList");
    let api = raw::get(&server, "/api", "").await;
    assert_eq!(api.body["kind"], "APIVersions");
    let preferring_legacy = raw::get(
        &server,
        "/apis",
        "application/json;q=0.9,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.5",
    )
    .await;
    assert_eq!(preferring_legacy.body["kind"], "APIGroupList", "the header's preference wins");
}

#[tokio::test]
async fn clients_that_only_know_v2beta1_get_v2beta1() {
    let server = server();
    let answer = raw::get(
        &server,
        "/apis",
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
    )
    .await;
    assert_eq!(
        answer.content_type,
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    );
    assert_eq!(answer.body["apiVersion"], "apidiscovery.k8s.io/v2beta1");
}

#[tokio::test]
async fn kube_aggregated_discovery_finds_builtins_and_crds_with_their_scope_and_subresources() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    let discovery = Discovery::new(client).run_aggregated().await.expect("aggregated discovery parses");
    let (pods, caps) =
        discovery.resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod")).expect("pods are found");
    assert_eq!((pods.plural.as_str(), caps.scope.clone()), ("pods", Scope::Namespaced));
    assert!(caps.subresources.iter().any(|(sub, _)| sub.plural == "status"));
    let gvk = GroupVersionKind::gvk("kopf.dev", "v1", "KopfExample");
    let (examples, caps) = discovery.resolve_gvk(&gvk).expect("the CRD's kind is found");
    assert_eq!(examples.plural, "kopfexamples");
    let subresources: Vec<&str> = caps.subresources.iter().map(|(sub, _)| sub.plural.as_str()).collect();
    assert_eq!(subresources, ["status", "scale"]);
    let (_, namespaces) = discovery.resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace")).unwrap();
    assert_eq!(namespaces.scope, Scope::Cluster);
}
