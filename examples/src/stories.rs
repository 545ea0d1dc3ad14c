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

/// What [`busy_hour`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyHour {
    /// Runs of the timers.
    pub timer_runs: u64,
    /// Patches the daemons applied.
    pub daemon_patches: u64,
    /// Changes the fake stored in the hour (its resourceVersion's growth): daemon patches, and the
    /// timers' result once (a result that changes nothing is not sent again).
    pub changes: u64,
}

/// An hour of `objects` objects, each with a daemon that patches a counter into its status every
/// 60 s and a 60 s timer that returns a small result (stored in status); without journal and
/// timeline, as a long benchmark runs.
pub async fn busy_hour(objects: usize) -> BusyHour {
    use std::sync::atomic::{AtomicU64, Ordering};
    let (timer_runs, daemon_patches) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (t, d) = (timer_runs.clone(), daemon_patches.clone());
    let operator = Operator::new()
        .daemon(move |_ex: Arc<KopfExample>, ctx: Context| {
            let d = d.clone();
            async move {
                let mut count = 0u64;
                while !ctx.stopped().wait(Duration::from_secs(60)).await {
                    count += 1;
                    ctx.patch().merge(json!({"status": {"counter": count}}));
                    if ctx.apply_patch().await.is_ok() {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok::<_, HandlerError>(())
            }
        })
        .id("counter")
        .timer(Duration::from_secs(60), move |_ex: Arc<KopfExample>, _ctx: Context| {
            t.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, HandlerError>(json!({"ok": true})) }
        })
        .id("tick");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().journal(0).timeline(false).start().await;
    for i in 0..objects {
        runner.cluster().create(example(&format!("ex{i:05}"), "v1")).await;
    }
    runner.settle().await;
    let before = runner.server().cluster().resource_version();
    runner.advance(Duration::from_secs(3600)).await;
    let changes = runner.server().cluster().resource_version() - before;
    runner.stop().await;
    BusyHour {
        timer_runs: timer_runs.load(Ordering::Relaxed),
        daemon_patches: daemon_patches.load(Ordering::Relaxed),
        changes,
    }
}
