//! The RBAC authorizer, as the real server's `plugin/pkg/auth/authorizer/rbac` decides: a request
//! is allowed when a ClusterRoleBinding, or a RoleBinding in the request's namespace, binds the user
//! (by name, group, or service account) to a role with a rule that matches the verb, API group,
//! resource (`pods`, `pods/status`, `*`, `*/status`) and name — or, for paths outside the API, the
//! verb and `nonResourceURLs` (exact, `*`, or a `prefix*`). ClusterRoles with an
//! `aggregationRule` also hold the rules of the ClusterRoles their selectors match.
//!
//! The roles and bindings are compiled into a [`Policy`] once per change of any of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::identity::Identity;
use crate::selectors::labels::{LabelSelector, from_label_selector_json};
use crate::store::Store;

/// What a request asks to do, as the real server's `authorizer.Attributes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessAttributes {
    /// A request for an API resource.
    Resource {
        /// The verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
        /// `deletecollection` (or any other a rule may name).
        verb: String,
        /// The API group, empty for core.
        group: String,
        /// The plural resource.
        resource: String,
        /// The subresource, empty for the main resource.
        subresource: String,
        /// The namespace, empty for cluster-scoped requests and requests across namespaces.
        namespace: String,
        /// The object's name, empty when the request names none.
        name: String,
    },
    /// A request for a path outside the API (`/healthz`, `/version`, `/api`, `/openapi/v3`).
    NonResource {
        /// The lower-case HTTP method (`get`, `post`, …).
        verb: String,
        /// The path.
        path: String,
    },
}

impl AccessAttributes {
    fn verb(&self) -> &str {
        match self {
            Self::Resource { verb, .. } | Self::NonResource { verb, .. } => verb,
        }
    }

    fn namespace(&self) -> &str {
        match self {
            Self::Resource { namespace, .. } => namespace,
            Self::NonResource { .. } => "",
        }
    }
}

/// One `PolicyRule`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Rule {
    pub(crate) verbs: Vec<String>,
    pub(crate) api_groups: Vec<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) resource_names: Vec<String>,
    pub(crate) non_resource_urls: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

impl Rule {
    fn from_json(v: &Value) -> Self {
        Self {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    /// The rule as JSON, with empty lists left out (as the real server serializes it).
    pub(crate) fn to_json(&self) -> Value {
        let mut rule = serde_json::Map::new();
        for (key, list) in [
            ("verbs", &self.verbs),
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !list.is_empty() || key == "verbs" {
                rule.insert(key.to_owned(), Value::from(list.clone()));
            }
        }
        Value::Object(rule)
    }

    /// `RuleAllows`.
    fn allows(&self, attributes: &AccessAttributes) -> bool {
        let verb_matches = self.verbs.iter().any(|v| v == "*" || v == attributes.verb());
        match attributes {
            AccessAttributes::Resource { group, resource, subresource, name, .. } => {
                let combined;
                let requested = if subresource.is_empty() {
                    resource.as_str()
                } else {
                    combined = format!("{resource}/{subresource}");
                    combined.as_str()
                };
                verb_matches
                    && self.api_groups.iter().any(|g| g == "*" || g == group)
                    && self.resources.iter().any(|r| {
                        r == "*"
                            || r == requested
                            || (!subresource.is_empty()
                                && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
                    })
                    && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name))
            }
            AccessAttributes::NonResource { path, .. } => {
                verb_matches
                    && self.non_resource_urls.iter().any(|url| {
                        url == "*"
                            || url == path
                            || url.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
                    })
            }
        }
    }
}

/// A binding's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

impl Subject {
    /// `appliesToUser`: a service account subject without a namespace means the binding's.
    fn applies_to(&self, user: &Identity, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name() == self.name,
            "Group" => user.groups().contains(&self.name),
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() { binding_namespace } else { &self.namespace };
                !namespace.is_empty() && user.as_service_account() == Some((namespace, self.name.as_str()))
            }
            _ => false,
        }
    }

    /// `describeSubject`.
    fn describe(&self, binding_namespace: &str) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() { binding_namespace } else { &self.namespace };
                format!("ServiceAccount \"{}/{namespace}\"", self.name)
            }
            kind => format!("{kind} \"{}\"", self.name),
        }
    }
}

