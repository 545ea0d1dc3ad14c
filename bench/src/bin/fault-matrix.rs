//! The fault matrix: every fault kind of `kopf_examples::reliability` alone, and all of them at once,
//! × SEEDS seeded scenarios (random user actions on a create/update/delete/daemon/timer operator,
//! then a quiet phase), each checked against the operator's invariants. Prints a table (runs,
//! violations, re-runs of handlers whose success was not stored, by cause) and the harness's
//! throughput in seeded operator runs per minute, on as many threads as cores (each its own
//! paused current-thread runtime).
//!
//! `cargo run --release -p kopf-bench --bin fault-matrix [SEEDS] [THREADS]` (defaults: 100, the
//! cores). A violating seed is listed with its first violations and the command that replays it
//! with the timeline. Exits with 1 if any run broke an invariant.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kopf_examples::reliability::{self, FaultKind, Report, RunOptions};

/// One row of the matrix: a kind alone, or all kinds together.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    kinds: Vec<FaultKind>,
    env: String,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    runs: u64,
    violating_runs: u64,
    violations: u64,
    reruns_after_crash: u64,
    reruns_after_restart: u64,
    reruns_after_failed_patch: u64,
    handler_runs: u64,
    faults: u64,
    watches: u64,
    virtual_time: Duration,
    failures: Vec<(u64, Vec<String>)>,
}

impl Tally {
    fn add(&mut self, seed: u64, report: Report) {
        self.runs += 1;
        self.violations += report.violations.len() as u64;
        if !report.violations.is_empty() {
            self.violating_runs += 1;
            self.failures.push((seed, report.violations.into_iter().take(3).collect()));
        }
        self.reruns_after_crash += report.reruns_after_crash;
        self.reruns_after_restart += report.reruns_after_restart;
        self.reruns_after_failed_patch += report.reruns_after_failed_patch;
        self.handler_runs += report.handler_runs;
        self.faults += report.faults;
        self.watches += report.watches;
        self.virtual_time += report.virtual_time;
    }
}

fn main() -> anyhow::Result<()> {
    let seeds: u64 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(100);
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let threads: usize = std::env::args().nth(2).map(|n| n.parse()).transpose()?.unwrap_or(cores);
    let mut rows: Vec<Row> = FaultKind::ALL
        .into_iter()
        .map(|k| Row { name: k.name().to_owned(), kinds: vec![k], env: format!("{k:?}") })
        .collect();
    rows.push(Row { name: "all at once".to_owned(), kinds: FaultKind::ALL.to_vec(), env: "all".to_owned() });
    let jobs: Vec<(usize, u64)> = (0..rows.len()).flat_map(|r| (0..seeds).map(move |s| (r, s))).collect();
    let tallies: Vec<Mutex<Tally>> = rows.iter().map(|_| Mutex::default()).collect();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .expect("a paused current-thread runtime");
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(row, seed)) = jobs.get(i) else { break };
                    let scenario = reliability::scenario_from_seed(seed, &rows[row].kinds);
                    let report = runtime.block_on(reliability::run(&scenario, RunOptions::default()));
                    tallies[row].lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(seed, report);
                }
            });
        }
    });
    let wall = started.elapsed();
    let tallies: Vec<Tally> = tallies
        .into_iter()
        .map(|t| t.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
        .collect();

    println!("fault matrix: {seeds} seeds per row, {threads} thread(s)\n");
    println!(
        "| fault kind      | runs | violating runs | violations | re-runs after crash | after restart | after failed patch | handler runs | faults injected | watches opened | virtual time |"
    );
    println!(
        "|-----------------|-----:|---------------:|-----------:|--------------------:|--------------:|-------------------:|-------------:|----------------:|---------------:|-------------:|"
    );
    let mut total = Tally::default();
    for (row, t) in rows.iter().zip(&tallies) {
        println!(
            "| {:<15} | {:>4} | {:>14} | {:>10} | {:>19} | {:>13} | {:>18} | {:>12} | {:>15} | {:>14} | {:>10.1} h |",
            row.name,
            t.runs,
            t.violating_runs,
            t.violations,
            t.reruns_after_crash,
            t.reruns_after_restart,
            t.reruns_after_failed_patch,
            t.handler_runs,
            t.faults,
            t.watches,
            t.virtual_time.as_secs_f64() / 3600.0
        );
        total.runs += t.runs;
        total.violating_runs += t.violating_runs;
        total.violations += t.violations;
    }
    let per_minute = total.runs as f64 / wall.as_secs_f64() * 60.0;
    println!(
        "\n{} runs, {} violating, {} violations in {:.1} s: {:.0} seeded operator runs per minute",
        total.runs,
        total.violating_runs,
        total.violations,
        wall.as_secs_f64(),
        per_minute
    );
    let mut failed = false;
    for (row, t) in rows.iter().zip(&tallies) {
        for (seed, violations) in &t.failures {
            failed = true;
            println!(
                "\n{} seed {seed}:\n  {}\n  replay: RELIABILITY_SEED={seed} RELIABILITY_KINDS={} cargo test -p kopf-tests --test it reliability::a_seed -- --nocapture",
                row.name,
                violations.join("\n  "),
                row.env
            );
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
