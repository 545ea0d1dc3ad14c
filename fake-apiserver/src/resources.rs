//! The resource registry: every resource the server serves — the built-ins of k8s-openapi and the
//! custom resources of established CRDs — with what the API machinery needs to know about each:
//! names, scope, subresources, generation tracking, selectable fields, storage.
//!
//! Objects are stored once per *storage key* (group + plural); each served version of a resource
//! reads and writes the same objects, converting only `apiVersion` (Kubernetes' `None` conversion).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::builtin;
use crate::error::GroupResource;

/// Where the objects of a resource live: one map per group and plural, shared by all its versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageKey {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

impl StorageKey {
    /// The group-resource pair used in error details.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(self.group.clone(), self.plural.clone())
    }

    /// `plural` for core resources, `plural.group` otherwise, as the journal names resources.
    pub fn journal_name(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }
}

/// The `/scale` subresource's mapping onto the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSpec {
    /// JSON path (`.spec.replicas`) of the desired replicas.
    pub spec_replicas_path: String,
    /// JSON path (`.status.replicas`) of the observed replicas.
    pub status_replicas_path: String,
    /// JSON path of the label selector, if any.
    pub label_selector_path: Option<String>,
}

/// Where a resource comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A built-in kind of k8s-openapi; `openapi` names its definition (`io.k8s.api.core.v1.Pod`).
    BuiltIn {
        /// OpenAPI definition name of the kind.
        openapi: &'static str,
    },
    /// A custom resource served because of the named CRD.
    Custom {
        /// The CRD's name (`plural.group`).
        crd: String,
        /// The version objects are stored in.
        storage_version: String,
        /// The version's `openAPIV3Schema`, if any.
        schema: Option<Arc<serde_json::Value>>,
    },
}

/// Everything the server knows about one served resource version.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, empty for core.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind, e.g. `ConfigMap`.
    pub kind: String,
    /// Kind of the list, e.g. `ConfigMapList`.
    pub list_kind: String,
    /// Plural name, the URL segment.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether the `/status` subresource exists.
    pub status: bool,
    /// The `/scale` subresource, if any.
    pub scale: Option<ScaleSpec>,
    /// Whether list, watch, get, update, patch, delete are served (false for create-only kinds such
    /// as `SubjectAccessReview`).
    pub listable: bool,
    /// Whether the server maintains `metadata.generation`.
    pub tracks_generation: bool,
    /// Field selectors beyond `metadata.name`/`metadata.namespace`.
    pub selectable_fields: Vec<String>,
    /// Additional printer columns (CRDs), as the CRD declares them.
    pub printer_columns: Vec<serde_json::Value>,
    /// Built-in or custom.
    pub origin: Origin,
    /// Where the objects live (group + plural), computed once.
    pub(crate) storage: Arc<StorageKey>,
}

impl ResourceInfo {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Where this resource's objects are stored.
    pub fn storage_key(&self) -> &Arc<StorageKey> {
        &self.storage
    }

    /// Fills in what is derived from the other fields; constructors call it last.
    pub(crate) fn finish(mut self) -> Self {
        self.storage = Arc::new(StorageKey { group: self.group.clone(), plural: self.plural.clone() });
        self
    }

