//! Memos: per-object typed containers kept across handlers, daemons and timers, copied from the
//! operator's memo.

use std::sync::Arc;
use std::time::Duration;

use kopf::{Context, HandlerError, Memo, Operator};
use kopf_testing::KopfRunner;
use serde_json::json;

use crate::common::*;

#[derive(Clone, Debug, Default, PartialEq)]
struct Visits(Vec<&'static str>);

#[tokio::test(start_paused = true)]
async fn an_objects_memo_is_shared_by_its_handlers_timers_and_daemons_but_not_with_other_objects() {
    let operator_memo = Memo::default();
    operator_memo.insert(Visits(vec!["operator"]));
    let operator = Operator::new()
        .memo(operator_memo)
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.memo().update(|v: &mut Visits| v.0.push("create"));
            Ok::<_, HandlerError>(())
        })
        .on_update(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.memo().update(|v: &mut Visits| v.0.push("update"));
            Ok::<_, HandlerError>(())
        })
        .timer(Duration::from_secs(60), |_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.memo().update(|v: &mut Visits| v.0.push("timer"));
            Ok::<_, HandlerError>(())
        })
        .initial_delay(Duration::from_secs(30))
        .daemon(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.stopped().wait(Duration::from_secs(45)).await;
            let seen = ctx.memo().get::<Visits>().unwrap_or_default();
            Ok::<_, HandlerError>(json!({"seen": seen.0}))
        })
        .id("reporter");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "v")).await;
    runner.cluster().create(example("ex2", "v")).await;
    runner.settle().await;
    runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "w"}})).await;
    runner.advance(Duration::from_secs(45)).await;
    let ex1: KopfExample = runner.cluster().get("ex1").await;
    let ex2: KopfExample = runner.cluster().get("ex2").await;
    assert_eq!(status(&ex1)["reporter"]["seen"], json!(["operator", "create", "update", "timer"]));
    assert_eq!(status(&ex2)["reporter"]["seen"], json!(["operator", "create", "timer"]), "a memo of its own");
}
