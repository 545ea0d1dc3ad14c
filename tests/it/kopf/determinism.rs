//! The same seed and inputs give the same timeline, faults included.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::{Fault, FaultRule, KopfRunner, RandomFaults, Verb};
use serde_json::json;

use crate::common::*;

/// A scenario with retries, a timer, random faults, an update and a deletion.
pub(super) async fn scenario(seed: u64) -> String {
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

#[tokio::test(start_paused = true)]
async fn a_scenario_with_faults_gives_one_identical_timeline_run_after_run() {
    let mut timelines = BTreeSet::new();
    for _ in 0..25 {
        timelines.insert(scenario(7).await);
    }
    assert_eq!(timelines.len(), 1, "distinct timelines for one seed");
    let timeline = timelines.into_iter().next().unwrap();
    assert!(timeline.contains("api-error"), "faults fired:\n{timeline}");
    assert!(timeline.contains("tick"), "the timer ran:\n{timeline}");
    assert_ne!(scenario(8).await, timeline, "another seed, another history");
}
