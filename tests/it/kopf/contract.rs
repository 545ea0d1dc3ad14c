//! One contract for both `ApiClient` implementations — the direct adapter over the fake's core and
//! `KubeApiClient` over its tower Service — faults included.

use std::sync::Arc;

use fake_apiserver::{FakeApiServer, Fault, FaultRule, Verb};
use futures::StreamExt;
use kopf::{ApiClient, ApiError, PatchBody, RawEvent, Resource, Selectors, Shard};
use kopf_testing::DirectApiClient;
use serde_json::json;

fn clients(server: &FakeApiServer) -> Vec<(&'static str, Arc<dyn ApiClient>)> {
    vec![
        ("direct", Arc::new(DirectApiClient::new(server.cluster().clone()))),
        ("kube", Arc::new(kopf::KubeApiClient::new(server.client()))),
    ]
}

async fn configmaps(client: &dyn ApiClient) -> Resource {
    let all = client.discover().await.unwrap();
    all.into_iter()
        .find(|r| r.plural == "configmaps" && r.group.is_empty())
        .expect("configmaps are discovered")
}

#[tokio::test]
async fn both_adapters_discover_resources_with_short_names_preference_and_status_subresources() {
    let server = FakeApiServer::new();
    for (name, client) in clients(&server) {
        let all = client.discover().await.unwrap();
        let pods = all
            .iter()
            .find(|r| r.plural == "pods" && r.group.is_empty())
            .unwrap_or_else(|| panic!("{name}: pods"));
        assert!(
            pods.namespaced && pods.status_subresource && pods.preferred && pods.short_names == vec!["po"],
            "{name}: {pods:?}"
        );
        let hpa: Vec<&Resource> = all.iter().filter(|r| r.plural == "horizontalpodautoscalers").collect();
        assert_eq!(
            hpa.iter().filter(|r| r.preferred).map(|r| r.version.as_str()).collect::<Vec<_>>(),
            vec!["v2"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn both_adapters_create_get_patch_list_and_delete_alike() {
    let server = FakeApiServer::new();
    for (name, client) in clients(&server) {
        let cms = configmaps(client.as_ref()).await;
        let cm_name = format!("cm-{name}");
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm_name}, "data": {"a": "1"}});
        let created = client.create(&cms, Some("default"), &body).await.unwrap();
        assert_eq!(created["metadata"]["name"], cm_name.as_str());
        let patched = client
            .patch(&cms, Some("default"), &cm_name, &PatchBody::Merge(json!({"data": {"b": "2"}})), None)
            .await
            .unwrap();
        assert_eq!(patched["data"], json!({"a": "1", "b": "2"}));
        let ops = json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "nope"}, {"op": "remove", "path": "/data/a"}]);
        let conflict = client.patch(&cms, Some("default"), &cm_name, &PatchBody::Json(ops), None).await;
        assert!(
            matches!(conflict, Err(ApiError::Unprocessable(_))),
            "{name}: a failed test is 422: {conflict:?}"
        );
        let got = client.get(&cms, Some("default"), &cm_name).await.unwrap();
        assert_eq!(got["data"]["a"], "1");
        let list = client.list(&cms, Some("default"), &Selectors::default()).await.unwrap();
        assert!(
            list.items.iter().any(|i| i["metadata"]["name"] == cm_name.as_str() && i["kind"] == "ConfigMap"),
            "{name}"
        );
        client.delete(&cms, Some("default"), &cm_name).await.unwrap();
        assert!(
            matches!(client.get(&cms, Some("default"), &cm_name).await, Err(ApiError::NotFound(_))),
            "{name}"
        );
    }
}

