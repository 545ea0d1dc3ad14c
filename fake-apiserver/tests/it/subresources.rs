//! R22: the status and scale subresources.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn the_main_endpoint_ignores_status_and_status_ignores_the_rest() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    let api = examples(&client);
    let mut ex = example("ex1", "a");
    ex.status = Some(ExampleStatus { message: "ignored on create".into(), replicas: 0 });
    let created = api.create(&PostParams::default(), &ex).await.unwrap();
    assert_eq!(created.status, None, "status is dropped on create when it is a subresource");

    let main = api
        .patch(
            "ex1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"field": "b"}, "status": {"message": "nope"}})),
        )
        .await
        .unwrap();
    assert_eq!(main.spec.field, "b");
    assert_eq!(main.status, None, "the main endpoint ignores status");

    let status = api
        .patch_status("ex1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"field": "c"}, "status": {"message": "yes"}, "metadata": {"labels": {"l": "v"}}})))
        .await
        .unwrap();
    assert_eq!(status.spec.field, "b", "/status ignores spec");
    assert_eq!(status.status.unwrap().message, "yes");
    assert_eq!(status.metadata.labels, None, "/status ignores metadata");
}

#[tokio::test]
async fn replace_status_changes_only_status() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    let api = examples(&client);
    let mut created = api.create(&PostParams::default(), &example("ex1", "a")).await.unwrap();
    created.spec.field = "changed".into();
    created.status = Some(ExampleStatus { message: "done".into(), replicas: 1 });
    let replaced = api.replace_status("ex1", &PostParams::default(), &created).await.unwrap();
    assert_eq!(replaced.spec.field, "a");
    assert_eq!(replaced.status.unwrap().message, "done");
}

#[tokio::test]
async fn the_scale_subresource_reads_and_writes_the_declared_paths() {
    let server = server();
    let client = client_for(&server).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &deployment).await.unwrap();
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(2));
    assert_eq!(scale.status.map(|s| s.selector), Some(Some("app=web".to_owned())));
    api.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .await
        .unwrap();
    assert_eq!(api.get("web").await.unwrap().spec.replicas, Some(5));

    install_crd(&client).await;
    let exs = examples(&client);
    exs.create(&PostParams::default(), &example("ex1", "a")).await.unwrap();
    exs.patch_scale("ex1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(exs.get("ex1").await.unwrap().spec.replicas, 3);
    assert_eq!(exs.get_scale("ex1").await.unwrap().spec.and_then(|s| s.replicas), Some(3));
}
