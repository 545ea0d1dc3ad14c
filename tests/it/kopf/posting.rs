//! Kubernetes Events as Kopf posts them, and settings that change what the operator does.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kopf::{Context, HandlerError, Level, Operator};
use kopf_testing::KopfRunner;

use crate::common::*;

fn posting_operator() -> Operator {
    Operator::new().on_create(|_ex: Arc<KopfExample>, ctx: Context| async move {
        ctx.event("Normal", "Created", "explicit event");
        ctx.info("a log line");
        Ok::<_, HandlerError>(())
    })
}

#[tokio::test(start_paused = true)]
async fn handler_events_are_posted_as_kopf_posts_them_and_log_lines_only_when_enabled() {
    let runner = KopfRunner::new(posting_operator()).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let events: Vec<Event> = runner.cluster().list().await;
    assert_eq!(events.len(), 1, "log lines are not posted by default (posting.loggers = false)");
    let e = &events[0];
    assert_eq!(
        (e.type_.as_deref(), e.reason.as_deref(), e.message.as_deref()),
        (Some("Normal"), Some("Created"), Some("explicit event"))
    );
    assert_eq!(e.involved_object.name.as_deref(), Some("ex1"));
    assert_eq!(e.reporting_component.as_deref(), Some("kopf"));
    assert!(e.metadata.name.as_deref().is_some_and(|n| n.starts_with("kopf-event-")));
    assert_eq!(
        e.first_timestamp.as_ref().map(|t| t.0.to_string()),
        Some("2026-01-01T00:00:00Z".to_owned()),
        "timestamps from the virtual clock"
    );

    let runner = KopfRunner::new(posting_operator())
        .with_crd::<KopfExample>()
        .settings(|s| s.posting.loggers = true)
        .start()
        .await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let events: Vec<Event> = runner.cluster().list().await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("Logging") && e.message.as_deref() == Some("a log line"))
    );

    let runner = KopfRunner::new(posting_operator())
        .with_crd::<KopfExample>()
        .settings(|s| {
            s.posting.loggers = true;
            s.posting.level = Level::Warning;
        })
        .start()
        .await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let events: Vec<Event> = runner.cluster().list().await;
    assert!(!events.iter().any(|e| e.reason.as_deref() == Some("Logging")), "below posting.level");

    let runner = KopfRunner::new(posting_operator())
        .with_crd::<KopfExample>()
        .settings(|s| s.posting.enabled = false)
        .start()
        .await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert!(runner.cluster().list::<Event>().await.is_empty(), "posting disabled");
}

#[tokio::test(start_paused = true)]
async fn execution_default_backoff_sets_the_retry_delay_of_arbitrary_errors() {
    let operator = Operator::new().on_create(|_ex: Arc<KopfExample>, ctx: Context| async move {
        if ctx.retry() == 0 { Err(HandlerError::other("once".into())) } else { Ok(()) }
    });
    let runner = KopfRunner::new(operator)
        .with_crd::<KopfExample>()
        .settings(|s| s.execution.default_backoff = Duration::from_secs(7))
        .start()
        .await;
    runner.cluster().create(example("ex1", "v")).await;
    runner
        .wait_for(
            |c| {
                c.peek::<KopfExample>("ex1").is_some_and(|ex| {
                    annotations(&ex).contains_key("kopf.zalando.org/last-handled-configuration")
                })
            },
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(runner.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn persistence_identity_changes_the_annotation_prefix_and_the_finalizer() {
    let operator = Operator::new()
        .on_delete(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) });
    let runner = KopfRunner::new(operator)
        .with_crd::<KopfExample>()
        .settings(|s| *s = std::mem::take(s).with_identity("my-op.example.com"))
        .start()
        .await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(ex.metadata.finalizers, Some(vec!["my-op.example.com/KopfFinalizerMarker".to_owned()]));
    let annotations = annotations(&ex);
    assert!(annotations.contains_key("my-op.example.com/last-handled-configuration"));
    assert_eq!(annotations.get("my-op.example.com/kopf-managed").map(String::as_str), Some("yes"));
}

#[tokio::test(start_paused = true)]
async fn persistence_consistency_timeout_zero_skips_waiting_for_the_echo() {
    let operator = Operator::new()
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) });
    let runner = KopfRunner::new(operator)
        .with_crd::<KopfExample>()
        .settings(|s| s.persistence.consistency_timeout = Duration::ZERO)
        .start()
        .await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(runner.activity().get(kopf::Counter::AwaitingEcho), 0);
}

#[tokio::test(start_paused = true)]
async fn networking_error_backoffs_pace_request_retries() {
    let operator = Operator::new().on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move {
        Ok::<_, HandlerError>(serde_json::json!({"ok": 1}))
    });
    let runner = KopfRunner::new(operator)
        .with_crd::<KopfExample>()
        .settings(|s| s.networking.error_backoffs = vec![Duration::from_secs(4)])
        .start()
        .await;
    runner.fault(
        kopf_testing::FaultRule::new(kopf_testing::Fault::service_unavailable())
            .verb(kopf_testing::Verb::Patch)
            .once(),
    );
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(runner.elapsed(), Duration::from_secs(4), "one retry after the configured 4 s");
}

#[tokio::test(start_paused = true)]
async fn watching_server_timeout_is_sent_and_the_watch_resumes_after_it() {
    let operator = Operator::new()
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) });
    let runner = KopfRunner::new(operator)
        .with_crd::<KopfExample>()
        .settings(|s| s.watching.server_timeout = Some(Duration::from_secs(30)))
        .start()
        .await;
    runner.advance(Duration::from_secs(100)).await;
    let watches = runner.server().cluster().journal(|j| {
        j.operations()
            .filter(|o| o.verb == kopf_testing::Verb::Watch && o.resource.starts_with("kopfexamples"))
            .count()
    });
    assert_eq!(watches, 4, "a new watch every 30 s (+0.1 s reconnect backoff): at 0, ~30, ~60, ~90");
}

#[tokio::test(start_paused = true)]
async fn queueing_worker_limit_still_processes_every_object() {
    let operator = Operator::new().on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move {
        Ok::<_, HandlerError>(serde_json::json!({"ok": 1}))
    });
    let runner = KopfRunner::new(operator)
        .with_crd::<KopfExample>()
        .settings(|s| s.queueing.worker_limit = Some(1))
        .start()
        .await;
    for i in 0..5 {
        runner.cluster().create(example(&format!("ex{i}"), "v")).await;
    }
    runner.settle().await;
    for i in 0..5 {
        let ex: KopfExample = runner.cluster().get(&format!("ex{i}")).await;
        assert_eq!(
            status(&ex)["create_fn"]["ok"].as_i64().or_else(|| status(&ex)
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|v| v["ok"].as_i64())),
            Some(1)
        );
    }
}
