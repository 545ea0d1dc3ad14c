//! Daemons on virtual time: loops, stops, cancellation, abandonment, restarts, filters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::{KopfRunner, Runner};
use serde_json::json;

use crate::common::*;

fn counter() -> (Arc<AtomicU32>, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    (count.clone(), count)
}

fn daemon_steps(runner: &Runner) -> Vec<String> {
    runner
        .timeline()
        .of_kind("daemon")
        .into_iter()
        .map(|e| format!("{}s {}", e.at.as_secs(), e.text))
        .collect()
}

/// Deletes the object and returns how long (virtual) it took to be gone.
async fn delete_and_time_release(runner: &Runner, name: &str) -> Duration {
    let before = runner.elapsed();
    runner.cluster().delete::<KopfExample>(name).await;
    runner
        .wait_for(|c| c.peek::<KopfExample>(name).is_none(), Duration::from_secs(3600))
        .await
        .expect("the object is released");
    runner.elapsed() - before
}

#[tokio::test(start_paused = true)]
async fn a_daemon_looping_on_ten_seconds_runs_at_zero_and_360_more_times_in_an_hour() {
    let (loops, seen) = counter();
    let operator = Operator::new().daemon(move |_ex: Arc<KopfExample>, ctx: Context| {
        let loops = seen.clone();
        async move {
            loop {
                loops.fetch_add(1, Ordering::SeqCst);
                if ctx.stopped().wait(Duration::from_secs(10)).await {
                    return Ok::<_, HandlerError>(());
                }
            }
        }
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(loops.load(Ordering::SeqCst), 1, "the body ran at t = 0");
    runner.advance(Duration::from_secs(3600)).await;
    assert_eq!(loops.load(Ordering::SeqCst), 361, "then at 10 s … 3600 s");
}

#[tokio::test(start_paused = true)]
async fn a_deleted_objects_daemon_is_stopped_and_then_the_finalizer_is_released() {
    let operator = Operator::new()
        .daemon(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.stopped().until_set().await;
            Ok::<_, HandlerError>(json!({"stopped": ctx.stopped().reason().map(|r| r.as_str())}))
        })
        .id("watcher");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(ex.metadata.finalizers, Some(vec!["kopf.zalando.org/KopfFinalizerMarker".to_owned()]));
    assert_eq!(delete_and_time_release(&runner, "ex1").await, Duration::ZERO);
    assert_eq!(
        daemon_steps(&runner),
        vec!["0s watcher default/ex1 stopping", "0s watcher default/ex1 exited"]
    );
    let handled: Vec<String> = runner.timeline().of_kind("handler").into_iter().map(|e| e.text).collect();
    assert_eq!(handled, vec!["watcher default/ex1 attempt=1 success"]);
}

#[tokio::test(start_paused = true)]
async fn an_async_daemon_ignoring_its_stop_is_cancelled_after_the_cancellation_backoff() {
    let operator = Operator::new()
        .daemon(|_ex: Arc<KopfExample>, ctx: Context| async move {
            loop {
                ctx.sleep(Duration::from_secs(1)).await; // deaf to the stop flag
            }
            #[allow(unreachable_code)]
            Ok::<_, HandlerError>(())
        })
        .id("deaf")
        .cancellation_backoff(Duration::from_secs(5));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(100)).await;
    assert_eq!(delete_and_time_release(&runner, "ex1").await, Duration::from_secs(5));
    assert_eq!(
        daemon_steps(&runner),
        vec!["100s deaf default/ex1 stopping", "105s deaf default/ex1 cancelled"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_blocking_daemon_ignoring_its_stop_is_abandoned_after_the_cancellation_timeout() {
    let operator = Operator::new()
        .daemon(kopf::blocking(|_ex: Arc<KopfExample>, ctx: Context| {
            // Deaf to the stop flag; ends by itself after ~10 minutes (on the wall clock once
            // abandoned), so the thread does not outlive the test binary for long.
            for _ in 0..600 {
                ctx.sleep_blocking(Duration::from_secs(1));
            }
            Ok::<_, HandlerError>(())
        }))
        .id("stubborn")
        .cancellation_timeout(Duration::from_secs(30));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(60)).await;
    assert_eq!(delete_and_time_release(&runner, "ex1").await, Duration::from_secs(30));
    assert_eq!(
        daemon_steps(&runner),
        vec!["60s stubborn default/ex1 stopping", "90s stubborn default/ex1 abandoned"]
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_polling_reports_a_blocking_daemon_until_it_exits() {
    let operator = Operator::new()
        .daemon(kopf::blocking(|_ex: Arc<KopfExample>, ctx: Context| {
            while !ctx.stopped().wait_blocking(Duration::from_secs(60)) {}
            ctx.sleep_blocking(Duration::from_secs(25)); // a slow cleanup
            Ok::<_, HandlerError>(())
        }))
        .id("slow")
        .cancellation_polling(Duration::from_secs(10));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(delete_and_time_release(&runner, "ex1").await, Duration::from_secs(25));
    assert_eq!(
        daemon_steps(&runner),
        vec![
            "0s slow default/ex1 stopping",
            "10s slow default/ex1 still running",
            "20s slow default/ex1 still running",
            "25s slow default/ex1 exited"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_blocking_daemon_loops_on_the_operator_clock() {
    let (loops, seen) = counter();
    let operator = Operator::new().daemon(kopf::blocking(move |_ex: Arc<KopfExample>, ctx: Context| {
        loop {
            seen.fetch_add(1, Ordering::SeqCst);
            if ctx.stopped().wait_blocking(Duration::from_secs(60)) {
                return Ok::<_, HandlerError>(());
            }
        }
    }));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(loops.load(Ordering::SeqCst), 1);
    runner.advance(Duration::from_secs(600)).await;
    assert_eq!(loops.load(Ordering::SeqCst), 11, "at 0 s, then every 60 s up to 600 s");
    assert_eq!(delete_and_time_release(&runner, "ex1").await, Duration::ZERO, "it exits at once on a stop");
}

#[tokio::test(start_paused = true)]
async fn a_failing_daemon_is_restarted_after_its_backoff() {
    let (attempts, seen) = counter();
    let operator = Operator::new()
        .daemon(move |_ex: Arc<KopfExample>, ctx: Context| {
            let attempts = seen.clone();
            async move {
                if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                    return Err(HandlerError::other("not yet".into()));
                }
                ctx.stopped().until_set().await;
                Ok::<_, HandlerError>(())
            }
        })
        .id("flaky")
        .backoff(Duration::from_secs(30));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(29)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    runner.advance(Duration::from_secs(1)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "the second attempt at 30 s");
    runner.advance(Duration::from_secs(30)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "the third at 60 s, which stays");
    runner.advance(Duration::from_secs(600)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_daemon_stops_when_its_filter_stops_matching_and_starts_again_when_it_matches() {
    let (starts, seen) = counter();
    let operator = Operator::new()
        .daemon(move |_ex: Arc<KopfExample>, ctx: Context| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move {
                ctx.stopped().until_set().await;
                Ok::<_, HandlerError>(())
            }
        })
        .id("labelled")
        .labels("run", "yes");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    let mut ex = example("ex1", "v");
    ex.metadata.labels = Some([("run".to_owned(), "yes".to_owned())].into());
    runner.cluster().create(ex).await;
    runner.settle().await;
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    runner.cluster().patch::<KopfExample>("ex1", json!({"metadata": {"labels": {"run": "no"}}})).await;
    runner.settle().await;
    assert_eq!(
        daemon_steps(&runner),
        vec!["0s labelled default/ex1 stopping", "0s labelled default/ex1 exited"]
    );
    runner.cluster().patch::<KopfExample>("ex1", json!({"metadata": {"labels": {"run": "yes"}}})).await;
    runner.settle().await;
    assert_eq!(starts.load(Ordering::SeqCst), 2, "started again once matching");
}

#[tokio::test(start_paused = true)]
async fn a_daemon_that_returns_is_not_started_again_for_that_object() {
    let (starts, seen) = counter();
    let operator = Operator::new()
        .daemon(move |_ex: Arc<KopfExample>, _ctx: Context| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, HandlerError>(json!({"done": true})) }
        })
        .id("once");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "changed"}})).await;
    runner.advance(Duration::from_secs(600)).await;
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["once"]["done"], true, "its result is stored");
    assert_eq!(daemon_steps(&runner), vec!["0s once default/ex1 exited"]);
}

#[tokio::test(start_paused = true)]
async fn a_daemon_reports_progress_with_apply_patch_while_it_runs() {
    let operator = Operator::new().daemon(|_ex: Arc<KopfExample>, ctx: Context| async move {
        let mut beats = 0;
        while !ctx.stopped().wait(Duration::from_secs(60)).await {
            beats += 1;
            ctx.patch().merge(json!({"status": {"beats": beats}}));
            ctx.apply_patch().await.map_err(|e| HandlerError::other(Box::new(e)))?;
        }
        Ok::<_, HandlerError>(())
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(300)).await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["beats"], 5, "at 60 s … 300 s");
}

#[tokio::test(start_paused = true)]
async fn a_restarted_operator_stops_its_daemons_and_starts_them_again() {
    let (starts, seen) = counter();
    let operator = Operator::new()
        .daemon(move |_ex: Arc<KopfExample>, ctx: Context| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move {
                ctx.stopped().until_set().await;
                Ok::<_, HandlerError>(json!({"reason": ctx.stopped().reason().map(|r| r.as_str())}))
            }
        })
        .id("d");
    let mut runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    runner.restart().await;
    runner.settle().await;
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["d"]["reason"], "OPERATOR_EXITING", "{}", runner.timeline());
}
