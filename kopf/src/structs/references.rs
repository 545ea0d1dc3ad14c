//! References to resources: a discovered [`Resource`] (what the API serves) and a
//! [`ResourceSelector`] (what a handler asks for: by group/version/plural, by kind, plural,
//! singular or short name, optionally with a group), and a [`SelectorMapping`] of values per
//! resource selector (Kopf's `settings.watching.*_selectors`).

use serde::{Deserialize, Serialize};

/// A resource the API server serves, as discovery describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Resource {
    /// API group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name (URL segment).
    pub plural: String,
    /// Kind.
    pub kind: String,
    /// Singular name.
    pub singular: String,
    /// Short names.
    pub short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether `status` is a subresource (results then go through `/status`).
    pub status_subresource: bool,
    /// Whether this version is the group's preferred one.
    pub preferred: bool,
}

impl Resource {
    /// `group/version` or `version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `plural.group` (or `plural` for core), as kubectl names it.
    pub fn name(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// The URL path of the collection, in a namespace or cluster-wide.
    pub fn url_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.plural, self.api_version())
    }
}

/// What a handler is registered for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourceSelector {
    /// An exact group, version and plural (typed resources).
    Exact {
        /// API group.
        group: String,
        /// Version.
        version: String,
        /// Plural.
        plural: String,
    },
    /// A name (plural, singular, kind or short name), optionally in a group (`kopfexamples`,
    /// `kopfexamples.kopf.dev`), in its preferred version.
    Named {
        /// The group, if given.
        group: Option<String>,
        /// The name.
        name: String,
    },
}

impl ResourceSelector {
    /// Parses Kopf's selector forms: `plural`, `plural.group`, `group/version/plural`,
    /// `version/plural` (core).
    pub fn parse(text: &str) -> Self {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [group, version, plural] => Self::Exact {
                group: (*group).to_owned(),
                version: (*version).to_owned(),
                plural: (*plural).to_owned(),
            },
            [version, plural] => Self::Exact {
                group: String::new(),
                version: (*version).to_owned(),
                plural: (*plural).to_owned(),
            },
            _ => match text.split_once('.') {
                Some((name, group)) => Self::Named { group: Some(group.to_owned()), name: name.to_owned() },
                None => Self::Named { group: None, name: text.to_owned() },
            },
        }
    }

    /// Whether a served resource is the one selected (named selectors match the preferred version).
    pub fn matches(&self, r: &Resource) -> bool {
        match self {
            Self::Exact { group, version, plural } => {
                &r.group == group && &r.version == version && &r.plural == plural
            }
            Self::Named { group, name } => {
                let name_matches = r.plural == *name
                    || r.singular == *name
                    || r.kind == *name
                    || r.short_names.iter().any(|s| s == name);
                r.preferred && name_matches && group.as_ref().is_none_or(|g| *g == r.group)
            }
        }
    }
}

impl std::fmt::Display for ResourceSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact { group, version, plural } if group.is_empty() => write!(f, "{version}/{plural}"),
            Self::Exact { group, version, plural } => write!(f, "{group}/{version}/{plural}"),
            Self::Named { group: Some(g), name } => write!(f, "{name}.{g}"),
            Self::Named { group: None, name } => f.write_str(name),
        }
    }
}

/// What a [`SelectorMapping`] entry applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SelectorKey {
    /// The resources a [`ResourceSelector`] selects.
    Resource(ResourceSelector),
    /// Every resource but Kubernetes Events (Kopf's `kopf.EVERYTHING`).
    Everything,
}

impl SelectorKey {
    /// Whether the key applies to this resource.
    pub fn matches(&self, r: &Resource) -> bool {
        match self {
            Self::Resource(selector) => selector.matches(r),
            Self::Everything => !(r.plural == "events" && (r.group.is_empty() || r.group == "events.k8s.io")),
        }
    }
}

