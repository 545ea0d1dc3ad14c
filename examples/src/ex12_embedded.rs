//! 12 — embedded: the operator as one part of a bigger program — started on a `kube::Client`
//! the program already has, stopped by the program when it wants ([`kopf::Operator::run`]),
//! instead of owning `main` through `kopf::run`. Here the "program" waits until its own condition
//! is met (the example object was greeted), then stops the operator and goes on.

use std::sync::Arc;
use std::time::Duration;

use kopf::{Context, HandlerError, Operator, OperatorError};
use kube::Api;
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(
            |_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(json!("embedded")) },
        )
        .id("create_fn")
}

/// The host program: runs the operator on `client` until `name` in `default` is handled (checked
/// every second through the program's own `kube::Api`), then stops it; what the status said.
///
/// # Errors
/// The operator's error, if it ends by itself.
pub async fn program(client: kube::Client, name: &str) -> Result<serde_json::Value, OperatorError> {
    let examples: Api<KopfExample> = Api::namespaced(client.clone(), "default");
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let watcher = {
        let name = name.to_owned();
        async move {
            loop {
                if let Ok(ex) = examples.get(&name).await
                    && let Some(result) = ex.status.and_then(|s| s.0.get("create_fn").cloned())
                {
                    let _ = done_tx.send(result);
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let watcher = tokio::spawn(watcher);
    let mut result = None;
    operator()
        .run(client, async {
            result = done_rx.await.ok();
        })
        .await?;
    watcher.abort();
    Ok(result.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use fake_apiserver::FakeApiServer;
    use kube::CustomResourceExt as _;
    use kube::api::PostParams;

    use super::*;
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn the_host_program_stops_the_operator_once_its_object_is_handled() {
        let server = FakeApiServer::builder().build();
        let client = server.client();
        let crds: Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = Api::all(client.clone());
        crds.create(&PostParams::default(), &KopfExample::crd()).await.unwrap();
        let examples: Api<KopfExample> = Api::namespaced(client.clone(), "default");
        examples.create(&PostParams::default(), &example("ex1", "x")).await.unwrap();
        let result = program(client, "ex1").await.unwrap();
        assert_eq!(result, json!("embedded"));
    }
}
