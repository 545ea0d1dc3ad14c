//! API faults: conflicts, throttling, dropped and expired watches, crashes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::{Fault, FaultRule, KopfRunner, Verb};
use serde_json::json;

use crate::common::*;

fn counting_create() -> (Operator, Arc<AtomicU32>) {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    let operator = Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let runs = seen.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(json!({"ok": true}))
            }
        })
        .id("create_fn");
    (operator, runs)
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_the_progress_patch_is_retried_and_nothing_is_lost() {
    let (operator, runs) = counting_create();
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.fault(
        FaultRule::new(Fault::conflict()).verb(Verb::Patch).resource("kopfexamples").name("ex1").once(),
    );
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(120)).await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["create_fn"]["ok"], true);
    assert!(annotations(&ex).contains_key("kopf.zalando.org/last-handled-configuration"));
    assert!(runs.load(Ordering::SeqCst) >= 1);
    assert_eq!(runner.timeline().of_kind("api-error").len(), 1, "{}", runner.timeline());
}

#[tokio::test(start_paused = true)]
async fn too_many_requests_waits_the_longer_of_backoff_and_retry_after() {
    let (operator, _) = counting_create();
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner
        .fault(FaultRule::new(Fault::too_many_requests(7)).verb(Verb::Patch).resource("kopfexamples").once());
    runner.cluster().create(example("ex1", "v")).await;
    let before = runner.elapsed();
    runner.settle().await;
    assert_eq!(
        runner.elapsed() - before,
        Duration::from_secs(7),
        "max(1 s backoff, Retry-After 7 s), waited by the request retry"
    );
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["create_fn"]["ok"], true);
}

#[tokio::test(start_paused = true)]
async fn retry_after_shorter_than_the_backoff_is_waited_exactly_only_when_enforced() {
    for (enforce, waited) in [(false, 10), (true, 3)] {
        let (operator, _) = counting_create();
        let runner = KopfRunner::new(operator)
            .with_crd::<KopfExample>()
            .settings(move |s| {
                s.networking.error_backoffs = vec![Duration::from_secs(10)];
                s.networking.enforce_retry_after = enforce;
            })
            .start()
            .await;
        runner.fault(
            FaultRule::new(Fault::too_many_requests(3)).verb(Verb::Patch).resource("kopfexamples").once(),
        );
        runner.cluster().create(example("ex1", "v")).await;
        let before = runner.elapsed();
        runner.settle().await;
        assert_eq!(runner.elapsed() - before, Duration::from_secs(waited), "enforce_retry_after={enforce}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_change_made_while_the_watch_is_down_is_handled_after_the_relist() {
    let (operator, runs) = counting_create();
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    // The watch ends; the object is created while it is down; the resumed watch gets 410 Gone;
    // the relist must find the object.
    runner.server().cluster().drop_watches();
    runner.fault(FaultRule::new(Fault::watch_gone()).verb(Verb::Watch).resource("kopfexamples").once());
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(120)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let lists = runner.server().cluster().journal(|j| {
        j.operations().filter(|o| o.verb == Verb::List && o.resource.starts_with("kopfexamples")).count()
    });
    assert_eq!(lists, 2, "listed at start and again after the 410");
    assert!(
        runner.timeline().of_kind("api-error").iter().any(|e| e.text.contains("ERROR 410")),
        "{}",
        runner.timeline()
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_mid_handler_reruns_only_the_unfinished_handler() {
    let first = Arc::new(AtomicU32::new(0));
    let second = Arc::new(AtomicU32::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (f, s, g) = (first.clone(), second.clone(), gate.clone());
    let operator = Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let f = f.clone();
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(())
            }
        })
        .id("first")
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let (s, g, started_tx) = (s.clone(), g.clone(), started_tx.clone());
            async move {
                if s.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = started_tx.send(());
                    g.notified().await; // hangs until the crash
                }
                Ok::<_, HandlerError>(())
            }
        })
        .id("second");
    let mut runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    started.recv().await.expect("the second handler starts"); // waits for the condition, no sleep
    assert_eq!(
        (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
        (1, 1),
        "crash while `second` runs"
    );
    runner.crash().await;
    runner.settle().await;
    assert_eq!(
        (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
        (1, 2),
        "only `second` runs again"
    );
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert!(annotations(&ex).contains_key("kopf.zalando.org/last-handled-configuration"));
}
