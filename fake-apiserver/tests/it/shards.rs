//! Sharded list and watch (Kubernetes 1.36, KEP-5866): `shardSelector` on lists, watches
//! (initial events and resumes included) and deletecollection; `metadata.shardInfo` on sharded
//! lists; 400 for malformed selectors; the parameter ignored with the feature gate off.
//!
//! kube's `ListParams`/`WatchParams` have no field for the parameter, so these tests add it to the
//! request kube builds, as a kube-based client must.

use std::collections::BTreeSet;

use fake_apiserver::{FakeApiServer, ShardSelector, fnv1a_64};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, ObjectList, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::Request;
use serde_json::json;

use crate::common::*;

const LOWER: &str = "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')";
const UPPER: &str = "shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')";
const PATH: &str = "/api/v1/namespaces/default/configmaps";

/// Appends `shardSelector` to a request kube built.
fn sharded(mut req: http::Request<Vec<u8>>, selector: &str) -> http::Request<Vec<u8>> {
    let encoded: String = form_urlencoded::byte_serialize(selector.as_bytes()).collect();
    let uri = req.uri().to_string();
    let joined = if uri.contains('?') {
        format!("{uri}&shardSelector={encoded}")
    } else {
        format!("{uri}?shardSelector={encoded}")
    };
    *req.uri_mut() = joined.parse().expect("a valid uri");
    req
}

async fn list(
    client: &kube::Client,
    params: &ListParams,
    selector: &str,
) -> Result<ObjectList<ConfigMap>, kube::Error> {
    let req = Request::new(PATH).list(params).expect("a list request");
    client.request(sharded(req, selector)).await
}

async fn watch(
    client: &kube::Client,
    params: &WatchParams,
    from: &str,
    selector: &str,
) -> Result<futures::stream::BoxStream<'static, Result<WatchEvent<ConfigMap>, kube::Error>>, kube::Error> {
    let req = Request::new(PATH).watch(params, from).expect("a watch request");
    Ok(client.request_events::<ConfigMap>(sharded(req, selector)).await?.boxed())
}

fn uid_hash(cm: &ConfigMap) -> u64 {
    fnv1a_64(cm.metadata.uid.as_deref().expect("a uid").as_bytes())
}

fn names(list: &ObjectList<ConfigMap>) -> BTreeSet<String> {
    list.items.iter().map(|c| c.metadata.name.clone().unwrap()).collect()
}

async fn create_many(api: &Api<ConfigMap>, n: usize) -> Vec<ConfigMap> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(api.create(&PostParams::default(), &cm(&format!("cm{i:03}"))).await.unwrap());
    }
    out
}

