//! 03 — exceptions: what a handler's error means. A permanent error fails the handler for good;
//! a temporary one is retried after its delay; any other error is retried with the handler's
//! backoff until its `retries` run out — or fails at once with `errors(ErrorsMode::Permanent)`.

use std::sync::Arc;
use std::time::Duration;

use kopf::{Context, ErrorsMode, HandlerError, Operator};

use crate::kopfexample::KopfExample;

/// An error of the operator's own, neither temporary nor permanent.
#[derive(Debug, thiserror::Error)]
#[error("an error that is supposed to be recoverable")]
pub struct MyError;

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move {
            Err::<(), _>(HandlerError::permanent("fail once and for all"))
        })
        .id("instant_failure_with_only_a_message")
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move {
            if ctx.retry() < 3 {
                return Err(
                    HandlerError::temporary("expected recoverable error").with_delay(Duration::from_secs(1))
                );
            }
            Ok(())
        })
        .id("eventual_success_with_a_few_messages")
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move { Err::<(), _>(MyError) })
        .id("eventual_failure_with_tracebacks")
        .retries(3)
        .backoff(Duration::from_secs(1))
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move { Err::<(), _>(MyError) })
        .id("instant_failure_with_traceback")
        .errors(ErrorsMode::Permanent)
        .backoff(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use kopf_testing::{KopfRunner, Runs};

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn each_kind_of_error_is_retried_or_not_as_its_kind_says() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "x")).await;
        runner.advance(Duration::from_secs(60)).await;
        let report = runner.report();
        let runs = |id| report.runs(id, "default/ex1");
        assert_eq!(runs("instant_failure_with_only_a_message"), Runs { permanent: 1, ..Runs::default() });
        assert_eq!(
            runs("eventual_success_with_a_few_messages"),
            Runs { successes: 1, temporary: 3, permanent: 0 }
        );
        assert_eq!(
            runs("eventual_failure_with_tracebacks"),
            Runs { temporary: 2, permanent: 1, ..Runs::default() }
        );
        assert_eq!(runs("instant_failure_with_traceback"), Runs { permanent: 1, ..Runs::default() });
        let retried: Vec<_> = runner
            .timeline()
            .of_kind("handler")
            .into_iter()
            .filter(|e| e.text.starts_with("eventual_success"))
            .map(|e| e.at.as_secs())
            .collect();
        assert_eq!(retried, [0, 1, 2, 3], "a retry a second after each temporary error");
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_only_the_failing_handlers_fail() {
        let expect = Expect {
            once: vec!["eventual_success_with_a_few_messages"],
            failing: vec![
                "eventual_success_with_a_few_messages",
                "instant_failure_with_only_a_message",
                "eventual_failure_with_tracebacks",
                "instant_failure_with_traceback",
            ],
            linger: Duration::from_secs(60),
            ..Expect::default()
        };
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect).await;
    }
}
