//! 14 — daemons: a task per object for as long as the object exists — started when it appears
//! (or at start-up), stopped when it is deleted (kopf's finalizer keeps the object until the
//! daemon has exited) or when the operator stops. An async daemon counts in the status every
//! 10 s; a blocking one (a thread of its own) polls its stop flag between steps.

use std::sync::Arc;
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// How often the async daemon reports.
pub const PERIOD: Duration = Duration::from_secs(10);

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .daemon(|_ex: Arc<KopfExample>, ctx: Context| async move {
            let mut count = 0_u64;
            loop {
                count += 1;
                ctx.patch().merge(json!({"status": {"monitor": {"count": count}}}));
                ctx.apply_patch().await?;
                if ctx.stopped().wait(PERIOD).await {
                    ctx.info(format!("stopping: {:?}", ctx.stopped().reason()));
                    return Ok::<_, HandlerError>(());
                }
            }
        })
        .id("monitor")
        .daemon(kopf::blocking(|_ex: Arc<KopfExample>, ctx: Context| {
            while !ctx.stopped().is_set() {
                ctx.sleep_blocking(Duration::from_secs(30));
            }
            Ok::<_, HandlerError>(())
        }))
        .id("background_thread")
        .cancellation_timeout(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn the_daemon_reports_every_period_and_both_stop_when_the_object_is_deleted() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "x")).await;
        runner.advance(Duration::from_secs(60)).await;
        let ex: KopfExample = runner.cluster().get("ex1").await;
        assert_eq!(ex.status.unwrap().0["monitor"]["count"], 7, "at 0 s and every 10 s up to 60 s");
        assert!(ex.metadata.finalizers.is_some_and(|f| !f.is_empty()), "daemons hold the object");

        runner.cluster().delete::<KopfExample>("ex1").await;
        runner.settle().await;
        assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_none(), "released once both exited");
        let daemons: Vec<String> = runner.timeline().of_kind("daemon").into_iter().map(|e| e.text).collect();
        assert!(daemons.iter().any(|d| d.starts_with("monitor default/ex1")), "{daemons:?}");
        assert!(daemons.iter().any(|d| d.starts_with("background_thread default/ex1")), "{daemons:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_each_daemon_exits_once() {
        let expect = Expect {
            once: vec!["monitor", "background_thread"],
            linger: Duration::from_secs(25),
            ..Expect::default()
        };
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect).await;
    }
}
