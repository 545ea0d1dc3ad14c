//! What it takes to deploy an operator, generated from the operator itself: its
//! CustomResourceDefinitions (declared with [`Operator::with_crd`]), a ServiceAccount and a
//! Deployment of one replica (`Recreate`, so two versions never run at once). Printed by the
//! operator program's `manifests` command as a `v1` `List`, which `kubectl apply -f` takes.

use serde_json::{Value, json};

use crate::operator::Operator;

/// Where and how the operator is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// The name of the Deployment and ServiceAccount (default: `kopf-operator`).
    pub name: String,
    /// Their namespace (default: `default`).
    pub namespace: String,
    /// The operator's container image.
    pub image: String,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        Self {
            name: "kopf-operator".into(),
            namespace: "default".into(),
            image: "kopf-operator:latest".into(),
        }
    }
}

/// The manifests as a `v1` `List`: the CRDs first, then the ServiceAccount and the Deployment.
///
/// ```
/// let list = kopf::manifests(&kopf::Operator::new(), &kopf::ManifestOptions::default());
/// let kinds: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
/// assert_eq!(kinds, ["ServiceAccount", "Deployment"]);
/// ```
pub fn manifests(operator: &Operator, options: &ManifestOptions) -> Value {
    let ManifestOptions { name, namespace, image } = options;
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kopf-rs"});
    let mut items: Vec<Value> = operator.crds().to_vec();
    items.push(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
    }));
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
                        "args": ["--all-namespaces"],
                    }],
                },
            },
        },
    }));
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}
