//! Benchmark binaries for kopf-rs; each prints its figures. Run them with `--release`:
//!
//! - `cargo run --release -p kopf-bench --bin fake-apiserver-bench` — the fake API server's
//!   throughput (core and through `kube::Client`), watch fan-out and memory.
