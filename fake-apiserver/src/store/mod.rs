//! Storage: immutable object versions, the per-resource store, and the change log watches read.

pub(crate) mod history;
pub(crate) mod objects;

use std::collections::BTreeMap;
use std::sync::Arc;

use objects::StoredObject;

/// The objects of one resource, ordered by namespace then name (the real server's list order).
/// Keys are the objects' own shared strings, so a stored object costs no extra key allocations and
/// lookups by `&str` allocate nothing.
#[derive(Debug, Default, Clone)]
pub(crate) struct Store {
    namespaces: BTreeMap<Arc<str>, BTreeMap<Arc<str>, Arc<StoredObject>>>,
}

impl Store {
    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<&Arc<StoredObject>> {
        self.namespaces.get(namespace)?.get(name)
    }

    /// The namespace key already in use, so a new version can share it.
    pub(crate) fn namespace_key(&self, namespace: &str) -> Option<Arc<str>> {
        self.namespaces.get_key_value(namespace).map(|(k, _)| k.clone())
    }

    /// Stores a version; returns the one it replaces.
    pub(crate) fn insert(&mut self, object: Arc<StoredObject>) -> Option<Arc<StoredObject>> {
        let names = self.namespaces.entry(object.namespace.clone()).or_default();
        names.insert(object.name.clone(), object)
    }

    pub(crate) fn remove(&mut self, namespace: &str, name: &str) -> Option<Arc<StoredObject>> {
        let names = self.namespaces.get_mut(namespace)?;
        let prev = names.remove(name)?;
        if names.is_empty() {
            self.namespaces.remove(namespace);
        }
        Some(prev)
    }

    /// Every object, in namespace-then-name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<StoredObject>> {
        self.namespaces.values().flat_map(BTreeMap::values)
    }

    /// The objects of one namespace, in name order.
    pub(crate) fn in_namespace(&self, namespace: &str) -> impl Iterator<Item = &Arc<StoredObject>> {
        self.namespaces.get(namespace).into_iter().flat_map(BTreeMap::values)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.namespaces.is_empty() // emptied namespaces are dropped
    }
}
