//! 13 — hooks: the operator's own life. A startup handler runs before anything is watched (here
//! it loads the greeting into the operator-wide memo, which every object's memo starts from, and
//! may change settings); probes answer the liveness endpoint (cached for 10 s, as in Kopf); a
//! cleanup handler runs at a graceful stop. (Login handlers, which supply credentials, are shown
//! in `examples/tests/operator_program.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use kopf::{Context, HandlerError, Operator};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The greeting the startup handler loads.
#[derive(Debug, Clone, Default)]
pub struct Greeting(pub String);

/// The operator; `cleanups` counts the cleanup handler's runs.
pub fn operator(cleanups: Arc<AtomicU32>) -> Operator {
    Operator::new()
        .on_startup(|ctx: Context| async move {
            ctx.memo().insert(Greeting("hello from startup".into()));
            ctx.update_settings(|s| s.posting.level = kopf::Level::Warning);
            Ok::<_, HandlerError>(())
        })
        .id("startup_fn")
        .on_probe(|ctx: Context| async move {
            Ok::<_, HandlerError>(json!(ctx.memo().get::<Greeting>().is_some()))
        })
        .id("loaded")
        .on_cleanup(move |_ctx: Context| {
            cleanups.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, HandlerError>(()) }
        })
        .id("cleanup_fn")
        .on_create(|_ex: Arc<KopfExample>, ctx: Context| async move {
            let greeting = ctx.memo().get::<Greeting>().unwrap_or_default();
            Ok::<_, HandlerError>(json!(greeting.0))
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
    async fn startup_fills_the_memo_probes_see_it_and_cleanup_runs_at_a_graceful_stop() {
        let cleanups = Arc::new(AtomicU32::new(0));
        let runner = KopfRunner::new(operator(cleanups.clone())).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "x")).await;
        runner.settle().await;
        let ex: KopfExample = runner.cluster().get("ex1").await;
        assert_eq!(ex.status.unwrap().0["create_fn"], "hello from startup");
        assert_eq!(runner.probe().await["loaded"], true);
        assert_eq!(cleanups.load(Ordering::SeqCst), 0);
        runner.stop().await;
        assert_eq!(cleanups.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_the_creation_handler_runs_once() {
        let expect = Expect { once: vec!["create_fn"], ..Expect::default() };
        let runner = KopfRunner::new(operator(Arc::default())).with_crd::<KopfExample>();
        lifecycle(runner, example("e2e", "x"), &expect).await;
    }
}
