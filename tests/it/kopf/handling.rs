//! Creation, update, deletion, resume: the changing handlers and what they leave on the object.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kopf_testing::KopfRunner;
use serde_json::json;

use crate::common::*;

fn counter() -> Arc<AtomicU32> {
    Arc::new(AtomicU32::new(0))
}

#[tokio::test(start_paused = true)]
async fn a_create_handler_runs_once_stores_its_result_and_the_diff_base() {
    let runs = counter();
    let seen = runs.clone();
    let operator = Operator::new()
        .on_create(move |ex: Arc<KopfExample>, ctx: Context| {
            let runs = seen.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                ctx.info(format!("created with field={}", ex.spec.field));
                Ok::<_, HandlerError>(json!({"message": "hello"}))
            }
        })
        .id("create_fn");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "value")).await;
    runner.settle().await;

    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(status(&ex)["create_fn"]["message"], "hello");
    let annotations = annotations(&ex);
    assert_eq!(
        annotations.get("kopf.zalando.org/last-handled-configuration").map(String::as_str),
        Some("{\"spec\":{\"field\":\"value\",\"items\":[\"item1\",\"item2\"]}}\n")
    );
    assert!(!annotations.contains_key("kopf.zalando.org/create_fn"), "progress is purged once done");
    assert_eq!(runner.elapsed(), std::time::Duration::ZERO, "all of it at the same virtual instant");
}

#[tokio::test(start_paused = true)]
async fn an_update_of_the_spec_runs_the_update_handler_with_the_diff() {
    let diffs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = diffs.clone();
    let operator = Operator::new().on_update(move |_ex: Arc<KopfExample>, ctx: Context| {
        let diffs = seen.clone();
        async move {
            diffs.lock().unwrap().push(ctx.diff().to_string());
            Ok::<_, HandlerError>(())
        }
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "old")).await;
    runner.settle().await;
    assert!(diffs.lock().unwrap().is_empty(), "creation is not an update");
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "new"}})).await;
    runner.settle().await;
    assert_eq!(*diffs.lock().unwrap(), vec![r#"((change, (spec, field), "old", "new"))"#.to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn a_status_only_change_runs_no_handler() {
    let runs = counter();
    let seen = runs.clone();
    let operator = Operator::new().on_update(move |_ex: Arc<KopfExample>, _ctx: Context| {
        let runs = seen.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, HandlerError>(())
        }
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    runner.cluster().patch_status::<KopfExample>("ex1", json!({"status": {"phase": "Ready"}})).await;
    runner
        .cluster()
        .patch::<KopfExample>("ex1", json!({"metadata": {"annotations": {"kopf.zalando.org/other": "x"}}}))
        .await;
    runner.settle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_deletion_handler_holds_the_object_with_a_finalizer_until_it_succeeds() {
    let runs = counter();
    let seen = runs.clone();
    let operator = Operator::new().on_delete(move |_ex: Arc<KopfExample>, _ctx: Context| {
        let runs = seen.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, HandlerError>(())
        }
    });
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(ex.metadata.finalizers, Some(vec!["kopf.zalando.org/KopfFinalizerMarker".to_owned()]));

    runner.cluster().delete::<KopfExample>("ex1").await;
    runner.settle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(
        runner.cluster().get_opt::<KopfExample>("ex1").await.is_none(),
        "the finalizer is removed and the object goes"
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_resume_handlers_run_and_recorded_successes_do_not_rerun() {
    let creates = counter();
    let resumes = counter();
    let (c, r) = (creates.clone(), resumes.clone());
    let operator = Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(())
            }
        })
        .on_resume(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                Ok::<_, HandlerError>(())
            }
        });
    let mut runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!((creates.load(Ordering::SeqCst), resumes.load(Ordering::SeqCst)), (1, 0));
    runner.restart().await;
    assert_eq!(
        (creates.load(Ordering::SeqCst), resumes.load(Ordering::SeqCst)),
        (1, 1),
        "resumed, not re-created"
    );
    runner.restart().await;
    assert_eq!(resumes.load(Ordering::SeqCst), 2, "every restart resumes once");
}

/// Kopf's causes.py: without a diff-base the cause is a creation, which forces `initial` off, so
/// an operator restarted while a creation is unfinished finishes it and runs no resume handler.
#[tokio::test(start_paused = true)]
async fn a_creation_unfinished_at_a_restart_is_finished_without_mixing_in_resume_handlers() {
    let (attempts, resumes) = (counter(), counter());
    let (a, r) = (attempts.clone(), resumes.clone());
    let operator = Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let first = a.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    return Err(HandlerError::temporary("not yet").with_delay(Duration::from_secs(10)));
                }
                Ok::<_, HandlerError>(())
            }
        })
        .id("create_pending")
        .on_resume(move |_ex: Arc<KopfExample>, _ctx: Context| {
            r.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, HandlerError>(()) }
        })
        .id("resume_fn");
    let mut runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "the first attempt failed; a retry is due in 10 s");
    runner.restart().await;
    runner.advance(Duration::from_secs(10)).await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert!(
        annotations(&ex).contains_key("kopf.zalando.org/last-handled-configuration"),
        "the creation is done"
    );
    assert_eq!(resumes.load(Ordering::SeqCst), 0, "no resume handler mixed into the creation");
}

/// Regression: after the last of several deletion handlers, the echo of the patch that purged the
/// progress arrived before DELETED, still with the finalizer and no progress: it was taken for a
/// fresh deletion and the first handler ran again. The release now awaits Kopf's never-arriving
/// version, so only DELETED (or the consistency timeout) ends the wait.
#[tokio::test(start_paused = true)]
async fn deletion_handlers_do_not_rerun_on_the_echo_of_the_progress_purge() {
    let operator = Operator::new()
        .on_delete(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("first")
        .on_delete(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("second");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    runner.cluster().delete::<KopfExample>("ex1").await;
    runner.settle().await;
    assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_none());
    let report = runner.report();
    assert_eq!(report.runs("first", "default/ex1").successes, 1, "{report}\n{}", runner.timeline());
    assert_eq!(report.runs("second", "default/ex1").successes, 1, "{report}\n{}", runner.timeline());
}
