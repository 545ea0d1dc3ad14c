//! The patch a handler (and the framework) fills during a cycle: a JSON merge patch, plus
//! transforms of the freshest body that become RFC 6902 operations guarded by the resourceVersion
//! (Kopf's `Patch.fns`). Setting a field to `null` deletes it.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

/// A transform of the object, turned into JSON-patch operations when applied.
pub(crate) type PatchFn = Arc<dyn Fn(&mut Value) + Send + Sync>;

#[derive(Default)]
pub(crate) struct PatchData {
    pub(crate) merge: Map<String, Value>,
    pub(crate) fns: Vec<PatchFn>,
}

impl std::fmt::Debug for PatchData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchData").field("merge", &self.merge).field("fns", &self.fns.len()).finish()
    }
}

/// The pending changes to an object, shared by the handlers of one cycle. Cheap to clone.
///
/// ```
/// let patch = kopf::Patch::default();
/// patch.set("status.phase", serde_json::json!("Ready"));
/// patch.merge(serde_json::json!({"metadata": {"labels": {"handled": "yes"}}}));
/// assert_eq!(patch.snapshot()["status"]["phase"], "Ready");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Patch {
    inner: Arc<Mutex<PatchData>>,
}

impl Patch {
    fn lock(&self) -> std::sync::MutexGuard<'_, PatchData> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deep-merges a merge patch into the pending one (`null` deletes a field).
    pub fn merge(&self, value: Value) {
        if let Value::Object(src) = value {
            merge_into(&mut self.lock().merge, src);
        }
    }

    /// Sets a field by its dotted path (`status.phase`).
    pub fn set(&self, path: &str, value: Value) {
        let mut nested = value;
        for key in path.split('.').rev() {
            let mut map = Map::new();
            map.insert(key.to_owned(), nested);
            nested = Value::Object(map);
        }
        self.merge(nested);
    }

    /// Deletes a field by its dotted path.
    pub fn remove(&self, path: &str) {
        self.set(path, Value::Null);
    }

    /// Adds a transform of the freshest body, applied as JSON-patch operations guarded by the
    /// object's resourceVersion (retried on the next cycle if the object changed meanwhile).
    pub fn transform(&self, f: impl Fn(&mut Value) + Send + Sync + 'static) {
        self.lock().fns.push(Arc::new(f));
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        let data = self.lock();
        data.merge.is_empty() && data.fns.is_empty()
    }

    /// The pending merge patch.
    pub fn snapshot(&self) -> Value {
        Value::Object(self.lock().merge.clone())
    }

    pub(crate) fn take(&self) -> PatchData {
        std::mem::take(&mut *self.lock())
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&Map<String, Value>) -> R) -> R {
        f(&self.lock().merge)
    }

    /// Drops a pending field (not a deletion: it is simply not sent).
    pub(crate) fn drop_path(&self, path: &[&str]) {
        let mut data = self.lock();
        let Some((last, parents)) = path.split_last() else { return };
        let mut at = &mut data.merge;
        for key in parents {
            match at.get_mut(*key).and_then(Value::as_object_mut) {
                Some(next) => at = next,
                None => return,
            }
        }
        at.remove(*last);
    }
}

/// Merges merge-patch `src` into `target`, keeping `null`s (they are deletions to send).
pub(crate) fn merge_into(target: &mut Map<String, Value>, src: Map<String, Value>) {
    for (key, value) in src {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => merge_into(existing, incoming),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merges_accumulate_and_keep_nulls_as_deletions() {
        let patch = Patch::default();
        patch.merge(json!({"status": {"a": 1, "b": {"c": 1}}}));
        patch.merge(json!({"status": {"b": {"d": 2}, "gone": null}}));
        patch.remove("metadata.annotations.x");
        assert_eq!(
            patch.snapshot(),
            json!({"status": {"a": 1, "b": {"c": 1, "d": 2}, "gone": null}, "metadata": {"annotations": {"x": null}}})
        );
        assert!(!patch.is_empty());
    }
}
