//! The same seed and inputs give the same timeline, faults included.

use std::collections::BTreeSet;
use std::sync::Arc;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::KopfRunner;
use serde_json::json;

use crate::common::*;

#[tokio::test(start_paused = true)]
async fn a_scenario_with_faults_gives_one_identical_timeline_run_after_run() {
    let mut timelines = BTreeSet::new();
    for _ in 0..25 {
        timelines.insert(kopf_examples::stories::stormy(7).await);
    }
    assert_eq!(timelines.len(), 1, "distinct timelines for one seed");
    let timeline = timelines.into_iter().next().unwrap();
    assert!(timeline.contains("api-error"), "faults fired:\n{timeline}");
    assert!(timeline.contains("tick"), "the timer ran:\n{timeline}");
    assert_ne!(kopf_examples::stories::stormy(8).await, timeline, "another seed, another history");
}

#[tokio::test(start_paused = true)]
async fn the_timeline_of_a_create_update_delete_story_matches_its_snapshot() {
    let operator = Operator::new()
        .on_create(|ex: Arc<KopfExample>, _ctx: Context| async move {
            Ok::<_, HandlerError>(json!({"seen": ex.spec.field}))
        })
        .id("create_fn")
        .on_update(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("update_fn")
        .on_delete(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("delete_fn");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().seed(3).start().await;
    runner.cluster().create(example("ex1", "v1")).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "v2"}})).await;
    runner.settle().await;
    runner.cluster().delete::<KopfExample>("ex1").await;
    runner.settle().await;
    insta::assert_snapshot!(runner.timeline().to_string());
}
