//! 15 — timers: a handler run periodically for each object while it exists. `interval` is the
//! period; `idle` waits for the object to stay unchanged that long (changes postpone it); `sharp`
//! keeps the runs on the interval grid however long each run takes. Results go to the status.

use std::sync::Arc;
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        // Changes are told from the last handled state (the diff-base annotation), which only
        // changing handlers write; without one, every event — even a timer's own status patch —
        // would count as a change and keep postponing the idle timer (as in Kopf).
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("create_fn")
        .timer(Duration::from_secs(60), |_ex: Arc<KopfExample>, ctx: Context| async move {
            let ticks = ctx.status()["every_minute"]["ticks"].as_u64().unwrap_or(0);
            Ok::<_, HandlerError>(json!({"ticks": ticks + 1}))
        })
        .id("every_minute")
        .sharp()
        .timer(Duration::from_secs(60), |ex: Arc<KopfExample>, _ctx: Context| async move {
            Ok::<_, HandlerError>(json!({"settled_field": ex.spec.field}))
        })
        .id("after_quiet")
        .idle(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn the_sharp_timer_ticks_each_minute_and_the_idle_one_waits_for_quiet() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "one")).await;
        // Changes every 2 minutes for 10 minutes keep the idle timer from firing.
        for field in ["two", "three", "four", "five", "six"] {
            runner.advance(Duration::from_secs(120)).await;
            runner.cluster().patch::<KopfExample>("ex1", serde_json::json!({"spec": {"field": field}})).await;
        }
        runner.settle().await;
        let status = runner.cluster().get::<KopfExample>("ex1").await.status.unwrap().0;
        assert_eq!(status["every_minute"]["ticks"], 11, "at 0 s and every 60 s up to 600 s");
        assert!(status.get("after_quiet").is_none(), "never 5 minutes without a change");
        runner.advance(Duration::from_secs(300)).await;
        let status = runner.cluster().get::<KopfExample>("ex1").await.status.unwrap().0;
        assert_eq!(status["after_quiet"]["settled_field"], "six", "ran after 5 quiet minutes");
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_timers_run_while_the_object_lives() {
        let expect = Expect {
            once: vec!["create_fn"],
            repeated: vec!["every_minute", "after_quiet"],
            linger: Duration::from_secs(600),
            ..Expect::default()
        };
        let report =
            lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect)
                .await;
        assert_eq!(report.runs("every_minute", "default/e2e").successes, 11);
        assert_eq!(
            report.runs("after_quiet", "default/e2e").successes,
            6,
            "at 300 s, then every 60 s up to 600 s (its own status patches are not changes)"
        );
    }
}
