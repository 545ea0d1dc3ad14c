//! The control plane's view of the cluster: one cache per watched resource (an informer's store),
//! kept by list and watch through the API like any client, and written through after each of the
//! controllers' own writes so a controller never acts twice on a stale view. Indexes by controller
//! owner and by node serve the controllers' lookups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

/// The namespace (empty when cluster-scoped) and name of an object.
pub(crate) type ObjKey = (String, String);

/// The resources the controllers watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Namespace,
    Node,
    Lease,
    Pod,
    Service,
    EndpointSlice,
    ServiceAccount,
    ConfigMap,
    PersistentVolumeClaim,
    PersistentVolume,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    Job,
    CronJob,
}

impl Kind {
    /// Group, version and plural.
    pub(crate) fn gvr(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Namespace => ("", "v1", "namespaces"),
            Self::Node => ("", "v1", "nodes"),
            Self::Lease => ("coordination.k8s.io", "v1", "leases"),
            Self::Pod => ("", "v1", "pods"),
            Self::Service => ("", "v1", "services"),
            Self::EndpointSlice => ("discovery.k8s.io", "v1", "endpointslices"),
            Self::ServiceAccount => ("", "v1", "serviceaccounts"),
            Self::ConfigMap => ("", "v1", "configmaps"),
            Self::PersistentVolumeClaim => ("", "v1", "persistentvolumeclaims"),
            Self::PersistentVolume => ("", "v1", "persistentvolumes"),
            Self::Deployment => ("apps", "v1", "deployments"),
            Self::ReplicaSet => ("apps", "v1", "replicasets"),
            Self::StatefulSet => ("apps", "v1", "statefulsets"),
            Self::DaemonSet => ("apps", "v1", "daemonsets"),
            Self::ControllerRevision => ("apps", "v1", "controllerrevisions"),
            Self::Job => ("batch", "v1", "jobs"),
            Self::CronJob => ("batch", "v1", "cronjobs"),
        }
    }

    /// The kind's name as objects carry it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Namespace => "Namespace",
            Self::Node => "Node",
            Self::Lease => "Lease",
            Self::Pod => "Pod",
            Self::Service => "Service",
            Self::EndpointSlice => "EndpointSlice",
            Self::ServiceAccount => "ServiceAccount",
            Self::ConfigMap => "ConfigMap",
            Self::PersistentVolumeClaim => "PersistentVolumeClaim",
            Self::PersistentVolume => "PersistentVolume",
            Self::Deployment => "Deployment",
            Self::ReplicaSet => "ReplicaSet",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::ControllerRevision => "ControllerRevision",
            Self::Job => "Job",
            Self::CronJob => "CronJob",
        }
    }

    /// `apiVersion` of the kind.
    pub(crate) fn api_version(self) -> &'static str {
        match self.gvr() {
            ("", v, _) => v,
            ("coordination.k8s.io", ..) => "coordination.k8s.io/v1",
            ("discovery.k8s.io", ..) => "discovery.k8s.io/v1",
            ("apps", ..) => "apps/v1",
            _ => "batch/v1",
        }
    }

    pub(crate) fn namespaced(self) -> bool {
        !matches!(self, Self::Namespace | Self::Node | Self::PersistentVolume)
    }
}

/// One cached version of an object, parsed once.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) value: Value,
    pub(crate) rv: u64,
}

impl Object {
    pub(crate) fn new(value: Value) -> Self {
        let rv = value["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        Self { value, rv }
    }

    pub(crate) fn meta(&self) -> &Value {
        &self.value["metadata"]
    }

    pub(crate) fn name(&self) -> &str {
        self.meta()["name"].as_str().unwrap_or_default()
    }

    pub(crate) fn namespace(&self) -> &str {
        self.meta()["namespace"].as_str().unwrap_or_default()
    }

    pub(crate) fn uid(&self) -> &str {
        self.meta()["uid"].as_str().unwrap_or_default()
    }

    pub(crate) fn key(&self) -> ObjKey {
        (self.namespace().to_owned(), self.name().to_owned())
    }

    pub(crate) fn spec(&self) -> &Value {
        &self.value["spec"]
    }

    pub(crate) fn status(&self) -> &Value {
        &self.value["status"]
    }

    pub(crate) fn labels(&self) -> &Value {
        &self.meta()["labels"]
    }

    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels()[key].as_str()
    }

    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        self.meta()["annotations"][key].as_str()
    }

    pub(crate) fn deleting(&self) -> bool {
        !self.meta()["deletionTimestamp"].is_null()
    }

    pub(crate) fn generation(&self) -> i64 {
        self.meta()["generation"].as_i64().unwrap_or(0)
    }

    pub(crate) fn created(&self) -> &str {
        self.meta()["creationTimestamp"].as_str().unwrap_or_default()
    }

    /// The owner reference with `controller: true`.
    pub(crate) fn controller(&self) -> Option<&Value> {
        self.meta()["ownerReferences"].as_array()?.iter().find(|r| r["controller"].as_bool() == Some(true))
    }

    pub(crate) fn controller_uid(&self) -> Option<&str> {
        self.controller().and_then(|r| r["uid"].as_str())
    }
}

/// One resource's cache, with its indexes.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    objects: BTreeMap<ObjKey, Arc<Object>>,
    by_owner: HashMap<String, BTreeSet<ObjKey>>,
    by_node: HashMap<String, BTreeSet<ObjKey>>,
    /// Objects removed (at these resourceVersions) whose older watch events may still come.
    tombstones: HashMap<ObjKey, u64>,
}

