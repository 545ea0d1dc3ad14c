//! The RBAC an operator needs, generated from its registry: what the framework does on the
//! operator's behalf, resource by resource, and nothing more.
//!
//! For every resource its handlers serve (selectors resolved against the served resources, as the
//! operator resolves them at start):
//! - `list` and `watch` — the watch stream (any handler, indexes included);
//! - `patch` — progress, diff-base and finalizers: when it has changing handlers (create, update,
//!   delete, resume, field), timers or daemons;
//! - `patch` on `<resource>/status` — handler results, which land in `status.<handler-id>`: when
//!   a handler's return type can carry a result (not `Result<(), _>`; see
//!   [`crate::HandlerOutput::STORES_RESULTS`]) and the resource has a status subresource (without
//!   one, results go through the main resource's `patch`);
//! - `create` on core `events` — Kopf's Logging Events, with `settings.posting.loggers`: in the
//!   handled objects' namespaces (`default` for cluster-scoped objects);
//! - `list` on core `namespaces` — when the served namespaces are given as globs;
//! - peering, unless `settings.peering.standalone`: `list`, `watch` and `patch` on the peering
//!   resources served for the mode (`clusterkopfpeerings` cluster-wide when serving all
//!   namespaces, `kopfpeerings` in each served namespace; in `kopf.dev` and the legacy
//!   `zalando.org`); none when no peering resource is served (auto-detection runs standalone),
//!   unless peering is mandatory: then `list` and `watch` on `customresourcedefinitions` (the
//!   operator waits for the peering CRD) and the `kopf.dev` peering resource's verbs.
//!
//! What handler code does by itself — objects made through [`crate::Context::api`], Events posted
//! with [`crate::Context::event`], status written with [`crate::Context::patch`] by a handler that
//! returns nothing — is declared on the operator with [`Operator::rbac_rule`].
//!
//! Scope: serving all namespaces makes a ClusterRole with a ClusterRoleBinding; serving named
//! namespaces makes a Role and a RoleBinding in each (and a ClusterRole for cluster-scoped
//! resources). Namespace globs cannot be known ahead, so their rules are cluster-wide.
//!
//! - admission, when the operator has admission handlers and `settings.admission.managed` names
//!   the configurations: `create` and `patch` on `validatingwebhookconfigurations` and
//!   `mutatingwebhookconfigurations` (cluster-wide: they are cluster-scoped). The operator creates
//!   both and then patches their webhooks (try-or-fail, no `get`), as Kopf does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::engines::admission::configuration_resource;
use crate::operator::Operator;
use crate::reactor::running::{Namespaces, resolve};
use crate::registry::WebhookKind;
use crate::structs::references::{Resource, ResourceSelector};

const RBAC_API: &str = "rbac.authorization.k8s.io/v1";
/// The canonical order of verbs in a rule.
const VERBS: [&str; 8] = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

/// Who the RBAC is for and where the operator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbacOptions {
    /// The ServiceAccount's name, also the name of the roles and bindings (default: `kopf-operator`).
    pub name: String,
    /// The ServiceAccount's namespace (default: `default`).
    pub namespace: String,
    /// The namespaces the operator serves (default: all).
    pub namespaces: Namespaces,
}

impl Default for RbacOptions {
    fn default() -> Self {
        Self { name: "kopf-operator".into(), namespace: "default".into(), namespaces: Namespaces::All }
    }
}

/// One verb on one resource (or subresource, `kopfexamples/status`), granted cluster-wide or in
/// one namespace: the unit the generator reasons in, and what a test removes to show it is needed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    /// `None` for cluster-wide (a ClusterRole), else the namespace of the Role.
    pub namespace: Option<String>,
    /// The API group, empty for core.
    pub group: String,
    /// The resource, with `/subresource` if any.
    pub resource: String,
    /// The verb.
    pub verb: String,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() { "core" } else { &self.group };
        let scope =
            self.namespace.as_deref().map_or_else(|| "cluster-wide".to_owned(), |ns| format!("in {ns}"));
        write!(f, "{} {} ({group}) {scope}", self.verb, self.resource)
    }
}

/// The generated RBAC: a set of [`Permission`]s for a ServiceAccount, rendered as roles and
/// bindings by [`Rbac::objects`].
///
/// ```
/// use std::sync::Arc;
/// use kopf::{Body, Context, HandlerError, Operator, RbacOptions, Resource};
/// use serde_json::json;
/// let operator = Operator::new()
///     .on_create(|_: Arc<Body>, _: Context| async move { Ok::<_, HandlerError>(json!({"ok": 1})) })
///     .resource("kopfexamples.kopf.dev");
/// let served = [Resource {
///     group: "kopf.dev".into(), version: "v1".into(), plural: "kopfexamples".into(), kind: "KopfExample".into(),
///     namespaced: true, status_subresource: true, preferred: true, ..Resource::default()
/// }];
/// let rbac = kopf::rbac(&operator, &served, &RbacOptions::default());
/// let role = &rbac.objects()[0];
/// assert_eq!(role["kind"], "ClusterRole");
/// assert_eq!(role["rules"], json!([
///     {"apiGroups": ["kopf.dev"], "resources": ["kopfexamples"], "verbs": ["list", "watch", "patch"]},
///     {"apiGroups": ["kopf.dev"], "resources": ["kopfexamples/status"], "verbs": ["patch"]},
/// ]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rbac {
    /// The ServiceAccount's name, also the roles' and bindings'.
    pub name: String,
    /// The ServiceAccount's namespace.
    pub namespace: String,
    permissions: BTreeSet<Permission>,
}

