//! Workspace-wide tests: the architecture's rules, and operator scenarios across crates (kopf on
//! kopf-testing on fake-apiserver), named after Kopf's documented behaviour.

mod common;
mod kopf;
mod layering;
