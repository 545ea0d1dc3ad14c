//! What it takes to deploy an operator, generated from the operator itself: its
//! CustomResourceDefinitions (declared with [`Operator::with_crd`]), a ServiceAccount, the RBAC
//! roles and bindings it needs ([`crate::rbac`]) and a Deployment of one replica (`Recreate`, so
//! two versions never run at once). Printed by the operator program's `manifests` command as a
//! `v1` `List`, which `kubectl apply -f` takes.

use serde_json::{Value, json};

use crate::operator::Operator;
use crate::rbac::{RbacOptions, declared_resources, rbac};
use crate::reactor::running::Namespaces;
use crate::structs::references::Resource;

/// Where and how the operator is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// The name of the Deployment and ServiceAccount (default: `kopf-operator`).
    pub name: String,
    /// Their namespace (default: `default`).
    pub namespace: String,
    /// The operator's container image.
    pub image: String,
    /// The namespaces the operator serves (default: all), which decide its arguments and whether
    /// its RBAC is cluster-wide or per namespace.
    pub namespaces: Namespaces,
    /// The served resources the RBAC is generated against (from discovery); empty: the
    /// operator's own knowledge ([`crate::declared_resources`]).
    pub resources: Vec<Resource>,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        Self {
            name: "kopf-operator".into(),
            namespace: "default".into(),
            image: "kopf-operator:latest".into(),
            namespaces: Namespaces::All,
            resources: Vec::new(),
        }
    }
}

/// The manifests as a `v1` `List`: the CRDs first, then the ServiceAccount, its roles and
/// bindings, and the Deployment.
///
/// ```
/// let operator = kopf::Operator::new().rbac_rule(&[""], &["configmaps"], &["get"]);
/// let list = kopf::manifests(&operator, &kopf::ManifestOptions::default());
/// let kinds: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
/// assert_eq!(kinds, ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]);
/// ```
pub fn manifests(operator: &Operator, options: &ManifestOptions) -> Value {
    let ManifestOptions { name, namespace, image, namespaces, resources } = options;
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kopf-rs"});
    let mut items: Vec<Value> = operator.crds().to_vec();
    items.push(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
    }));
    let served = if resources.is_empty() { declared_resources(operator) } else { resources.clone() };
    let rbac_options =
        RbacOptions { name: name.clone(), namespace: namespace.clone(), namespaces: namespaces.clone() };
    for mut object in rbac(operator, &served, &rbac_options).objects() {
        object["metadata"]["labels"] = labels.clone();
        items.push(object);
    }
    let args: Vec<String> = match namespaces {
        Namespaces::All => vec!["--all-namespaces".to_owned()],
        Namespaces::Only(names) => names.iter().flat_map(|n| ["--namespace".to_owned(), n.clone()]).collect(),
    };
    items.push(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "containers": [{
                        "name": "operator",
                        "image": image,
                        "args": args,
                    }],
                },
            },
        },
    }));
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}
