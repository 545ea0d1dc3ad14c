//! kopf's behaviour, scenario by scenario, on KopfRunner (reference/kopf.md is the specification).

mod errors;
mod faults;
mod handling;
mod timers;