/// A RoleBinding (with its namespace) or a ClusterRoleBinding (namespace empty).
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(v: &Value) -> Self {
        let meta = &v["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Self {
            name: text(&meta["name"]),
            namespace: text(&meta["namespace"]),
            role_kind: text(&v["roleRef"]["kind"]),
            role_name: text(&v["roleRef"]["name"]),
            subjects: v["subjects"]
                .as_array()
                .map(|subjects| {
                    subjects
                        .iter()
                        .map(|s| Subject {
                            kind: text(&s["kind"]),
                            name: text(&s["name"]),
                            namespace: text(&s["namespace"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// `clusterRoleBindingDescriber` / `roleBindingDescriber`.
    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding \"{}\" of {} \"{}\" to {}",
                self.name,
                self.role_kind,
                self.role_name,
                subject.describe("")
            )
        } else {
            format!(
                "RoleBinding \"{}/{}\" of {} \"{}\" to {}",
                self.name,
                self.namespace,
                self.role_kind,
                self.role_name,
                subject.describe(&self.namespace)
            )
        }
    }
}

/// What the authorizer decided, with the real server's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) allowed: bool,
    /// `RBAC: allowed by …` when allowed; the errors met on the way (a binding's missing role) when
    /// not; empty otherwise.
    pub(crate) reason: String,
}

/// Every role and binding of the cluster, ready for decisions.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    cluster_roles: BTreeMap<String, Arc<[Rule]>>,
    /// (namespace, name) → rules.
    roles: BTreeMap<(String, String), Arc<[Rule]>>,
    cluster_bindings: Vec<Binding>,
    /// namespace → its RoleBindings.
    bindings: BTreeMap<String, Vec<Binding>>,
}

fn rules_of(v: &Value) -> Vec<Rule> {
    v["rules"].as_array().map(|rules| rules.iter().map(Rule::from_json).collect()).unwrap_or_default()
}

impl Policy {
    /// Compiles the stores of the four RBAC resources (any of them may be absent).
    pub(crate) fn compile(
        cluster_roles: Option<&Store>,
        roles: Option<&Store>,
        cluster_bindings: Option<&Store>,
        bindings: Option<&Store>,
    ) -> Self {
        let all = |store: Option<&Store>| -> Vec<Value> {
            store.map(|s| s.iter().map(|o| o.value()).collect()).unwrap_or_default()
        };
        let cluster_role_values = all(cluster_roles);
        let mut policy = Self::default();
        for role in &cluster_role_values {
            let name = role["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            let mut rules = rules_of(role);
            if let Some(selectors) = role["aggregationRule"]["clusterRoleSelectors"].as_array() {
                let selectors: Vec<LabelSelector> =
                    selectors.iter().filter_map(|s| from_label_selector_json(s).ok()).collect();
                for other in &cluster_role_values {
                    let other_name = other["metadata"]["name"].as_str().unwrap_or_default();
                    if other_name == name {
                        continue;
                    }
                    let labels: BTreeMap<String, String> = other["metadata"]["labels"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                                .collect()
                        })
                        .unwrap_or_default();
                    if selectors.iter().any(|s| s.matches(&labels)) {
                        for rule in rules_of(other) {
                            if !rules.contains(&rule) {
                                rules.push(rule);
                            }
                        }
                    }
                }
            }
            policy.cluster_roles.insert(name, rules.into());
        }
        for role in all(roles) {
            let meta = &role["metadata"];
            let key = (
                meta["namespace"].as_str().unwrap_or_default().to_owned(),
                meta["name"].as_str().unwrap_or_default().to_owned(),
            );
            policy.roles.insert(key, rules_of(&role).into());
        }
        policy.cluster_bindings = all(cluster_bindings).iter().map(Binding::from_json).collect();
        for binding in all(bindings).iter().map(Binding::from_json) {
            policy.bindings.entry(binding.namespace.clone()).or_default().push(binding);
        }
        policy
    }

    /// The rules a binding grants, or the real server's error for a missing role.
    fn role_rules(&self, binding: &Binding) -> Result<Arc<[Rule]>, String> {
        let found = match binding.role_kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&binding.role_name),
            "Role" if !binding.namespace.is_empty() => {
                self.roles.get(&(binding.namespace.clone(), binding.role_name.clone()))
            }
            _ => None,
        };
        found.cloned().ok_or_else(|| {
            let kind = if binding.role_kind == "ClusterRole" { "clusterrole" } else { "role" };
            format!("{kind}.rbac.authorization.k8s.io \"{}\" not found", binding.role_name)
        })
    }

    /// The bindings that apply to a request in `namespace`: every ClusterRoleBinding, then the
    /// RoleBindings of that namespace.
    fn bindings_for<'a>(&'a self, namespace: &str) -> impl Iterator<Item = &'a Binding> {
        let local = if namespace.is_empty() { None } else { self.bindings.get(namespace) };
        self.cluster_bindings.iter().chain(local.into_iter().flatten())
    }

    /// Decides a request, as the RBAC authorizer does (privileged users are decided before it).
    pub(crate) fn authorize(&self, user: &Identity, attributes: &AccessAttributes) -> Decision {
        if user.is_privileged() {
            return Decision { allowed: true, reason: String::new() };
        }
        let mut errors: Vec<String> = Vec::new();
        for binding in self.bindings_for(attributes.namespace()) {
            let Some(subject) = binding.subjects.iter().find(|s| s.applies_to(user, &binding.namespace))
            else {
                continue;
            };
            match self.role_rules(binding) {
                Ok(rules) => {
                    if rules.iter().any(|r| r.allows(attributes)) {
                        let reason = format!("RBAC: allowed by {}", binding.describe(subject));
                        return Decision { allowed: true, reason };
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        let reason = match errors.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        };
        Decision { allowed: false, reason }
    }

    /// Every rule that applies to the user in `namespace` (`SelfSubjectRulesReview`): from the
    /// ClusterRoleBindings and the namespace's RoleBindings; plus the errors met.
    pub(crate) fn rules_for(&self, user: &Identity, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        if user.is_privileged() {
            let all = Rule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                ..Rule::default()
            };
            let urls =
                Rule { verbs: vec!["*".into()], non_resource_urls: vec!["*".into()], ..Rule::default() };
            return (vec![all, urls], Vec::new());
        }
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for binding in self.bindings_for(namespace) {
            if !binding.subjects.iter().any(|s| s.applies_to(user, &binding.namespace)) {
                continue;
            }
            match self.role_rules(binding) {
                Ok(found) => {
                    for rule in found.iter() {
                        // Namespaced bindings never grant non-resource URLs.
                        if !binding.namespace.is_empty() && !rule.non_resource_urls.is_empty() {
                            continue;
                        }
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        (rules, errors)
    }
}

/// The real server's 403 message: `forbiddenMessage` wrapped by `NewForbidden`, with the
/// authorizer's reason appended when there is one.
pub(crate) fn forbidden_message(user: &Identity, attributes: &AccessAttributes, reason: &str) -> String {
    let mut message = match attributes {
        AccessAttributes::NonResource { verb, path } => {
            format!("forbidden: User \"{}\" cannot {verb} path \"{path}\"", user.name())
        }
        AccessAttributes::Resource { verb, group, resource, subresource, namespace, name } => {
            let qualified = if group.is_empty() { resource.clone() } else { format!("{resource}.{group}") };
            let head = if name.is_empty() {
                format!("{qualified} is forbidden")
            } else {
                format!("{qualified} \"{name}\" is forbidden")
            };
            let requested =
                if subresource.is_empty() { resource.clone() } else { format!("{resource}/{subresource}") };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace \"{namespace}\"")
            };
            format!(
                "{head}: User \"{}\" cannot {verb} resource \"{requested}\" in API group \"{group}\" {scope}",
                user.name()
            )
        }
    };
    if !reason.is_empty() {
        message.push_str(": ");
        message.push_str(reason);
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> AccessAttributes {
        AccessAttributes::Resource {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn subresources_match_exactly_or_by_the_star_prefix_only() {
        let rule = |resources: Value| {
            Rule::from_json(&json!({"verbs": ["patch"], "apiGroups": [""], "resources": resources}))
        };
        let status = resource("patch", "", "pods", "status", "ns", "p");
        assert!(rule(json!(["pods/status"])).allows(&status));
        assert!(rule(json!(["*/status"])).allows(&status));
        assert!(rule(json!(["*"])).allows(&status));
        assert!(!rule(json!(["pods"])).allows(&status), "the main resource does not grant its subresources");
        assert!(!rule(json!(["pods/*"])).allows(&status), "RBAC has no resource/* wildcard");
        assert!(!rule(json!(["pods/status"])).allows(&resource("patch", "", "pods", "", "ns", "p")));
    }

    #[test]
    fn resource_names_restrict_and_non_resource_urls_match_by_prefix() {
        let named = Rule::from_json(
            &json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
        );
        assert!(named.allows(&resource("get", "", "configmaps", "", "ns", "a")));
        assert!(!named.allows(&resource("get", "", "configmaps", "", "ns", "b")));
        assert!(!named.allows(&resource("get", "", "configmaps", "", "ns", "")));
        let urls = Rule::from_json(&json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/version"]}));
        let path = |p: &str| AccessAttributes::NonResource { verb: "get".into(), path: p.into() };
        assert!(urls.allows(&path("/apis/apps/v1")));
        assert!(urls.allows(&path("/version")));
        assert!(!urls.allows(&path("/version/x")));
        assert!(
            !urls.allows(&AccessAttributes::NonResource { verb: "post".into(), path: "/version".into() })
        );
    }

    #[test]
    fn forbidden_messages_follow_the_real_server() {
        let sa = Identity::service_account("ns", "sa");
        assert_eq!(
            forbidden_message(&sa, &resource("get", "", "configmaps", "", "ns", "x"), ""),
            "configmaps \"x\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"ns\""
        );
        assert_eq!(
            forbidden_message(&sa, &resource("list", "kopf.dev", "kopfexamples", "", "", ""), ""),
            "kopfexamples.kopf.dev is forbidden: User \"system:serviceaccount:ns:sa\" cannot list resource \"kopfexamples\" in API group \"kopf.dev\" at the cluster scope"
        );
        assert_eq!(
            forbidden_message(
                &sa,
                &resource("patch", "kopf.dev", "kopfexamples", "status", "ns", "e"),
                "RBAC: role.rbac.authorization.k8s.io \"r\" not found"
            ),
            "kopfexamples.kopf.dev \"e\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot patch resource \"kopfexamples/status\" in API group \"kopf.dev\" in the namespace \"ns\": RBAC: role.rbac.authorization.k8s.io \"r\" not found"
        );
        assert_eq!(
            forbidden_message(
                &Identity::anonymous(),
                &AccessAttributes::NonResource { verb: "get".into(), path: "/apis".into() },
                ""
            ),
            "forbidden: User \"system:anonymous\" cannot get path \"/apis\""
        );
    }
}
