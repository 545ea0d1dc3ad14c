//! Whole operator stories on `KopfRunner`, shared by the determinism tests and the benchmarks
//! (`cargo run --release -p kopf-bench --bin kopf-runner-bench`), so both measure the same thing.

use std::sync::Arc;
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::{Adapter, Fault, FaultRule, KopfRunner, RandomFaults, Verb};
use serde_json::json;

use crate::kopfexample::{KopfExample, example};

/// A stormy hour: a handler that asks for a retry, a 30-second timer, a scripted 409 and
/// seeded random 503/500s on patches, three creations, an update and a deletion. Returns the
/// timeline: the same for the same seed, run after run.
pub async fn stormy(seed: u64) -> String {
    let operator = Operator::new()
        .on_create(|ex: Arc<KopfExample>, ctx: Context| async move {
            if ctx.retry() < 1 {
                return Err(HandlerError::temporary("warming up").with_delay(Duration::from_secs(5)));
            }
            Ok(json!({"field": ex.spec.field}))
        })
        .id("create_fn")
        .on_update(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("update_fn")
        .on_delete(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("delete_fn")
        .timer(Duration::from_secs(30), |_ex: Arc<KopfExample>, _ctx: Context| async move {
            Ok::<_, HandlerError>(json!({"tick": true}))
        })
        .id("tick");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().seed(seed).start().await;
    runner.fault(FaultRule::new(Fault::conflict()).verb(Verb::Patch).nth(3).once());
    runner.random_faults(
        RandomFaults::new(seed, 0.2, vec![Fault::service_unavailable(), Fault::internal_error()])
            .verb(Verb::Patch),
    );
    for i in 0..3 {
        runner.cluster().create(example(&format!("ex{i}"), "v1")).await;
    }
    runner.advance(Duration::from_secs(60)).await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "v2"}})).await;
    runner.advance(Duration::from_secs(60)).await;
    runner.cluster().delete::<KopfExample>("ex2").await;
    runner.advance(Duration::from_secs(60)).await;
    runner.timeline().to_string()
}

/// One object created, changed and deleted, each step settled, through `adapter`: the handler
/// runs it took (create, update, delete).
pub async fn create_update_delete(adapter: Adapter) -> usize {
    let operator = Operator::new()
        .on_create(|ex: Arc<KopfExample>, _ctx: Context| async move {
            Ok::<_, HandlerError>(json!({"seen": ex.spec.field}))
        })
        .on_update(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .on_delete(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().adapter(adapter).start().await;
    runner.cluster().create(example("ex1", "v1")).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "v2"}})).await;
    runner.settle().await;
    runner.cluster().delete::<KopfExample>("ex1").await;
    runner.settle().await;
    let runs = runner.timeline().of_kind("handler").len();
    runner.stop().await;
    runs
}

/// What the timer of [`timer_day`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerResults {
    /// Nothing: no patch.
    None,
    /// The same small result every run: stored once, then already there.
    Same,
    /// A small result that changes every run: one status patch per run.
    Changing,
}

/// A virtual day of a one-minute timer on `objects` objects, started after they are created and
/// settled. Returns the timer runs counted during the day.
pub async fn timer_day(objects: usize, results: TimerResults) -> usize {
    let runs = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let operator = Operator::new()
        .timer(Duration::from_secs(60), move |_ex: Arc<KopfExample>, _ctx: Context| {
            let run = runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                Ok::<_, HandlerError>(match results {
                    TimerResults::None => None,
                    TimerResults::Same => Some(json!({"ok": 1})),
                    TimerResults::Changing => Some(json!({"run": run})),
                })
            }
        })
        .id("tick");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    for i in 0..objects {
        runner.cluster().create(example(&format!("ex{i}"), "v1")).await;
    }
    runner.settle().await;
    let before = runner.timeline().of_kind("handler").len();
    runner.advance(Duration::from_secs(24 * 3600)).await;
    let runs = runner.timeline().of_kind("handler").len() - before;
    runner.stop().await;
    runs
}
