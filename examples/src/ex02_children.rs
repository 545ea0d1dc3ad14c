//! 02 — children: a Pod made for each example, adopted by it (owner reference, labels, a name
//! derived from the parent's, its namespace), so the cluster's garbage collector deletes it with
//! its parent. The Pod's name is stored in the status.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kopf::{Context, HandlerError, Operator};
use kube::Resource as _;
use kube::api::ObjectMeta;
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The child Pod of `parent`, adopted by it.
pub fn child_pod(parent: &KopfExample) -> Pod {
    let name = parent.metadata.name.clone().unwrap_or_default();
    let owner = parent.controller_owner_ref(&()).expect("a stored object has a name and a uid");
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{name}-pod")),
            namespace: parent.metadata.namespace.clone(),
            labels: Some([("kopfexample".to_owned(), name)].into()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "the-only-one".into(),
                image: Some("busybox".into()),
                command: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    format!("echo {:?}; sleep 1000", parent.spec.field),
                ]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|ex: Arc<KopfExample>, ctx: Context| async move {
            let pod = ctx.api().create(ctx.namespace(), &child_pod(&ex)).await?;
            let name = pod.metadata.name.unwrap_or_default();
            ctx.info(format!("Pod {name} is created for the example"));
            Ok::<_, HandlerError>(json!({"children": [name]}))
        })
        .id("create_fn")
        // The handler's own API call: the generated RBAC grants only what kopf itself does.
        .rbac_rule(&[""], &["pods"], &["create"])
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn the_child_pod_is_owned_by_the_example_and_deleted_with_it() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        let parent = runner.cluster().create(example("ex1", "hi")).await;
        runner.settle().await;
        let pod: Pod = runner.cluster().get("ex1-pod").await;
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("KopfExample", parent.metadata.uid.as_deref().unwrap())
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(pod.metadata.labels.unwrap()["kopfexample"], "ex1");
        let ex: KopfExample = runner.cluster().get("ex1").await;
        assert_eq!(ex.status.unwrap().0["create_fn"], json!({"children": ["ex1-pod"]}));

        runner.cluster().delete::<KopfExample>("ex1").await;
        runner.settle().await;
        assert!(runner.cluster().get_opt::<Pod>("ex1-pod").await.is_none(), "collected with its parent");
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_one_child_per_example() {
        let expect = Expect { once: vec!["create_fn"], ..Expect::default() };
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect).await;
    }
}
