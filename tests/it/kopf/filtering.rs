//! Filters, field handlers, raw-event handlers, several resources and namespaces.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use kopf::{Context, HandlerError, MetaFilter, Operator, ValueFilter};
use kopf_testing::KopfRunner;
use serde_json::json;

use crate::common::*;

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn recorder(
    log: &Log,
    what: &'static str,
) -> impl Fn(Arc<KopfExample>, Context) -> futures::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static
{
    let log = log.clone();
    move |ex: Arc<KopfExample>, _ctx: Context| {
        log.lock().unwrap().push(format!("{what} {}", ex.metadata.name.clone().unwrap_or_default()));
        futures::future::ready(Ok(()))
    }
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> KopfExample {
    let mut ex = example(name, "v");
    ex.metadata.labels = Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    ex
}

#[tokio::test(start_paused = true)]
async fn label_annotation_and_when_filters_select_objects() {
    let log = log();
    let operator = Operator::new()
        .on_create(recorder(&log, "labelled"))
        .id("labelled")
        .labels("team", "a")
        .on_create(recorder(&log, "absent"))
        .id("absent")
        .labels("skip", MetaFilter::Absent)
        .on_create(recorder(&log, "when"))
        .id("when")
        .when(|args| args.body["spec"]["field"] == "special");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(labelled("a", &[("team", "a")])).await;
    runner.cluster().create(labelled("b", &[("team", "b"), ("skip", "1")])).await;
    let mut special = example("c", "special");
    special.metadata.labels = Some([("skip".to_owned(), "".to_owned())].into());
    runner.cluster().create(special).await;
    runner.settle().await;
    let mut got = log.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, vec!["absent a", "labelled a", "when c"]);
}

#[tokio::test(start_paused = true)]
async fn a_field_handler_runs_when_its_field_changes_including_on_creation() {
    let seen = log();
    let s = seen.clone();
    let operator = Operator::new()
        .on_field("spec.field", move |_ex: Arc<KopfExample>, ctx: Context| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(format!("{} {:?}->{:?}", ctx.id(), ctx.old(), ctx.new()));
                Ok::<_, HandlerError>(())
            }
        })
        .id("field_fn");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "a")).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"items": ["x"]}})).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "b"}})).await;
    runner.settle().await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            r#"field_fn/spec.field None->Some(String("a"))"#,
            r#"field_fn/spec.field Some(String("a"))->Some(String("b"))"#
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_update_handler_with_a_field_and_value_filter_runs_only_for_that_value() {
    let log = log();
    let operator = Operator::new()
        .on_create(recorder(&log, "created"))
        .on_update(recorder(&log, "ready"))
        .field("spec.field")
        .value(ValueFilter::Equals(json!("ready")));
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "new")).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "busy"}})).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "ready"}})).await;
    runner.settle().await;
    assert_eq!(*log.lock().unwrap(), vec!["created ex1", "ready ex1"]);
}

#[tokio::test(start_paused = true)]
async fn an_object_no_handler_matches_is_handled_in_stealth_and_looks_created_once_it_matches() {
    let log = log();
    let operator = Operator::new()
        .on_create(recorder(&log, "created"))
        .labels("ready", "yes")
        .on_update(recorder(&log, "updated"))
        .labels("ready", "yes");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert!(ex.metadata.annotations.is_none(), "nothing is written in stealth");
    runner.cluster().patch::<KopfExample>("ex1", json!({"metadata": {"labels": {"ready": "yes"}}})).await;
    runner.settle().await;
    assert_eq!(*log.lock().unwrap(), vec!["created ex1"], "it looks like a creation, not an update");
}

#[tokio::test(start_paused = true)]
async fn raw_event_handlers_see_the_listing_and_every_event_and_their_errors_are_ignored() {
    let seen = log();
    let s = seen.clone();
    let operator = Operator::new().on_event(move |ex: Arc<KopfExample>, ctx: Context| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(format!(
                "{:?} {}",
                ctx.event_type(),
                ex.metadata.name.clone().unwrap_or_default()
            ));
            Err::<(), _>(HandlerError::permanent("ignored"))
        }
    });
    let runner =
        KopfRunner::new(operator).with_crd::<KopfExample>().with_objects([example("pre", "v")]).start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.settle().await;
    runner.cluster().delete::<KopfExample>("ex1").await;
    runner.settle().await;
    assert_eq!(*seen.lock().unwrap(), vec!["None pre", "Some(\"ADDED\") ex1", "Some(\"DELETED\") ex1"]);
}

#[tokio::test(start_paused = true)]
async fn one_operator_serves_several_resources_in_the_namespaces_it_is_given() {
    let log = log();
    let l = log.clone();
    let operator = Operator::new()
        .on_create(recorder(&log, "example"))
        .on_create(move |cm: Arc<ConfigMap>, _ctx: Context| {
            let l = l.clone();
            async move {
                l.lock().unwrap().push(format!(
                    "configmap {}/{}",
                    cm.metadata.namespace.clone().unwrap_or_default(),
                    cm.metadata.name.clone().unwrap_or_default()
                ));
                Ok::<_, HandlerError>(())
            }
        })
        .labels("watched", MetaFilter::Present);
    let runner =
        KopfRunner::new(operator).with_crd::<KopfExample>().namespaces(["team-a", "team-b"]).start().await;
    for ns in ["team-a", "team-b", "default"] {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("cm".into());
        cm.metadata.namespace = Some(ns.into());
        cm.metadata.labels = Some([("watched".to_owned(), "yes".to_owned())].into());
        runner.cluster().create(cm).await;
        let mut ex = example("ex", "v");
        ex.metadata.namespace = Some(ns.into());
        runner.cluster().create(ex).await;
    }
    runner.settle().await;
    let mut got = log.lock().unwrap().clone();
    got.sort();
    assert_eq!(
        got,
        vec!["configmap team-a/cm", "configmap team-b/cm", "example ex", "example ex"],
        "default is not served"
    );
}