impl Cache {
    fn index(&mut self, object: &Object, add: bool) {
        let key = object.key();
        let mut entries = Vec::with_capacity(2);
        if let Some(uid) = object.controller_uid() {
            entries.push((true, uid.to_owned()));
        }
        if let Some(node) = object.spec()["nodeName"].as_str().filter(|n| !n.is_empty()) {
            entries.push((false, node.to_owned()));
        }
        for (owner, value) in entries {
            let map = if owner { &mut self.by_owner } else { &mut self.by_node };
            if add {
                map.entry(value).or_default().insert(key.clone());
            } else if let Some(set) = map.get_mut(&value) {
                set.remove(&key);
                if set.is_empty() {
                    map.remove(&value);
                }
            }
        }
    }

    /// Stores a version unless a newer one is cached; returns whether it was stored.
    pub(crate) fn upsert(&mut self, object: Arc<Object>) -> bool {
        let key = object.key();
        if self.tombstones.get(&key).is_some_and(|rv| *rv >= object.rv) {
            return false;
        }
        if let Some(old) = self.objects.get(&key) {
            if old.rv >= object.rv {
                return false;
            }
            let old = old.clone();
            self.index(&old, false);
        }
        self.index(&object, true);
        self.objects.insert(key, object);
        true
    }

    /// Drops an object unless a newer version is cached (a deletion at `rv`).
    pub(crate) fn remove(&mut self, key: &ObjKey, rv: u64) -> Option<Arc<Object>> {
        if self.objects.get(key).is_some_and(|o| o.rv > rv) {
            return None;
        }
        let old = self.objects.remove(key)?;
        self.index(&old, false);
        self.tombstones.insert(key.clone(), rv);
        Some(old)
    }

    /// Forgets the removals at or before `rv`: no older event can come after it.
    pub(crate) fn forget_tombstones(&mut self, rv: u64) {
        if !self.tombstones.is_empty() {
            self.tombstones.retain(|_, at| *at > rv);
        }
    }

    pub(crate) fn get(&self, key: &ObjKey) -> Option<&Arc<Object>> {
        self.objects.get(key)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &ObjKey> {
        self.objects.keys()
    }
}

/// Every cache, by kind.
#[derive(Debug, Default)]
pub(crate) struct World {
    caches: BTreeMap<Kind, Cache>,
}

static EMPTY: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::default);

impl World {
    pub(crate) fn cache(&self, kind: Kind) -> &Cache {
        self.caches.get(&kind).unwrap_or(&EMPTY)
    }

    pub(crate) fn cache_mut(&mut self, kind: Kind) -> &mut Cache {
        self.caches.entry(kind).or_default()
    }

    pub(crate) fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<Object>> {
        self.cache(kind).objects.get(&(namespace.to_owned(), name.to_owned()))
    }

    pub(crate) fn all(&self, kind: Kind) -> impl Iterator<Item = &Arc<Object>> {
        self.cache(kind).objects.values()
    }

    /// Objects of a namespace, in name order.
    pub(crate) fn in_namespace<'a>(
        &'a self,
        kind: Kind,
        namespace: &str,
    ) -> impl Iterator<Item = &'a Arc<Object>> {
        let start = (namespace.to_owned(), String::new());
        let ns = namespace.to_owned();
        self.cache(kind).objects.range(start..).take_while(move |((n, _), _)| *n == ns).map(|(_, o)| o)
    }

    /// Objects whose controller has this uid, in key order.
    pub(crate) fn owned<'a>(&'a self, kind: Kind, uid: &str) -> impl Iterator<Item = &'a Arc<Object>> {
        let cache = self.cache(kind);
        cache.by_owner.get(uid).into_iter().flatten().filter_map(|k| cache.objects.get(k))
    }

    /// Pods bound to a node, in key order.
    pub(crate) fn pods_on<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Arc<Object>> {
        let cache = self.cache(Kind::Pod);
        cache.by_node.get(node).into_iter().flatten().filter_map(|k| cache.objects.get(k))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, rv: u64, owner: &str, node: &str) -> Arc<Object> {
        Arc::new(Object::new(json!({
            "metadata": {"namespace": "ns", "name": name, "resourceVersion": rv.to_string(),
                "ownerReferences": [{"uid": owner, "controller": true}]},
            "spec": {"nodeName": node},
        })))
    }

    #[test]
    fn older_versions_never_replace_newer_ones_and_indexes_follow() {
        let mut world = World::default();
        let cache = world.cache_mut(Kind::Pod);
        assert!(cache.upsert(pod("a", 5, "rs1", "n1")));
        assert!(!cache.upsert(pod("a", 4, "rs2", "n2")), "stale");
        assert!(cache.upsert(pod("a", 6, "rs2", "n2")));
        assert_eq!(world.owned(Kind::Pod, "rs1").count(), 0);
        assert_eq!(world.owned(Kind::Pod, "rs2").count(), 1);
        assert_eq!(world.pods_on("n2").count(), 1);
        assert!(world.cache_mut(Kind::Pod).remove(&("ns".into(), "a".into()), 5).is_none(), "a newer one");
        assert!(world.cache_mut(Kind::Pod).remove(&("ns".into(), "a".into()), 7).is_some());
        assert_eq!(world.pods_on("n2").count(), 0);
    }

    #[test]
    fn namespaces_are_ranges_of_the_ordered_cache() {
        let mut world = World::default();
        for (ns, name) in [("a", "x"), ("b", "y"), ("b", "z"), ("c", "w")] {
            let object =
                Object::new(json!({"metadata": {"namespace": ns, "name": name, "resourceVersion": "1"}}));
            world.cache_mut(Kind::Service).upsert(Arc::new(object));
        }
        let names: Vec<&str> = world.in_namespace(Kind::Service, "b").map(|o| o.name()).collect();
        assert_eq!(names, ["y", "z"]);
    }
}