impl From<ResourceSelector> for SelectorKey {
    fn from(selector: ResourceSelector) -> Self {
        Self::Resource(selector)
    }
}

impl From<&str> for SelectorKey {
    /// A selector in Kopf's text forms ([`ResourceSelector::parse`]).
    fn from(text: &str) -> Self {
        Self::Resource(ResourceSelector::parse(text))
    }
}

/// Values per resource selector, in insertion order (Kopf's `SelectorMapping`): when several
/// entries apply to a resource, [`SelectorMapping::first`] takes the first inserted.
///
/// ```
/// let mut shards = kopf::SelectorMapping::default();
/// shards.insert("kopfexamples.kopf.dev", "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')".to_owned());
/// assert_eq!(shards.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorMapping<T> {
    entries: Vec<(SelectorKey, T)>,
}

impl<T> Default for SelectorMapping<T> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<T> SelectorMapping<T> {
    /// Sets the value of a key; a key already present keeps its place (as a Python dict does).
    pub fn insert(&mut self, key: impl Into<SelectorKey>, value: T) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Sets the value for every resource (Kopf's `kopf.EVERYTHING`).
    pub fn insert_everything(&mut self, value: T) {
        self.insert(SelectorKey::Everything, value);
    }

    /// Removes a key's value.
    pub fn remove(&mut self, key: impl Into<SelectorKey>) -> Option<T> {
        let key = key.into();
        let at = self.entries.iter().position(|(k, _)| *k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// The values that apply to a resource, in insertion order (Kopf's `collect`).
    pub fn collect(&self, resource: &Resource) -> Vec<&T> {
        self.entries.iter().filter(|(k, _)| k.matches(resource)).map(|(_, v)| v).collect()
    }

    /// The first value that applies to a resource.
    pub fn first(&self, resource: &Resource) -> Option<&T> {
        self.entries.iter().find(|(k, _)| k.matches(resource)).map(|(_, v)| v)
    }

    /// The entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&SelectorKey, &T)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res() -> Resource {
        Resource {
            group: "kopf.dev".into(),
            version: "v1".into(),
            plural: "kopfexamples".into(),
            kind: "KopfExample".into(),
            singular: "kopfexample".into(),
            short_names: vec!["kex".into()],
            namespaced: true,
            status_subresource: true,
            preferred: true,
        }
    }

    #[test]
    fn selectors_match_by_plural_kind_short_name_and_group() {
        for text in [
            "kopfexamples",
            "KopfExample",
            "kex",
            "kopfexample",
            "kopfexamples.kopf.dev",
            "kopf.dev/v1/kopfexamples",
        ] {
            assert!(ResourceSelector::parse(text).matches(&res()), "{text}");
        }
        assert!(!ResourceSelector::parse("kopfexamples.other.dev").matches(&res()));
        assert!(!ResourceSelector::parse("pods").matches(&res()));
        assert_eq!(res().url_path(Some("ns")), "/apis/kopf.dev/v1/namespaces/ns/kopfexamples");
    }

    #[test]
    fn a_selector_mapping_gives_the_first_inserted_value_that_applies() {
        let mut map = SelectorMapping::default();
        map.insert("pods", "pods");
        map.insert_everything("all");
        map.insert("kex", "examples");
        assert_eq!(map.first(&res()), Some(&"all"));
        assert_eq!(map.collect(&res()), vec![&"all", &"examples"]);
        map.insert_everything("all, again");
        assert_eq!(map.first(&res()), Some(&"all, again"), "a key keeps its place");
        assert_eq!(map.remove(SelectorKey::Everything), Some("all, again"));
        assert_eq!(map.first(&res()), Some(&"examples"));
        let events =
            Resource { group: "events.k8s.io".into(), plural: "events".into(), preferred: true, ..res() };
        assert!(!SelectorKey::Everything.matches(&events), "Kopf's EVERYTHING leaves Events out");
    }
}
