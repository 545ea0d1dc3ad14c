//! Sub-handlers: children made at run time, with progress per `parent/child`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kopf::{Context, HandlerError, Operator, Subhandler};
use kopf_testing::KopfRunner;

use crate::common::*;

type Runs = Arc<Mutex<BTreeMap<String, u32>>>;

/// A create handler with one child per `spec.items` entry; `hang` hangs on its first run (until
/// the crash) and `flaky` fails once with a 30 s delay.
fn operator(runs: &Runs, started: tokio::sync::mpsc::UnboundedSender<()>) -> Operator {
    let runs = runs.clone();
    Operator::new()
        .on_create(move |ex: Arc<KopfExample>, ctx: Context| {
            let children: Vec<Subhandler> =
                ex.spec
                    .items
                    .iter()
                    .map(|item| {
                        let (item, runs, started) = (item.clone(), runs.clone(), started.clone());
                        Subhandler::new(item.clone(), move |ctx: Context| {
                            let n = {
                                let mut runs = runs.lock().unwrap();
                                let n = runs.entry(item.clone()).or_default();
                                *n += 1;
                                *n
                            };
                            let (item, started) = (item.clone(), started.clone());
                            async move {
                                match (item.as_str(), n) {
                                    ("hang", 1) => {
                                        let _ = started.send(());
                                        std::future::pending::<()>().await;
                                    }
                                    ("flaky", 1) => {
                                        return Err(HandlerError::temporary("once")
                                            .with_delay(Duration::from_secs(30)));
                                    }
                                    _ => {}
                                }
                                Ok::<_, HandlerError>(serde_json::json!({"item": item, "retry": ctx.retry()}))
                            }
                        })
                    })
                    .collect();
            async move { ctx.execute(children).await }
        })
        .id("create_fn")
}

fn with_items(items: &[&str]) -> KopfExample {
    let mut ex = example("ex1", "v");
    ex.spec.items = items.iter().map(|i| (*i).to_owned()).collect();
    ex
}

#[tokio::test(start_paused = true)]
async fn children_run_one_per_cycle_keep_their_results_and_their_records_are_purged_at_the_end() {
    let runs: Runs = Arc::default();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = KopfRunner::new(operator(&runs, tx)).with_crd::<KopfExample>().start().await;
    runner.cluster().create(with_items(&["a", "flaky", "c"])).await;
    runner.settle().await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    let notes = annotations(&ex);
    assert!(
        notes["kopf.zalando.org/create_fn"]
            .contains(r#""subrefs":["create_fn/a","create_fn/c","create_fn/flaky"]"#),
        "{notes:?}"
    );
    assert!(notes["kopf.zalando.org/create_fn.flaky"].contains(r#""retries":1"#), "{notes:?}");
    runner.advance(Duration::from_secs(30)).await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(
        *runs.lock().unwrap(),
        BTreeMap::from([("a".into(), 1), ("c".into(), 1), ("flaky".into(), 2)])
    );
    assert_eq!(status(&ex)["create_fn/flaky"]["retry"], 1);
    assert_eq!(status(&ex)["create_fn/a"]["item"], "a");
    let left: Vec<String> = annotations(&ex).into_keys().filter(|k| k.contains("create_fn")).collect();
    assert!(left.is_empty(), "every record purged once done: {left:?}");
    let handled: Vec<String> = runner.timeline().of_kind("handler").into_iter().map(|e| e.text).collect();
    assert_eq!(handled.iter().filter(|h| h.starts_with("create_fn default/ex1")).count(), 4, "{handled:?}");
}

#[tokio::test(start_paused = true)]
async fn after_a_crash_only_the_unfinished_children_run_again() {
    let runs: Runs = Arc::default();
    let (tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let mut runner = KopfRunner::new(operator(&runs, tx)).with_crd::<KopfExample>().start().await;
    runner.cluster().create(with_items(&["a", "hang", "c"])).await;
    started.recv().await.expect("the hanging child starts");
    assert_eq!(*runs.lock().unwrap(), BTreeMap::from([("a".into(), 1), ("hang".into(), 1)]));
    runner.crash().await;
    runner.settle().await;
    assert_eq!(
        *runs.lock().unwrap(),
        BTreeMap::from([("a".into(), 1), ("c".into(), 1), ("hang".into(), 2)]),
        "`a` finished before the crash and is not run again"
    );
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(status(&ex)["create_fn/hang"]["item"], "hang");
}

#[tokio::test(start_paused = true)]
async fn sub_handlers_outside_changing_handlers_are_a_permanent_error() {
    let operator = Operator::new()
        .on_event(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.execute([Subhandler::new("x", |_ctx: Context| async { Ok::<_, HandlerError>(()) })]).await
        })
        .id("raw");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let handled: Vec<String> = runner.timeline().of_kind("handler").into_iter().map(|e| e.text).collect();
    assert!(handled[0].contains("permanent: sub-handlers can only run inside"), "{handled:?}");
}
