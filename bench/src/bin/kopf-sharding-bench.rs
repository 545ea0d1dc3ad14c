//! Scale-out by sharded list and watch: four replicas of one operator on one fake cluster, each
//! with `settings.watching.shard_selectors` set to its quarter of the uid hash space
//! (`kopf::Shard`), against the same four replicas on a server without the `ShardedListAndWatch`
//! feature gate (every replica receives and decodes every event), and one replica alone.
//!
//! Each run creates N KopfExamples, lets the replicas handle them (a create handler), then changes
//! every object's spec once (an update handler), through `KubeApiClient` over the fake's tower
//! Service, so every event a replica receives is JSON it decodes. Printed per mode:
//!
//! - the events each replica received (listed objects and watch events reaching its workers),
//! - the handler runs in total and the objects handled,
//! - wall time and CPU time (this process, from `/proc/self/stat`), and objects handled (created
//!   and updated) per second of each; other load on the machine skews the wall-clock rate only.
//!
//! All replicas share one thread (KopfRunner's current-thread runtime on a paused clock), so the
//! per-second figures measure the total work the cluster of replicas does, not parallel speed-up.
//!
//! `cargo run --release -p kopf-bench --bin kopf-sharding-bench [N]` (default N = 2000).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use kopf::{Context, HandlerError, Operator, Shard};
use kopf_examples::kopfexample::{KopfExample, example};
use kopf_testing::{Adapter, KopfRunner};
use serde_json::json;

const REPLICAS: u64 = 4;

/// One replica: a create and an update handler that count their runs.
fn replica(shard: Option<Shard>, runs: &Arc<AtomicUsize>) -> Operator {
    let (on_create, on_update) = (runs.clone(), runs.clone());
    Operator::new()
        .on_create(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let runs = on_create.clone();
            async move {
                runs.fetch_add(1, Ordering::Relaxed);
                Ok::<_, HandlerError>(json!({"seen": true}))
            }
        })
        .id("create_fn")
        .on_update(move |_ex: Arc<KopfExample>, _ctx: Context| {
            let runs = on_update.clone();
            async move {
                runs.fetch_add(1, Ordering::Relaxed);
                Ok::<_, HandlerError>(())
            }
        })
        .id("update_fn")
        .settings(move |s| {
            if let Some(shard) = shard {
                s.watching.shard_selectors.insert_everything(shard.selector());
            }
        })
}

struct Figures {
    events: BTreeMap<String, usize>,
    runs: usize,
    handled: usize,
    seconds: f64,
    cpu_seconds: Option<f64>,
    warnings: usize,
}

async fn run(n: usize, replicas: u64, sharded: bool, gate: bool) -> Figures {
    let runs = Arc::new(AtomicUsize::new(0));
    let shard = |i: u64| sharded.then(|| Shard::new(i, replicas).expect("a valid shard"));
    let runner = KopfRunner::new(replica(shard(0), &runs))
        .with_crd::<KopfExample>()
        .adapter(Adapter::KubeClient)
        .journal(0)
        .seed(5)
        .configure_server(move |server| server.sharded_list_and_watch(gate))
        .start()
        .await;
    let mut others = Vec::new();
    for i in 1..replicas {
        others.push(runner.spawn_operator(&format!("replica-{i}"), replica(shard(i), &runs)).await);
    }
    runner.settle().await;
    let (started, cpu_before) = (Instant::now(), kopf_bench::cpu_time());
    for i in 0..n {
        runner.cluster().create(example(&format!("ex{i:05}"), "a")).await;
    }
    runner.settle().await;
    for i in 0..n {
        runner.cluster().patch::<KopfExample>(&format!("ex{i:05}"), json!({"spec": {"field": "b"}})).await;
    }
    runner.settle().await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds =
        kopf_bench::cpu_time().zip(cpu_before).map(|(after, before)| (after - before).as_secs_f64());

    let mut events = BTreeMap::new();
    for entry in runner.timeline().of_kind("watch") {
        let who = match entry.text.strip_prefix('[') {
            Some(rest) => rest.split_once(']').map_or("?", |(label, _)| label).to_owned(),
            None => "replica-0".to_owned(),
        };
        *events.entry(who).or_insert(0) += 1;
    }
    let stored: Vec<KopfExample> = runner.cluster().list().await;
    let handled = stored
        .iter()
        .filter(|ex| {
            let status = serde_json::to_value(&ex.status).unwrap_or_default();
            !status["create_fn"].is_null()
        })
        .count();
    let warnings = runner.timeline().of_kind("warning").len();
    drop(others);
    runner.stop().await;
    Figures { events, runs: runs.load(Ordering::Relaxed), handled, seconds, cpu_seconds, warnings }
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    runtime.block_on(async {
        println!("{n} KopfExamples created, then each updated once; KubeApiClient over the tower Service");
        let modes = [
            ("4 replicas, sharded (feature gate on)", REPLICAS, true, true),
            ("4 replicas, not sharded (feature gate off)", REPLICAS, true, false),
            ("1 replica", 1, false, true),
        ];
        for (name, replicas, sharded, gate) in modes {
            let f = run(n, replicas, sharded, gate).await;
            let per_replica: Vec<String> = f.events.iter().map(|(who, count)| format!("{who} {count}")).collect();
            println!("{name}:");
            println!("  events received per replica: {}", per_replica.join(", "));
            println!(
                "  events received in total: {} ({:.2} per object per replica on average)",
                f.events.values().sum::<usize>(),
                f.events.values().sum::<usize>() as f64 / (n as f64 * replicas as f64)
            );
            println!(
                "  handler runs: {} (create + update once per object would be {}), objects handled: {}, unsharded-list warnings: {}",
                f.runs,
                2 * n,
                f.handled,
                f.warnings
            );
            let cpu = f.cpu_seconds.map_or("CPU time unknown".to_owned(), |cpu| {
                format!("CPU {cpu:.2} s: {:.0} per CPU-second", f.handled as f64 / cpu)
            });
            println!(
                "  objects handled (created + updated): wall {:.2} s: {:.0} per second; {cpu}",
                f.seconds,
                f.handled as f64 / f.seconds
            );
        }
    });
    Ok(())
}
