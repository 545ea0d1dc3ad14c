//! Runnable operators and demos, each with its test.
//!
//! - [`fake_cluster`]: a kube-runtime controller with a finalizer, against the in-memory
//!   fake-apiserver, on virtual time (`cargo run -p kopf-examples --bin fake-cluster-demo`).

pub mod fake_cluster;
