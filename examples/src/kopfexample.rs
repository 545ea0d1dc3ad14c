//! Kopf's classic example operator, in Rust: `KopfExample` objects (`kopfexamples.kopf.dev`) are
//! greeted on creation, their changes are reported, a change of `spec.field` is recorded in the
//! status, a timer keeps a heartbeat, and deletion waits for a cleanup handler (kopf puts its
//! finalizer on the object for it).
//!
//! The same [`operator`] runs as a program against any cluster (`cargo run -p kopf-examples --bin
//! kopfexample -- -n default`, or against `fake-apiserver serve`), in the demo on an embedded fake
//! cluster (`cargo run -p kopf-examples --bin demo`), and in its tests with `KopfRunner`.

use std::sync::Arc;
use std::time::Duration;

use kopf::{Context, HandlerError, Operator};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `kopfexamples.kopf.dev`, as in Kopf's `examples/crd.yaml`.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(group = "kopf.dev", version = "v1", kind = "KopfExample", namespaced, status = "ExampleStatus")]
#[kube(shortname = "kex", shortname = "kexes")]
pub struct ExampleSpec {
    /// Anything; its changes are recorded in the status.
    #[serde(default)]
    pub field: String,
    /// A list, to show list diffs.
    #[serde(default)]
    pub items: Vec<String>,
}

/// Anything: handler results land here under their handler ids, as in Kopf.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(transparent)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ExampleStatus(pub serde_json::Map<String, serde_json::Value>);

/// How often the heartbeat timer runs.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// A `KopfExample` named `name` in the `default` namespace.
pub fn example(name: &str, field: &str) -> KopfExample {
    let spec = ExampleSpec { field: field.into(), items: vec!["item1".into(), "item2".into()] };
    let mut ex = KopfExample::new(name, spec);
    ex.metadata.namespace = Some("default".into());
    ex
}

/// The operator.
///
/// ```
/// assert!(kopf_examples::kopfexample::operator().check().is_ok());
/// ```
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.info(format!("Creating {} with field={:?}", ctx.name().unwrap_or_default(), ex.spec.field));
            Ok::<_, HandlerError>(json!({"message": format!("hello, {}", ex.spec.field)}))
        })
        .id("create_fn")
        .on_update(|_ex: Arc<KopfExample>, ctx: Context| async move {
            for change in ctx.diff() {
                ctx.info(format!(
                    "{} {} : {:?} → {:?}",
                    change.op.as_str(),
                    change.field.join("."),
                    change.old,
                    change.new
                ));
            }
            Ok::<_, HandlerError>(())
        })
        .id("update_fn")
        .on_field("spec.field", |_ex: Arc<KopfExample>, ctx: Context| async move {
            let new = ctx.new().cloned().unwrap_or_default();
            ctx.patch().merge(json!({"status": {"field": {"seen": new}}}));
            Ok::<_, HandlerError>(())
        })
        .id("field_fn")
        .timer(HEARTBEAT, |_ex: Arc<KopfExample>, ctx: Context| async move {
            let beats = ctx.status()["heartbeat"]["beats"].as_u64().unwrap_or(0);
            ctx.patch().merge(json!({"status": {"heartbeat": {"beats": beats + 1}}}));
            Ok::<_, HandlerError>(())
        })
        .id("heartbeat")
        .on_delete(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.info(format!("Cleaning up after {}", ctx.name().unwrap_or_default()));
            Ok::<_, HandlerError>(())
        })
        .id("delete_fn")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopf_testing::KopfRunner;

    fn status(ex: &KopfExample) -> serde_json::Value {
        serde_json::Value::Object(ex.status.clone().unwrap_or_default().0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_example_is_greeted_and_its_field_recorded() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "world")).await;
        runner.settle().await;
        let ex: KopfExample = runner.cluster().get("ex1").await;
        assert_eq!(status(&ex)["create_fn"]["message"], "hello, world");
        assert_eq!(status(&ex)["field"]["seen"], "world");
        assert!(
            ex.metadata
                .finalizers
                .unwrap_or_default()
                .contains(&"kopf.zalando.org/KopfFinalizerMarker".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_beats_once_a_minute() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "world")).await;
        runner.advance(Duration::from_secs(3600)).await;
        let ex: KopfExample = runner.cluster().get("ex1").await;
        assert_eq!(status(&ex)["heartbeat"]["beats"], 61, "at 0 s, then every 60 s up to 3600 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_field_is_recorded_and_a_deleted_example_goes_away() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "world")).await;
        runner.settle().await;
        runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "kopf"}})).await;
        runner.settle().await;
        let ex: KopfExample = runner.cluster().get("ex1").await;
        assert_eq!(status(&ex)["field"]["seen"], "kopf");
        runner.cluster().delete::<KopfExample>("ex1").await;
        runner.settle().await;
        assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_none(), "the finalizer was released");
        let handled: Vec<String> = runner.timeline().of_kind("handler").into_iter().map(|e| e.text).collect();
        assert!(
            handled.iter().any(|h| h.starts_with("delete_fn default/ex1 attempt=1 success")),
            "{handled:?}"
        );
    }
}
