//! What a KopfRunner test costs in wall time, on the shared stories of `kopf_examples::stories`:
//!
//! - the median of a create → update → delete story (a fresh fake cluster and operator each run),
//!   through the direct adapter and through `KubeApiClient` over the fake's tower Service;
//! - a virtual day (`advance(24 h)`) of a one-minute timer on 10 objects (14,400 timer runs), with a
//!   timer that returns nothing, one that returns the same small result every run (stored once,
//!   then found already stored: no request), and one whose result changes every run (a status patch
//!   per run);
//! - determinism: the stormy story (retries, a timer, scripted and seeded-random faults) run 1,000
//!   times with one seed, and the count of distinct timelines (must be 1).
//!
//! `cargo run --release -p kopf-bench --bin kopf-runner-bench [RUNS] [SECTION...]`: RUNS for the
//! median (default 200); SECTIONs among `story`, `timers` (or one of `timers-none`, `timers-same`,
//! `timers-changing`), `determinism` (default: all).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kopf_examples::stories::{self, TimerResults};
use kopf_testing::Adapter;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(200);
    let sections: Vec<String> = std::env::args().skip(2).collect();
    let wanted = |section: &str| sections.is_empty() || sections.iter().any(|s| s == section);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    runtime.block_on(async {
        let adapters = [("direct", Adapter::Direct), ("kube-client", Adapter::KubeClient)];
        for (name, adapter) in adapters.into_iter().filter(|_| wanted("story")) {
            let mut samples = Vec::with_capacity(runs);
            for _ in 0..runs {
                let started = Instant::now();
                let handled = stories::create_update_delete(adapter).await;
                samples.push(started.elapsed());
                assert_eq!(handled, 3, "create, update and delete handlers ran once each");
            }
            println!("create → update → delete, {name:<11}: median {:?} over {runs} runs", median(samples));
        }
        let modes = [
            (TimerResults::None, "none", "no results"),
            (TimerResults::Same, "same", "same result"),
            (TimerResults::Changing, "changing", "changing result"),
        ];
        let modes =
            modes.into_iter().filter(|(_, key, _)| wanted("timers") || wanted(&format!("timers-{key}")));
        for (results, _, what) in modes {
            let started = Instant::now();
            let ran = stories::timer_day(10, results).await;
            println!(
                "advance(24 h), 1-min timer × 10 objects, {what:<15}: {ran} runs in {:?}",
                started.elapsed()
            );
        }
        if !wanted("determinism") {
            return;
        }
        let started = Instant::now();
        let mut timelines = BTreeSet::new();
        for _ in 0..1000 {
            timelines.insert(stories::stormy(7).await);
        }
        println!(
            "stormy story × 1000 (seed 7): {} distinct timeline(s) in {:?}",
            timelines.len(),
            started.elapsed()
        );
    });
    Ok(())
}
