//! Workspace-wide integration and conformance tests live in `it/`.
