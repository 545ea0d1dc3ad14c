//! The webhooks of the stored `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration`
//! objects, read with the real server's defaults, and the real server's rules for whether a
//! webhook intercepts a request: the resource exemptions, `namespaceSelector`, `objectSelector`,
//! and the rules (operations, groups, versions, resources with subresources, scope), with
//! `matchPolicy: Equivalent` reaching the other served versions of a custom resource.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::selectors::labels::{LabelSelector, from_label_selector_json};

/// Where a webhook is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Client {
    /// `clientConfig.url`.
    Url(String),
    /// `clientConfig.service`.
    Service { namespace: String, name: String, path: String, port: u16 },
}

impl Client {
    /// The URL the webhook is called at: the URL itself, or the service's in-cluster name.
    pub(crate) fn url(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::Service { namespace, name, path, port } => {
                let path =
                    if path.is_empty() || path.starts_with('/') { path.clone() } else { format!("/{path}") };
                format!("https://{name}.{namespace}.svc:{port}{path}")
            }
        }
    }
}

/// One rule of a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    operations: Vec<String>,
    groups: Vec<String>,
    versions: Vec<String>,
    resources: Vec<String>,
    scope: String,
}

/// `sideEffects` of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SideEffects {
    /// `None` or `NoneOnDryRun`: safe to call on dry runs.
    DryRunSafe,
    /// `Some`, `Unknown` or unset: a dry run it intercepts is refused.
    Unsafe,
}

/// One webhook of a configuration, with the defaults the real server fills in.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub(crate) configuration: String,
    pub(crate) name: String,
    pub(crate) mutating: bool,
    pub(crate) client: Client,
    pub(crate) ca_bundle: Option<Vec<u8>>,
    rules: Vec<Rule>,
    /// `failurePolicy: Ignore` (default `Fail`).
    pub(crate) fail_open: bool,
    /// `matchPolicy: Equivalent` (the default) rather than `Exact`.
    equivalent: bool,
    namespace_selector: LabelSelector,
    object_selector: LabelSelector,
    pub(crate) side_effects: SideEffects,
    pub(crate) timeout: Duration,
    /// `reinvocationPolicy: IfNeeded` (default `Never`).
    pub(crate) reinvoke: bool,
    /// The `AdmissionReview` version sent: `v1` when accepted, else `v1beta1`.
    pub(crate) review_version: &'static str,
}

/// What a request is, for matching.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    pub(crate) operation: &'a str,
    pub(crate) group: &'a str,
    pub(crate) version: &'a str,
    pub(crate) plural: &'a str,
    pub(crate) subresource: &'a str,
    pub(crate) namespace: &'a str,
    /// The other served versions of the same custom resource, with their kinds.
    pub(crate) equivalents: &'a [(String, String)],
    /// The labels of the request's namespace, if it has one and it exists.
    pub(crate) namespace_labels: Option<&'a BTreeMap<String, String>>,
}

/// The version a webhook is called with (the request's own, or an equivalent one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub(crate) version: String,
    /// The kind in that version, when it is not the request's version.
    pub(crate) kind: Option<String>,
}

