//! 10 — built-in resources: handlers for Pods (k8s-openapi types), exactly as for custom ones.
//! Each Pod is labelled when first seen (created, or found at start-up: `on_resume`), and its
//! deletion is logged — with `optional()`, so no finalizer is put on other people's Pods.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kopf::{Context, HandlerError, Operator};
use serde_json::json;

/// The label the operator puts on every Pod it has seen.
pub const SEEN: &str = "kopf.dev/seen";

/// The operator.
pub fn operator() -> Operator {
    let label = |ctx: &Context| {
        ctx.patch().merge(json!({"metadata": {"labels": {SEEN: "yes"}}}));
    };
    Operator::new()
        .on_create(move |_pod: Arc<Pod>, ctx: Context| async move {
            label(&ctx);
            Ok::<_, HandlerError>(())
        })
        .id("pod_created")
        .on_resume(move |_pod: Arc<Pod>, ctx: Context| async move {
            label(&ctx);
            Ok::<_, HandlerError>(())
        })
        .id("pod_resumed")
        .on_delete(|pod: Arc<Pod>, ctx: Context| async move {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            ctx.info(format!("Pod deleted (it was on node {node:?})"));
            Ok::<_, HandlerError>(())
        })
        .id("pod_deleted")
        .optional()
}

/// A Pod named `name` in `default`.
pub fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }))
    .expect("a valid Pod")
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};

    fn labelled(pod: &Pod) -> bool {
        pod.metadata.labels.as_ref().is_some_and(|l| l.get(SEEN).is_some_and(|v| v == "yes"))
    }

    #[tokio::test(start_paused = true)]
    async fn pods_are_labelled_when_created_and_resumed_after_a_restart_without_finalizers() {
        let mut runner = KopfRunner::new(operator()).with_objects([pod("unhandled")]).start().await;
        runner.cluster().create(pod("new")).await;
        runner.settle().await;
        runner.restart().await;
        for name in ["unhandled", "new"] {
            let pod: Pod = runner.cluster().get(name).await;
            assert!(labelled(&pod), "{name} is labelled");
            assert_eq!(pod.metadata.finalizers, None, "an optional deletion handler needs no finalizer");
        }
        let report = runner.report();
        for name in ["default/unhandled", "default/new"] {
            assert_eq!(report.runs("pod_created", name).successes, 1, "never handled before: a creation");
            assert_eq!(report.runs("pod_resumed", name).successes, 1, "handled before the restart: resumed");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_a_pod_is_labelled_once() {
        let expect = Expect { once: vec!["pod_created"], ..Expect::default() };
        lifecycle(KopfRunner::new(operator()), pod("e2e"), &expect).await;
    }
}
