//! Metadata-only responses (`as=PartialObjectMetadata[List]`), as kube's `list_metadata`,
//! `watch_metadata` and kube-runtime's `metadata_watcher` ask for them.

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use crate::common::*;
use crate::raw;

#[tokio::test]
async fn metadata_lists_are_partial_object_metadata_lists_without_the_objects_bodies() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &labelled("a", &[("app", "x")])).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    let list = api.list_metadata(&ListParams::default().labels("app=x")).await.unwrap();
    let names: Vec<_> = list.items.iter().map(|i| i.metadata.name.clone().unwrap()).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(list.metadata.resource_version, Some(server.cluster().resource_version().to_string()));
    let one = api.get_metadata("b").await.unwrap();
    assert!(one.metadata.uid.is_some());

    let accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let raw = raw::get(&server, "/api/v1/namespaces/default/configmaps", accept).await.body;
    assert_eq!(
        (raw["kind"].as_str(), raw["apiVersion"].as_str()),
        (Some("PartialObjectMetadataList"), Some("meta.k8s.io/v1"))
    );
    let item = &raw["items"][0];
    assert_eq!(
        (item["kind"].as_str(), item["apiVersion"].as_str()),
        (Some("PartialObjectMetadata"), Some("meta.k8s.io/v1"))
    );
    assert!(item.get("data").is_none());
}

type Events = BoxStream<'static, watcher::Result<Event<PartialObjectMeta<ConfigMap>>>>;

#[tokio::test]
async fn the_metadata_watcher_sees_creations_changes_and_deletions() {
    #[allow(deprecated)] // kube 5 recommends the form of the next test; both must work
    sees_creations_changes_and_deletions(|api| {
        kube::runtime::metadata_watcher(api, watcher::Config::default()).boxed()
    })
    .await;
}

#[tokio::test]
async fn a_watcher_of_partial_object_meta_sees_creations_changes_and_deletions() {
    sees_creations_changes_and_deletions(|api| {
        let metadata: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(api.into_client(), "default");
        watcher::watcher(metadata, watcher::Config::default()).boxed()
    })
    .await;
}

async fn sees_creations_changes_and_deletions(watch: impl FnOnce(Api<ConfigMap>) -> Events) {
    let server = server();
    let api: Api<ConfigMap> = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("early")).await.unwrap();
    let mut events = watch(api.clone());
    let mut seen = Vec::new();
    let mut next = async || match events.next().await.unwrap().unwrap() {
        Event::Init => "Init".to_owned(),
        Event::InitApply(m) => format!("InitApply {}", m.metadata.name.unwrap()),
        Event::InitDone => "InitDone".to_owned(),
        Event::Apply(m) => {
            format!("Apply {} {}", m.metadata.name.unwrap(), m.metadata.labels.unwrap_or_default().len())
        }
        Event::Delete(m) => format!("Delete {}", m.metadata.name.unwrap()),
    };
    for _ in 0..3 {
        seen.push(next().await);
    }
    api.create(&PostParams::default(), &cm("late")).await.unwrap();
    seen.push(next().await);
    api.patch("late", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .unwrap();
    seen.push(next().await);
    api.delete("late", &DeleteParams::default()).await.unwrap();
    seen.push(next().await);
    assert_eq!(seen, ["Init", "InitApply early", "InitDone", "Apply late 0", "Apply late 1", "Delete late"]);
}

#[tokio::test]
async fn metadata_watch_bookmarks_are_partial_object_metadata_too() {
    let server = server();
    configmaps(&server.client()).create(&PostParams::default(), &cm("a")).await.unwrap();
    let uri = "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true\
               &resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";
    let mut lines =
        raw::watch(&server, uri, "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1").await;
    let added = lines.next().await.unwrap();
    assert_eq!(
        (added["type"].as_str(), added["object"]["kind"].as_str()),
        (Some("ADDED"), Some("PartialObjectMetadata"))
    );
    let bookmark = lines.next().await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}
