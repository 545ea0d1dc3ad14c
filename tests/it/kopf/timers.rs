//! Timers on virtual time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::KopfRunner;
use serde_json::json;

use crate::common::*;

fn timer_operator(interval: Duration) -> (Operator, Arc<AtomicU32>) {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    let operator = Operator::new()
        .timer(interval, move |_ex: Arc<KopfExample>, _ctx: Context| {
            let runs = seen.clone();
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                Ok::<_, HandlerError>(json!({"runs": n}))
            }
        })
        .id("tick");
    (operator, runs)
}

#[tokio::test(start_paused = true)]
async fn a_sixty_second_timer_runs_once_at_creation_and_sixty_times_in_an_hour() {
    let (operator, runs) = timer_operator(Duration::from_secs(60));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the first run is at t = 0");
    runner.advance(Duration::from_secs(3600)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 61, "then at 60 s … 3600 s");
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["tick"]["runs"], 61, "each run stored its result");
    assert_eq!(
        ex.metadata.finalizers,
        Some(vec!["kopf.zalando.org/KopfFinalizerMarker".to_owned()]),
        "timers hold a finalizer"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timer_stops_when_its_object_is_deleted_and_releases_the_finalizer() {
    let (operator, runs) = timer_operator(Duration::from_secs(10));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(30)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    runner.cluster().delete::<KopfExample>("ex1").await;
    runner.settle().await;
    assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_none());
    runner.advance(Duration::from_secs(60)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4, "no runs after deletion");
}

#[tokio::test(start_paused = true)]
async fn a_sharp_timer_keeps_to_its_grid_even_when_the_handler_takes_time() {
    let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = runs.clone();
    let start = tokio::time::Instant::now();
    let operator = Operator::new()
        .timer(Duration::from_secs(10), move |_ex: Arc<KopfExample>, _ctx: Context| {
            let runs = seen.clone();
            async move {
                runs.lock().unwrap().push(start.elapsed().as_secs());
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok::<_, HandlerError>(())
            }
        })
        .sharp();
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.advance(Duration::from_secs(45)).await;
    assert_eq!(*runs.lock().unwrap(), vec![0, 10, 20, 30, 40]);
}

#[tokio::test(start_paused = true)]
async fn an_idle_timer_does_not_fire_while_the_object_keeps_changing() {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    let operator = Operator::new()
        .timer(Duration::from_secs(10), move |_ex: Arc<KopfExample>, _ctx: Context| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, HandlerError>(()) }
        })
        .id("quiet")
        .idle(Duration::from_secs(60))
        // As in Kopf, the idle time resets on a non-empty diff against the stored diff-base, which
        // only changing handlers keep: without one, every event would count as a change.
        .on_update(|_ex: Arc<KopfExample>, _ctx: Context| async { Ok::<_, HandlerError>(()) });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v0")).await;
    for i in 1..=10 {
        runner.advance(Duration::from_secs(30)).await;
        runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": format!("v{i}")}})).await;
    }
    runner.settle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "a change every 30 s keeps a 60 s idle timer quiet");
    // A status-only change is not essential: it does not reset the idle time.
    runner.advance(Duration::from_secs(30)).await;
    runner.cluster().patch_status::<KopfExample>("ex1", json!({"status": {"note": "x"}})).await;
    runner.advance(Duration::from_secs(29)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    runner.advance(Duration::from_secs(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "60 s after the last essential change");
    runner.advance(Duration::from_secs(10)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "then every 10 s while idle");
}
