//! 05 — several handlers: two for creation (run in order, each recorded on its own), one for
//! updates, one for a field, two for deletion (so kopf puts its finalizer on the object).

use std::sync::Arc;

use kopf::{Context, HandlerError, Operator};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(
            |_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(json!({"step": 1})) },
        )
        .id("create_fn_1")
        .on_create(
            |_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(json!({"step": 2})) },
        )
        .id("create_fn_2")
        .on_update(|_ex: Arc<KopfExample>, ctx: Context| async move {
            let fields: Vec<String> = ctx.diff().iter().map(|d| d.field.join(".")).collect();
            Ok::<_, HandlerError>(json!({"changed": fields}))
        })
        .id("update_fn")
        .on_field("spec.field", |_ex: Arc<KopfExample>, ctx: Context| async move {
            Ok::<_, HandlerError>(json!({"old": ctx.old(), "new": ctx.new()}))
        })
        .id("field_fn")
        .on_delete(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.info("the first cleanup");
            Ok::<_, HandlerError>(())
        })
        .id("delete_fn_1")
        .on_delete(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.info("the second cleanup");
            Ok::<_, HandlerError>(())
        })
        .id("delete_fn_2")
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn creation_runs_both_handlers_in_order_and_a_field_change_runs_update_and_field_handlers() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "one")).await;
        runner.settle().await;
        let handled: Vec<String> = runner.timeline().of_kind("handler").into_iter().map(|e| e.text).collect();
        assert_eq!(
            handled,
            [
                "create_fn_1 default/ex1 attempt=1 success",
                "create_fn_2 default/ex1 attempt=1 success",
                "field_fn/spec.field default/ex1 attempt=1 success"
            ],
            "on creation, a field handler sees the field appear"
        );
        runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "two"}})).await;
        runner.settle().await;
        let status = runner.cluster().get::<KopfExample>("ex1").await.status.unwrap().0;
        assert_eq!(status["update_fn"], json!({"changed": ["spec.field"]}));
        assert_eq!(status["field_fn/spec.field"], json!({"old": "one", "new": "two"}));
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_each_handler_once_and_both_cleanups_before_the_object_goes() {
        let expect = Expect {
            once: vec!["create_fn_1", "create_fn_2", "field_fn/spec.field", "delete_fn_1", "delete_fn_2"],
            ..Expect::default()
        };
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect).await;
    }
}
