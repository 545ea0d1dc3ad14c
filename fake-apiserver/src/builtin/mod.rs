//! The built-in resources of Kubernetes 1.37, derived from k8s-openapi's types rather than a
//! hand-picked list: `k8s_openapi::Resource` gives group, version, kind, plural and scope. The list of
//! types is generated from the k8s-openapi sources by `tools/gen_builtin_tables.py`; what the types do
//! not say (subresources, short names, categories, generation tracking) is written here by hand.

use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, SubResourceScope};

mod resources_generated;

/// What the generator read from a type's definition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flags {
    /// The kind implements `ListableResource` (has list/watch), as opposed to create-only kinds.
    pub(crate) listable: bool,
    /// The type has a `spec` field.
    pub(crate) has_spec: bool,
    /// The type has a `status` field.
    pub(crate) has_status: bool,
}

/// One built-in kind, read off its k8s-openapi type.
#[derive(Debug, Clone)]
pub(crate) struct BuiltinKind {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    /// `None` for subresource-scoped types (they are not served as resources of their own).
    pub(crate) namespaced: Option<bool>,
    /// OpenAPI definition name, e.g. `io.k8s.api.core.v1.Pod` (keys the strategic-merge schema).
    pub(crate) openapi_name: &'static str,
    pub(crate) flags: Flags,
    /// Adds the type's OpenAPI schema to a generator and returns its reference (`$ref`).
    pub(crate) schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

/// The scope of a k8s-openapi resource type, as a value.
trait ScopeKind {
    const NAMESPACED: Option<bool>;
}
impl ScopeKind for NamespaceResourceScope {
    const NAMESPACED: Option<bool> = Some(true);
}
impl ScopeKind for ClusterResourceScope {
    const NAMESPACED: Option<bool> = Some(false);
}
impl ScopeKind for SubResourceScope {
    const NAMESPACED: Option<bool> = None;
}

impl BuiltinKind {
    fn of<T>(openapi_name: &'static str, flags: Flags) -> Self
    where
        T: k8s_openapi::Resource + schemars::JsonSchema,
        T::Scope: ScopeKind,
    {
        Self {
            group: T::GROUP,
            version: T::VERSION,
            kind: T::KIND,
            plural: T::URL_PATH_SEGMENT,
            namespaced: <T::Scope as ScopeKind>::NAMESPACED,
            openapi_name,
            flags,
            schema: subschema::<T>,
        }
    }
}

fn subschema<T: schemars::JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// Every built-in kind k8s-openapi defines for the enabled Kubernetes version.
pub(crate) fn all() -> Vec<BuiltinKind> {
    resources_generated::all()
}

/// Short names `kubectl` knows, as the real server's discovery lists them.
pub(crate) fn short_names(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "configmaps") => &["cm"],
        ("", "endpoints") => &["ep"],
        ("", "events") => &["ev"],
        ("", "limitranges") => &["limits"],
        ("", "namespaces") => &["ns"],
        ("", "nodes") => &["no"],
        ("", "persistentvolumeclaims") => &["pvc"],
        ("", "persistentvolumes") => &["pv"],
        ("", "pods") => &["po"],
        ("", "replicationcontrollers") => &["rc"],
        ("", "resourcequotas") => &["quota"],
        ("", "serviceaccounts") => &["sa"],
        ("", "services") => &["svc"],
        ("apiextensions.k8s.io", "customresourcedefinitions") => &["crd", "crds"],
        ("apps", "daemonsets") => &["ds"],
        ("apps", "deployments") => &["deploy"],
        ("apps", "replicasets") => &["rs"],
        ("apps", "statefulsets") => &["sts"],
        ("autoscaling", "horizontalpodautoscalers") => &["hpa"],
        ("batch", "cronjobs") => &["cj"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["csr"],
        ("events.k8s.io", "events") => &["ev"],
        ("networking.k8s.io", "ingresses") => &["ing"],
        ("networking.k8s.io", "networkpolicies") => &["netpol"],
        ("policy", "poddisruptionbudgets") => &["pdb"],
        ("scheduling.k8s.io", "priorityclasses") => &["pc"],
        ("storage.k8s.io", "storageclasses") => &["sc"],
        _ => &[],
    }
}

/// Resources in the `all` category (`kubectl get all`).
pub(crate) fn categories(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods" | "services" | "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs" | "cronjobs")
        | ("autoscaling", "horizontalpodautoscalers") => &["all"],
        _ => &[],
    }
}

/// Built-ins with a spec whose strategies do not track `metadata.generation`.
pub(crate) fn tracks_generation(group: &str, plural: &str, flags: Flags) -> bool {
    flags.has_spec
        && !matches!(
            (group, plural),
            ("", "namespaces" | "nodes" | "persistentvolumes" | "persistentvolumeclaims" | "services")
        )
}

/// The `/scale` subresource of built-ins: (spec replicas path, status replicas path, selector path).
pub(crate) fn scale(group: &str, plural: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match (group, plural) {
        ("apps", "deployments" | "replicasets" | "statefulsets") | ("", "replicationcontrollers") => {
            Some((".spec.replicas", ".status.replicas", ".spec.selector"))
        }
        _ => None,
    }
}

/// Fields a field selector may name, beyond `metadata.name` and `metadata.namespace` (the real
/// server's field-label conversion functions).
pub(crate) fn selectable_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "events") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["spec.signerName"],
        _ => &[],
    }
}
