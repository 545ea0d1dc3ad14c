//! 09 — testing: how an operator is tested with [`KopfRunner`](kopf_testing::KopfRunner) — the
//! operator is [`crate::kopfexample`]'s; the tests below are the example. Each runs the whole
//! operator against a fresh fake cluster on virtual time: no cluster, no sleeps, the same result
//! every run. They show settling, letting time pass, a restart between steps, a crash in the
//! middle of a handler, and faults injected into the API.

pub use crate::kopfexample::operator;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kopf_testing::{Fault, FaultRule, KopfRunner, Verb};
    use serde_json::json;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::{KopfExample, example};

    fn status(ex: &KopfExample) -> serde_json::Value {
        serde_json::Value::Object(ex.status.clone().unwrap_or_default().0)
    }

    #[tokio::test(start_paused = true)]
    async fn settle_waits_for_every_handler_without_moving_the_clock() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "world")).await;
        runner.settle().await;
        assert_eq!(runner.elapsed(), Duration::ZERO);
        assert_eq!(status(&runner.cluster().get("ex1").await)["create_fn"]["message"], "hello, world");
    }

    #[tokio::test(start_paused = true)]
    async fn a_day_of_heartbeats_passes_in_milliseconds() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "world")).await;
        runner.advance(Duration::from_secs(24 * 3600)).await;
        assert_eq!(status(&runner.cluster().get("ex1").await)["heartbeat"]["beats"], 24 * 60 + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_between_changes_re_runs_nothing_already_done() {
        let mut runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "world")).await;
        runner.settle().await;
        runner.restart().await;
        runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "again"}})).await;
        runner.settle().await;
        let report = runner.report();
        assert_eq!(report.runs("create_fn", "default/ex1").successes, 1);
        assert_eq!(report.runs("update_fn", "default/ex1").successes, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn conflicts_and_outages_of_the_api_are_retried_until_the_work_is_done() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.fault(FaultRule::new(Fault::conflict()).verb(Verb::Patch).nth(1).once());
        runner.fault(FaultRule::new(Fault::service_unavailable()).verb(Verb::Patch).nth(3).once());
        runner.cluster().create(example("ex1", "world")).await;
        runner.advance(Duration::from_secs(30)).await;
        let ex = runner.cluster().get::<KopfExample>("ex1").await;
        assert_eq!(status(&ex)["create_fn"]["message"], "hello, world");
        assert_eq!(status(&ex)["field"]["seen"], "world");
        assert!(runner.report().failures().is_empty(), "API faults are not handler failures");
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_each_handler_once_and_the_heartbeat_repeatedly() {
        let expect = Expect {
            once: vec!["create_fn", "field_fn/spec.field", "delete_fn"],
            repeated: vec!["heartbeat"],
            linger: Duration::from_secs(300),
            ..Expect::default()
        };
        let report =
            lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect)
                .await;
        assert_eq!(report.runs("heartbeat", "default/e2e").successes, 6, "at 0 s and every minute to 300 s");
    }
}
