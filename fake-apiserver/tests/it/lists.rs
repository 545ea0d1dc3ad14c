//! R8–R10: pagination from one consistent snapshot, resourceVersion match rules, label and field
//! selectors.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, VersionMatch};
use serde_json::json;

use crate::common::*;

async fn five(api: &Api<ConfigMap>) {
    for name in ["a", "b", "c", "d", "e"] {
        api.create(&PostParams::default(), &labelled(name, &[("n", name)])).await.unwrap();
    }
}

fn names(list: &kube::api::ObjectList<ConfigMap>) -> Vec<String> {
    list.items.iter().map(|c| c.metadata.name.clone().unwrap()).collect()
}

#[tokio::test]
async fn limit_and_continue_page_through_one_consistent_snapshot() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    five(&api).await;
    let page1 = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&page1), vec!["a", "b"]);
    assert_eq!(page1.metadata.remaining_item_count, Some(3));
    let token = page1.metadata.continue_.clone().expect("a continue token");

    // Changes after the first page do not leak into later pages.
    api.delete("c", &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &cm("bb")).await.unwrap();
    api.patch("d", &PatchParams::default(), &Patch::Merge(json!({"data": {"key": "changed"}})))
        .await
        .unwrap();

    let page2 = api.list(&ListParams::default().limit(2).continue_token(&token)).await.unwrap();
    assert_eq!(names(&page2), vec!["c", "d"]);
    assert_eq!(page2.items[1].data.as_ref().unwrap()["key"], "value", "the snapshot's version of d");
    assert_eq!(page2.metadata.resource_version, page1.metadata.resource_version);
    let page3 = api
        .list(&ListParams::default().limit(2).continue_token(page2.metadata.continue_.as_deref().unwrap()))
        .await
        .unwrap();
    assert_eq!(names(&page3), vec!["e"]);
    assert_eq!(page3.metadata.continue_, None);
}

#[tokio::test]
async fn an_expired_continue_token_is_410_gone() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    five(&api).await;
    let page1 = api.list(&ListParams::default().limit(2)).await.unwrap();
    api.create(&PostParams::default(), &cm("f")).await.unwrap();
    server.cluster().compact();
    let (code, reason, _) = api_error(
        api.list(
            &ListParams::default().limit(2).continue_token(page1.metadata.continue_.as_deref().unwrap()),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn list_at_an_exact_resource_version_reads_the_past() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let then = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    let past = api.list(&ListParams::default().at(&then).matching(VersionMatch::Exact)).await.unwrap();
    assert_eq!(names(&past), vec!["a"]);
    assert_eq!(past.metadata.resource_version.as_deref(), Some(then.as_str()));
    let now = api.list(&ListParams::default().at(&then).matching(VersionMatch::NotOlderThan)).await.unwrap();
    assert_eq!(names(&now), vec!["a", "b"]);
    let (code, _, message) =
        api_error(api.list(&ListParams::default().at("999999").matching(VersionMatch::NotOlderThan)).await);
    assert_eq!(code, 504, "{message}");
}

#[tokio::test]
async fn label_selectors_support_the_full_syntax() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &labelled("a", &[("env", "prod"), ("tier", "web")])).await.unwrap();
    api.create(&PostParams::default(), &labelled("b", &[("env", "dev"), ("tier", "web")])).await.unwrap();
    api.create(&PostParams::default(), &labelled("c", &[("env", "qa")])).await.unwrap();
    api.create(&PostParams::default(), &cm("d")).await.unwrap();
    let select = |s: &str| {
        let api = api.clone();
        let s = s.to_owned();
        async move { names(&api.list(&ListParams::default().labels(&s)).await.unwrap()) }
    };
    assert_eq!(select("env=prod").await, vec!["a"]);
    assert_eq!(select("env==prod").await, vec!["a"]);
    assert_eq!(select("env!=prod").await, vec!["b", "c", "d"], "!= matches objects without the label too");
    assert_eq!(select("env in (prod, dev)").await, vec!["a", "b"]);
    assert_eq!(select("env notin (prod,dev)").await, vec!["c", "d"]);
    assert_eq!(select("tier").await, vec!["a", "b"]);
    assert_eq!(select("!tier").await, vec!["c", "d"]);
    assert_eq!(select("tier,env=dev").await, vec!["b"]);
    let (code, reason, _) = api_error(api.list(&ListParams::default().labels("env in prod")).await);
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn field_selectors_filter_on_known_fields_and_reject_unknown_ones() {
    let server = server();
    let client = client_for(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (name, node) in [("p1", "n1"), ("p2", "n2")] {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}})).unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let on_n1 = pods.list(&ListParams::default().fields("spec.nodeName=n1")).await.unwrap();
    assert_eq!(on_n1.items.len(), 1);
    let not_p1 = pods.list(&ListParams::default().fields("metadata.name!=p1")).await.unwrap();
    assert_eq!(not_p1.items[0].metadata.name.as_deref(), Some("p2"));
    let (code, _, message) =
        api_error(configmaps(&client).list(&ListParams::default().fields("data.key=x")).await);
    assert_eq!(code, 400, "unknown fields are rejected, never ignored: {message}");
}

#[tokio::test]
async fn a_cluster_wide_list_spans_namespaces_in_key_order() {
    let server = server();
    let client = client_for(&server).await;
    Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &cm("z"))
        .await
        .unwrap();
    configmaps(&client).create(&PostParams::default(), &cm("y")).await.unwrap();
    let all = Api::<ConfigMap>::all(client).list(&ListParams::default()).await.unwrap();
    let keys: Vec<(String, String)> = all
        .items
        .iter()
        .map(|c| (c.metadata.namespace.clone().unwrap(), c.metadata.name.clone().unwrap()))
        .collect();
    assert_eq!(keys, vec![("default".into(), "y".into()), ("kube-system".into(), "z".into())]);
}
