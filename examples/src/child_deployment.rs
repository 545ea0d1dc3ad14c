//! An operator that waits for its child (an example Kopf lacks, run on the fake's live cluster):
//! each example gets a Deployment of its own (image from `spec.field`, one replica per item),
//! adopted by it; the example is marked ready only when the Deployment is Available. Until then
//! the handler asks to be retried in 5 s — Kopf's way to wait without blocking a worker.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kopf::{Context, HandlerError, Operator};
use kube::Resource as _;
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The child Deployment of `parent`.
pub fn deployment(parent: &KopfExample) -> Deployment {
    let name = parent.metadata.name.clone().unwrap_or_default();
    let mut deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": parent.metadata.namespace},
        "spec": {
            "replicas": parent.spec.items.len(),
            // A Pod counts as available after 30 s of readiness: the wait is visible.
            "minReadySeconds": 30,
            "selector": {"matchLabels": {"kopfexample": name}},
            "template": {
                "metadata": {"labels": {"kopfexample": name}},
                "spec": {"containers": [{"name": "main", "image": parent.spec.field}]},
            },
        },
    }))
    .expect("a valid Deployment");
    deployment.metadata.owner_references = parent.controller_owner_ref(&()).map(|o| vec![o]);
    deployment
}

fn available(deployment: &Deployment) -> bool {
    let conditions = deployment.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
}

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|ex: Arc<KopfExample>, ctx: Context| async move {
            let api = ctx.api();
            let name = ctx.name().unwrap_or_default().to_owned();
            let child = match api.get::<Deployment>(ctx.namespace(), &name).await? {
                Some(child) => child,
                None => api.create(ctx.namespace(), &deployment(&ex)).await?,
            };
            if !available(&child) {
                return Err(HandlerError::temporary("the Deployment is not available yet")
                    .with_delay(Duration::from_secs(5)));
            }
            Ok(json!({"ready": true, "since": ctx.runtime().as_secs()}))
        })
        .id("deploy")
        // The handler's own reads and writes of the child (kopf's own needs are generated).
        .rbac_rule(&["apps"], &["deployments"], &["get", "create"])
}

#[cfg(test)]
mod tests {
    use fake_apiserver::live::LiveCluster;
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::kopfexample::example;

    async fn time_to_ready() -> (Duration, serde_json::Value) {
        let runner = KopfRunner::new(operator())
            .with_crd::<KopfExample>()
            .live_cluster(LiveCluster::new())
            .start()
            .await;
        runner.cluster().create(example("web", "nginx:1.27")).await;
        runner
            .wait_for(
                |r| {
                    let ex = r.peek::<KopfExample>("web");
                    ex.and_then(|ex| ex.status).is_some_and(|s| s.0.contains_key("deploy"))
                },
                Duration::from_secs(600),
            )
            .await
            .expect("ready within 10 minutes");
        let status = runner.cluster().get::<KopfExample>("web").await.status.unwrap().0["deploy"].clone();
        let deployment: Deployment = runner.cluster().get("web").await;
        assert!(available(&deployment));
        assert_eq!(deployment.status.unwrap().ready_replicas, Some(2), "one replica per item");
        (runner.elapsed(), status)
    }

    #[tokio::test(start_paused = true)]
    async fn the_example_is_ready_once_its_deployment_is_available_and_the_same_every_run() {
        let (first, status) = time_to_ready().await;
        assert_eq!(status["ready"], true);
        let (second, _) = time_to_ready().await;
        assert_eq!(first, second, "virtual time makes the rollout deterministic");
        // Pods ready within the first 5 s, available 30 s later, seen at the next 5 s retry.
        assert_eq!(first, Duration::from_secs(35), "status {status}");
    }
}
