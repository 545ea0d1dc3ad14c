//! 04 — events: Kubernetes Events about the object, posted by kopf — explicitly with
//! [`Context::event`], and from the handler's logger (info, warning, error) as Kopf does, so
//! `kubectl describe` shows what the operator did. Log lines become Events only with
//! `settings.posting.loggers` on (off by default since Kopf 1.45); this example turns it on.

use std::sync::Arc;

use kopf::{Context, HandlerError, Operator};

use crate::kopfexample::KopfExample;

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.event("Normal", "SomeReason", "Some message");
            ctx.event("Warning", "SomeReason", "Some warning");
            ctx.info("An informational message from the handler");
            ctx.warning("A warning from the handler");
            ctx.error("An error from the handler, which does not fail it");
            Ok::<_, HandlerError>(())
        })
        .id("create_fn")
        .settings(|s| s.posting.loggers = true)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Event;
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn explicit_events_and_logged_messages_are_posted_about_the_object() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "x")).await;
        runner.settle().await;
        let mut events: Vec<(String, String, String)> = runner
            .cluster()
            .list::<Event>()
            .await
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("ex1"))
            .map(|e| {
                (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.message.unwrap_or_default())
            })
            .collect();
        events.sort();
        let expected = [
            ("Error", "Logging", "An error from the handler, which does not fail it"),
            ("Normal", "Logging", "An informational message from the handler"),
            ("Normal", "Logging", "Creation is processed: 1 succeeded; 0 failed."),
            ("Normal", "Logging", "Handler 'create_fn' succeeded."),
            ("Normal", "SomeReason", "Some message"),
            ("Warning", "Logging", "A warning from the handler"),
            ("Warning", "SomeReason", "Some warning"),
        ];
        let expected: Vec<(String, String, String)> =
            expected.iter().map(|(t, r, m)| ((*t).to_owned(), (*r).to_owned(), (*m).to_owned())).collect();
        assert_eq!(events, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_the_handler_runs_once() {
        let expect = Expect { once: vec!["create_fn"], ..Expect::default() };
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect).await;
    }
}
