//! The bare kube-runtime contender of the side-by-side benchmark (`bench/run.sh`): what a Rust user
//! writes today without a framework — a `Controller` on `KopfExample` objects whose reconciler puts
//! a finalizer on each object (kube-runtime's `finalizer` helper), records `spec.field` in
//! `status.reconciled.field` with a merge patch of the status subresource (skipped when it is
//! already there), and lets the object go on deletion. No Events, no progress or diff-base
//! annotations: the floor a framework's bookkeeping is measured against.
//!
//! `bench-kube-runtime` against the cluster of `$KUBECONFIG`, all namespaces.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kopf_examples::kopfexample::KopfExample;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use serde_json::json;

const FINALIZER: &str = "bench.kopf.dev/cleanup";

/// The reconciler's only error: a failed API call.
#[derive(Debug, thiserror::Error)]
#[error("api call failed: {0}")]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(
    ex: Arc<KopfExample>,
    client: Arc<kube::Client>,
) -> Result<Action, kube::runtime::finalizer::Error<ReconcileError>> {
    let namespace = ex.metadata.namespace.clone().unwrap_or_default();
    let api: Api<KopfExample> = Api::namespaced((*client).clone(), &namespace);
    finalizer(&api, FINALIZER, ex, |event| async {
        match event {
            Event::Apply(ex) => {
                let recorded =
                    ex.status.as_ref().and_then(|s| s.0.get("reconciled")).and_then(|r| r.get("field"));
                if recorded.and_then(|f| f.as_str()) != Some(ex.spec.field.as_str()) {
                    let name = ex.metadata.name.clone().unwrap_or_default();
                    let status = json!({"status": {"reconciled": {"field": ex.spec.field}}});
                    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await?;
                }
                Ok(Action::await_change())
            }
            Event::Cleanup(_) => Ok(Action::await_change()),
        }
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let api: Api<KopfExample> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, |_, _, _| Action::requeue(Duration::from_secs(1)), Arc::new(client))
        .for_each(|_| async {})
        .await;
    Ok(())
}
