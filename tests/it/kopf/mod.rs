//! kopf's behaviour, scenario by scenario, on KopfRunner (reference/kopf.md is the specification).

mod handling;
