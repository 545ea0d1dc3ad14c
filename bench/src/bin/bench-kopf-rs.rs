//! The kopf-rs contender of the side-by-side benchmark (`bench/run.sh`): create, update and delete
//! handlers on `KopfExample` objects, each returning a result that Kopf's defaults store in the
//! status under the handler's id (`status.create_fn`, `status.update_fn`); the delete handler makes
//! kopf keep its finalizer on every object. Everything else is Kopf's defaults (progress and
//! diff-base annotations, Events posted for handler outcomes, logging at info level).
//!
//! `bench-kopf-rs --standalone --all-namespaces` against the cluster of `$KUBECONFIG`; the same
//! handlers in Python are `bench/contenders/kopf_operator.py`.

use std::sync::Arc;

use kopf::{Context, HandlerError, Operator};
use kopf_examples::kopfexample::KopfExample;
use serde_json::json;

fn operator() -> Operator {
    Operator::new()
        .on_create(|ex: Arc<KopfExample>, _ctx: Context| async move {
            Ok::<_, HandlerError>(json!({"field": ex.spec.field}))
        })
        .id("create_fn")
        .on_update(|ex: Arc<KopfExample>, _ctx: Context| async move {
            Ok::<_, HandlerError>(json!({"field": ex.spec.field}))
        })
        .id("update_fn")
        .on_delete(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("delete_fn")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kopf::run(operator()).await?;
    Ok(())
}
