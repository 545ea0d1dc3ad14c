//! A kube-runtime `Controller` that keeps a greeting in each `KopfExample`'s status and cleans up
//! through a finalizer, run against the in-memory fake API server on tokio's paused clock: an hour
//! of cluster life in milliseconds, and the same output every run.

use std::sync::Arc;
use std::time::Duration;

use fake_apiserver::{FakeApiServer, Operation, Verb};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The example resource.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[kube(group = "kopf.dev", version = "v1", kind = "KopfExample", namespaced, status = "ExampleStatus")]
pub struct ExampleSpec {
    /// Who to greet.
    pub field: String,
}

/// What the controller writes back.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ExampleStatus {
    /// The greeting.
    pub message: String,
}

/// The controller's only error: a failed API call.
#[derive(Debug, thiserror::Error)]
#[error("api call failed: {0}")]
pub struct ReconcileError(#[from] kube::Error);

async fn reconcile(
    ex: Arc<KopfExample>,
    api: Arc<Api<KopfExample>>,
) -> Result<Action, kube::runtime::finalizer::Error<ReconcileError>> {
    finalizer(&api, "kopf.dev/demo", ex, |event| async {
        match event {
            Event::Apply(ex) => {
                let name = ex.metadata.name.clone().unwrap_or_default();
                let status = json!({"status": {"message": format!("hello, {}", ex.spec.field)}});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await?;
                Ok(Action::requeue(Duration::from_secs(600)))
            }
            Event::Cleanup(_) => Ok(Action::await_change()),
        }
    })
    .await
}

/// Runs the demo and returns the API operations the fake server saw (reads left out).
///
/// # Errors
/// Any failed API call of the demo itself.
pub async fn run() -> anyhow::Result<Vec<Operation>> {
    let server = FakeApiServer::builder().seed(1).build();
    let client = server.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &KopfExample::crd())
        .await?;
    let api: Api<KopfExample> = Api::namespaced(client.clone(), "default");

    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(reconcile, |_, _, _| Action::requeue(Duration::from_secs(5)), Arc::new(api.clone()))
        .for_each(|_| async {});
    let controller = tokio::spawn(controller);

    let mut ex = KopfExample::new("ex1", ExampleSpec { field: "world".into() });
    ex.metadata.namespace = Some("default".into());
    api.create(&PostParams::default(), &ex).await?;
    while api.get("ex1").await?.status.is_none() {
        tokio::task::yield_now().await;
    }
    // An hour passes; the controller requeues every 10 minutes.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    api.delete("ex1", &DeleteParams::default()).await?;
    while api.get_opt("ex1").await?.is_some() {
        tokio::task::yield_now().await;
    }
    controller.abort();
    Ok(server.cluster().journal(|j| j.operations().filter(|op| op.verb != Verb::Get).cloned().collect()))
}

/// One operation as a line: virtual time, verb, resource, code, resourceVersion.
pub fn format(op: &Operation) -> String {
    let resource = match &op.subresource {
        Some(sub) => format!("{}/{sub}", op.resource),
        None => op.resource.clone(),
    };
    let rv = op.resource_version.map(|rv| rv.to_string()).unwrap_or_default();
    format!(
        "{:>7.1}s  {:<24} {:<7} {:<55} {} {rv}",
        op.at.as_secs_f64(),
        op.actor,
        op.verb.as_str(),
        resource,
        op.code
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fake_apiserver::Verb;

    #[tokio::test(start_paused = true)]
    async fn the_demo_reconciles_requeues_on_virtual_time_and_releases_its_finalizer() {
        let ops = super::run().await.unwrap();
        let dump = ops.iter().map(super::format).collect::<Vec<_>>().join("\n");
        let status: Vec<_> = ops
            .iter()
            .filter(|o| o.subresource.as_deref() == Some("status") && o.resource.starts_with("kopfexamples"))
            .collect();
        let requeues: Vec<u64> = status.iter().map(|o| o.at.as_secs()).filter(|t| *t > 0).collect();
        assert_eq!(
            requeues,
            vec![600, 1200, 1800, 2400, 3000, 3600],
            "a requeue every 10 virtual minutes:\n{dump}"
        );
        let first_rv = status[0].resource_version;
        assert!(
            status.iter().all(|o| o.resource_version == first_rv),
            "re-patching the same status stores nothing:\n{dump}"
        );
        let deleted_at = ops
            .iter()
            .position(|o| o.verb == Verb::Delete && o.resource.starts_with("kopfexamples"))
            .expect(&dump);
        assert!(
            ops[deleted_at + 1..].iter().any(|o| o.verb == Verb::Patch),
            "the finalizer is released after the delete:\n{dump}"
        );
        assert_eq!(ops.last().unwrap().at, Duration::from_secs(3600));
    }
}
