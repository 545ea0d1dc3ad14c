//! Daemons and timers at scale, on virtual time: N objects (default 10,000), each with a daemon
//! that patches a counter into its status every 60 s and a 60 s timer that returns a small result,
//! over one virtual hour (`kopf_examples::stories::busy_hour`). Prints the wall time, the peak
//! resident memory of the process (`VmHWM`), the heap traffic and what ran.
//!
//! `cargo run --release -p kopf-bench --bin kopf-engines-bench [N]`

use std::alloc::System;
use std::time::Instant;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() -> anyhow::Result<()> {
    let objects: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    let hour = runtime.block_on(kopf_examples::stories::busy_hour(objects));
    let wall = started.elapsed();
    let stats = region.change();
    println!("{objects} objects × (daemon patching every 60 s + 60 s timer), one virtual hour:");
    println!("  wall time {wall:.2?}");
    println!(
        "  timer runs {}, daemon patches {}, changes stored {}",
        hour.timer_runs, hour.daemon_patches, hour.changes
    );
    println!("  peak resident memory {}", peak_rss().unwrap_or_else(|| "unknown".into()));
    println!(
        "  heap allocated {:.0} MB in total, {:.0} MB still held at the end",
        stats.bytes_allocated as f64 / 1e6,
        (stats.bytes_allocated as f64 - stats.bytes_deallocated as f64) / 1e6
    );
    Ok(())
}

/// The process's peak resident set (Linux's `VmHWM`).
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_owned())
}
