//! The main job: the example operator against an embedded fake cluster, on virtual time, with no
//! real cluster needed: `cargo run -p kopf-examples --bin demo`. It creates, changes and deletes a
//! few objects over an hour of the operator's life and prints what happened.

use std::time::Duration;

use kopf_examples::kopfexample::{KopfExample, example, operator};
use kopf_testing::KopfRunner;
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    let started = std::time::Instant::now();
    let (timeline, status) = runtime.block_on(async {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().seed(1).start().await;
        runner.cluster().create(example("ex1", "world")).await;
        runner.cluster().create(example("ex2", "kopf")).await;
        runner.advance(Duration::from_secs(90)).await;
        runner
            .cluster()
            .patch::<KopfExample>("ex1", json!({"spec": {"field": "rust", "items": ["item1"]}}))
            .await;
        runner.advance(Duration::from_secs(30 * 60)).await;
        runner.cluster().delete::<KopfExample>("ex2").await;
        runner.advance(Duration::from_secs(30 * 60)).await;
        let ex1: KopfExample = runner.cluster().get("ex1").await;
        let timeline = runner.timeline().to_string();
        runner.stop().await;
        anyhow::Ok((timeline, serde_json::to_string_pretty(&ex1.status)?))
    })?;
    println!("What the operator did (virtual time, kind, details):");
    println!("{timeline}");
    println!("ex1's status after an hour:\n{status}");
    println!("An hour of the operator's life in {:?} of wall time.", started.elapsed());
    Ok(())
}
