//! Benchmark binaries for kopf-rs; each prints its figures. Run them with `--release`:
//!
//! - `cargo run --release -p kopf-bench --bin fake-apiserver-bench` — the fake API server's
//!   throughput (core and through `kube::Client`), watch fan-out and memory.
//! - `cargo run --release -p kopf-bench --bin kopf-sharding-bench` — four replicas sharing the
//!   objects by sharded list and watch against four that each receive everything, and one alone.
//! - `bench/run.sh` — kopf-rs, Python Kopf and a bare kube-runtime controller side by side on
//!   `fake-apiserver serve` ([`compare`], bin `bench-compare`).

pub mod compare;

use std::time::Duration;

/// CPU time of this process so far (user + system, all threads), from `/proc/self/stat`; `None`
/// where there is no procfs. Other load on the machine skews wall-clock rates, not this.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (which may hold spaces) come "state" and the rest; utime and stime
    // are fields 14 and 15 of the line, in clock ticks of 1/100 s.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
