//! R18–R21: JSON patch, merge patch, strategic merge patch (built-ins only), apply.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::*;

fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "finalizers": ["a/one"]},
        "spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "proxy:1"},
        ]},
    }))
    .unwrap()
}

async fn created_pod(server: &fake_apiserver::FakeApiServer) -> Api<Pod> {
    let api: Api<Pod> = Api::namespaced(client_for(server).await, "default");
    api.create(&PostParams::default(), &pod()).await.unwrap();
    api
}

fn json_of(pod: &Pod) -> Value {
    serde_json::to_value(pod).unwrap()
}

#[tokio::test]
async fn json_patch_test_of_null_on_a_missing_path_passes_as_on_the_real_server() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
    ]))
    .unwrap();
    let patched = api.patch("a", &PatchParams::default(), &Patch::Json::<()>(patch)).await.unwrap();
    assert_eq!(patched.metadata.finalizers, Some(vec!["x/y".to_owned()]));
}

#[tokio::test]
async fn json_patch_with_a_failing_test_changes_nothing_and_is_422() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let created = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/data/key", "value": "changed"},
        {"op": "test", "path": "/data/key", "value": "something else"},
    ]))
    .unwrap();
    let (code, reason, _) =
        api_error(api.patch("a", &PatchParams::default(), &Patch::Json::<()>(patch)).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(rv(&api.get("a").await.unwrap()), rv(&created));
}

#[tokio::test]
async fn merge_patch_merges_maps_deletes_nulls_and_replaces_lists() {
    let server = server();
    let api = created_pod(&server).await;
    let patched = api
        .patch("p", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "only", "image": "x"}]}})))
        .await
        .unwrap();
    let v = json_of(&patched);
    assert_eq!(v["metadata"]["labels"], json!({"a": "b"}));
    assert_eq!(v["spec"]["containers"].as_array().unwrap().len(), 1, "merge patch replaces lists");
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_and_env_by_name() {
    let server = server();
    let api = created_pod(&server).await;
    let patch = json!({"spec": {"containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]}]}});
    let patched = api.patch("p", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let v = json_of(&patched);
    let containers = v["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "the sidecar stays");
    let app = containers.iter().find(|c| c["name"] == "app").unwrap();
    assert_eq!(app["image"], "app:2");
    let env: Vec<(String, String)> = app["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["value"].as_str().unwrap().to_owned()))
        .collect();
    assert!(
        env.contains(&("A".into(), "1".into()))
            && env.contains(&("B".into(), "two".into()))
            && env.contains(&("C".into(), "3".into())),
        "{env:?}"
    );
}

#[tokio::test]
async fn strategic_merge_patch_delete_directive_removes_one_container() {
    let server = server();
    let api = created_pod(&server).await;
    let patch = json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}});
    let patched = api.patch("p", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let names: Vec<String> = patched.spec.unwrap().containers.into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["app"]);
}

#[tokio::test]
async fn strategic_merge_patch_replace_directive_replaces_a_list() {
    let server = server();
    let api = created_pod(&server).await;
    let patch = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "new", "image": "n:1"}]}});
    let patched = api.patch("p", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let names: Vec<String> = patched.spec.unwrap().containers.into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["new"]);
}

#[tokio::test]
async fn strategic_merge_patch_set_element_order_reorders_the_merged_list() {
    let server = server();
    let api = created_pod(&server).await;
    let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}], "containers": [{"name": "app", "image": "app:3"}]}});
    let patched = api.patch("p", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let names: Vec<String> = patched.spec.unwrap().containers.into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["sidecar", "app"]);
}

#[tokio::test]
async fn strategic_merge_patch_retain_keys_drops_other_keys_of_a_map() {
    let server = server();
    let api: Api<Deployment> = Api::namespaced(client_for(&server).await, "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &deployment).await.unwrap();
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let patched = api.patch("web", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let strategy = serde_json::to_value(patched.spec.strategy.unwrap()).unwrap();
    assert_eq!(strategy, json!({"type": "Recreate"}));
}

#[tokio::test]
async fn strategic_merge_patch_delete_from_primitive_list_removes_finalizers() {
    let server = server();
    let api = created_pod(&server).await;
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/one"]}});
    let patched = api.patch("p", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    assert_eq!(patched.metadata.finalizers, None);
}

#[tokio::test]
async fn strategic_merge_patch_unions_primitive_merge_lists() {
    let server = server();
    let api = created_pod(&server).await;
    let patch = json!({"metadata": {"finalizers": ["b/two"]}});
    let patched = api.patch("p", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let mut finalizers = patched.metadata.finalizers.unwrap();
    finalizers.sort();
    assert_eq!(finalizers, vec!["a/one", "b/two"]);
}

#[tokio::test]
async fn strategic_merge_patch_on_a_custom_resource_is_415() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    let api = examples(&client);
    api.create(&PostParams::default(), &example("ex1", "a")).await.unwrap();
    let (code, reason, _) = api_error(
        api.patch("ex1", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"field": "b"}}))).await,
    );
    assert_eq!((code, reason.as_str()), (415, "UnsupportedMediaType"));
}

#[tokio::test]
async fn apply_creates_a_missing_object_and_requires_a_field_manager() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let applied = api.patch("a", &PatchParams::apply("tests"), &Patch::Apply(cm("a"))).await.unwrap();
    assert_eq!(applied.metadata.name.as_deref(), Some("a"));
    let (code, _, _) = api_error(api.patch("a", &PatchParams::default(), &Patch::Apply(cm("a"))).await);
    assert_eq!(code, 400);
}
