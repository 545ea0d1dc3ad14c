//! Hierarchies (reference/kopf.md, Kopf's `kopf.adopt`): a handler's children, adopted, belong to
//! their parent — and the fake's garbage collector deletes them with it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kopf::{Adoption, Context, HandlerError, Operator};
use kopf_testing::KopfRunner;
use serde_json::json;

use crate::common::*;

/// On creation, one ConfigMap adopted by the example (typed), and one Secret-like ConfigMap built
/// as JSON and named strictly after it.
fn operator() -> Operator {
    Operator::new()
        .on_create(|ex: Arc<KopfExample>, ctx: Context| async move {
            let data = Some([("field".to_owned(), ex.spec.field.clone())].into());
            let mut typed = ConfigMap { data, ..Default::default() };
            kopf::adopt(&mut typed, &*ex, &Adoption::default())?;
            let namespace = typed.metadata.namespace.clone();
            let created = ctx.api().create(namespace.as_deref(), &typed).await?;

            let mut raw = json!({"data": {"strict": "yes"}});
            kopf::adopt(&mut raw, ctx.body(), &Adoption::default().strict())?;
            let raw: ConfigMap = serde_json::from_value(raw)?;
            ctx.api().create(namespace.as_deref(), &raw).await?;
            Ok::<_, HandlerError>(json!({"child": created.metadata.name}))
        })
        .id("create_fn")
}

fn configmaps(runner: &kopf_testing::Runner) -> Vec<serde_json::Value> {
    runner.cluster().raw().objects("", "configmaps").iter().map(|o| o.value()).collect()
}

#[tokio::test(start_paused = true)]
async fn adopted_children_are_owned_named_labelled_and_deleted_with_their_parent() {
    let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
    let mut ex = example("ex1", "value");
    ex.metadata.labels = Some([("app".to_owned(), "demo".to_owned())].into());
    runner.cluster().create(ex).await;
    runner.settle().await;
    let parent: KopfExample = runner.cluster().get("ex1").await;
    let uid = parent.metadata.uid.clone().unwrap();

    let children: Vec<_> =
        configmaps(&runner).into_iter().filter(|cm| cm["metadata"]["ownerReferences"].is_array()).collect();
    assert_eq!(children.len(), 2, "{children:?}");
    let reference = json!([{"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "name": "ex1", "uid": uid,
        "controller": true, "blockOwnerDeletion": true}]);
    for child in &children {
        assert_eq!(child["metadata"]["ownerReferences"], reference);
        assert_eq!(child["metadata"]["namespace"], "default");
        assert_eq!(child["metadata"]["labels"], json!({"app": "demo"}));
    }
    let names: Vec<&str> = children.iter().map(|c| c["metadata"]["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"ex1"), "strictly named: {names:?}");
    let generated = names.iter().find(|n| **n != "ex1").unwrap();
    assert!(generated.starts_with("ex1-") && generated.len() > 4, "generateName ex1-: {generated}");
    assert_eq!(status(&parent)["create_fn"]["child"], *generated);

    runner.cluster().delete::<KopfExample>("ex1").await;
    runner
        .wait_for(
            |_| configmaps(&runner).iter().all(|cm| cm["metadata"]["ownerReferences"].is_null()),
            Duration::from_secs(60),
        )
        .await
        .expect("the garbage collector deletes the children with their parent");
    assert_eq!(runner.elapsed(), Duration::ZERO, "at once, in the background");
}
