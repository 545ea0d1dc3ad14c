//! 08 — raw events: a handler for every watch event of an object, with no progress kept and no
//! retries — for observing, not for changing. Here it counts the events it sees by type in a
//! shared log the program (or the test) can read.

use std::sync::{Arc, Mutex};

use kopf::{Body, Context, HandlerError, Operator};

use crate::kopfexample::KopfExample;

/// What the event handler saw: `(event type, object name)`, in order.
pub type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// The operator, writing to `seen`.
pub fn operator(seen: Seen) -> Operator {
    Operator::new()
        .on_event(move |_ex: Arc<KopfExample>, ctx: Context| {
            let entry =
                (ctx.event_type().unwrap_or("?").to_owned(), ctx.name().unwrap_or_default().to_owned());
            seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(entry);
            async { Ok::<_, HandlerError>(()) }
        })
        .id("event_fn")
        // Untyped objects work the same way: here, every Pod's events are only logged.
        .on_event(|pod: Arc<Body>, ctx: Context| async move {
            ctx.debug(format!("pod event {:?} for {}", ctx.event_type(), pod["metadata"]["name"]));
            Ok::<_, HandlerError>(())
        })
        .resource("v1/pods")
        .id("pod_event_fn")
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;
    use serde_json::json;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    #[tokio::test(start_paused = true)]
    async fn every_watch_event_reaches_the_handler_in_order_and_nothing_is_written_to_the_object() {
        let seen = Seen::default();
        let runner = KopfRunner::new(operator(seen.clone())).with_crd::<KopfExample>().start().await;
        runner.cluster().create(example("ex1", "one")).await;
        runner.settle().await;
        runner.cluster().patch::<KopfExample>("ex1", json!({"spec": {"field": "two"}})).await;
        runner.settle().await;
        runner.cluster().delete::<KopfExample>("ex1").await;
        runner.settle().await;
        let seen = seen.lock().unwrap().clone();
        let types: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"], "no patches of its own, so no echoes");
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_the_event_handler_only_observes() {
        let expect = Expect { repeated: vec!["event_fn"], ..Expect::default() };
        let runner = KopfRunner::new(operator(Seen::default())).with_crd::<KopfExample>();
        let report = lifecycle(runner, example("e2e", "x"), &expect).await;
        assert_eq!(report.runs("event_fn", "default/e2e").successes, 2, "ADDED and DELETED");
    }
}
