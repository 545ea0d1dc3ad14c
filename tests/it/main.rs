//! Workspace-wide tests: the architecture's rules, and scenarios that cross crates.

mod layering;
