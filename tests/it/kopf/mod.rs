//! kopf's behaviour, scenario by scenario, on KopfRunner (reference/kopf.md is the specification).

mod activities;
mod admission;
mod compat;
mod contract;
mod daemons;
mod determinism;
mod errors;
mod faults;
mod filtering;
mod fuzz;
mod handling;
mod hierarchies;
mod indexes;
mod live;
mod liveness;
mod memos;
mod peering;
mod posting;
mod python_interop;
mod python_peering;
mod rbac;
mod reliability;
mod settling;
mod sharding;
mod subhandlers;
mod timers;
