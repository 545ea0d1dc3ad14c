//! References to resources: a discovered [`Resource`] (what the API serves) and a
//! [`ResourceSelector`] (what a handler asks for: by group/version/plural, by kind, plural,
//! singular or short name, optionally with a group).

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
}