impl Rbac {
    /// Every permission granted.
    pub fn permissions(&self) -> impl Iterator<Item = &Permission> {
        self.permissions.iter()
    }

    /// The same RBAC without one permission.
    #[must_use]
    pub fn without(&self, permission: &Permission) -> Self {
        let mut less = self.clone();
        less.permissions.remove(permission);
        less
    }

    /// The rules of one scope (`None`: the ClusterRole), one per resource, verbs in canonical order.
    pub fn rules(&self, namespace: Option<&str>) -> Vec<Value> {
        let mut by_resource: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for p in self.permissions.iter().filter(|p| p.namespace.as_deref() == namespace) {
            by_resource.entry((&p.group, &p.resource)).or_default().push(&p.verb);
        }
        by_resource
            .into_iter()
            .map(|((group, resource), mut verbs)| {
                verbs.sort_by_key(|v| VERBS.iter().position(|known| known == v).unwrap_or(VERBS.len()));
                json!({"apiGroups": [group], "resources": [resource], "verbs": verbs})
            })
            .collect()
    }

    /// The ServiceAccount.
    pub fn service_account(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": self.name, "namespace": self.namespace}})
    }

    /// The roles and their bindings to the ServiceAccount: a ClusterRole and a ClusterRoleBinding
    /// for the cluster-wide permissions, a Role and a RoleBinding per namespace for the others.
    pub fn objects(&self) -> Vec<Value> {
        let subjects = json!([{"kind": "ServiceAccount", "name": self.name, "namespace": self.namespace}]);
        let mut objects = Vec::new();
        let namespaces: BTreeSet<Option<&str>> =
            self.permissions.iter().map(|p| p.namespace.as_deref()).collect();
        for namespace in namespaces {
            let (role_kind, binding_kind) = match namespace {
                None => ("ClusterRole", "ClusterRoleBinding"),
                Some(_) => ("Role", "RoleBinding"),
            };
            let mut metadata = json!({"name": self.name});
            if let Some(ns) = namespace {
                metadata["namespace"] = json!(ns);
            }
            objects.push(json!({
                "apiVersion": RBAC_API, "kind": role_kind, "metadata": metadata, "rules": self.rules(namespace),
            }));
            objects.push(json!({
                "apiVersion": RBAC_API,
                "kind": binding_kind,
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": self.name},
                "subjects": subjects,
            }));
        }
        objects
    }
}

/// Generates the RBAC `operator` needs, its selectors resolved against `served` (discovery's
/// resources, or [`declared_resources`] when there is no cluster to ask). See the module docs for
/// what is granted and why.
pub fn rbac(operator: &Operator, served: &[Resource], options: &RbacOptions) -> Rbac {
    let registry = &operator.registry;
    let settings = &operator.settings;
    // Where namespaced things are granted: `None` cluster-wide, else each named namespace.
    let (scopes, globs): (Vec<Option<String>>, bool) = match &options.namespaces {
        Namespaces::All => (vec![None], false),
        Namespaces::Only(patterns) if patterns.iter().any(|p| p.contains(['*', '?', '!', ','])) => {
            (vec![None], true)
        }
        Namespaces::Only(names) => (names.iter().cloned().map(Some).collect(), false),
    };
    let mut permissions = BTreeSet::new();
    let mut grant = |namespace: Option<String>, group: &str, resource: &str, verb: &str| {
        permissions.insert(Permission {
            namespace,
            group: group.to_owned(),
            resource: resource.to_owned(),
            verb: verb.to_owned(),
        });
    };
    let mut event_scopes: BTreeSet<Option<String>> = BTreeSet::new();
    for resource in resolve(&registry.selectors(), served) {
        let handlers = registry.for_resource(&resource);
        let here: Vec<Option<String>> = if resource.namespaced { scopes.clone() } else { vec![None] };
        let all = handlers.changing.iter().chain(&handlers.watching).chain(&handlers.spawning);
        let results = all.clone().any(|h| h.stores_results);
        let framework_writes = !handlers.changing.is_empty() || !handlers.spawning.is_empty();
        let mut verbs: Vec<(String, &str)> =
            vec![(resource.plural.clone(), "list"), (resource.plural.clone(), "watch")];
        if framework_writes || (results && !resource.status_subresource) {
            verbs.push((resource.plural.clone(), "patch"));
        }
        if results && resource.status_subresource {
            verbs.push((format!("{}/status", resource.plural), "patch"));
        }
        for scope in &here {
            for (plural, verb) in &verbs {
                grant(scope.clone(), &resource.group, plural, verb);
            }
        }
        if all.clone().next().is_some() {
            if resource.namespaced {
                event_scopes.extend(here);
            } else {
                event_scopes.insert(if scopes == [None] { None } else { Some("default".to_owned()) });
            }
        }
    }
    if settings.posting.enabled && settings.posting.loggers {
        for scope in event_scopes {
            grant(scope, "", "events", "create");
        }
    }
    if globs {
        grant(None, "", "namespaces", "list");
    }
    for (groups, resources, verbs) in &operator.rbac_rules {
        for scope in &scopes {
            for group in groups {
                for resource in resources {
                    for verb in verbs {
                        grant(scope.clone(), group, resource, verb);
                    }
                }
            }
        }
    }
    permissions.extend(framework_permissions(operator, served, &scopes));
    Rbac { name: options.name.clone(), namespace: options.namespace.clone(), permissions }
}

