//! 07 — sub-handlers: a creation handler that makes one child handler per `spec.items` entry at
//! run time. Each child's progress is kept on the object under `create_fn/<item>`, so a crash or a
//! retry re-runs only the children that have not succeeded.

use std::sync::Arc;

use kopf::{Context, HandlerError, Operator, Subhandler};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .on_create(|ex: Arc<KopfExample>, ctx: Context| async move {
            let children = ex.spec.items.iter().map(|item| {
                let item = item.clone();
                Subhandler::new(item.clone(), move |ctx: Context| {
                    let item = item.clone();
                    async move {
                        ctx.info(format!("handling {item}"));
                        Ok::<_, HandlerError>(json!({"handled": item}))
                    }
                })
            });
            ctx.execute(children).await?;
            Ok::<_, HandlerError>(())
        })
        .id("create_fn")
        // The children's results go to the status; the parent's type (no result) cannot say so.
        .rbac_rule(&["kopf.dev"], &["kopfexamples/status"], &["patch"])
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn each_item_gets_its_own_child_handler_with_its_own_result() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "x")).await;
        runner.settle().await;
        let status = runner.cluster().get::<KopfExample>("ex1").await.status.unwrap().0;
        assert_eq!(status["create_fn/item1"], json!({"handled": "item1"}));
        assert_eq!(status["create_fn/item2"], json!({"handled": "item2"}));
        let report = runner.report();
        assert_eq!(report.runs("create_fn/item1", "default/ex1").successes, 1);
        assert_eq!(report.runs("create_fn/item2", "default/ex1").successes, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_the_parent_and_each_child_succeed_once() {
        let expect = Expect {
            once: vec!["create_fn", "create_fn/item1", "create_fn/item2"],
            retried: vec!["create_fn"], // waits once for its children: a temporary outcome in kopf-rs
            ..Expect::default()
        };
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect).await;
    }
}
