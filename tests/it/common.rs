//! Shared fixtures: Kopf's example resource, as the example operator declares it.

#![allow(dead_code, unreachable_pub)]

pub use kopf_examples::kopfexample::{KopfExample, example};

pub fn annotations(ex: &KopfExample) -> std::collections::BTreeMap<String, String> {
    ex.metadata.annotations.clone().unwrap_or_default()
}

pub fn status(ex: &KopfExample) -> serde_json::Value {
    serde_json::Value::Object(ex.status.clone().unwrap_or_default().0)
}
