//! Compatibility with Python Kopf's storage: objects half-handled by Kopf are finished by kopf-rs,
//! what kopf-rs writes is byte-identical to what Kopf writes, and garbage is survived.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::KopfRunner;
use serde_json::json;

use crate::common::*;

fn two_handlers(first: &Arc<AtomicU32>, second: &Arc<AtomicU32>) -> Operator {
    let (f, s) = (first.clone(), second.clone());
    Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let f = f.clone();
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(json!({"message": "first"}))
            }
        })
        .id("create_fn_1")
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let s = s.clone();
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(json!({"message": "second"}))
            }
        })
        .id("create_fn_2")
}

#[tokio::test(start_paused = true)]
async fn an_object_half_handled_by_kopf_is_finished_without_rerunning_the_done_handler() {
    // As Kopf 1.45 leaves it: handler 1 succeeded, handler 2 failed once and waits for a retry.
    let mut ex = example("ex1", "value");
    ex.metadata.annotations = Some(
        [
            (
                "kopf.zalando.org/create_fn_1".to_owned(),
                r#"{"started":"2025-12-31T23:59:00.000000+00:00","stopped":"2025-12-31T23:59:00.100000+00:00","purpose":"create","retries":1,"success":true,"failure":false}"#.to_owned(),
            ),
            (
                "kopf.zalando.org/create_fn_2".to_owned(),
                r#"{"started":"2025-12-31T23:59:00.000000+00:00","delayed":"2025-12-31T23:59:30.000000+00:00","purpose":"create","retries":1,"success":false,"failure":false,"message":"Kopf said not yet"}"#.to_owned(),
            ),
        ]
        .into(),
    );
    let (first, second) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let runner = KopfRunner::new(two_handlers(&first, &second))
        .with_crd::<KopfExample>()
        .with_objects([ex])
        .start()
        .await;
    runner.settle().await;
    assert_eq!(
        (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
        (0, 1),
        "only the pending handler runs"
    );
    let ex: KopfExample = runner.cluster().get("ex1").await;
    let annotations = annotations(&ex);
    assert!(
        !annotations.contains_key("kopf.zalando.org/create_fn_1")
            && !annotations.contains_key("kopf.zalando.org/create_fn_2"),
        "purged: {annotations:?}"
    );
    assert_eq!(
        annotations["kopf.zalando.org/last-handled-configuration"],
        "{\"spec\":{\"field\":\"value\",\"items\":[\"item1\",\"item2\"]}}\n"
    );
}

#[tokio::test(start_paused = true)]
async fn progress_records_written_mid_cause_are_byte_identical_to_kopfs() {
    let (first, second) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let runner = KopfRunner::new(two_handlers(&first, &second)).with_crd::<KopfExample>().start().await;
    runner.fault(
        kopf_testing::FaultRule::new(kopf_testing::Fault::conflict())
            .verb(kopf_testing::Verb::Patch)
            .subresource(None)
            .nth(2)
            .once(),
    );
    runner.cluster().create(example("ex1", "value")).await;
    runner.settle().await;
    // The first patch carries handler 1's success and handler 2's fresh record, exactly as Kopf
    // writes them (key order, microseconds, +00:00, compact JSON, every record with
    // retries/success/failure).
    let patches = runner.timeline().of_kind("patch");
    let first_patch = &patches
        .iter()
        .find(|entry| entry.text.contains("create_fn_1") && !entry.text.contains("/status"))
        .expect("a main-resource patch with progress")
        .text;
    assert!(
        first_patch.contains(r#""kopf.zalando.org/create_fn_1":"{\"started\":\"2026-01-01T00:00:00.000000+00:00\",\"stopped\":\"2026-01-01T00:00:00.000000+00:00\",\"purpose\":\"create\",\"retries\":1,\"success\":true,\"failure\":false}""#),
        "{first_patch}"
    );
    assert!(
        first_patch.contains(r#""kopf.zalando.org/create_fn_2":"{\"started\":\"2026-01-01T00:00:00.000000+00:00\",\"purpose\":\"create\",\"retries\":0,\"success\":false,\"failure\":false}""#),
        "{first_patch}"
    );
    // The second progress write (handler 2's success) hit the conflict, so its outcome was not
    // stored: handler 2 runs again (at least once), handler 1 never does.
    runner.advance(Duration::from_secs(120)).await;
    assert_eq!((first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)), (1, 2));
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert!(!annotations(&ex).contains_key("kopf.zalando.org/create_fn_2"), "purged once done");
}

#[tokio::test(start_paused = true)]
async fn garbage_progress_and_diff_base_annotations_are_treated_as_absent() {
    let mut ex = example("ex1", "v");
    ex.metadata.annotations = Some(
        [
            ("kopf.zalando.org/create_fn_1".to_owned(), "{not json".to_owned()),
            ("kopf.zalando.org/last-handled-configuration".to_owned(), "[1, 2".to_owned()),
        ]
        .into(),
    );
    let (first, second) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let runner = KopfRunner::new(two_handlers(&first, &second))
        .with_crd::<KopfExample>()
        .with_objects([ex])
        .start()
        .await;
    runner.settle().await;
    assert_eq!(
        (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
        (1, 1),
        "handled as a creation"
    );
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert!(annotations(&ex)["kopf.zalando.org/last-handled-configuration"].starts_with("{\"spec\""));
}

#[tokio::test(start_paused = true)]
async fn an_object_deleted_while_its_handler_runs_ends_the_work_quietly() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let (tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let g = gate.clone();
    let operator = Operator::new().on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
        let (g, tx) = (g.clone(), tx.clone());
        async move {
            let _ = tx.send(());
            g.notified().await;
            Ok::<_, HandlerError>(json!({"late": true}))
        }
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    started.recv().await.expect("the handler starts");
    // Remove it from the API behind the operator's back (no finalizer), then let the handler finish.
    runner.cluster().delete::<KopfExample>("ex1").await;
    gate.notify_one();
    runner.settle().await;
    assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_none());
    assert!(
        runner.timeline().of_kind("api-error").iter().any(|e| e.text.contains("not found")),
        "{}",
        runner.timeline()
    );
}