/// The framework's own resources, beyond the served ones: managed admission configurations and
/// peering (see the module docs).
fn framework_permissions(
    operator: &Operator,
    served: &[Resource],
    scopes: &[Option<String>],
) -> Vec<Permission> {
    let mut out = Vec::new();
    if operator.settings.admission.managed.is_some() && !operator.registry.webhooks().is_empty() {
        for kind in [WebhookKind::Validating, WebhookKind::Mutating] {
            let resource = configuration_resource(kind);
            for verb in ["create", "patch"] {
                out.push(Permission {
                    namespace: None,
                    group: resource.group.clone(),
                    resource: resource.plural.clone(),
                    verb: verb.to_owned(),
                });
            }
        }
    }
    let peering = &operator.settings.peering;
    if peering.standalone {
        return out;
    }
    // The run makes peering cluster-wide exactly when it serves all namespaces.
    let clusterwide = scopes == [None];
    let mut resources = crate::engines::peering::peering_resources(served, clusterwide);
    let mut grant = |namespace: Option<String>, group: &str, resource: &str, verb: &str| {
        out.push(Permission {
            namespace,
            group: group.to_owned(),
            resource: resource.to_owned(),
            verb: verb.to_owned(),
        });
    };
    if resources.is_empty() {
        if !peering.mandatory {
            return out;
        }
        for verb in ["list", "watch"] {
            grant(None, "apiextensions.k8s.io", "customresourcedefinitions", verb);
        }
        resources.push(Resource {
            group: crate::engines::peering::GROUP.to_owned(),
            plural: if clusterwide {
                crate::engines::peering::CLUSTER_PLURAL
            } else {
                crate::engines::peering::NAMESPACED_PLURAL
            }
            .to_owned(),
            namespaced: !clusterwide,
            ..Resource::default()
        });
    }
    for resource in resources {
        let here: Vec<Option<String>> = if resource.namespaced { scopes.to_vec() } else { vec![None] };
        for scope in here {
            for verb in ["list", "watch", "patch"] {
                grant(scope.clone(), &resource.group, &resource.plural, verb);
            }
        }
    }
    out
}

/// The resources the operator knows without asking a cluster: its declared CRDs
/// ([`Operator::with_crd`], every served version, the storage version preferred), and for
/// selectors no CRD serves, a guess from the selector itself — the name taken as the plural,
/// namespaced, with a status subresource (so the guess grants what results would need).
pub fn declared_resources(operator: &Operator) -> Vec<Resource> {
    let mut out: Vec<Resource> = Vec::new();
    for crd in operator.crds() {
        let spec = &crd["spec"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"] == false {
                continue;
            }
            out.push(Resource {
                group: text(&spec["group"]),
                version: text(&version["name"]),
                plural: text(&spec["names"]["plural"]),
                kind: text(&spec["names"]["kind"]),
                singular: text(&spec["names"]["singular"]),
                short_names: spec["names"]["shortNames"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
                namespaced: spec["scope"] != "Cluster",
                status_subresource: version["subresources"]["status"].is_object(),
                preferred: version["storage"] == true,
            });
        }
    }
    for selector in operator.registry.selectors() {
        if out.iter().any(|r| selector.matches(r)) {
            continue;
        }
        let (group, version, plural) = match &selector {
            ResourceSelector::Exact { group, version, plural } => {
                (group.clone(), version.clone(), plural.clone())
            }
            ResourceSelector::Named { group, name } => {
                (group.clone().unwrap_or_default(), String::new(), name.clone())
            }
        };
        out.push(Resource {
            group,
            version,
            singular: plural.clone(),
            kind: plural.clone(),
            plural,
            namespaced: true,
            status_subresource: true,
            preferred: true,
            ..Resource::default()
        });
    }
    out
}
