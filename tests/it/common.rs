//! Shared fixtures: Kopf's example resource, as a kopf-rs user declares it.

#![allow(dead_code, unreachable_pub)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `kopfexamples.kopf.dev`, as in Kopf's `examples/crd.yaml`.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(group = "kopf.dev", version = "v1", kind = "KopfExample", namespaced, status = "ExampleStatus")]
#[kube(shortname = "kex")]
pub struct ExampleSpec {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub items: Vec<String>,
}

/// The status: anything (handler results land here), as Kopf's CRD preserves unknown fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(transparent)]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ExampleStatus(pub serde_json::Map<String, serde_json::Value>);

pub fn example(name: &str, field: &str) -> KopfExample {
    let mut ex = KopfExample::new(
        name,
        ExampleSpec { field: field.into(), items: vec!["item1".into(), "item2".into()] },
    );
    ex.metadata.namespace = Some("default".into());
    ex
}

pub fn annotations(ex: &KopfExample) -> std::collections::BTreeMap<String, String> {
    ex.metadata.annotations.clone().unwrap_or_default()
}

pub fn status(ex: &KopfExample) -> serde_json::Value {
    serde_json::Value::Object(ex.status.clone().unwrap_or_default().0)
}