/// Resources no webhook intercepts, so a broken webhook can always be removed.
fn exempt(group: &str, plural: &str) -> bool {
    group == "admissionregistration.k8s.io"
        && matches!(
            plural,
            "validatingwebhookconfigurations"
                | "mutatingwebhookconfigurations"
                | "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        )
}

fn labels_of(object: Option<&Value>) -> Option<BTreeMap<String, String>> {
    let object = object?;
    Some(
        object["metadata"]["labels"]
            .as_object()
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            .unwrap_or_default(),
    )
}

impl Hook {
    /// Whether the webhook intercepts this request, and in which version.
    pub(crate) fn intercepts(
        &self,
        target: &Target<'_>,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> Option<Invocation> {
        if exempt(target.group, target.plural) {
            return None;
        }
        if !self.namespace_selector.is_empty() {
            let is_namespace = target.group.is_empty() && target.plural == "namespaces";
            let ok = if is_namespace {
                let labels = labels_of(object.or(old)).unwrap_or_default();
                self.namespace_selector.matches(&labels)
            } else if target.namespace.is_empty() {
                true // other cluster-scoped objects are never skipped by a namespace selector
            } else {
                let empty = BTreeMap::new();
                self.namespace_selector.matches(target.namespace_labels.unwrap_or(&empty))
            };
            if !ok {
                return None;
            }
        }
        if !self.object_selector.is_empty() {
            let matches =
                |o: Option<&Value>| labels_of(o).is_some_and(|labels| self.object_selector.matches(&labels));
            if !matches(object) && !matches(old) {
                return None;
            }
        }
        if self.rules.iter().any(|r| r.matches(target, target.version)) {
            return Some(Invocation { version: target.version.to_owned(), kind: None });
        }
        if self.equivalent {
            for (version, kind) in target.equivalents {
                if self.rules.iter().any(|r| r.matches(target, version)) {
                    return Some(Invocation { version: version.clone(), kind: Some(kind.clone()) });
                }
            }
        }
        None
    }
}

impl Rule {
    fn matches(&self, t: &Target<'_>, version: &str) -> bool {
        let any = |items: &[String], wanted: &str| items.iter().any(|i| i == "*" || i == wanted);
        let is_namespace = t.group.is_empty() && t.plural == "namespaces";
        let scope = match self.scope.as_str() {
            "Namespaced" => !is_namespace && !t.namespace.is_empty(),
            "Cluster" => is_namespace || t.namespace.is_empty(),
            _ => true,
        };
        let resource = self.resources.iter().any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
            (res == "*" || res == t.plural) && (sub == "*" || sub == t.subresource)
        });
        scope
            && any(&self.operations, t.operation)
            && any(&self.groups, t.group)
            && any(&self.versions, version)
            && resource
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// A selector field: absent or `null` means `{}` (everything), as the server defaults it.
fn selector(v: &Value) -> Result<LabelSelector, String> {
    if v.is_null() {
        return Ok(LabelSelector::default());
    }
    from_label_selector_json(v).map_err(|e| e.to_string())
}

/// The webhooks of one configuration object, in order; a webhook the real server would have
/// refused at creation (no client, an unparsable selector) is skipped with a log line.
pub(crate) fn parse(configuration: &Value, mutating: bool) -> Vec<Hook> {
    let config_name = configuration["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let mut hooks = Vec::new();
    for webhook in configuration["webhooks"].as_array().into_iter().flatten() {
        let name = webhook["name"].as_str().unwrap_or_default().to_owned();
        match parse_one(webhook, &config_name, &name, mutating) {
            Ok(hook) => hooks.push(hook),
            Err(e) => tracing::warn!(configuration = %config_name, webhook = %name, "webhook ignored: {e}"),
        }
    }
    hooks
}

fn parse_one(webhook: &Value, configuration: &str, name: &str, mutating: bool) -> Result<Hook, String> {
    let client_config = &webhook["clientConfig"];
    let client = if let Some(url) = client_config["url"].as_str() {
        Client::Url(url.to_owned())
    } else if client_config["service"].is_object() {
        let service = &client_config["service"];
        Client::Service {
            namespace: service["namespace"].as_str().unwrap_or_default().to_owned(),
            name: service["name"].as_str().unwrap_or_default().to_owned(),
            path: service["path"].as_str().unwrap_or_default().to_owned(),
            port: service["port"].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or(443),
        }
    } else {
        return Err("clientConfig has neither url nor service".into());
    };
    let ca_bundle = match client_config["caBundle"].as_str() {
        Some(b64) if !b64.is_empty() => {
            use base64::Engine as _;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("caBundle: {e}"))?,
            )
        }
        _ => None,
    };
    let rules = webhook["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Rule {
            operations: strings(&r["operations"]),
            groups: strings(&r["apiGroups"]),
            versions: strings(&r["apiVersions"]),
            resources: strings(&r["resources"]),
            scope: r["scope"].as_str().unwrap_or("*").to_owned(),
        })
        .collect();
    let versions = strings(&webhook["admissionReviewVersions"]);
    let review_version =
        if versions.is_empty() || versions.iter().any(|v| v == "v1") { "v1" } else { "v1beta1" };
    Ok(Hook {
        configuration: configuration.to_owned(),
        name: name.to_owned(),
        mutating,
        client,
        ca_bundle,
        rules,
        fail_open: webhook["failurePolicy"].as_str() == Some("Ignore"),
        equivalent: webhook["matchPolicy"].as_str() != Some("Exact"),
        namespace_selector: selector(&webhook["namespaceSelector"])?,
        object_selector: selector(&webhook["objectSelector"])?,
        side_effects: match webhook["sideEffects"].as_str() {
            Some("None" | "NoneOnDryRun") => SideEffects::DryRunSafe,
            _ => SideEffects::Unsafe,
        },
        timeout: Duration::from_secs(webhook["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30)),
        reinvoke: mutating && webhook["reinvocationPolicy"].as_str() == Some("IfNeeded"),
        review_version,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hook(webhook: &Value) -> Hook {
        let config = json!({"metadata": {"name": "cfg"}, "webhooks": [webhook]});
        parse(&config, false).pop().expect("parsed")
    }

    fn target<'a>(operation: &'a str, plural: &'a str, sub: &'a str, ns: &'a str) -> Target<'a> {
        Target {
            operation,
            group: "kopf.dev",
            version: "v1",
            plural,
            subresource: sub,
            namespace: ns,
            equivalents: &[],
            namespace_labels: None,
        }
    }

    #[test]
    fn rules_match_operations_resources_subresources_and_scope_as_the_server_does() {
        let h = hook(&json!({"name": "w", "clientConfig": {"url": "https://x"}, "rules": [
            {"operations": ["CREATE"], "apiGroups": ["kopf.dev"], "apiVersions": ["*"], "resources": ["kopfexamples"], "scope": "Namespaced"}
        ]}));
        assert!(h.intercepts(&target("CREATE", "kopfexamples", "", "ns"), None, None).is_some());
        assert!(h.intercepts(&target("UPDATE", "kopfexamples", "", "ns"), None, None).is_none());
        assert!(h.intercepts(&target("CREATE", "kopfexamples", "status", "ns"), None, None).is_none());
        assert!(h.intercepts(&target("CREATE", "kopfexamples", "", ""), None, None).is_none());
        let subs = hook(&json!({"name": "w", "clientConfig": {"url": "https://x"}, "rules": [
            {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/status"]}
        ]}));
        assert!(subs.intercepts(&target("UPDATE", "kopfexamples", "status", "ns"), None, None).is_some());
        assert!(subs.intercepts(&target("UPDATE", "kopfexamples", "", "ns"), None, None).is_none());
    }

    #[test]
    fn an_object_selector_matches_the_new_or_the_old_object() {
        let h = hook(&json!({"name": "w", "clientConfig": {"url": "https://x"},
            "objectSelector": {"matchLabels": {"app": "a"}},
            "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]}));
        let labelled = json!({"metadata": {"labels": {"app": "a"}}});
        let plain = json!({"metadata": {}});
        let t = target("UPDATE", "kopfexamples", "", "ns");
        assert!(h.intercepts(&t, Some(&plain), Some(&labelled)).is_some());
        assert!(h.intercepts(&t, Some(&plain), Some(&plain)).is_none());
    }

    #[test]
    fn webhook_configurations_are_never_intercepted() {
        let h = hook(&json!({"name": "w", "clientConfig": {"url": "https://x"},
            "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]}));
        let mut t = target("CREATE", "validatingwebhookconfigurations", "", "");
        t.group = "admissionregistration.k8s.io";
        assert!(h.intercepts(&t, None, None).is_none());
    }

    #[test]
    fn service_clients_are_called_at_the_service_dns_name() {
        let h = hook(
            &json!({"name": "w", "clientConfig": {"service": {"namespace": "ns", "name": "svc", "path": "/v"}}}),
        );
        assert_eq!(h.client.url(), "https://svc.ns.svc:443/v");
        assert_eq!(h.timeout, Duration::from_secs(10));
        assert_eq!(h.side_effects, SideEffects::Unsafe);
    }
}