    /// The group-resource pair used in error messages.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(self.group.clone(), self.plural.clone())
    }

    /// Custom resources have stricter rules (no strategic merge, no unconditional updates).
    pub fn is_custom(&self) -> bool {
        matches!(self.origin, Origin::Custom { .. })
    }

    /// The verbs discovery lists for this resource.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.listable {
            vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        } else {
            vec!["create"]
        }
    }

    /// Pods are deleted gracefully (deletionTimestamp in the future) once they are bound to a node.
    pub fn graceful_deletion(&self) -> bool {
        self.group.is_empty() && self.plural == "pods"
    }

    pub(crate) fn from_builtin(b: &builtin::BuiltinKind) -> Option<Self> {
        let namespaced = b.namespaced?;
        if b.plural.is_empty() {
            return None; // meta types such as APIGroup and Status are not resources
        }
        let status = b.flags.has_status;
        let scale = builtin::scale(b.group, b.plural).map(|(spec, stat, sel)| ScaleSpec {
            spec_replicas_path: spec.to_owned(),
            status_replicas_path: stat.to_owned(),
            label_selector_path: Some(sel.to_owned()),
        });
        Some(
            Self {
                group: b.group.to_owned(),
                version: b.version.to_owned(),
                kind: b.kind.to_owned(),
                list_kind: format!("{}List", b.kind),
                plural: b.plural.to_owned(),
                singular: b.kind.to_lowercase(),
                namespaced,
                short_names: strings(builtin::short_names(b.group, b.plural)),
                categories: strings(builtin::categories(b.group, b.plural)),
                status,
                scale,
                listable: b.flags.listable,
                tracks_generation: builtin::tracks_generation(b.group, b.plural, b.flags),
                selectable_fields: strings(builtin::selectable_fields(b.group, b.plural)),
                printer_columns: Vec::new(),
                origin: Origin::BuiltIn { openapi: b.openapi_name },
                storage: Arc::default(),
            }
            .finish(),
        )
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Orders Kubernetes versions as the API machinery does: GA before beta before alpha, higher
/// numbers first, non-conforming names last in alphabetical order (`v2 > v1 > v1beta2 > v1beta1 > v1alpha1`).
pub fn version_priority(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stage, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        Some((major, stage, num.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        // Higher stage first, then higher major, then higher minor: sort descending.
        (Some((ma, sa, na)), Some((mb, sb, nb))) => (sb, mb, nb).cmp(&(sa, ma, na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// All served resources, by group, version and plural.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    by_gvr: BTreeMap<(String, String, String), Arc<ResourceInfo>>,
}

impl Registry {
    /// The registry of every built-in of the enabled Kubernetes version.
    pub(crate) fn builtin() -> Self {
        let mut registry = Self::default();
        for kind in builtin::all() {
            if let Some(info) = ResourceInfo::from_builtin(&kind) {
                registry.insert(info);
            }
        }
        registry
    }

    pub(crate) fn insert(&mut self, info: ResourceInfo) {
        let key = (info.group.clone(), info.version.clone(), info.plural.clone());
        self.by_gvr.insert(key, Arc::new(info));
    }

    /// Removes every version of a storage key; returns whether anything was removed.
    pub(crate) fn remove_storage(&mut self, key: &StorageKey) -> bool {
        let before = self.by_gvr.len();
        self.by_gvr.retain(|(g, _, p), _| !(g == &key.group && p == &key.plural));
        before != self.by_gvr.len()
    }

    pub(crate) fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gvr.get(&(group.to_owned(), version.to_owned(), plural.to_owned())).cloned()
    }

    /// The preferred version's info for a group and plural.
    pub(crate) fn preferred(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let mut versions: Vec<&Arc<ResourceInfo>> =
            self.by_gvr.values().filter(|r| r.group == group && r.plural == plural).collect();
        versions.sort_by(|a, b| version_priority(&a.version, &b.version));
        versions.first().map(|r| (*r).clone())
    }

    /// A served resource of this group and kind (the preferred version), for owner references.
    pub(crate) fn by_group_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let plural = self.by_gvr.values().find(|r| r.group == group && r.kind == kind)?.plural.clone();
        self.preferred(group, &plural)
    }

    /// Every served resource, ordered by group, version and plural.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.by_gvr.values()
    }

    /// Groups with their versions, each group's versions in priority order; core first.
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for r in self.by_gvr.values() {
            let versions = groups.entry(&r.group).or_default();
            if !versions.contains(&r.version.as_str()) {
                versions.push(&r.version);
            }
        }
        groups
            .into_iter()
            .map(|(g, mut vs)| {
                vs.sort_by(|a, b| version_priority(a, b));
                (g.to_owned(), vs.into_iter().map(str::to_owned).collect())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_ga_then_beta_then_alpha_highest_first() {
        let mut vs = vec!["v1alpha1", "v1beta1", "v1", "v2", "v1beta2", "foo", "v10"];
        vs.sort_by(|a, b| version_priority(a, b));
        assert_eq!(vs, vec!["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }

    #[test]
    fn every_builtin_of_k8s_openapi_is_served_with_its_scope_and_plural() {
        let registry = Registry::builtin();
        let pods = registry.get("", "v1", "pods").expect("pods are served");
        assert!(pods.namespaced && pods.status && pods.listable && pods.tracks_generation);
        let deployments = registry.get("apps", "v1", "deployments").expect("deployments are served");
        assert!(deployments.scale.is_some());
        let namespaces = registry.get("", "v1", "namespaces").expect("namespaces are served");
        assert!(!namespaces.namespaced);
        let cms = registry.get("", "v1", "configmaps").expect("configmaps are served");
        assert!(!cms.status && !cms.tracks_generation);
        let crds = registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions").expect("crds");
        assert_eq!(crds.short_names, vec!["crd", "crds"]);
        assert!(registry.all().count() > 80, "k8s-openapi defines more than 80 resources");
    }
}
