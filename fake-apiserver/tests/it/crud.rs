//! R1, R2, R11, R13: server-set metadata, one cluster-wide resourceVersion, optimistic concurrency,
//! generation, no-op writes, namespace admission.

use fake_apiserver::Verb;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn create_sets_uid_creation_timestamp_and_a_resource_version() {
    let server = server();
    let created =
        configmaps(&client_for(&server).await).create(&PostParams::default(), &cm("a")).await.unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.uid.as_ref().map(String::len), Some(36), "a uuid-shaped uid");
    assert_eq!(
        meta.creation_timestamp.as_ref().map(|t| t.0.to_string()),
        Some("2026-01-01T00:00:00Z".into())
    );
    assert_eq!(meta.namespace.as_deref(), Some("default"), "the namespace defaults from the URL");
    assert!(rv(&created) > 0);
    assert_eq!(meta.generation, None, "configmaps do not track generation");
}

#[tokio::test]
async fn uids_and_generated_names_repeat_for_the_same_seed() {
    async fn run(seed: u64) -> (String, String) {
        let server = fake_apiserver::FakeApiServer::builder().seed(seed).build();
        let mut c = cm("");
        c.metadata.name = None;
        c.metadata.generate_name = Some("gen-".into());
        let created =
            configmaps(&client_for(&server).await).create(&PostParams::default(), &c).await.unwrap();
        (created.metadata.uid.unwrap(), created.metadata.name.unwrap())
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    assert_ne!(a, run(8).await);
    assert!(a.1.starts_with("gen-") && a.1.len() == 9, "generateName gets 5 random characters: {}", a.1);
}

#[tokio::test]
async fn resource_versions_are_one_cluster_wide_counter_across_resources() {
    let server = server();
    let client = client_for(&server).await;
    let a = configmaps(&client).create(&PostParams::default(), &cm("a")).await.unwrap();
    let ns = Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap(),
        )
        .await
        .unwrap();
    let b = configmaps(&client).create(&PostParams::default(), &cm("b")).await.unwrap();
    assert!(rv(&a) < rv(&ns) && rv(&ns) < rv(&b));
    let list = configmaps(&client).list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.metadata.resource_version.as_deref(),
        Some(rv(&b).to_string().as_str()),
        "a list is served at the current revision"
    );
}

#[tokio::test]
async fn create_of_a_taken_name_is_409_already_exists() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let (code, reason, message) = api_error(api.create(&PostParams::default(), &cm("a")).await);
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (409, "AlreadyExists", "configmaps \"a\" already exists")
    );
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_404_for_the_namespace() {
    let server = server();
    let api: Api<ConfigMap> = Api::namespaced(client_for(&server).await, "nowhere");
    let (code, reason, message) = api_error(api.create(&PostParams::default(), &cm("a")).await);
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "namespaces \"nowhere\" not found")
    );
}

#[tokio::test]
async fn update_with_a_stale_resource_version_is_409_conflict() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let first = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut second = first.clone();
    second.data = Some([("k".to_owned(), "2".to_owned())].into());
    api.replace("a", &PostParams::default(), &second).await.unwrap();
    let mut stale = first.clone();
    stale.data = Some([("k".to_owned(), "3".to_owned())].into());
    let (code, reason, message) = api_error(api.replace("a", &PostParams::default(), &stale).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified; please apply your changes to the latest version"),
        "{message}"
    );
}

#[tokio::test]
async fn builtins_accept_an_update_without_resource_version_but_custom_resources_do_not() {
    let server = server();
    let client = client_for(&server).await;
    let api = configmaps(&client);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut unconditional = cm("a");
    unconditional.data = Some([("k".to_owned(), "2".to_owned())].into());
    api.replace("a", &PostParams::default(), &unconditional)
        .await
        .expect("built-ins allow unconditional updates");

    install_crd(&client).await;
    let exs = examples(&client);
    exs.create(&PostParams::default(), &example("ex1", "a")).await.unwrap();
    let (code, reason, message) =
        api_error(exs.replace("ex1", &PostParams::default(), &example("ex1", "b")).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(
        message.contains("metadata.resourceVersion") && message.contains("must be specified for an update"),
        "{message}"
    );
}

#[tokio::test]
async fn a_write_that_changes_nothing_bumps_no_resource_version_and_sends_no_event() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let created = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let patched = api
        .patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"key": "value"}})))
        .await
        .unwrap();
    assert_eq!(rv(&patched), rv(&created));
    let replaced = api.replace("a", &PostParams::default(), &created).await.unwrap();
    assert_eq!(rv(&replaced), rv(&created));
    assert_eq!(server.cluster().resource_version(), rv(&created), "the cluster revision did not move");
}

