//! Runnable operators and demos, each with its test.
//!
//! - [`kopfexample`]: Kopf's example operator (create, update, field, timer and delete handlers),
//!   run by the main job on an embedded fake cluster (`cargo run -p kopf-examples --bin demo`) and
//!   as a program against a real one (`--bin kopfexample`).
//! - [`stories`]: whole-operator stories shared by the determinism tests and the benchmarks.
//! - [`reliability`]: an operator driven through random actions, faults and crashes, checked against
//!   its invariants; shared by the property suite and the fault matrix.
//! - [`fake_cluster`]: a kube-runtime controller with a finalizer, against the in-memory
//!   fake-apiserver, on virtual time (`cargo run -p kopf-examples --bin fake-cluster-demo`).

pub mod child_deployment;
pub mod configmap_driven;
pub mod e2e;
pub mod ex01_minimal;
pub mod ex02_children;
pub mod ex03_exceptions;
pub mod ex04_events;
pub mod ex05_handlers;
pub mod ex06_peering;
pub mod ex07_subhandlers;
pub mod ex08_events;
pub mod ex09_testing;
pub mod ex10_builtins;
pub mod ex11_filtering;
pub mod ex12_embedded;
pub mod ex13_hooks;
pub mod ex14_daemons;
pub mod ex15_timers;
pub mod ex16_indexing;
pub mod ex17_admission;
pub mod ex99_all_at_once;
pub mod fake_cluster;
pub mod kopfexample;
pub mod rbac;
pub mod reliability;
pub mod stories;
