//! kopf's behaviour, scenario by scenario, on KopfRunner (reference/kopf.md is the specification).

mod contract;
mod determinism;
mod errors;
mod faults;
mod filtering;
mod handling;
mod settling;
mod timers;
