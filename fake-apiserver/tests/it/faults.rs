//! The fault plan, seen through `kube::Client`: errors with the real Status, Retry-After, latency on
//! virtual time, and watch faults.

use std::time::Duration;

use fake_apiserver::{Fault, FaultRule, RandomFaults, Verb};
use futures::StreamExt;
use kube::api::{Patch, PatchParams, PostParams, WatchParams};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_scripted_conflict_hits_only_the_nth_matching_request() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    server.cluster().faults(|f| {
        f.add(
            FaultRule::new(Fault::conflict())
                .verb(Verb::Patch)
                .resource("configmaps")
                .name("a")
                .nth(2)
                .once(),
        )
    });
    let patch = |v: &str| Patch::Merge(json!({"data": {"k": v}}));
    api.patch("a", &PatchParams::default(), &patch("1")).await.unwrap();
    let (code, reason, message) = api_error(api.patch("a", &PatchParams::default(), &patch("2")).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(message.starts_with("Operation cannot be fulfilled on configmaps \"a\""), "{message}");
    api.patch("a", &PatchParams::default(), &patch("3")).await.unwrap();
    let faulted = server.cluster().journal(|j| j.operations().filter(|o| o.fault.is_some()).count());
    assert_eq!(faulted, 1, "the journal records the injected fault");
}

#[tokio::test]
async fn unauthorized_internal_and_unavailable_faults_carry_their_codes() {
    for (fault, code) in [
        (Fault::unauthorized(), 401),
        (Fault::internal_error(), 500),
        (Fault::service_unavailable(), 503),
        (Fault::gateway_timeout(), 504),
    ] {
        let server = server();
        server.cluster().faults(|f| f.add(FaultRule::new(fault.clone()).verb(Verb::Get)));
        let (got, _, _) = api_error(configmaps(&client_for(&server).await).get("a").await);
        assert_eq!(got, code);
    }
}

#[tokio::test]
async fn too_many_requests_says_when_to_retry() {
    let server = server();
    server.cluster().faults(|f| f.add(FaultRule::new(Fault::too_many_requests(7)).verb(Verb::List).once()));
    let result = configmaps(&client_for(&server).await).list(&Default::default()).await;
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 429);
            assert_eq!(status.details.map(|d| d.retry_after_seconds), Some(7));
        }
        other => panic!("expected 429, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn latency_is_spent_on_virtual_time() {
    let server = server();
    let Some(client) = clock_bound_client(&server) else { return };
    server
        .cluster()
        .faults(|f| f.add(FaultRule::new(Fault::Latency(Duration::from_secs(5))).verb(Verb::Create)));
    let start = tokio::time::Instant::now();
    configmaps(&client).create(&PostParams::default(), &cm("a")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test]
async fn a_watch_gone_fault_starts_the_watch_with_a_410_error() {
    let server = server();
    server.cluster().faults(|f| f.add(FaultRule::new(Fault::watch_gone()).once()));
    let api = configmaps(&client_for(&server).await);
    let events: Vec<u16> = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .map(|e| match e.unwrap() {
            kube::api::WatchEvent::Error(s) => s.code,
            _ => 0,
        })
        .collect()
        .await;
    assert_eq!(events, vec![410]);
}

#[tokio::test]
async fn a_watch_drop_fault_ends_the_stream_after_n_events() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    server.cluster().faults(|f| f.add(FaultRule::new(Fault::watch_drop(2)).once()));
    let n = api.watch(&WatchParams::default(), "0").await.unwrap().count().await;
    assert_eq!(n, 2);
}

#[tokio::test]
async fn seeded_random_faults_repeat_exactly() {
    async fn run(seed: u64) -> Vec<bool> {
        let server = server();
        server.cluster().faults(|f| {
            f.add_random(RandomFaults::new(seed, 0.5, vec![Fault::service_unavailable()]).verb(Verb::Create))
        });
        let api = configmaps(&client_for(&server).await);
        let mut outcomes = Vec::new();
        for i in 0..20 {
            outcomes.push(api.create(&PostParams::default(), &cm(&format!("c{i}"))).await.is_ok());
        }
        outcomes
    }
    let a = run(3).await;
    assert_eq!(a, run(3).await);
    assert!(a.iter().any(|ok| *ok) && a.iter().any(|ok| !ok));
}
