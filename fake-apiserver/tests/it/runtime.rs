//! kube-runtime end to end on the fake: watcher resume and relist after 410, a reflector store that
//! converges, a Controller whose reconciler uses the finalizer helper, and the events Recorder.

use std::sync::Arc;
use std::time::Duration;

use fake_apiserver::{Fault, FaultRule, Verb};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event as WatcherEvent};
use serde_json::json;
use tokio::sync::mpsc;

use crate::common::*;

fn describe(event: &WatcherEvent<ConfigMap>) -> String {
    match event {
        WatcherEvent::Init => "Init".to_owned(),
        WatcherEvent::InitApply(c) => format!("InitApply {}", c.metadata.name.as_deref().unwrap_or_default()),
        WatcherEvent::InitDone => "InitDone".to_owned(),
        WatcherEvent::Apply(c) => format!("Apply {}", c.metadata.name.as_deref().unwrap_or_default()),
        WatcherEvent::Delete(c) => format!("Delete {}", c.metadata.name.as_deref().unwrap_or_default()),
    }
}

#[tokio::test(start_paused = true)]
async fn the_watcher_resumes_after_a_dropped_watch_and_relists_after_410() {
    let server = server();
    let Some(client) = clock_bound_client(&server) else { return };
    let api = configmaps(&client);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    server.cluster().faults(|f| {
        f.add(FaultRule::new(Fault::watch_drop(1)).verb(Verb::Watch).nth(1).once());
        f.add(FaultRule::new(Fault::watch_gone()).verb(Verb::Watch).nth(2).once());
    });
    let mut events = watcher::watcher(api.clone(), watcher::Config::default())
        .filter_map(|e| async move { e.ok() })
        .boxed();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&events.next().await.unwrap()));
    }
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    for _ in 0..5 {
        seen.push(describe(&events.next().await.unwrap()));
    }
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    seen.push(describe(&events.next().await.unwrap()));
    assert_eq!(
        seen,
        vec![
            "Init",
            "InitApply a",
            "InitDone",
            "Apply b",
            "Init",
            "InitApply a",
            "InitApply b",
            "InitDone",
            "Apply c"
        ],
        "drop → re-watch from the last resourceVersion; 410 → a full relist"
    );
    let watches = server.cluster().journal(|j| j.operations().filter(|o| o.verb == Verb::Watch).count());
    assert_eq!(watches, 3);
}

#[tokio::test(start_paused = true)]
async fn a_reflector_store_converges_on_the_cluster_state() {
    let server = server();
    let Some(client) = clock_bound_client(&server) else { return };
    let api = configmaps(&client);
    let (reader, writer) = reflector::store::<ConfigMap>();
    let mut stream =
        reflector::reflector(writer, watcher::watcher(api.clone(), watcher::Config::default())).boxed();
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    api.patch("b", &PatchParams::default(), &Patch::Merge(json!({"data": {"key": "new"}}))).await.unwrap();
    let wanted = |store: &reflector::Store<ConfigMap>| {
        let state = store.state();
        state.len() == 1 && state[0].data.as_ref().is_some_and(|d| d["key"] == "new")
    };
    while !wanted(&reader) {
        stream.try_next().await.unwrap().expect("the watcher keeps going");
    }
    assert_eq!(reader.state()[0].metadata.name.as_deref(), Some("b"));
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[tokio::test(start_paused = true)]
async fn a_controller_with_the_finalizer_helper_sees_create_update_and_delete() {
    let server = server();
    let Some(client) = clock_bound_client(&server) else { return };
    install_crd(&client).await;
    let api = examples(&client);
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();

    let controller_api = api.clone();
    let controller = Controller::new(api.clone(), watcher::Config::default()).run(
        move |ex: Arc<KopfExample>, tx: Arc<mpsc::UnboundedSender<String>>| {
            let api = controller_api.clone();
            async move {
                finalizer(&api, "kopf.dev/cleanup", ex, |event| async move {
                    match event {
                        Finalizer::Apply(ex) => tx.send(format!("apply {}", ex.spec.field)).ok(),
                        Finalizer::Cleanup(ex) => tx.send(format!("cleanup {}", ex.spec.field)).ok(),
                    };
                    Ok::<_, Never>(Action::await_change())
                })
                .await
            }
        },
        |_, _, _| Action::requeue(Duration::from_secs(1)),
        Arc::new(tx),
    );
    let running = tokio::spawn(controller.for_each(|_| async {}));

    api.create(&PostParams::default(), &example("ex1", "one")).await.unwrap();
    assert_eq!(rx.recv().await.as_deref(), Some("apply one"));
    let with_finalizer = api.get("ex1").await.unwrap();
    assert_eq!(with_finalizer.metadata.finalizers, Some(vec!["kopf.dev/cleanup".to_owned()]));

    api.patch("ex1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"field": "two"}})))
        .await
        .unwrap();
    assert_eq!(rx.recv().await.as_deref(), Some("apply two"));

    api.delete("ex1", &DeleteParams::default()).await.unwrap();
    assert_eq!(rx.recv().await.as_deref(), Some("cleanup two"));
    while api.get_opt("ex1").await.unwrap().is_some() {
        tokio::task::yield_now().await;
    }
    running.abort();
}

#[tokio::test]
async fn the_events_recorder_posts_events_about_an_object() {
    let server = server();
    let client = client_for(&server).await;
    let target = configmaps(&client).create(&PostParams::default(), &cm("a")).await.unwrap();
    let recorder = Recorder::new(client.clone(), Reporter { controller: "tests".into(), instance: None });
    let event = Event {
        type_: EventType::Normal,
        reason: "Checked".into(),
        note: Some("all good".into()),
        action: "Check".into(),
        secondary: None,
    };
    recorder.publish(&event, &target.object_ref(&())).await.unwrap();
    recorder.publish(&event, &target.object_ref(&())).await.unwrap();
    let events: Vec<K8sEvent> =
        Api::<K8sEvent>::namespaced(client, "default").list(&ListParams::default()).await.unwrap().items;
    assert_eq!(events.len(), 1, "a repeat is folded into a series");
    assert_eq!(events[0].reason.as_deref(), Some("Checked"));
    assert_eq!(events[0].regarding.as_ref().and_then(|r| r.name.as_deref()), Some("a"));
    assert_eq!(events[0].series.as_ref().map(|s| s.count), Some(2));
}