#[tokio::test]
async fn generation_moves_with_the_spec_only() {
    let server = server();
    let api: Api<Deployment> = Api::namespaced(client_for(&server).await, "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &deployment).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let labelled = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})))
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1), "metadata changes do not bump generation");
    let status = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"replicas": 1}})))
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(1), "status changes do not bump generation");
    let scaled = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2), "spec changes do");
}

#[tokio::test]
async fn custom_resources_bump_generation_on_spec_changes_but_not_status_with_a_subresource() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    let api = examples(&client);
    let created = api.create(&PostParams::default(), &example("ex1", "a")).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let status = api
        .patch_status("ex1", &PatchParams::default(), &Patch::Merge(json!({"status": {"message": "hi"}})))
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(1));
    let changed = api
        .patch("ex1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"field": "b"}})))
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
}

#[tokio::test]
async fn pods_are_created_pending_and_unscheduled_pods_are_deleted_at_once() {
    let server = server();
    let api: Api<Pod> = Api::namespaced(client_for(&server).await, "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .unwrap();
    let created = api.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(created.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    let deleted = api.delete("p", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_left(), "pods answer a delete with the pod");
    assert!(api.get_opt("p").await.unwrap().is_none(), "nothing runs an unscheduled pod, so nothing waits");
}

#[tokio::test]
async fn scheduled_pods_are_deleted_gracefully_and_wait_for_their_grace_period() {
    let server = server();
    let api: Api<Pod> = Api::namespaced(client_for(&server).await, "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    api.delete("p", &DeleteParams::default()).await.unwrap();
    let pending = api.get("p").await.unwrap();
    assert_eq!(pending.metadata.deletion_grace_period_seconds, Some(30));
    assert_eq!(
        pending.metadata.deletion_timestamp.map(|t| t.0.to_string()),
        Some("2026-01-01T00:00:30Z".into())
    );
    api.delete("p", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    assert!(
        api.get_opt("p").await.unwrap().is_none(),
        "a delete with grace 0 finishes a pending graceful deletion"
    );
    let deletes = server.cluster().journal(|j| j.operations().filter(|o| o.verb == Verb::Delete).count());
    assert_eq!(deletes, 2);
}

#[tokio::test]
async fn creates_and_deletes_of_namespaces_go_through_the_namespace_lifecycle() {
    let server = server();
    let client = client_for(&server).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let created = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    assert_eq!(created.spec.and_then(|s| s.finalizers), Some(vec!["kubernetes".to_owned()]));
    let (code, _, message) = api_error(namespaces.delete("default", &DeleteParams::default()).await);
    assert_eq!(
        (code, message.as_str()),
        (403, "namespaces \"default\" is forbidden: this namespace may not be deleted")
    );
}

#[tokio::test]
async fn the_typed_core_api_and_kube_client_see_the_same_objects() {
    let server = server();
    let direct = server.cluster().api::<ConfigMap>(Some("default"));
    direct.create(&cm("a")).await.unwrap();
    let via_client = configmaps(&client_for(&server).await).get("a").await.unwrap();
    assert_eq!(via_client.data, cm("a").data);
    let patched = direct.merge("a", json!({"data": {"key": "changed"}})).await.unwrap();
    assert_eq!(rv(&patched), rv(&configmaps(&client_for(&server).await).get("a").await.unwrap()));
    assert!(direct.delete("a").await.unwrap().is_none(), "gone at once without finalizers");
    assert!(direct.get_opt("a").await.unwrap().is_none());
    let actors: Vec<String> = server.cluster().journal(|j| j.operations().map(|o| o.actor.clone()).collect());
    assert!(actors.iter().any(|a| a == "test"), "typed requests are journaled as the test's: {actors:?}");
}
