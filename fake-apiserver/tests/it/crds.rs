//! R28 and R25: CRDs served as soon as they are created, with several versions, and removed with
//! their objects and watches when deleted; discovery follows.

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
    WatchParams,
};
use kube::discovery::{Discovery, Scope};
use serde_json::json;

use crate::common::*;

fn two_version_crd(v1_served: bool) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": v1_served, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                {"name": "v2", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
            ],
        },
    }))
    .unwrap()
}

fn widgets(client: &kube::Client, version: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", version, "Widget"),
        "widgets",
    );
    Api::all_with(client.clone(), &resource)
}

#[tokio::test]
async fn a_created_crd_is_established_and_served_at_once() {
    let server = server();
    let client = client_for(&server).await;
    let crd = install_crd(&client).await;
    assert_eq!(crd.metadata.name.as_deref(), Some("kopfexamples.kopf.dev"));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established = crds.get("kopfexamples.kopf.dev").await.unwrap();
    let conditions = established.status.unwrap().conditions.unwrap();
    assert!(conditions.iter().any(|c| c.type_ == "Established" && c.status == "True"));
    let ex = examples(&client).create(&PostParams::default(), &example("ex1", "hello")).await.unwrap();
    assert_eq!(ex.spec.field, "hello");
}

#[tokio::test]
async fn every_served_version_reads_the_same_objects_and_unserved_versions_are_404() {
    let server = server();
    let client = client_for(&server).await;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &two_version_crd(true))
        .await
        .unwrap();
    let v2 = widgets(&client, "v2");
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}})).unwrap();
    v2.create(&PostParams::default(), &obj).await.unwrap();
    let as_v1 = widgets(&client, "v1").get("w").await.unwrap();
    assert_eq!(as_v1.types.unwrap().api_version, "example.com/v1", "presented in the version asked for");
    assert_eq!(as_v1.data["spec"]["size"], 3);

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "widgets.example.com",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"versions": two_version_crd(false).spec.versions}})),
    )
    .await
    .unwrap();
    let (code, _, _) = api_error(widgets(&client, "v1").get("w").await);
    assert_eq!(code, 404, "a version with served: false is not served");
    assert!(widgets(&client, "v2").get("w").await.is_ok());
}

#[tokio::test]
async fn a_crd_with_two_storage_versions_is_rejected() {
    let server = server();
    let client = client_for(&server).await;
    let mut crd = two_version_crd(true);
    crd.spec.versions[0].storage = true;
    let (code, reason, message) =
        api_error(Api::<CustomResourceDefinition>::all(client).create(&PostParams::default(), &crd).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(message.contains("exactly one version marked as storage version"), "{message}");
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_objects_ends_its_watches_and_stops_serving_it() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    let api = examples(&client);
    api.create(&PostParams::default(), &example("ex1", "a")).await.unwrap();
    let from = server.cluster().resource_version().to_string();
    let watch = api.watch(&WatchParams::default(), &from).await.unwrap();
    Api::<CustomResourceDefinition>::all(client.clone())
        .delete("kopfexamples.kopf.dev", &DeleteParams::default())
        .await
        .unwrap();
    let events: Vec<String> = watch
        .map(|e| match e.unwrap() {
            kube::api::WatchEvent::Deleted(ex) => format!("DELETED {}", ex.metadata.name.unwrap()),
            other => format!("{other:?}"),
        })
        .collect()
        .await;
    assert_eq!(events, vec!["DELETED ex1"], "the objects are deleted, then the watch ends");
    let (code, _, _) = api_error(api.get("ex1").await);
    assert_eq!(code, 404);
    assert!(
        Api::<CustomResourceDefinition>::all(client)
            .get_opt("kopfexamples.kopf.dev")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn kube_discovery_finds_builtins_and_crds_as_they_come_and_go() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (resource, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("kopf.dev", "v1", "KopfExample"))
        .expect("the CRD is discovered");
    assert_eq!(resource.plural, "kopfexamples");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources.iter().any(|(r, _)| r.plural == "kopfexamples/status" || r.plural == "status"),
        "{:?}",
        caps.subresources
    );
    assert!(discovery.resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment")).is_some());
    assert!(discovery.resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap")).is_some());

    Api::<CustomResourceDefinition>::all(client.clone())
        .delete("kopfexamples.kopf.dev", &DeleteParams::default())
        .await
        .unwrap();
    let after = Discovery::new(client).run().await.unwrap();
    assert!(after.resolve_gvk(&GroupVersionKind::gvk("kopf.dev", "v1", "KopfExample")).is_none());
}
