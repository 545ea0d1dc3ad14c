//! Conformance of fake-apiserver through `kube::Client`: one test per behaviour of the real API
//! server, each named after it (reference/kubernetes-apiserver.md, rows R1–R29).

mod common;
mod external;
mod raw;

mod admission;
mod apply;
mod binary;
mod crds;
mod crud;
mod deletion;
mod discovery;
mod dryrun;
mod errors;
mod faults;
mod http_front;
mod http_fuzz;
mod kubectl;
mod lists;
mod live;
mod metadata;
mod model;
mod openapi;
mod patches;
mod python_client;
mod python_kopf;
mod rbac;
mod runtime;
mod shards;
mod subresources;
mod tables;
mod validation;
mod watches;
