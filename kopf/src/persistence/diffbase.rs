//! The diff-base: the object's "essence" as last handled, stored in
//! `kopf.zalando.org/last-handled-configuration` as Kopf stores it (compact Python-style JSON plus a
//! trailing newline). The essence is the body without `apiVersion`, `kind`, `status` and all
//! `metadata` but labels and annotations, without annotations of Kopf-managed prefixes, kubectl's
//! last-applied configuration and the diff-base itself; then handlers' `field=` paths are put back.

use std::io::Write as _;

use serde_json::{Map, Value, json};

use super::conventions::{make_keys, marked_prefixes, store_marker};
use super::pyjson;
use crate::Patch;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Where the diff-base lives (Kopf's `AnnotationsDiffBaseStorage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffBaseStorage {
    /// The annotation prefix.
    pub prefix: String,
    /// The key (`last-handled-configuration`).
    pub key: String,
    /// Also write the V1 key.
    pub v1: bool,
    /// Dotted field paths left out of the essence.
    pub ignored_fields: Vec<String>,
}

impl Default for DiffBaseStorage {
    fn default() -> Self {
        Self {
            prefix: "kopf.zalando.org".into(),
            key: "last-handled-configuration".into(),
            v1: true,
            ignored_fields: Vec::new(),
        }
    }
}

impl DiffBaseStorage {
    /// The essence of a body, with `extra_fields` (dotted paths) restored from it.
    pub fn build(&self, body: &Value, extra_fields: &[Vec<String>]) -> Value {
        let mut essence = Map::new();
        if let Some(top) = body.as_object() {
            for (k, v) in top {
                if !matches!(k.as_str(), "apiVersion" | "kind" | "status" | "metadata") {
                    essence.insert(k.clone(), v.clone());
                }
            }
        }
        let mut meta = Map::new();
        for field in ["labels", "annotations"] {
            if let Some(v) = body["metadata"].get(field) {
                meta.insert(field.to_owned(), v.clone());
            }
        }
        essence.insert("metadata".into(), Value::Object(meta));
        let mut essence = Value::Object(essence);
        let keys: Vec<String> = body["metadata"]["annotations"]
            .as_object()
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default();
        let marked = marked_prefixes(keys.iter().map(String::as_str));
        remove_annotations(&mut essence, |k| {
            k == LAST_APPLIED || k.split_once('/').is_some_and(|(p, _)| marked.contains(p))
        });
        for field in extra_fields {
            cherrypick(body, &mut essence, field);
        }
        remove_empty_stanzas(&mut essence);
        for field in &self.ignored_fields {
            remove_path(&mut essence, &field.split('.').collect::<Vec<_>>());
        }
        let own = make_keys(&self.prefix, &self.key, body, self.v1);
        remove_annotations(&mut essence, |k| own.iter().any(|o| o == k));
        remove_empty_stanzas(&mut essence);
        essence
    }

    /// The stored essence; an unreadable one is logged and treated as absent.
    pub fn fetch(&self, body: &Value) -> Option<Value> {
        for key in make_keys(&self.prefix, &self.key, body, self.v1) {
            if let Some(encoded) = body["metadata"]["annotations"][&key].as_str() {
                match serde_json::from_str::<Value>(encoded) {
                    Ok(v) if v.is_object() => return Some(v),
                    Ok(_) | Err(_) => {
                        tracing::warn!(annotation = %key, "unreadable diff-base; treated as absent")
                    }
                }
            }
        }
        None
    }

    /// Writes the essence into the patch.
    pub fn store(&self, body: &Value, patch: &Patch, essence: &Value) {
        let encoded = format!("{}\n", encode_essence(essence));
        let mut annotations = Map::new();
        for key in make_keys(&self.prefix, &self.key, body, self.v1) {
            annotations.insert(key, Value::String(encoded.clone()));
        }
        patch.merge(json!({"metadata": {"annotations": annotations}}));
        store_marker(&self.prefix, patch, body);
    }
}

