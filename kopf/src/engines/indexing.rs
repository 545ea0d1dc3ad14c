//! Indexes (Kopf's `@kopf.index`): in-memory maps over one or many resources, built by index
//! handlers from every event and handed to every handler through [`crate::Context::index`].
//!
//! What an index handler returns goes into its index: a JSON object adds each of its values under
//! its key; any other value is stored under the key `null`; `None` keeps what the object had. An
//! object's entries are replaced on each event and removed when it is deleted, so the index stays
//! exact. Handlers other than indexers wait until every indexed resource has been listed and every
//! listed object indexed once (Kopf's readiness barrier).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::watch;

/// An object's identity in an index: namespace, name, uid.
pub(crate) type ObjectKey = (String, String, String);

#[derive(Debug, Default)]
struct IndexData {
    /// Key → the values objects put under it.
    stores: BTreeMap<String, BTreeMap<ObjectKey, Value>>,
    /// Object → the keys it has entries under.
    keys_of: BTreeMap<ObjectKey, BTreeSet<String>>,
    /// Objects excluded for good (an indexer failed permanently on them).
    excluded: BTreeSet<ObjectKey>,
}

/// One index: a map from keys to the values objects put there. Cheap to clone; reads are live.
///
/// ```
/// # fn demo(ctx: &kopf::Context) {
/// if let Some(by_app) = ctx.index("pods_by_app") {
///     let web_pods = by_app.get("web"); // the values indexed under "web"
///     println!("{} pods for web, {} apps", web_pods.len(), by_app.len());
/// }
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Index {
    data: Arc<RwLock<IndexData>>,
}

/// The key under which non-object results are stored (Kopf's `None` key).
const NULL_KEY: &str = "\u{0}null";

impl Index {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, IndexData> {
        self.data.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, IndexData> {
        self.data.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The values under `key`, ordered by object (namespace, name, uid); empty if none.
    pub fn get(&self, key: &str) -> Vec<Value> {
        self.read().stores.get(key).map(|s| s.values().cloned().collect()).unwrap_or_default()
    }

    /// The values stored under the `null` key (results that were not JSON objects).
    pub fn get_null(&self) -> Vec<Value> {
        self.get(NULL_KEY)
    }

    /// Whether any value is under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.read().stores.contains_key(key)
    }

    /// The keys that have values, in order (the `null` key is not listed).
    pub fn keys(&self) -> Vec<String> {
        self.read().stores.keys().filter(|k| *k != NULL_KEY).cloned().collect()
    }

    /// How many keys have values.
    pub fn len(&self) -> usize {
        self.read().stores.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.read().stores.is_empty()
    }

    /// Everything, as key → values.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<Value>> {
        self.read().stores.iter().map(|(k, s)| (k.clone(), s.values().cloned().collect())).collect()
    }

    /// Replaces an object's entries with what its indexer returned.
    pub(crate) fn replace(&self, object: &ObjectKey, result: &Value) {
        let mut data = self.write();
        if data.excluded.contains(object) {
            return;
        }
        Self::remove_locked(&mut data, object);
        let entries: Vec<(String, Value)> = match result {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            other => vec![(NULL_KEY.to_owned(), other.clone())],
        };
        for (key, value) in entries {
            data.stores.entry(key.clone()).or_default().insert(object.clone(), value);
            data.keys_of.entry(object.clone()).or_default().insert(key);
        }
    }

    /// Removes an object's entries (it is gone, or its indexer failed); `exclude` keeps it out.
    pub(crate) fn remove(&self, object: &ObjectKey, exclude: bool) {
        let mut data = self.write();
        Self::remove_locked(&mut data, object);
        if exclude {
            data.excluded.insert(object.clone());
        } else {
            data.excluded.remove(object);
        }
    }

    fn remove_locked(data: &mut IndexData, object: &ObjectKey) {
        for key in data.keys_of.remove(object).unwrap_or_default() {
            if let Some(store) = data.stores.get_mut(&key) {
                store.remove(object);
                if store.is_empty() {
                    data.stores.remove(&key);
                }
            }
        }
    }
}