#[tokio::test]
async fn both_adapters_watch_from_a_resource_version_and_report_410() {
    let server = FakeApiServer::new();
    for (name, client) in clients(&server) {
        let cms = configmaps(client.as_ref()).await;
        let start = client.list(&cms, Some("default"), &Selectors::default()).await.unwrap().resource_version;
        let body =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("w-{name}")}});
        client.create(&cms, Some("default"), &body).await.unwrap();
        let mut stream =
            client.watch(&cms, Some("default"), &start, None, &Selectors::default()).await.unwrap();
        match stream.next().await {
            Some(Ok(RawEvent::Added(o))) => assert_eq!(o["metadata"]["name"], format!("w-{name}")),
            other => panic!("{name}: expected ADDED, got {other:?}"),
        }
        server.cluster().compact();
        let mut old = client.watch(&cms, Some("default"), "1", None, &Selectors::default()).await.unwrap();
        match old.next().await {
            Some(Ok(RawEvent::Error { code: 410, .. })) => {}
            other => panic!("{name}: expected a 410 ERROR event, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn both_adapters_see_the_same_injected_faults_with_the_same_error_kinds() {
    let server = FakeApiServer::new();
    for (name, client) in clients(&server) {
        let cms = configmaps(client.as_ref()).await;
        for (fault, check) in [
            (Fault::conflict(), (|e: &ApiError| matches!(e, ApiError::Conflict(_))) as fn(&ApiError) -> bool),
            (Fault::too_many_requests(3), |e| {
                matches!(e, ApiError::TooManyRequests { retry_after: Some(3), .. })
            }),
            (Fault::service_unavailable(), |e| matches!(e, ApiError::Server { code: 503, .. })),
            (Fault::unauthorized(), |e| matches!(e, ApiError::Unauthorized(_))),
        ] {
            server.cluster().faults(|p| p.add(FaultRule::new(fault.clone()).verb(Verb::Get).once()));
            let err = client.get(&cms, Some("default"), "missing").await.unwrap_err();
            assert!(check(&err), "{name}: {fault:?} gave {err:?}");
        }
    }
}

#[tokio::test]
async fn both_adapters_pass_the_shard_selector_to_lists_and_watches_and_report_shard_info() {
    for gate in [true, false] {
        let server = FakeApiServer::builder().sharded_list_and_watch(gate).build();
        for (name, client) in clients(&server) {
            let cms = configmaps(client.as_ref()).await;
            let start =
                client.list(&cms, Some("default"), &Selectors::default()).await.unwrap().resource_version;
            let mut uids = Vec::new();
            for i in 0..16 {
                let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("s-{name}-{i}")}});
                let created = client.create(&cms, Some("default"), &body).await.unwrap();
                uids.push(created["metadata"]["uid"].as_str().unwrap().to_owned());
            }
            let shard = Shard::new(1, 2).unwrap();
            let mut selectors = Selectors::default();
            selectors.shard = Some(shard.selector());
            let mine: Vec<&String> = uids.iter().filter(|u| !gate || shard.owns(u)).collect();
            let list = client.list(&cms, Some("default"), &selectors).await.unwrap();
            let listed: std::collections::BTreeSet<String> = list
                .items
                .iter()
                .filter(|i| i["metadata"]["name"].as_str().unwrap().starts_with(&format!("s-{name}-")))
                .map(|i| i["metadata"]["uid"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(listed, mine.iter().map(|u| (*u).clone()).collect(), "{name}, gate {gate}");
            assert_eq!(list.shard_info, gate.then(|| shard.selector()), "{name}, gate {gate}");
            let stream = client.watch(&cms, Some("default"), &start, None, &selectors).await.unwrap();
            let watched: Vec<String> = stream
                .take(mine.len())
                .map(|e| match e {
                    Ok(RawEvent::Added(o)) => o["metadata"]["uid"].as_str().unwrap().to_owned(),
                    other => panic!("{name}: expected ADDED, got {other:?}"),
                })
                .collect()
                .await;
            assert_eq!(watched.iter().collect::<Vec<_>>(), mine, "{name}, gate {gate}");
        }
    }
}