/// The essence in Kopf's byte order: the body's other top-level keys first (in the API server's
/// order, which is sorted for custom resources), then `metadata` (labels, then annotations), then
/// the restored `status` fields.
pub(crate) fn encode_essence(essence: &Value) -> String {
    let Some(top) = essence.as_object() else { return pyjson::dumps(essence) };
    let mut out = Vec::new();
    out.push(b'{');
    let mut first = true;
    let mut write = |out: &mut Vec<u8>, k: &str, v: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = write!(out, "{}:{v}", pyjson::dumps(k));
    };
    for (k, v) in top.iter().filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status")) {
        write(&mut out, k, &pyjson::dumps(v));
    }
    if let Some(Value::Object(meta)) = top.get("metadata") {
        let mut m = Vec::new();
        m.push(b'{');
        let mut mfirst = true;
        let order = ["labels", "annotations"];
        let rest = meta.keys().filter(|k| !order.contains(&k.as_str()));
        for k in order.iter().copied().filter(|k| meta.contains_key(*k)).chain(rest.map(String::as_str)) {
            if !mfirst {
                m.push(b',');
            }
            mfirst = false;
            let _ = write!(m, "{}:{}", pyjson::dumps(k), pyjson::dumps(&meta[k]));
        }
        m.push(b'}');
        write(&mut out, "metadata", &String::from_utf8(m).unwrap_or_default());
    }
    if let Some(status) = top.get("status") {
        write(&mut out, "status", &pyjson::dumps(status));
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

fn remove_annotations(essence: &mut Value, remove: impl Fn(&str) -> bool) {
    if let Some(annotations) = essence["metadata"].get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.retain(|k, _| !remove(k));
    }
}

/// Drops empty `metadata.annotations`, `metadata.labels`, `metadata` and `status` (an empty `spec`
/// stays, as in Kopf).
pub(crate) fn remove_empty_stanzas(essence: &mut Value) {
    let empty =
        |v: Option<&Value>| v.is_some_and(|v| v.as_object().is_some_and(Map::is_empty) || v.is_null());
    if let Some(meta) = essence.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["annotations", "labels"] {
            if empty(meta.get(field)) {
                meta.remove(field);
            }
        }
    }
    if let Some(top) = essence.as_object_mut() {
        for field in ["metadata", "status"] {
            if empty(top.get(field)) {
                top.remove(field);
            }
        }
    }
}

fn cherrypick(src: &Value, dst: &mut Value, field: &[String]) {
    let Some(value) = crate::structs::diff::resolve(src, field) else { return };
    let Some((last, parents)) = field.split_last() else { return };
    let mut at = dst;
    for key in parents {
        if !at.get(key).is_some_and(Value::is_object) {
            at[key] = json!({});
        }
        at = &mut at[key];
    }
    at[last] = value.clone();
}

fn remove_path(value: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = value;
    for key in parents {
        match at.get_mut(*key) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(map) = at.as_object_mut() {
        map.remove(*last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_essence_drops_system_fields_and_kopf_annotations() {
        let body = json!({
            "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
            "metadata": {"name": "ex", "uid": "u", "resourceVersion": "5",
                         "labels": {"a": "b"},
                         "annotations": {"x": "y", "kopf.zalando.org/create_fn": "{}", "other.op/kopf-managed": "yes",
                                         "other.op/thing": "z", LAST_APPLIED: "{}",
                                         "kopf.zalando.org/last-handled-configuration": "{}"}},
            "spec": {"field": "v", "items": ["i1"]},
            "status": {"create_fn": {"message": "hi"}},
        });
        let storage = DiffBaseStorage::default();
        let essence = storage.build(&body, &[]);
        assert_eq!(
            essence,
            json!({"spec": {"field": "v", "items": ["i1"]}, "metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}}})
        );
        assert_eq!(
            encode_essence(&essence),
            r#"{"spec":{"field":"v","items":["i1"]},"metadata":{"labels":{"a":"b"},"annotations":{"x":"y"}}}"#
        );
        let with_status = storage.build(&body, &[vec!["status".into(), "create_fn".into()]]);
        assert_eq!(with_status["status"]["create_fn"]["message"], "hi", "handler fields are restored");
    }

    #[test]
    fn the_stored_diff_base_ends_with_a_newline_and_reads_back() {
        let storage = DiffBaseStorage::default();
        let patch = Patch::default();
        let essence = json!({"spec": {"a": 1}});
        storage.store(&json!({}), &patch, &essence);
        let stored =
            patch.snapshot()["metadata"]["annotations"]["kopf.zalando.org/last-handled-configuration"]
                .clone();
        assert_eq!(stored, "{\"spec\":{\"a\":1}}\n");
        let body =
            json!({"metadata": {"annotations": {"kopf.zalando.org/last-handled-configuration": stored}}});
        assert_eq!(storage.fetch(&body), Some(essence));
        let garbage =
            json!({"metadata": {"annotations": {"kopf.zalando.org/last-handled-configuration": "nope"}}});
        assert_eq!(storage.fetch(&garbage), None);
    }
}
