//! R3–R7: watch events, resume from a resourceVersion, selectors on watches, bookmarks,
//! sendInitialEvents, timeouts and 410 Gone.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::common::*;

fn describe(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(c) => format!("ADDED {}", c.metadata.name.as_deref().unwrap_or_default()),
        WatchEvent::Modified(c) => format!("MODIFIED {}", c.metadata.name.as_deref().unwrap_or_default()),
        WatchEvent::Deleted(c) => format!("DELETED {}", c.metadata.name.as_deref().unwrap_or_default()),
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

async fn take(api: &Api<ConfigMap>, params: &WatchParams, from: &str, n: usize) -> Vec<String> {
    let stream = api.watch(params, from).await.unwrap();
    stream.take(n).map(|e| describe(&e.unwrap())).collect().await
}

#[tokio::test]
async fn a_watch_from_a_resource_version_gets_exactly_the_later_changes() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let events = take(&api, &WatchParams::default(), &rv(&a).to_string(), 3).await;
    assert_eq!(events, vec!["MODIFIED a", "ADDED b", "DELETED a"]);
}

#[tokio::test]
async fn a_watch_without_resource_version_starts_with_the_current_state_as_added() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    let mut stream = api.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let first: Vec<String> = (&mut stream).take(2).map(|e| describe(&e.unwrap())).collect().await;
    assert_eq!(first, vec!["ADDED a", "ADDED b"]);
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    assert_eq!(describe(&stream.next().await.unwrap().unwrap()), "ADDED c", "then live events");
}

#[tokio::test]
async fn deleted_events_carry_the_last_state_at_the_deletion_resource_version() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let mut stream = api.watch(&WatchParams::default(), &rv(&a).to_string()).await.unwrap().boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Deleted(last)) => {
            assert_eq!(last.data, a.data);
            assert_eq!(rv(&last), server.cluster().resource_version());
        }
        other => panic!("expected DELETED, got {other:?}"),
    }
}

#[tokio::test]
async fn objects_entering_or_leaving_a_label_selector_are_added_or_deleted_for_the_watch() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let start = api.create(&PostParams::default(), &labelled("a", &[("team", "x")])).await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"team": "y"}}})))
        .await
        .unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"team": "x"}}})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &labelled("other", &[("team", "y")])).await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "v"}}))).await.unwrap();
    let events = take(&api, &WatchParams::default().labels("team=x"), &rv(&start).to_string(), 3).await;
    assert_eq!(events, vec!["DELETED a", "ADDED a", "MODIFIED a"]);
}

#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_gets_a_410_error_event() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    server.cluster().compact();
    let events = take(&api, &WatchParams::default(), &rv(&a).to_string(), 5).await;
    assert_eq!(events, vec!["ERROR 410"], "one ERROR event, then the stream ends");
}

#[tokio::test]
async fn a_small_history_expires_old_resource_versions() {
    let server = fake_apiserver::FakeApiServer::builder().history(3).build();
    let api = configmaps(&client_for(&server).await);
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    for name in ["b", "c", "d", "e"] {
        api.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    assert_eq!(take(&api, &WatchParams::default(), &rv(&a).to_string(), 5).await, vec!["ERROR 410"]);
}

#[tokio::test(start_paused = true)]
async fn bookmarks_arrive_every_minute_when_allowed() {
    let server = server();
    let Some(client) = clock_bound_client(&server) else { return };
    let api = configmaps(&client);
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let start = tokio::time::Instant::now();
    let events = take(&api, &WatchParams::default(), &rv(&a).to_string(), 2).await;
    assert_eq!(events, vec![format!("BOOKMARK {}", rv(&a)), format!("BOOKMARK {}", rv(&a))]);
    assert_eq!(start.elapsed(), Duration::from_secs(120), "one per virtual minute");
}

#[tokio::test(start_paused = true)]
async fn a_watch_ends_after_its_timeout_seconds() {
    let server = server();
    let Some(client) = clock_bound_client(&server) else { return };
    let api = configmaps(&client);
    let start = tokio::time::Instant::now();
    let events = take(
        &api,
        &WatchParams::default().timeout(290).disable_bookmarks(),
        &server.cluster().resource_version().to_string(),
        10,
    )
    .await;
    assert!(events.is_empty());
    assert_eq!(start.elapsed(), Duration::from_secs(290));
}

#[tokio::test]
async fn send_initial_events_ends_the_initial_state_with_an_annotated_bookmark() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let params = WatchParams::default().initial_events();
    let stream = api.watch(&params, "").await.unwrap();
    let events: Vec<WatchEvent<ConfigMap>> = stream.take(2).map(Result::unwrap).collect().await;
    assert_eq!(describe(&events[0]), "ADDED a");
    match &events[1] {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata.annotations.get("k8s.io/initial-events-end").map(String::as_str),
            Some("true")
        ),
        other => panic!("expected the initial-events-end bookmark, got {}", describe(other)),
    }
}

#[tokio::test]
async fn field_selectors_apply_to_watches() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let start = server.cluster().resource_version().to_string();
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    let events = take(&api, &WatchParams::default().fields("metadata.name=b"), &start, 1).await;
    assert_eq!(events, vec!["ADDED b"]);
}
