//! Handler progress records, stored in annotations as Kopf stores them: one record per handler
//! under `<prefix>/<safe id>` (V2 and V1 keys), compact Python-style JSON with a fixed key order
//! (`started, stopped, delayed, purpose, retries, success, failure, message, subrefs`), `null`
//! fields omitted. Records are read from the annotations, then from the legacy
//! `status.kopf.progress.<id>`, which is purged but never written (Kopf's "smart" storage).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::conventions::{make_keys, store_marker};
use super::pyjson;
use crate::Patch;

/// One handler's persisted state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRecord {
    /// When the handler was first called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// When it finished (succeeded or failed for good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// When it should run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed: Option<String>,
    /// The reason the record was written for (`create`, `update`, `delete`, `resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Attempts so far (success included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Finished successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// Finished with a permanent failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<bool>,
    /// The last error's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// All descendant sub-handler ids, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subrefs: Option<Vec<String>>,
}

impl ProgressRecord {
    /// The record as Kopf encodes it.
    pub fn encode(&self) -> String {
        pyjson::dumps(self)
    }
}

/// Where progress records live (Kopf's `SmartProgressStorage` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressStorage {
    /// The annotation prefix (`kopf.zalando.org`); the operator identity.
    pub prefix: String,
    /// Also write the V1 keys (Kopf's default during its transition).
    pub v1: bool,
    /// The touch key (`touch-dummy`).
    pub touch_key: String,
    /// Read and purge the legacy `status.kopf.progress` records.
    pub status_fallback: bool,
}

impl Default for ProgressStorage {
    fn default() -> Self {
        Self {
            prefix: "kopf.zalando.org".into(),
            v1: true,
            touch_key: "touch-dummy".into(),
            status_fallback: true,
        }
    }
}

impl ProgressStorage {
    /// Reads a handler's record: the V2 key, the V1 key, then the status fallback. A record that
    /// does not decode is logged and treated as absent.
    pub fn fetch(&self, id: &str, body: &Value) -> Option<ProgressRecord> {
        for key in make_keys(&self.prefix, id, body, self.v1) {
            if let Some(encoded) = body["metadata"]["annotations"][&key].as_str() {
                match serde_json::from_str::<ProgressRecord>(encoded) {
                    Ok(record) => return Some(record),
                    Err(e) => {
                        tracing::warn!(annotation = %key, error = %e, "unreadable progress record; ignored")
                    }
                }
            }
        }
        if self.status_fallback {
            let legacy = &body["status"]["kopf"]["progress"][id];
            if legacy.is_object() {
                return serde_json::from_value(legacy.clone()).ok();
            }
        }
        None
    }

    /// Writes a record into the patch under all its keys.
    pub fn store(&self, id: &str, record: &ProgressRecord, body: &Value, patch: &Patch) {
        let encoded = record.encode();
        let mut annotations = serde_json::Map::new();
        for key in make_keys(&self.prefix, id, body, self.v1) {
            annotations.insert(key, Value::String(encoded.clone()));
        }
        patch.merge(json!({"metadata": {"annotations": annotations}}));
        store_marker(&self.prefix, patch, body);
    }

    /// Removes a record: `null` for keys on the body; keys only in the patch are dropped from it.
    pub fn purge(&self, id: &str, body: &Value, patch: &Patch) {
        for key in make_keys(&self.prefix, id, body, self.v1) {
            purge_at(body, patch, &["metadata", "annotations", &key]);
        }
        if self.status_fallback {
            purge_at(body, patch, &["status", "kopf", "progress", id]);
        }
    }

    /// Sets (or clears with `None`) the touch annotation that provokes a new watch event.
    pub fn touch(&self, body: &Value, patch: &Patch, value: Option<&str>) {
        for key in make_keys(&self.prefix, &self.touch_key, body, self.v1) {
            let current = body["metadata"]["annotations"][&key].as_str();
            if current != value {
                patch.merge(json!({"metadata": {"annotations": {key: value}}}));
                store_marker(&self.prefix, patch, body);
            }
        }
    }

    /// The essence without this storage's own annotations and the legacy status records.
    pub fn clear(&self, essence: &mut Value) {
        let prefix = format!("{}/", self.prefix);
        if let Some(annotations) = essence["metadata"].get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.retain(|k, _| !k.starts_with(&prefix));
        }
        if self.status_fallback
            && let Some(kopf) =
                essence.get_mut("status").and_then(|s| s.get_mut("kopf")).and_then(Value::as_object_mut)
        {
            kopf.remove("progress");
            if kopf.is_empty()
                && let Some(status) = essence.get_mut("status").and_then(Value::as_object_mut)
            {
                status.remove("kopf");
            }
        }
        super::diffbase::remove_empty_stanzas(essence);
    }
}

/// Kopf's purge of one field: `null` if it is on the body, else drop it from the patch.
fn purge_at(body: &Value, patch: &Patch, path: &[&str]) {
    let mut at = body;
    let mut present = true;
    for key in path {
        match at.get(*key) {
            Some(v) => at = v,
            None => {
                present = false;
                break;
            }
        }
    }
    let mut nested = Value::Null;
    if present {
        for key in path.iter().rev() {
            nested = json!({ *key: nested });
        }
        patch.merge(nested);
    } else {
        patch.drop_path(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_encode_in_kopfs_key_order_with_nones_omitted() {
        let record = ProgressRecord {
            started: Some("2026-01-01T00:00:00.000000+00:00".into()),
            delayed: Some("2026-01-01T00:01:00.000000+00:00".into()),
            purpose: Some("create".into()),
            retries: Some(1),
            success: Some(false),
            failure: Some(false),
            message: Some("not yet".into()),
            ..Default::default()
        };
        assert_eq!(
            record.encode(),
            r#"{"started":"2026-01-01T00:00:00.000000+00:00","delayed":"2026-01-01T00:01:00.000000+00:00","purpose":"create","retries":1,"success":false,"failure":false,"message":"not yet"}"#
        );
    }

    #[test]
    fn garbage_records_are_treated_as_absent() {
        let body = json!({"metadata": {"annotations": {"kopf.zalando.org/fn": "{not json"}}});
        assert_eq!(ProgressStorage::default().fetch("fn", &body), None);
    }

    #[test]
    fn purge_nulls_keys_on_the_body_and_drops_keys_only_in_the_patch() {
        let storage = ProgressStorage::default();
        let body = json!({"metadata": {"annotations": {"kopf.zalando.org/a": "{}"}}});
        let patch = Patch::default();
        storage.store("b", &ProgressRecord::default(), &body, &patch);
        storage.purge("a", &body, &patch);
        storage.purge("b", &body, &patch);
        assert_eq!(patch.snapshot(), json!({"metadata": {"annotations": {"kopf.zalando.org/a": null}}}));
    }

    #[test]
    fn a_custom_prefix_writes_the_kopf_managed_marker() {
        let storage = ProgressStorage { prefix: "my-op.example.com".into(), ..Default::default() };
        let patch = Patch::default();
        storage.store("fn", &ProgressRecord::default(), &json!({}), &patch);
        assert_eq!(patch.snapshot()["metadata"]["annotations"]["my-op.example.com/kopf-managed"], "yes");
    }
}
