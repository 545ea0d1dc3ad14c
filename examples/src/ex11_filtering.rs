//! 11 — filters: handlers that run only for some objects — by labels and annotations (present,
//! absent, a value, a predicate) or by any predicate on the object (`when`). Each handler
//! records in the status that it ran, so what matched is visible on the object.

use std::sync::Arc;

use kopf::{Context, HandlerError, MetaFilter, Operator};
use serde_json::json;

use crate::kopfexample::KopfExample;

fn mark(_ctx: &Context) -> Result<serde_json::Value, HandlerError> {
    Ok(json!(true))
}

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move { mark(&ctx) })
        .id("labelled_somevalue")
        .labels("somelabel", "somevalue")
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move { mark(&ctx) })
        .id("labelled_present")
        .labels("somelabel", MetaFilter::Present)
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move { mark(&ctx) })
        .id("unlabelled")
        .labels("somelabel", MetaFilter::Absent)
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move { mark(&ctx) })
        .id("annotated_uppercase")
        .annotations(
            "someannotation",
            MetaFilter::Predicate(Arc::new(|v: Option<&str>| v.is_some_and(|v| v == v.to_uppercase()))),
        )
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move { mark(&ctx) })
        .id("field_is_long")
        .when(|args| args.body["spec"]["field"].as_str().is_some_and(|f| f.len() > 5))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    fn with_meta(name: &str, field: &str, label: Option<&str>, annotation: Option<&str>) -> KopfExample {
        let mut ex = example(name, field);
        ex.metadata.labels = label.map(|v| [("somelabel".to_owned(), v.to_owned())].into());
        ex.metadata.annotations = annotation.map(|v| [("someannotation".to_owned(), v.to_owned())].into());
        ex
    }

    async fn ran(runner: &kopf_testing::Runner, name: &str) -> BTreeSet<String> {
        let ex: KopfExample = runner.cluster().get(name).await;
        ex.status.map(|s| s.0.keys().cloned().collect()).unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn each_handler_runs_only_for_the_objects_its_filters_match() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(with_meta("a", "short", Some("somevalue"), None)).await;
        runner.cluster().create(with_meta("b", "a long value", Some("other"), Some("LOUD"))).await;
        runner.cluster().create(with_meta("c", "short", None, Some("quiet"))).await;
        runner.settle().await;
        let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(ran(&runner, "a").await, set(&["labelled_present", "labelled_somevalue"]));
        assert_eq!(
            ran(&runner, "b").await,
            set(&["annotated_uppercase", "field_is_long", "labelled_present"])
        );
        assert_eq!(ran(&runner, "c").await, set(&["unlabelled"]));
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_only_the_matching_handlers_run() {
        let expect = Expect { once: vec!["labelled_present", "labelled_somevalue"], ..Expect::default() };
        let object = with_meta("e2e", "x", Some("somevalue"), None);
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), object, &expect).await;
    }
}
