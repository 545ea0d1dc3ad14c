//! settle() is exact: it waits for the operator's own work at the current instant, however long
//! the chain, and never for what is due later.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::KopfRunner;
use serde_json::json;

use crate::common::*;

#[tokio::test(start_paused = true)]
async fn settle_returns_only_after_the_operator_has_seen_the_echo_of_its_own_patch() {
    let operator = Operator::new().on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move {
        Ok::<_, HandlerError>(json!({"x": 1}))
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let last_rv = runner.server().cluster().resource_version();
    let delivered = runner.server().cluster().journal(|j| {
        j.deliveries()
            .filter(|d| d.event != "OPENED" && d.event != "CLOSED")
            .map(|d| d.resource_version)
            .max()
    });
    assert_eq!(delivered, Some(last_rv), "the last change was delivered to the operator's watch");
    assert_eq!(runner.activity().get(kopf::Counter::AwaitingEcho), 0);
}

#[tokio::test(start_paused = true)]
async fn settle_follows_a_chain_of_a_thousand_dependent_patches() {
    // Each update handler bumps a counter in the spec, which causes the next update.
    let runs = Arc::new(AtomicU32::new(0));
    let seen = runs.clone();
    let operator = Operator::new().on_update(move |ex: Arc<KopfExample>, ctx: Context| {
        let runs = seen.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let n: u32 = ex.spec.field.parse().unwrap_or(0);
            if n < 1000 {
                ctx.patch().set("spec.field", json!((n + 1).to_string()));
            }
            Ok::<_, HandlerError>(())
        }
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "0")).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "1"}})).await;
    runner.settle().await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(ex.spec.field, "1000", "one settle() covers the whole chain");
    assert_eq!(runs.load(Ordering::SeqCst), 1000);
    assert_eq!(runner.elapsed(), Duration::ZERO, "all at t = 0");
}

#[tokio::test(start_paused = true)]
async fn settle_does_not_wait_for_retries_due_later() {
    let operator = Operator::new().on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move {
        Err::<(), _>(HandlerError::temporary("later").with_delay(Duration::from_secs(300)))
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(runner.elapsed(), Duration::ZERO, "the retry in 5 minutes is not waited for");
}
