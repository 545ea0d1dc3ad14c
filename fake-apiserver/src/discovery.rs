//! Discovery documents built from the registry, so they stay current as CRDs come and go:
//! `/version`, `/api` (APIVersions), `/apis` (APIGroupList), `/apis/{group}` (APIGroup), and
//! `/api/v1`, `/apis/{group}/{version}` (APIResourceList with subresources).
//!
//! `/api` and `/apis` also answer *aggregated discovery* (`apidiscovery.k8s.io/v2`
//! `APIGroupDiscoveryList`: every group, version and resource in one document) when the `Accept`
//! header asks for it first, as kubectl and client-go do; the `Content-Type` of the answer names
//! the format, which is how the client tells the two apart.

use serde_json::{Value, json};

use crate::accept::Accept;
use crate::resources::{Registry, ResourceInfo};

/// The Kubernetes version the fake claims to be (k8s-openapi's enabled version).
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "37");

pub(crate) fn version() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    })
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({
        "name": name,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

pub(crate) fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (_, versions) = registry.groups().into_iter().find(|(g, _)| g == name && !g.is_empty())?;
    let mut doc = group_doc(name, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// The subresources of a resource as discovery lists them: (name, kind, group, version, verbs).
pub(crate) fn subresources(info: &ResourceInfo) -> Vec<(String, String, String, String, Vec<&'static str>)> {
    let mut subs = Vec::new();
    if info.status {
        subs.push((
            "status".to_owned(),
            info.kind.clone(),
            String::new(),
            String::new(),
            vec!["get", "patch", "update"],
        ));
    }
    if info.scale.is_some() {
        subs.push((
            "scale".to_owned(),
            "Scale".to_owned(),
            "autoscaling".to_owned(),
            "v1".to_owned(),
            vec!["get", "patch", "update"],
        ));
    }
    if info.group.is_empty() && info.plural == "pods" {
        subs.push(("binding".to_owned(), "Binding".to_owned(), String::new(), String::new(), vec!["create"]));
    }
    if info.group.is_empty() && info.plural == "namespaces" {
        subs.push((
            "finalize".to_owned(),
            "Namespace".to_owned(),
            String::new(),
            String::new(),
            vec!["update"],
        ));
    }
    subs
}

pub(crate) fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<&std::sync::Arc<ResourceInfo>> =
        registry.all().filter(|r| r.group == group && r.version == version).collect();
    if resources.is_empty() {
        return None;
    }
    let mut entries = Vec::new();
    for r in resources {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        entries.push(entry);
        for (sub, kind, g, v, verbs) in subresources(r) {
            let mut entry = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if !g.is_empty() {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            entries.push(entry);
        }
    }
    let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}),
    )
}

/// The aggregated discovery version (`v2`, or `v2beta1` for clients older than Kubernetes 1.30)
/// the `Accept` header prefers to the legacy documents, if any.
pub(crate) fn aggregated_version(accept: &Accept<'_>) -> Option<&'static str> {
    for range in accept.json_ranges() {
        match range.conversion() {
            Some(("APIGroupDiscoveryList", "apidiscovery.k8s.io", "v2")) => return Some("v2"),
            Some(("APIGroupDiscoveryList", "apidiscovery.k8s.io", "v2beta1")) => return Some("v2beta1"),
            None => return None,
            Some(_) => {}
        }
    }
    None
}

/// The `Content-Type` of an aggregated discovery document.
pub(crate) fn aggregated_content_type(version: &str) -> &'static str {
    if version == "v2beta1" {
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    } else {
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    }
}

/// The aggregated discovery document of the core group (`/api`, `core`) or of the named groups
/// (`/apis`): every version of every group, preferred version first, with all its resources.
pub(crate) fn aggregated(registry: &Registry, core: bool, version: &str) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = registry
                        .all()
                        .filter(|r| r.group == group && &r.version == v)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !group.is_empty() {
                metadata["name"] = json!(group);
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let kind =
        |group: &str, version: &str, kind: &str| json!({"group": group, "version": version, "kind": kind});
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": kind(&r.group, &r.version, &r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    let subresources: Vec<Value> = subresources(r)
        .into_iter()
        .map(|(name, sub_kind, g, v, verbs)| {
            let (g, v) =
                if g.is_empty() { (r.group.as_str(), r.version.as_str()) } else { (g.as_str(), v.as_str()) };
            json!({"subresource": name, "responseKind": kind(g, v, &sub_kind), "verbs": verbs})
        })
        .collect();
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}
