//! What it takes to deploy an operator, generated from the operator itself: its
//! CustomResourceDefinitions (declared with [`Operator::with_crd`]), a ServiceAccount, the RBAC
//! roles and bindings it needs ([`crate::rbac`]) and a Deployment of one replica (`Recreate`, so
//! two versions never run at once). The operator's peering and liveness settings (from its code or
//! `kopf run`'s flags) become the container's arguments, and a liveness endpoint its port and
//! `livenessProbe`. Printed by the operator program's `manifests` command as a `v1` `List`, which
//! `kubectl apply -f` takes.

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
    let mut args: Vec<String> = match namespaces {
        Namespaces::All => vec!["--all-namespaces".to_owned()],
        Namespaces::Only(names) => names.iter().flat_map(|n| ["--namespace".to_owned(), n.clone()]).collect(),
    };
    let settings = &operator.settings;
    if settings.peering.standalone {
        args.push("--standalone".to_owned());
    } else {
        if settings.peering.mandatory {
            args.extend(["--peering".to_owned(), settings.peering.name.clone()]);
        }
        if settings.peering.priority != 0 {
            args.extend(["--priority".to_owned(), settings.peering.priority.to_string()]);
        }
    }
    let mut container = json!({"name": "operator", "image": image, "args": args});
    if let Some(endpoint) = &settings.liveness.endpoint {
        if let Some(args) = container["args"].as_array_mut() {
            args.extend([json!("--liveness"), json!(endpoint)]);
        }
        // The kubelet probes the Pod's own address: only the port and path matter.
        if let Ok(uri) = endpoint.parse::<http::Uri>() {
            let port = uri.port_u16().unwrap_or(80);
            let path = if uri.path().is_empty() { "/" } else { uri.path() };
            container["ports"] = json!([{"name": "liveness", "containerPort": port}]);
            container["livenessProbe"] = json!({
                "httpGet": {"path": path, "port": "liveness"},
                "periodSeconds": 10,
            });
        }
    }
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
                    "containers": [container],
                },
            },
        },
    }));
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(operator: &Operator) -> Value {
        let list = manifests(operator, &ManifestOptions::default());
        let deployment =
            list["items"].as_array().unwrap().iter().find(|i| i["kind"] == "Deployment").unwrap();
        deployment["spec"]["template"]["spec"]["containers"][0].clone()
    }

    #[test]
    fn peering_and_liveness_settings_become_the_containers_arguments_port_and_probe() {
        let operator = Operator::new().settings(|s| {
            s.peering.name = "team".into();
            s.peering.mandatory = true;
            s.peering.priority = 100;
            s.liveness.endpoint = Some("http://0.0.0.0:8080/healthz".into());
        });
        let container = container(&operator);
        assert_eq!(
            container["args"],
            json!([
                "--all-namespaces",
                "--peering",
                "team",
                "--priority",
                "100",
                "--liveness",
                "http://0.0.0.0:8080/healthz"
            ])
        );
        assert_eq!(container["ports"], json!([{"name": "liveness", "containerPort": 8080}]));
        assert_eq!(
            container["livenessProbe"],
            json!({"httpGet": {"path": "/healthz", "port": "liveness"}, "periodSeconds": 10})
        );
    }

    #[test]
    fn a_standalone_operator_without_liveness_gets_no_probe() {
        let container = container(&Operator::new().settings(|s| s.peering.standalone = true));
        assert_eq!(container["args"], json!(["--all-namespaces", "--standalone"]));
        assert!(container.get("livenessProbe").is_none() && container.get("ports").is_none());
    }
}
