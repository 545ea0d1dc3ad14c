//! Indexes: exact through any history, and a readiness barrier before other handlers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kopf::{Context, HandlerError, Index, Operator};
use kopf_testing::KopfRunner;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::*;

/// An operator indexing examples by their `app` label; the index handle is stashed for the test.
fn indexing_operator(stash: &Arc<Mutex<Option<Index>>>) -> Operator {
    let stash = stash.clone();
    Operator::new()
        .index(move |ex: Arc<KopfExample>, ctx: Context| {
            stash.lock().unwrap().get_or_insert_with(|| ctx.index("by_app").expect("its own index"));
            let app = ex.metadata.labels.as_ref().and_then(|l| l.get("app")).cloned();
            let name = ex.metadata.name.clone();
            // An empty object clears the object's entries (`None` would keep them, as in Kopf).
            async move { Ok::<_, HandlerError>(app.map_or_else(|| json!({}), |app| json!({app: name}))) }
        })
        .id("by_app")
}

fn labelled(name: &str, app: u8) -> KopfExample {
    let mut ex = example(name, "v");
    ex.metadata.labels = Some([("app".to_owned(), format!("app-{app}"))].into());
    ex
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8, u8),
    Relabel(u8, u8),
    Unlabel(u8),
    Delete(u8),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        (0u8..30, 0u8..4).prop_map(|(o, a)| Op::Create(o, a)),
        (0u8..30, 0u8..4).prop_map(|(o, a)| Op::Relabel(o, a)),
        (0u8..30).prop_map(Op::Unlabel),
        (0u8..30).prop_map(Op::Delete),
    ];
    prop::collection::vec(op, 1000)
}

/// Runs the operations against a live operator; the index and the model at the end.
fn run_history(ops: Vec<Op>) -> (BTreeMap<String, Vec<Value>>, BTreeMap<String, Vec<Value>>) {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    runtime.block_on(async move {
        let stash = Arc::new(Mutex::new(None));
        let runner = KopfRunner::new(indexing_operator(&stash)).with_crd::<KopfExample>().start().await;
        let mut model: BTreeMap<u8, Option<u8>> = BTreeMap::new(); // object → its app label
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Create(o, a) if !model.contains_key(&o) => {
                    runner.cluster().create(labelled(&format!("ex{o:02}"), a)).await;
                    model.insert(o, Some(a));
                }
                Op::Relabel(o, a) if model.contains_key(&o) => {
                    let patch = json!({"metadata": {"labels": {"app": format!("app-{a}")}}});
                    runner.cluster().patch::<KopfExample>(&format!("ex{o:02}"), patch).await;
                    model.insert(o, Some(a));
                }
                Op::Unlabel(o) if model.contains_key(&o) => {
                    let patch = json!({"metadata": {"labels": {"app": null}}});
                    runner.cluster().patch::<KopfExample>(&format!("ex{o:02}"), patch).await;
                    model.insert(o, None);
                }
                Op::Delete(o) if model.contains_key(&o) => {
                    runner.cluster().delete::<KopfExample>(&format!("ex{o:02}")).await;
                    model.remove(&o);
                }
                _ => {}
            }
            if step % 50 == 0 {
                runner.settle().await; // let some changes pile up between settles, others not
            }
        }
        runner.settle().await;
        let mut expected: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (o, app) in &model {
            if let Some(a) = app {
                expected.entry(format!("app-{a}")).or_default().push(json!(format!("ex{o:02}")));
            }
        }
        let index = stash.lock().unwrap().clone().map(|i| i.snapshot()).unwrap_or_default();
        (index, expected)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]
    /// 1,000 random creates, relabels, unlabels and deletions on 30 objects.
    #[test]
    fn an_index_stays_exact_through_a_thousand_random_changes(ops in ops()) {
        let (index, expected) = run_history(ops);
        prop_assert_eq!(index, expected);
    }
}

#[tokio::test(start_paused = true)]
async fn handlers_wait_until_every_listed_object_is_indexed() {
    let stash = Arc::new(Mutex::new(None));
    let seen: Arc<Mutex<Vec<usize>>> = Arc::default();
    let record = seen.clone();
    // Listed objects without a diff-base are creations (Kopf never mixes resume handlers into them).
    let operator = indexing_operator(&stash).on_create(move |_ex: Arc<KopfExample>, ctx: Context| {
        let indexed = ctx.index("by_app").map(|i| i.get("app-1").len()).unwrap_or_default();
        record.lock().unwrap().push(indexed);
        async { Ok::<_, HandlerError>(()) }
    });
    let objects: Vec<KopfExample> = (0..5).map(|i| labelled(&format!("ex{i}"), 1)).collect();
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().with_objects(objects).start().await;
    runner.settle().await;
    assert_eq!(*seen.lock().unwrap(), vec![5; 5], "every creation handler saw all five objects indexed");
}

#[tokio::test(start_paused = true)]
async fn a_permanently_failing_indexer_drops_the_object_for_good_and_ignored_errors_keep_it() {
    let stash = Arc::new(Mutex::new(None));
    let keep = stash.clone();
    let operator = Operator::new()
        .index(move |ex: Arc<KopfExample>, ctx: Context| {
            keep.lock().unwrap().get_or_insert_with(|| ctx.index("fields").expect("its own index"));
            let field = ex.spec.field.clone();
            async move {
                match field.as_str() {
                    "boom" => Err(HandlerError::permanent("cannot index")),
                    "oops" => Err(HandlerError::other("transient".into())),
                    _ => Ok(json!({"all": field})),
                }
            }
        })
        .id("fields");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    let index = stash.lock().unwrap().clone().unwrap();
    assert_eq!(index.get("all"), vec![json!("a")]);
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "oops"}})).await;
    runner.settle().await;
    assert_eq!(index.get("all"), vec![json!("a")], "an ignored error keeps the stale value");
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "boom"}})).await;
    runner.settle().await;
    assert!(index.is_empty(), "a permanent error removes the object");
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "b"}})).await;
    runner.settle().await;
    assert!(index.is_empty(), "… and keeps it out");
}
