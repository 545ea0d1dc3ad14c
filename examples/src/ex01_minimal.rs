//! 01 — minimal: one creation handler; its result lands in the object's status.
//!
//! Run: `cargo run -p kopf-examples --bin example -- 01-minimal --fake-cluster` (or against a
//! cluster that serves [`KopfExample`]'s CRD, without the flag).

use std::sync::Arc;

use kopf::{Context, HandlerError, Operator};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.info(format!("And here we are! Created with spec: {:?}", ex.spec));
            Ok::<_, HandlerError>(json!({"message": "hello world"}))
        })
        .id("create_fn")
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn the_creation_handler_greets_in_the_status_and_no_finalizer_is_added() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "x")).await;
        runner.settle().await;
        let ex: KopfExample = runner.cluster().get("ex1").await;
        assert_eq!(ex.status.unwrap().0["create_fn"], json!({"message": "hello world"}));
        assert_eq!(ex.metadata.finalizers, None, "no deletion handler, so no finalizer");
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_the_creation_handler_runs_once() {
        let expect = Expect { once: vec!["create_fn"], ..Expect::default() };
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect).await;
    }
}
