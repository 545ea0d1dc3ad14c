//! Conformance of fake-apiserver through `kube::Client`: one test per behaviour of the real API
//! server, each named after it (reference/kubernetes-apiserver.md, rows R1–R29).

mod common;

mod apply;
mod binary;
mod crds;
mod crud;
mod deletion;
mod dryrun;
mod errors;
mod faults;
mod http_front;
mod http_fuzz;
mod lists;
mod model;
mod patches;
mod runtime;
mod subresources;
mod validation;
mod watches;
