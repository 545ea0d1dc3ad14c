//! R23: `dryRun=All` on every write verb runs the whole write — admission, defaults, validation,
//! managed fields — and answers with the would-be result, but stores nothing: no resourceVersion
//! moves, no watch event is recorded, the object reads back as before.

use fake_apiserver::FakeApiServer;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::apply::{gadget, gadgets, managed};
use crate::common::*;

/// The cluster's revision and watch-history length, which a dry run must leave alone.
fn state(server: &FakeApiServer) -> (u64, usize) {
    (server.cluster().resource_version(), server.cluster().history_len())
}

fn dry_post() -> PostParams {
    PostParams { dry_run: true, ..Default::default() }
}

fn dry_delete() -> DeleteParams {
    DeleteParams { dry_run: true, ..Default::default() }
}

#[tokio::test]
async fn dry_run_create_returns_the_would_be_object_and_stores_nothing() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let before = state(&server);
    let created = api.create(&dry_post(), &cm("a")).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("a"));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(managed(&created).len(), 1, "the would-be managed fields are computed");
    assert_eq!(state(&server), before);
    assert_eq!(api_error(api.get("a").await).0, 404);
}

#[tokio::test]
async fn dry_run_create_still_fails_like_the_real_one() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let (code, reason, _) = api_error(api.create(&dry_post(), &cm("a")).await);
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
}

#[tokio::test]
async fn dry_run_update_returns_the_change_and_stores_nothing() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let mut current = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    current.data.as_mut().unwrap().insert("key".into(), "changed".into());
    let before = state(&server);
    let replaced = api.replace("a", &dry_post(), &current).await.unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["key"], "changed");
    assert_eq!(rv(&replaced), rv(&current), "the would-be object keeps the current resourceVersion");
    assert_eq!(state(&server), before);
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["key"], "value");
}

#[tokio::test]
async fn dry_run_patches_of_every_type_store_nothing() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let before = state(&server);
    let params = PatchParams { dry_run: true, ..Default::default() };
    let merged = api.patch("a", &params, &Patch::Merge(json!({"data": {"key": "m"}}))).await.unwrap();
    assert_eq!(merged.data.unwrap()["key"], "m");
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/key", "value": "j"}])).unwrap();
    let patched = api.patch("a", &params, &Patch::Json::<()>(ops)).await.unwrap();
    assert_eq!(patched.data.unwrap()["key"], "j");
    let strategic = api.patch("a", &params, &Patch::Strategic(json!({"data": {"key": "s"}}))).await.unwrap();
    assert_eq!(strategic.data.unwrap()["key"], "s");
    assert_eq!(state(&server), before);
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["key"], "value");
}

#[tokio::test]
async fn dry_run_apply_returns_the_merge_and_its_managed_fields_and_stores_nothing() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let apply =
        |data| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": data});
    let before = state(&server);
    let created = api
        .patch("a", &PatchParams::apply("mgr").dry_run(), &Patch::Apply(apply(json!({"k": "1"}))))
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["k"], "1");
    assert_eq!(state(&server), before, "create-on-apply stores nothing either");
    assert_eq!(api_error(api.get("a").await).0, 404);
    api.patch("a", &PatchParams::apply("mgr"), &Patch::Apply(apply(json!({"k": "1"})))).await.unwrap();
    let before = state(&server);
    let applied = api
        .patch("a", &PatchParams::apply("other").force().dry_run(), &Patch::Apply(apply(json!({"k": "2"}))))
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["k"], "2");
    assert_eq!(managed(&applied).len(), 1, "the would-be ownership moved to the forcing manager");
    assert_eq!(state(&server), before);
    assert_eq!(managed(&api.get("a").await.unwrap())[0]["manager"], "mgr");
}

#[tokio::test]
async fn dry_run_delete_answers_as_a_delete_and_keeps_the_object() {
    let server = server();
    let client = client_for(&server).await;
    let api = configmaps(&client);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let before = state(&server);
    api.delete("a", &dry_delete()).await.unwrap();
    assert_eq!(state(&server), before);
    assert!(api.get("a").await.is_ok());
    // With a finalizer the would-be object is the terminating one.
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    let before = state(&server);
    let pending = api.delete("held", &dry_delete()).await.unwrap().left().expect("the object, still there");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(state(&server), before);
    assert!(api.get("held").await.unwrap().metadata.deletion_timestamp.is_none());
}

#[tokio::test]
async fn dry_run_delete_collection_lists_what_would_go_and_keeps_everything() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    for name in ["a", "b"] {
        api.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    let before = state(&server);
    let gone = api.delete_collection(&dry_delete(), &ListParams::default()).await.unwrap();
    let names: Vec<String> =
        gone.left().expect("a list").items.into_iter().filter_map(|c| c.metadata.name).collect();
    assert!(names.contains(&"a".to_owned()) && names.contains(&"b".to_owned()));
    assert_eq!(state(&server), before);
    assert_eq!(api.list(&ListParams::default()).await.unwrap().items.len(), names.len());
}

#[tokio::test]
async fn dry_run_of_a_custom_resource_runs_defaults_and_validation() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    let before = state(&server);
    let object: kube::api::DynamicObject =
        serde_json::from_value(gadget("g", json!({"size": "small"}))).unwrap();
    let created = api.create(&dry_post(), &object).await.unwrap();
    assert_eq!(created.data["spec"]["replicas"], 1, "defaults apply");
    let invalid: kube::api::DynamicObject =
        serde_json::from_value(gadget("g", json!({"size": "huge"}))).unwrap();
    assert_eq!(api_error(api.create(&dry_post(), &invalid).await).0, 422);
    assert_eq!(state(&server), before);
}
