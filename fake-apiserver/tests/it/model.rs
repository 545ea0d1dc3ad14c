//! A robustness test in the style of etcd's: random sequences of creates, updates (fresh and
//! stale), patches and deletes on a few objects, with injected faults, checked against a simple
//! model. Invariants: resourceVersions strictly increase; a watch from the start sees exactly the
//! successful writes, in order, without gaps or duplicates; a watch resumed from any seen
//! resourceVersion sees exactly the later ones; the final state equals the model's.

use std::collections::BTreeMap;

use fake_apiserver::{FakeApiServer, Fault, RandomFaults, Request, Response, Verb, WatchEvent};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use proptest::prelude::*;
use serde_json::json;

use crate::common::client_for;

#[derive(Debug, Clone)]
enum Op {
    Create(usize, u8),
    Update { obj: usize, value: u8, stale: bool },
    Patch(usize, u8),
    Delete(usize),
}

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, any::<u8>()).prop_map(|(o, v)| Op::Create(o, v)),
        (0..3usize, any::<u8>(), any::<bool>()).prop_map(|(obj, value, stale)| Op::Update {
            obj,
            value,
            stale
        }),
        (0..3usize, any::<u8>()).prop_map(|(o, v)| Op::Patch(o, v)),
        (0..3usize).prop_map(Op::Delete),
    ]
}

fn with_value(name: &str, value: u8) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.data = Some([("v".to_owned(), value.to_string())].into());
    c
}

/// One successful write as a watch must report it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Write {
    kind: &'static str,
    name: String,
    rv: u64,
}

async fn watch_from(server: &FakeApiServer, rv: u64) -> fake_apiserver::WatchStream {
    let mut req = Request::new(Verb::Watch, "", "v1", "configmaps").namespace("default");
    req.params.resource_version = Some(rv.to_string());
    match server.cluster().handle(req).await.unwrap() {
        Response::Watch(stream) => stream,
        other => panic!("not a watch: {other:?}"),
    }
}

fn as_write(event: &WatchEvent) -> Write {
    let kind = match event {
        WatchEvent::Added(_) => "ADDED",
        WatchEvent::Modified(_) => "MODIFIED",
        WatchEvent::Deleted(_) => "DELETED",
        other => panic!("unexpected event {other:?}"),
    };
    let object = event.object().unwrap();
    Write { kind, name: object.name().to_owned(), rv: object.resource_version() }
}

async fn drain(stream: &mut fake_apiserver::WatchStream, n: usize) -> Vec<Write> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(as_write(&stream.next().await.expect("the watch stays open")));
    }
    assert!(stream.next().now_or_never().is_none(), "no event beyond the writes (no duplicates)");
    got
}

async fn run(ops: Vec<Op>, seed: u64, resume_at: usize) {
    let server = FakeApiServer::builder().seed(seed).build();
    server.cluster().faults(|f| {
        f.add_random(
            RandomFaults::new(seed, 0.2, vec![Fault::service_unavailable(), Fault::conflict()])
                .verb(Verb::Create),
        );
        f.add_random(RandomFaults::new(seed + 1, 0.2, vec![Fault::internal_error()]).verb(Verb::Patch));
    });
    let api: Api<ConfigMap> = Api::namespaced(client_for(&server).await, "default");
    let start = server.cluster().resource_version();
    let mut from_start = watch_from(&server, start).await;

    let mut model: BTreeMap<String, u8> = BTreeMap::new();
    let mut seen: BTreeMap<String, ConfigMap> = BTreeMap::new(); // the last version each name was read at
    let mut writes: Vec<Write> = Vec::new();
    let mut last_rv = start;
    for op in ops {
        let (name, result, kind) = match &op {
            Op::Create(o, v) => {
                (NAMES[*o], api.create(&PostParams::default(), &with_value(NAMES[*o], *v)).await, "ADDED")
            }
            Op::Update { obj, value, stale } => {
                let name = NAMES[*obj];
                let mut body = seen.get(name).cloned().unwrap_or_else(|| with_value(name, 0));
                if !*stale && let Ok(current) = api.get(name).await {
                    body = current;
                }
                body.data = Some([("v".to_owned(), value.to_string())].into());
                (name, api.replace(name, &PostParams::default(), &body).await, "MODIFIED")
            }
            Op::Patch(o, v) => {
                let patch = Patch::Merge(json!({"data": {"v": v.to_string()}}));
                (NAMES[*o], api.patch(NAMES[*o], &PatchParams::default(), &patch).await, "MODIFIED")
            }
            Op::Delete(o) => {
                let result = api
                    .delete(NAMES[*o], &DeleteParams::default())
                    .await
                    .map(|either| either.left().unwrap_or_default());
                (NAMES[*o], result, "DELETED")
            }
        };
        match result {
            Ok(object) => {
                let rv = server.cluster().resource_version();
                match (&op, kind) {
                    (Op::Delete(_), _) => {
                        model.remove(name);
                        seen.remove(name);
                    }
                    (Op::Create(_, v) | Op::Patch(_, v), _) | (Op::Update { value: v, .. }, _) => {
                        let changed = model.get(name) != Some(v);
                        model.insert(name.to_owned(), *v);
                        seen.insert(name.to_owned(), object.clone());
                        if !changed && kind == "MODIFIED" {
                            assert_eq!(rv, last_rv, "a no-op write must not move the revision");
                            continue;
                        }
                    }
                }
                assert!(rv > last_rv, "resourceVersions strictly increase ({rv} after {last_rv})");
                last_rv = rv;
                writes.push(Write { kind, name: name.to_owned(), rv });
            }
            Err(kube::Error::Api(status)) => {
                let expected = match &op {
                    Op::Create(..) => matches!(status.code, 409 | 503),
                    Op::Update { .. } => matches!(status.code, 404 | 409),
                    Op::Patch(..) => matches!(status.code, 404 | 500),
                    Op::Delete(_) => status.code == 404,
                };
                assert!(expected, "unexpected {} for {op:?}: {}", status.code, status.message);
                assert_eq!(server.cluster().resource_version(), last_rv, "a failed write changes nothing");
            }
            Err(other) => panic!("transport error: {other}"),
        }
    }

    assert_eq!(
        drain(&mut from_start, writes.len()).await,
        writes,
        "the watch from the start is ordered, gap-free, duplicate-free"
    );
    let resume_rv = if writes.is_empty() { start } else { writes[resume_at % writes.len()].rv };
    let later: Vec<Write> = writes.iter().filter(|w| w.rv > resume_rv).cloned().collect();
    let mut resumed = watch_from(&server, resume_rv).await;
    assert_eq!(
        drain(&mut resumed, later.len()).await,
        later,
        "a resumed watch sees exactly the later changes"
    );

    let listed: BTreeMap<String, u8> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| (c.metadata.name.unwrap(), c.data.unwrap()["v"].parse().unwrap()))
        .collect();
    assert_eq!(listed, model, "the final state equals the model's");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_resource_versions_watches_and_state_consistent(
        ops in proptest::collection::vec(op(), 1..40),
        seed in 0u64..1000,
        resume_at in 0usize..100,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops, seed, resume_at));
    }
}