/// All indexes of an operator, by indexer id, and the readiness barrier.
#[derive(Debug, Clone)]
pub(crate) struct Indexes {
    by_id: Arc<BTreeMap<String, Index>>,
    barrier: Arc<Barrier>,
}

#[derive(Debug)]
struct Barrier {
    /// (streams not listed yet, listed objects not indexed yet).
    pending: std::sync::Mutex<(usize, usize)>,
    ready: watch::Sender<bool>,
}

impl Indexes {
    /// Indexes for these indexer ids; not ready until [`Indexes::expect_streams`] says how many
    /// streams must list first (if there are indexers at all).
    pub(crate) fn new(ids: impl IntoIterator<Item = String>) -> Self {
        let by_id: BTreeMap<String, Index> = ids.into_iter().map(|id| (id, Index::default())).collect();
        let (ready, _) = watch::channel(by_id.is_empty());
        Self { by_id: Arc::new(by_id), barrier: Arc::new(Barrier { pending: (0, 0).into(), ready }) }
    }

    /// How many streams of indexed resources must list before the barrier opens.
    pub(crate) fn expect_streams(&self, streams: usize) {
        self.update(|p| p.0 = streams);
    }

    pub(crate) fn get(&self, id: &str) -> Option<Index> {
        self.by_id.get(id).cloned()
    }

    /// An indexed stream's first listing found `objects` objects.
    pub(crate) fn listed(&self, objects: usize) {
        self.update(|p| {
            p.0 = p.0.saturating_sub(1);
            p.1 += objects;
        });
    }

    /// A listed object was indexed for the first time.
    pub(crate) fn indexed_once(&self) {
        self.update(|p| p.1 = p.1.saturating_sub(1));
    }

    fn update(&self, f: impl FnOnce(&mut (usize, usize))) {
        let mut pending = self.barrier.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut pending);
        if *pending == (0, 0) {
            self.barrier.ready.send_replace(true);
        }
    }

    /// Whether every indexed resource is listed and indexed once.
    pub(crate) fn is_ready(&self) -> bool {
        *self.barrier.ready.borrow()
    }

    /// Waits for the readiness barrier.
    pub(crate) async fn ready(&self) {
        let mut rx = self.barrier.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn key(i: u8) -> ObjectKey {
        ("default".into(), format!("o{i}"), format!("uid-{i}"))
    }

    #[test]
    fn object_results_spread_over_keys_and_other_results_go_under_null() {
        let index = Index::default();
        index.replace(&key(1), &json!({"web": 1, "db": 2}));
        index.replace(&key(2), &json!("plain"));
        assert_eq!(index.keys(), vec!["db", "web"]);
        assert_eq!(index.get("web"), vec![json!(1)]);
        assert_eq!(index.get_null(), vec![json!("plain")]);
        index.replace(&key(1), &json!({"web": 3}));
        assert_eq!(index.keys(), vec!["web"], "the object's old entries go; empty keys go");
        index.remove(&key(1), false);
        assert_eq!(index.keys(), Vec::<String>::new());
    }

    proptest! {
        /// An index stays equal to a model rebuilt from the latest result of every live object.
        #[test]
        fn the_index_equals_a_model_through_random_updates_and_deletions(
            ops in prop::collection::vec((0u8..20, prop::option::of(0u8..5)), 1..300)
        ) {
            let index = Index::default();
            let mut model: BTreeMap<u8, u8> = BTreeMap::new();
            for (object, label) in ops {
                match label {
                    Some(label) => {
                        index.replace(&key(object), &json!({format!("app-{label}"): object}));
                        model.insert(object, label);
                    }
                    None => {
                        index.remove(&key(object), false);
                        model.remove(&object);
                    }
                }
            }
            let mut expected: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for (object, label) in &model {
                expected.entry(format!("app-{label}")).or_default().push(json!(object));
            }
            for values in expected.values_mut() {
                values.sort_by_key(|v| format!("o{v}"));
            }
            let mut actual = index.snapshot();
            for values in actual.values_mut() {
                values.sort_by_key(|v| format!("o{v}"));
            }
            prop_assert_eq!(actual, expected);
        }
    }
}
