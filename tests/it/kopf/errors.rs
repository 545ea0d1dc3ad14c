//! Errors, retries and limits, on virtual time (Kopf's `execution` semantics).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kopf::{Context, ErrorsMode, HandlerError, Operator};
use kopf_testing::KopfRunner;

use crate::common::*;

/// A create handler that fails `failures` times with `error`, then succeeds; counts its runs.
fn flaky(failures: u32, error: fn() -> HandlerError) -> (Operator, Arc<AtomicU32>) {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    let operator = Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let runs = seen.clone();
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                if n < failures { Err(error()) } else { Ok(()) }
            }
        })
        .id("flaky");
    (operator, runs)
}

fn boom() -> HandlerError {
    HandlerError::other("boom".into())
}

#[tokio::test(start_paused = true)]
async fn a_handler_failing_twice_then_succeeding_runs_three_times_with_the_default_backoff() {
    let (operator, runs) = flaky(2, boom);
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let ex: KopfExample = runner.cluster().get("ex1").await;
    let record = annotations(&ex)["kopf.zalando.org/flaky"].clone();
    assert_eq!(
        record,
        r#"{"started":"2026-01-01T00:00:00.000000+00:00","delayed":"2026-01-01T00:01:00.000000+00:00","purpose":"create","retries":1,"success":false,"failure":false,"message":"boom"}"#
    );
    runner.advance(Duration::from_secs(59)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the backoff (60 s) is respected");
    runner.advance(Duration::from_secs(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    runner.advance(Duration::from_secs(60)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    runner.advance(Duration::from_secs(3600)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3, "a success is never re-run");
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert!(!annotations(&ex).contains_key("kopf.zalando.org/flaky"), "progress purged after success");
}

#[tokio::test(start_paused = true)]
async fn a_temporary_error_with_a_ten_minute_delay_succeeds_on_the_third_attempt_at_twenty_minutes() {
    let (operator, runs) =
        flaky(2, || HandlerError::temporary("not yet").with_delay(Duration::from_secs(600)));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let started = runner.elapsed();
    runner
        .wait_for(
            |c| {
                c.peek::<KopfExample>("ex1").is_some_and(|ex| {
                    annotations(&ex).contains_key("kopf.zalando.org/last-handled-configuration")
                })
            },
            Duration::from_secs(3600),
        )
        .await
        .expect("the handler eventually succeeds");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(runner.elapsed() - started, Duration::from_secs(1200), "exactly t = 20 min");
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_stops_retries_and_records_the_failure() {
    let (operator, runs) = flaky(10, || HandlerError::permanent("invalid spec"));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(3600)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let failures = runner
        .timeline()
        .of_kind("handler")
        .iter()
        .filter(|e| e.text.contains("permanent: invalid spec"))
        .count();
    assert_eq!(failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_retries_limit_fails_the_handler_for_good_on_the_last_allowed_attempt() {
    let (operator, runs) = flaky(100, boom);
    let operator = operator.retries(3).backoff(Duration::from_secs(1));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(60)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "three attempts, the third fails for good (Kopf's look-ahead)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fails_the_handler_once_its_runtime_would_pass_the_limit() {
    let (operator, runs) = flaky(100, boom);
    let operator = operator.timeout(Duration::from_secs(30)).backoff(Duration::from_secs(10));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(600)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3, "attempts at 0, 10 and 20 s; the next would pass 30 s");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_retried_like_a_failing_one() {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    let operator = Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let runs = seen.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("kaboom");
                }
                Ok::<_, HandlerError>(())
            }
        })
        .backoff(Duration::from_secs(5));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(5)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let outcomes: Vec<String> = runner.timeline().of_kind("handler").into_iter().map(|e| e.text).collect();
    assert!(outcomes[0].contains("temporary(5s): the handler panicked: kaboom"), "{outcomes:?}");
    assert!(outcomes[1].ends_with("success"), "{outcomes:?}");
}

#[tokio::test(start_paused = true)]
async fn errors_mode_ignored_treats_an_error_as_success_and_permanent_as_failure() {
    let (operator, runs) = flaky(100, boom);
    let runner =
        KopfRunner::new(operator.errors(ErrorsMode::Ignored)).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(600)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert!(
        annotations(&ex).contains_key("kopf.zalando.org/last-handled-configuration"),
        "the cause completed"
    );

    let (operator, runs) = flaky(100, boom);
    let runner =
        KopfRunner::new(operator.errors(ErrorsMode::Permanent)).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(600)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_blocking_handler_runs_on_the_blocking_pool_and_settle_waits_for_it_without_moving_the_clock() {
    let operator = Operator::new()
        .on_create(kopf::blocking(|_ex: Arc<KopfExample>, _ctx: Context| {
            #[allow(clippy::disallowed_methods)] // wall time on purpose: a real blocking job
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok::<_, HandlerError>(serde_json::json!({"done": true}))
        }))
        .id("slow");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    let before = runner.elapsed();
    runner.settle().await;
    assert_eq!(runner.elapsed(), before, "virtual time did not move");
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["slow"]["done"], true, "settle returned only after the result was stored");
}