fn event_name(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(c) => format!("ADDED {}", c.metadata.name.as_deref().unwrap_or_default()),
        WatchEvent::Modified(c) => format!("MODIFIED {}", c.metadata.name.as_deref().unwrap_or_default()),
        WatchEvent::Deleted(c) => format!("DELETED {}", c.metadata.name.as_deref().unwrap_or_default()),
        WatchEvent::Bookmark(_) => "BOOKMARK".to_owned(),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

#[tokio::test]
async fn a_sharded_list_has_exactly_the_objects_whose_uid_hash_is_in_range_and_says_so_in_shard_info() {
    let server = server();
    let client = client_for(&server).await;
    let all = create_many(&configmaps(&client), 40).await;
    let lower = list(&client, &ListParams::default(), LOWER).await.unwrap();
    let upper = list(&client, &ListParams::default(), UPPER).await.unwrap();
    let expected_lower: BTreeSet<String> =
        all.iter().filter(|c| uid_hash(c) < 1 << 63).map(|c| c.metadata.name.clone().unwrap()).collect();
    assert_eq!(names(&lower), expected_lower);
    assert!(names(&lower).is_disjoint(&names(&upper)));
    assert_eq!(names(&lower).len() + names(&upper).len(), 40, "the halves cover everything");
    assert!(!expected_lower.is_empty() && expected_lower.len() < 40, "both halves are used with 40 uids");
    assert_eq!(lower.metadata.shard_info.as_ref().map(|s| s.selector.as_str()), Some(LOWER));
    assert_eq!(upper.metadata.shard_info.as_ref().map(|s| s.selector.as_str()), Some(UPPER));
    let unsharded = configmaps(&client).list(&ListParams::default()).await.unwrap();
    assert_eq!(unsharded.metadata.shard_info, None, "only sharded lists carry shardInfo");
    assert_eq!(unsharded.items.len(), 40);
}

#[tokio::test]
async fn ranges_joined_by_or_select_their_union_and_shard_info_echoes_the_canonical_form() {
    let server = server();
    let client = client_for(&server).await;
    let all = create_many(&configmaps(&client), 30).await;
    let quarters = [(0u128, 1u128 << 62), (2 << 62, 3 << 62)];
    let text = "(shardRange(object.metadata.uid,'0x0000000000000000','0x4000000000000000'))||shardRange( object.metadata.uid , \"0x8000000000000000\" , '0xc000000000000000' )";
    let got = list(&client, &ListParams::default(), text).await.unwrap();
    let expected: BTreeSet<String> = all
        .iter()
        .filter(|c| {
            quarters.iter().any(|(s, e)| *s <= u128::from(uid_hash(c)) && u128::from(uid_hash(c)) < *e)
        })
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names(&got), expected);
    assert_eq!(
        got.metadata.shard_info.map(|s| s.selector),
        Some(
            "shardRange(object.metadata.uid, '0x0000000000000000', '0x4000000000000000') || \
             shardRange(object.metadata.uid, '0x8000000000000000', '0xc000000000000000')"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn sharding_by_namespace_keeps_each_namespace_whole_in_one_shard() {
    let server = server();
    let client = client_for(&server).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut names_of_ns = Vec::new();
    for i in 0..8 {
        let name = format!("team-{i}");
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        namespaces.create(&PostParams::default(), &ns).await.unwrap();
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
        for j in 0..3 {
            api.create(&PostParams::default(), &cm(&format!("cm{j}"))).await.unwrap();
        }
        names_of_ns.push(name);
    }
    let selector = "shardRange(object.metadata.namespace, '0x0000000000000000', '0x8000000000000000')";
    let req = Request::new("/api/v1/configmaps").list(&ListParams::default()).unwrap();
    let got: ObjectList<ConfigMap> = client.request(sharded(req, selector)).await.unwrap();
    let mut per_ns = std::collections::BTreeMap::<String, usize>::new();
    for c in &got.items {
        *per_ns.entry(c.metadata.namespace.clone().unwrap()).or_default() += 1;
    }
    let expected: Vec<&String> = names_of_ns.iter().filter(|ns| fnv1a_64(ns.as_bytes()) < 1 << 63).collect();
    assert_eq!(per_ns.keys().collect::<Vec<_>>(), expected);
    assert!(per_ns.values().all(|n| *n == 3), "whole namespaces: {per_ns:?}");
}

#[tokio::test]
async fn malformed_shard_selectors_are_400_bad_request_on_list_and_watch() {
    let server = server();
    let client = client_for(&server).await;
    let cases = [
        (
            "shardRange(object.metadata.uid, '0x0', '0x8000000000000000')",
            "hexStart must be a 0x-prefixed 16-digit hex value",
        ),
        (
            "shardRange(object.metadata.uid, '0x0000000000000000', '0x80000000000000g0')",
            "hexEnd: invalid hex character \"g\"",
        ),
        (
            "shardRange(object.metadata.name, '0x0000000000000000', '0x8000000000000000')",
            "unsupported field path \"object.metadata.name\"",
        ),
        (
            "shardRange(object.metadata.uid, '0x8000000000000000', '0x0000000000000000')",
            "must be less than end",
        ),
        (
            "shardRange(object.metadata.uid, '0x8000000000000000', '0x8000000000000000')",
            "must be less than end",
        ),
        ("labels.app == 'x'", "CEL parse error"),
        ("  ", "empty shard selector is not allowed"),
    ];
    for (selector, reason) in cases {
        let (code, status, message) = api_error(list(&client, &ListParams::default(), selector).await);
        assert_eq!((code, status.as_str()), (400, "BadRequest"), "{selector}: {message}");
        assert!(
            message.starts_with("invalid shard selector: ") && message.contains(reason),
            "{selector}: {message}"
        );
        let (code, _, message) =
            api_error(watch(&client, &WatchParams::default(), "0", selector).await.map(|_| ()));
        assert_eq!(code, 400, "watch {selector}: {message}");
    }
}

#[tokio::test]
async fn an_empty_shard_selector_parameter_is_no_selector() {
    let server = server();
    let client = client_for(&server).await;
    create_many(&configmaps(&client), 5).await;
    let got = list(&client, &ListParams::default(), "").await.unwrap();
    assert_eq!(got.items.len(), 5);
    assert_eq!(got.metadata.shard_info, None);
}

#[tokio::test]
async fn paged_sharded_lists_carry_shard_info_on_every_page_and_page_through_the_shard_only() {
    let server = server();
    let client = client_for(&server).await;
    let all = create_many(&configmaps(&client), 40).await;
    let mut seen = BTreeSet::new();
    let mut params = ListParams::default().limit(4);
    loop {
        let page = list(&client, &params, UPPER).await.unwrap();
        assert_eq!(page.metadata.shard_info.as_ref().map(|s| s.selector.as_str()), Some(UPPER));
        assert_eq!(page.metadata.remaining_item_count, None, "no count for a filtered list");
        seen.extend(names(&page));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => {
                params = ListParams::default().limit(4).continue_token(&token)
            }
            _ => break,
        }
    }
    let expected: BTreeSet<String> =
        all.iter().filter(|c| uid_hash(c) >= 1 << 63).map(|c| c.metadata.name.clone().unwrap()).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_sharded_watch_from_a_resource_version_gets_only_the_changes_of_its_shard() {
    let server = server();
    let client = client_for(&server).await;
    let api = configmaps(&client);
    let start = server.cluster().resource_version().to_string();
    let all = create_many(&api, 12).await;
    for c in &all {
        let name = c.metadata.name.as_deref().unwrap();
        api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.unwrap();
    }
    let (lower, upper): (Vec<&ConfigMap>, Vec<&ConfigMap>) = all.iter().partition(|c| uid_hash(c) < 1 << 63);
    for (selector, mine) in [(LOWER, &lower), (UPPER, &upper)] {
        let stream = watch(&client, &WatchParams::default(), &start, selector).await.unwrap();
        let got: Vec<String> = stream.take(mine.len() * 2).map(|e| event_name(&e.unwrap())).collect().await;
        let mut expected: Vec<String> =
            mine.iter().map(|c| format!("ADDED {}", c.metadata.name.as_deref().unwrap())).collect();
        expected.extend(mine.iter().map(|c| format!("MODIFIED {}", c.metadata.name.as_deref().unwrap())));
        assert_eq!(got, expected, "{selector}");
    }
}

#[tokio::test]
async fn a_sharded_watch_sees_live_changes_of_its_shard_only() {
    let server = server();
    let client = client_for(&server).await;
    let api = configmaps(&client);
    let from = server.cluster().resource_version().to_string();
    let mut stream = watch(&client, &WatchParams::default(), &from, LOWER).await.unwrap();
    let all = create_many(&api, 16).await;
    for c in all.iter().rev() {
        api.delete(c.metadata.name.as_deref().unwrap(), &Default::default()).await.unwrap();
    }
    let mine: Vec<&ConfigMap> = all.iter().filter(|c| uid_hash(c) < 1 << 63).collect();
    let mut expected: Vec<String> =
        mine.iter().map(|c| format!("ADDED {}", c.metadata.name.as_deref().unwrap())).collect();
    expected.extend(mine.iter().rev().map(|c| format!("DELETED {}", c.metadata.name.as_deref().unwrap())));
    let got: Vec<String> =
        (&mut stream).take(expected.len()).map(|e| event_name(&e.unwrap())).collect().await;
    assert_eq!(got, expected);
}

#[tokio::test]
async fn the_initial_events_of_a_sharded_watch_are_the_shard_then_the_bookmark() {
    let server = server();
    let client = client_for(&server).await;
    let all = create_many(&configmaps(&client), 10).await;
    let mine: Vec<String> = all
        .iter()
        .filter(|c| uid_hash(c) >= 1 << 63)
        .map(|c| format!("ADDED {}", c.metadata.name.as_deref().unwrap()))
        .collect();
    // sendInitialEvents=true with the bookmark that ends them.
    let stream = watch(&client, &WatchParams::default().initial_events(), "", UPPER).await.unwrap();
    let got: Vec<String> = stream.take(mine.len() + 1).map(|e| event_name(&e.unwrap())).collect().await;
    let mut expected = mine.clone();
    expected.push("BOOKMARK".to_owned());
    assert_eq!(got, expected);
    // The legacy form: resourceVersion 0 starts with the current state.
    let stream = watch(&client, &WatchParams::default(), "0", UPPER).await.unwrap();
    let got: Vec<String> = stream.take(mine.len()).map(|e| event_name(&e.unwrap())).collect().await;
    assert_eq!(got, mine);
}

#[tokio::test]
async fn deletecollection_with_a_shard_selector_deletes_only_the_shard() {
    let server = server();
    let client = client_for(&server).await;
    let all = create_many(&configmaps(&client), 20).await;
    let req = Request::new(PATH).delete_collection(&Default::default(), &ListParams::default()).unwrap();
    let _: serde_json::Value = client.request(sharded(req, LOWER)).await.unwrap();
    let left = configmaps(&client).list(&ListParams::default()).await.unwrap();
    let expected: BTreeSet<String> =
        all.iter().filter(|c| uid_hash(c) >= 1 << 63).map(|c| c.metadata.name.clone().unwrap()).collect();
    assert_eq!(names(&left), expected);
}

#[tokio::test]
async fn without_the_feature_gate_the_shard_selector_is_ignored_even_when_malformed() {
    let server = FakeApiServer::builder().seed(1).sharded_list_and_watch(false).build();
    let client = client_for(&server).await;
    let api = configmaps(&client);
    let from = server.cluster().resource_version().to_string();
    let all = create_many(&api, 10).await;
    for selector in [LOWER, "shardRange(object.metadata.uid, '0x0', 'nonsense')"] {
        let got = list(&client, &ListParams::default(), selector).await.unwrap();
        assert_eq!(got.items.len(), 10, "{selector}");
        assert_eq!(got.metadata.shard_info, None, "an ignored selector is not echoed");
        let stream = watch(&client, &WatchParams::default(), &from, selector).await.unwrap();
        let got: Vec<String> = stream.take(10).map(|e| event_name(&e.unwrap())).collect().await;
        let expected: Vec<String> =
            all.iter().map(|c| format!("ADDED {}", c.metadata.name.as_deref().unwrap())).collect();
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn the_shard_info_selector_parses_back_to_the_requested_selector() {
    let server = server();
    let client = client_for(&server).await;
    create_many(&configmaps(&client), 3).await;
    let text = "shardRange(object.metadata.uid,'0x1234567890abcdef','0x10000000000000000')";
    let got = list(&client, &ListParams::default(), text).await.unwrap();
    let echoed = got.metadata.shard_info.expect("shardInfo").selector;
    assert_eq!(ShardSelector::parse(&echoed).unwrap(), ShardSelector::parse(text).unwrap());
}
