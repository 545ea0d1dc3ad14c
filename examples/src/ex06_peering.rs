//! 06 — peering: several replicas of one operator, only one of them at work. Each replica keeps a
//! record with its priority in the peering object (`ClusterKopfPeering` named `example`, Kopf's
//! format); a replica pauses while a higher-priority one is alive and takes over when that one
//! leaves, or when its record expires after a crash (the lifetime, 60 s by default). The cluster
//! needs the peering CRDs and the object (`kopf::peering::crds()` and
//! `kopf::peering::object("example", None)`; under KopfRunner, [`with_peering`]); then run two
//! replicas, e.g.
//! `example 06-peering --priority 100` and `example 06-peering --priority 50`.

use std::sync::Arc;

use kopf::{Context, HandlerError, Operator};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The peering object the replicas share.
pub const PEERING: &str = "example";

/// The operator as a program runs it: its priority from `--priority`, its name in the results
/// from the `HOSTNAME` of its Pod.
pub fn operator() -> Operator {
    let name = std::env::var("HOSTNAME").unwrap_or_else(|_| "operator".into());
    replica(&name, 0)
}

/// One replica named `name` with `priority`: its creation handler stores who handled the object.
pub fn replica(name: &str, priority: i64) -> Operator {
    let name = name.to_owned();
    Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let name = name.clone();
            async move { Ok::<_, HandlerError>(json!({"handled_by": name})) }
        })
        .id("create_fn")
        .settings(move |s| {
            // As `--peering example`: without its peering object the replica waits, not runs alone.
            s.peering.name = PEERING.into();
            s.peering.mandatory = true;
            s.peering.priority = priority;
        })
}

/// `runner` with the peering CRDs and the `example` peering object.
pub fn with_peering(runner: kopf_testing::KopfRunner) -> kopf_testing::KopfRunner {
    runner.with_peering_crds().with_objects([kopf::peering::object(PEERING, None)])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kopf_testing::{KopfRunner, Runner};

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    /// A runner with the example and peering CRDs and the peering object, whose own operator stays
    /// out of the way (no handlers, standalone): the replicas are spawned on it.
    fn cluster() -> KopfRunner {
        peered(Operator::new().settings(|s| s.peering.standalone = true))
    }

    /// A runner of `operator` with the example and peering CRDs and the peering object.
    fn peered(operator: Operator) -> KopfRunner {
        with_peering(KopfRunner::new(operator).with_crd::<KopfExample>())
    }

    fn handled_by(runner: &Runner, name: &str) -> Option<String> {
        let ex = runner.cluster().peek::<KopfExample>(name)?;
        ex.status?.0.get("create_fn")?["handled_by"].as_str().map(str::to_owned)
    }

    #[tokio::test(start_paused = true)]
    async fn the_higher_priority_replica_works_and_the_lower_takes_over_after_it_crashes() {
        let runner = cluster().start().await;
        let mut first = runner.spawn_operator("first", replica("first", 100)).await;
        let _second = runner.spawn_operator("second", replica("second", 50)).await;
        runner.settle().await;

        runner.cluster().create(example("ex1", "a")).await;
        runner.settle().await;
        assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("first"));

        // The first replica crashes: its record lives on until it expires, and nobody works meanwhile.
        first.crash().await;
        let crashed = runner.elapsed();
        runner.cluster().create(example("ex2", "b")).await;
        runner.settle().await;
        assert_eq!(handled_by(&runner, "ex2"), None, "paused while the crashed replica's record lives");
        runner
            .wait_for(|_| handled_by(&runner, "ex2").is_some(), Duration::from_secs(120))
            .await
            .expect("the second replica takes over");
        assert!(runner.elapsed() - crashed <= Duration::from_secs(60), "within the record's lifetime");
        assert_eq!(handled_by(&runner, "ex2").as_deref(), Some("second"));
        assert_eq!(handled_by(&runner, "ex1").as_deref(), Some("first"), "ex1 is not handled again");
    }

    #[tokio::test(start_paused = true)]
    async fn without_its_peering_object_a_replica_waits_instead_of_running_alone() {
        let runner = KopfRunner::new(Operator::new().settings(|s| s.peering.standalone = true))
            .with_crd::<KopfExample>()
            .start()
            .await;
        let _replica = runner.spawn_operator("alone", replica("alone", 100)).await;
        runner.cluster().create(example("ex1", "a")).await;
        runner.settle().await;
        runner.advance(Duration::from_secs(300)).await;
        assert_eq!(handled_by(&runner, "ex1"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_the_creation_handler_runs_once() {
        let expect = Expect { once: vec!["create_fn"], ..Expect::default() };
        let runner = peered(replica("only", 0));
        lifecycle(runner, example("e2e", "x"), &expect).await;
    }
}
