//! One stored version of an object: its JSON bytes exactly as served, plus the few metadata fields
//! the server indexes (name, namespace, labels, owners, selectable fields). Versions are immutable and
//! shared (`Arc`) between the store, the watch history and the responses, so a write costs one
//! serialization and a watch event costs a pointer copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::selectors::fields::json_field;

/// An owner reference, as far as garbage collection needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) block: bool,
}

/// One immutable version of a stored object.
#[derive(Debug)]
pub struct StoredObject {
    json: Bytes,
    pub(crate) api_version: String,
    pub(crate) namespace: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) uid: String,
    pub(crate) resource_version: u64,
    pub(crate) labels: Labels,
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) deleting: bool,
    pub(crate) finalizers: Vec<String>,
    pub(crate) owners: Vec<Owner>,
}

impl StoredObject {
    /// Indexes and serializes an object. `selectable` names the extra fields that field selectors may
    /// ask for on this resource.
    pub(crate) fn new(object: &Value, selectable: &[String]) -> Self {
        Self::index(serialize(object), object, selectable)
    }

    /// Like [`StoredObject::new`], with the bytes already made.
    pub(crate) fn index(json: Bytes, object: &Value, selectable: &[String]) -> Self {
        let meta = &object["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let labels = Labels(
            meta["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (Box::from(k.as_str()), Box::from(v.as_str().unwrap_or_default())))
                        .collect()
                })
                .unwrap_or_default(),
        );
        let finalizers = meta["finalizers"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let owners = meta["ownerReferences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|o| Owner {
                        api_version: text(&o["apiVersion"]),
                        kind: text(&o["kind"]),
                        name: text(&o["name"]),
                        uid: text(&o["uid"]),
                        block: o["blockOwnerDeletion"].as_bool().unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fields = selectable
            .iter()
            .map(|path| (path.clone(), json_field(object, path).unwrap_or_default()))
            .collect();
        Self {
            json,
            api_version: text(&object["apiVersion"]),
            namespace: Arc::from(meta["namespace"].as_str().unwrap_or_default()),
            name: Arc::from(meta["name"].as_str().unwrap_or_default()),
            uid: text(&meta["uid"]),
            resource_version: meta["resourceVersion"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
            labels,
            fields,
            deleting: !meta["deletionTimestamp"].is_null(),
            finalizers,
            owners,
        }
    }

    /// The object's JSON, as served.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The object as a JSON value (parsed on each call).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// Deserializes the object into a typed resource.
    pub fn parse<K: serde::de::DeserializeOwned>(&self) -> serde_json::Result<K> {
        serde_json::from_slice(&self.json)
    }

    /// `apiVersion` as stored.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `metadata.namespace` and `metadata.name`, shared.
    pub(crate) fn names(&self) -> (Arc<str>, Arc<str>) {
        (self.namespace.clone(), self.name.clone())
    }

    /// `metadata.namespace`, empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// `metadata.resourceVersion`, as a number.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// `metadata.labels`.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.labels.0.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// `metadata.finalizers`.
    pub fn finalizers(&self) -> &[String] {
        &self.finalizers
    }

    /// Whether `metadata.deletionTimestamp` is set.
    pub fn is_deleting(&self) -> bool {
        self.deleting
    }

    /// The value a field selector sees for `path`.
    pub(crate) fn field(&self, path: &str) -> Option<String> {
        match path {
            "metadata.name" => Some(self.name.to_string()),
            "metadata.namespace" => Some(self.namespace.to_string()),
            _ => self.fields.iter().find(|(p, _)| p == path).map(|(_, v)| v.clone()),
        }
    }
}

thread_local! {
    /// A reused serialization buffer: objects are written into it, then copied out at their exact
    /// size, so the stored bytes carry no growth slack and serializing does not reallocate.
    static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(16 * 1024));
}

/// The JSON bytes of a value, exactly sized.
pub(crate) fn serialize(value: &Value) -> Bytes {
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            match serde_json::to_writer(&mut *buffer, value) {
                Ok(()) => Bytes::copy_from_slice(&buffer),
                Err(_) => Bytes::new(),
            }
        }
        Err(_) => Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    })
}

/// An object's labels, compact and sorted by key (serde_json maps are ordered), for selectors.
#[derive(Debug, Default)]
pub(crate) struct Labels(Box<[(Box<str>, Box<str>)]>);

impl crate::selectors::labels::LabelSource for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*self.0[i].1)
    }
}

/// The key of an object within its resource: namespace (empty when cluster-scoped) and name. The
/// store's maps are ordered by it, which is the order the real server lists in.
pub(crate) type ObjectKey = (String, String);
