//! The bootstrap RBAC policy of a fresh cluster, as the API server's `rbac/bootstrap-roles`
//! post-start hook leaves it: the user-facing roles (`cluster-admin`, `admin`, `edit`, `view` — the
//! last three aggregated from the `system:aggregate-to-*` roles, their rules already merged as the
//! aggregation controller does), the `system:*` roles clients commonly read, the controllers' roles,
//! and their bindings.

use serde_json::{Value, json};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const ALL: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn urls(paths: &[&str], verbs: &[&str]) -> Value {
    json!({"nonResourceURLs": paths, "verbs": verbs})
}

fn meta(name: &str, aggregate_to: &[&str]) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for to in aggregate_to {
        labels[format!("rbac.authorization.k8s.io/aggregate-to-{to}")] = json!("true");
    }
    json!({"name": name, "labels": labels, "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
}

fn role(name: &str, aggregate_to: &[&str], rules: Vec<Value>) -> Value {
    let mut role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(name, aggregate_to)});
    role["rules"] = Value::Array(rules);
    role
}

fn aggregated(name: &str, from: &str, rules: Vec<Value>) -> Value {
    let mut r = role(name, &[], rules);
    r["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{from}"): "true"}}]});
    r
}

fn view_rules() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
            READ,
        ),
        rule(
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
            READ,
        ),
        rule(&[""], &["namespaces"], READ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            READ,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
        rule(&["batch"], &["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
        rule(&["policy"], &["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
        rule(&["networking.k8s.io"], &["ingresses", "ingresses/status", "networkpolicies"], READ),
    ]
}

fn edit_rules() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
            READ,
        ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(&[""], &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            WRITE,
        ),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
        rule(&["batch"], &["cronjobs", "jobs"], WRITE),
        rule(&["policy"], &["poddisruptionbudgets"], WRITE),
        rule(&["networking.k8s.io"], &["ingresses", "networkpolicies"], WRITE),
        rule(&["coordination.k8s.io"], &["leases"], ALL),
    ]
}

fn admin_rules() -> Vec<Value> {
    vec![
        rule(&["authorization.k8s.io"], &["localsubjectaccessreviews"], &["create"]),
        rule(&["rbac.authorization.k8s.io"], &["rolebindings", "roles"], ALL),
    ]
}

/// The controllers of kube-controller-manager with a role of their own: (name, rules).
fn controller_roles() -> Vec<(&'static str, Vec<Value>)> {
    let events = rule(&["", "events.k8s.io"], &["events"], &["create", "patch", "update"]);
    vec![
        (
            "deployment-controller",
            vec![
                rule(&["apps", "extensions"], &["deployments"], &["get", "list", "update", "watch"]),
                rule(&["apps", "extensions"], &["deployments/status"], &["update"]),
                rule(&["apps", "extensions"], &["deployments/finalizers"], &["update"]),
                rule(&["apps", "extensions"], &["replicasets"], ALL),
                rule(&[""], &["pods"], &["get", "list", "update", "watch"]),
                events.clone(),
            ],
        ),
        (
            "replicaset-controller",
            vec![
                rule(&["apps", "extensions"], &["replicasets"], &["get", "list", "update", "watch"]),
                rule(&["apps", "extensions"], &["replicasets/status"], &["update"]),
                rule(&["apps", "extensions"], &["replicasets/finalizers"], &["update"]),
                rule(&[""], &["pods"], &["create", "delete", "list", "patch", "watch"]),
                events.clone(),
            ],
        ),
        (
            "statefulset-controller",
            vec![
                rule(&[""], &["pods"], &["list", "watch"]),
                rule(&["apps"], &["statefulsets"], &["list", "watch"]),
                rule(&["apps"], &["statefulsets/status"], &["update"]),
                rule(&["apps"], &["statefulsets/finalizers"], &["update"]),
                rule(&[""], &["pods"], &["create", "delete", "get", "patch", "update"]),
                rule(
                    &["apps"],
                    &["controllerrevisions"],
                    &["create", "delete", "get", "list", "patch", "update", "watch"],
                ),
                rule(&[""], &["persistentvolumeclaims"], &["create", "get"]),
                events.clone(),
            ],
        ),
        (
            "daemon-set-controller",
            vec![
                rule(&["apps", "extensions"], &["daemonsets"], &["get", "list", "watch"]),
                rule(&["apps", "extensions"], &["daemonsets/status"], &["update"]),
                rule(&["apps", "extensions"], &["daemonsets/finalizers"], &["update"]),
                rule(&[""], &["nodes"], &["list", "watch"]),
                rule(&[""], &["pods"], &["create", "delete", "list", "patch", "watch"]),
                rule(&[""], &["pods/binding"], &["create"]),
                rule(
                    &["apps"],
                    &["controllerrevisions"],
                    &["create", "delete", "get", "list", "patch", "update", "watch"],
                ),
                events.clone(),
            ],
        ),
        (
            "job-controller",
            vec![
                rule(&["batch"], &["jobs"], &["get", "list", "patch", "update", "watch"]),
                rule(&["batch"], &["jobs/status"], &["update"]),
                rule(&["batch"], &["jobs/finalizers"], &["update"]),
                rule(&[""], &["pods"], &["create", "delete", "list", "patch", "watch"]),
                events.clone(),
            ],
        ),
        (
            "cronjob-controller",
            vec![
                rule(&["batch"], &["cronjobs"], &["get", "list", "update", "watch"]),
                rule(&["batch"], &["jobs"], &["create", "delete", "get", "list", "patch", "update", "watch"]),
                rule(&["batch"], &["cronjobs/status"], &["update"]),
                rule(&["batch"], &["cronjobs/finalizers"], &["update"]),
                rule(&[""], &["pods"], &["delete", "list"]),
                events.clone(),
            ],
        ),
        (
            "endpointslice-controller",
            vec![
                rule(&[""], &["nodes", "pods", "services"], &["get", "list", "watch"]),
                rule(&[""], &["services/finalizers"], &["update"]),
                rule(
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                    &["create", "delete", "get", "list", "update"],
                ),
                events.clone(),
            ],
        ),
        ("service-account-controller", vec![rule(&[""], &["serviceaccounts"], &["create"]), events.clone()]),
        ("root-ca-cert-publisher", vec![rule(&[""], &["configmaps"], &["create", "update"]), events.clone()]),
        (
            "node-controller",
            vec![
                rule(&[""], &["nodes"], &["delete", "get", "list", "patch", "update"]),
                rule(&[""], &["nodes/status"], &["patch", "update"]),
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(&[""], &["pods"], &["delete", "list"]),
                rule(&[""], &["pods"], &["get"]),
                events.clone(),
            ],
        ),
        (
            "persistent-volume-binder",
            vec![
                rule(&[""], &["persistentvolumes"], &["create", "delete", "get", "list", "update", "watch"]),
                rule(&[""], &["persistentvolumes/status"], &["update"]),
                rule(&[""], &["persistentvolumeclaims"], &["get", "list", "update", "watch"]),
                rule(&[""], &["persistentvolumeclaims/status"], &["update"]),
                rule(&[""], &["pods"], &["create", "delete", "get", "list", "watch"]),
                events,
            ],
        ),
    ]
}

/// Every bootstrap ClusterRole.
pub(crate) fn cluster_roles() -> Vec<Value> {
    let mut edit = edit_rules();
    edit.extend(view_rules());
    let mut admin = admin_rules();
    admin.extend(edit.clone());
    let mut roles = vec![
        role("cluster-admin", &[], vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])]),
        aggregated("admin", "admin", admin),
        aggregated("edit", "edit", edit),
        aggregated("view", "view", view_rules()),
        role("system:aggregate-to-admin", &["admin"], admin_rules()),
        role("system:aggregate-to-edit", &["edit"], edit_rules()),
        role("system:aggregate-to-view", &["view"], view_rules()),
        role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
            ],
        ),
        role(
            "system:discovery",
            &[],
            vec![urls(
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                &["get"],
            )],
        ),
        role(
            "system:public-info-viewer",
            &[],
            vec![urls(&["/healthz", "/livez", "/readyz", "/version", "/version/"], &["get"])],
        ),
        role(
            "system:monitoring",
            &[],
            vec![urls(
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
                &["get"],
            )],
        ),
        role(
            "system:auth-delegator",
            &[],
            vec![
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"]),
            ],
        ),
        role(
            "system:node",
            &[],
            vec![
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews", "subjectaccessreviews"],
                    &["create"],
                ),
                rule(&[""], &["services"], READ),
                rule(&[""], &["nodes"], &["create", "get", "list", "watch"]),
                rule(&[""], &["nodes/status"], &["patch", "update"]),
                rule(&[""], &["nodes"], &["patch", "update"]),
                rule(&["", "events.k8s.io"], &["events"], &["create", "patch", "update"]),
                rule(&[""], &["pods"], READ),
                rule(&[""], &["pods"], &["create", "delete"]),
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(&[""], &["pods/eviction"], &["create"]),
                rule(&[""], &["configmaps", "secrets"], &["get", "list", "watch"]),
                rule(&[""], &["persistentvolumeclaims", "persistentvolumes"], &["get"]),
                rule(&[""], &["endpoints"], &["get"]),
                rule(&["coordination.k8s.io"], &["leases"], &["create", "delete", "get", "patch", "update"]),
            ],
        ),
        role(
            "system:node-proxier",
            &[],
            vec![
                rule(&[""], &["endpoints", "services"], &["list", "watch"]),
                rule(&[""], &["nodes"], &["get", "list", "watch"]),
                rule(&["", "events.k8s.io"], &["events"], &["create", "patch", "update"]),
                rule(&["discovery.k8s.io"], &["endpointslices"], &["list", "watch"]),
            ],
        ),
        role(
            "system:kube-scheduler",
            &[],
            vec![
                rule(&["", "events.k8s.io"], &["events"], &["create", "patch", "update"]),
                rule(&["coordination.k8s.io"], &["leases"], &["create"]),
                rule(&["coordination.k8s.io"], &["leases"], &["get", "update"]),
                rule(&[""], &["nodes"], READ),
                rule(&[""], &["pods"], &["delete", "get", "list", "watch"]),
                rule(&[""], &["bindings", "pods/binding"], &["create"]),
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(&[""], &["persistentvolumeclaims", "persistentvolumes"], READ),
                rule(
                    &["storage.k8s.io"],
                    &["csinodes", "storageclasses", "csidrivers", "csistoragecapacities"],
                    READ,
                ),
                rule(&["apps", "extensions"], &["replicasets", "statefulsets"], READ),
                rule(&["policy"], &["poddisruptionbudgets"], READ),
                rule(&["", "namespaces"], &["namespaces"], READ),
            ],
        ),
        role(
            "system:kube-controller-manager",
            &[],
            vec![
                rule(&["", "events.k8s.io"], &["events"], &["create", "patch", "update"]),
                rule(&["coordination.k8s.io"], &["leases"], &["create"]),
                rule(&["coordination.k8s.io"], &["leases"], &["get", "update"]),
                rule(&[""], &["secrets", "serviceaccounts"], &["create"]),
                rule(&[""], &["secrets"], &["delete"]),
                rule(&[""], &["configmaps", "namespaces", "secrets", "serviceaccounts"], &["get"]),
                rule(&[""], &["secrets", "serviceaccounts"], &["update"]),
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"]),
                rule(&["*"], &["*"], &["list", "watch"]),
                rule(&[""], &["serviceaccounts/token"], &["create"]),
            ],
        ),
        role("system:kube-dns", &[], vec![rule(&[""], &["endpoints", "services"], &["list", "watch"])]),
        role(
            "system:volume-scheduler",
            &[],
            vec![
                rule(&[""], &["persistentvolumes"], &["get", "list", "patch", "update", "watch"]),
                rule(&["storage.k8s.io"], &["storageclasses"], READ),
                rule(&[""], &["persistentvolumeclaims"], &["get", "list", "patch", "update", "watch"]),
            ],
        ),
        role(
            "system:service-account-issuer-discovery",
            &[],
            vec![urls(
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
                &["get"],
            )],
        ),
        role(
            "system:persistent-volume-provisioner",
            &[],
            vec![
                rule(&[""], &["persistentvolumes"], &["create", "delete", "get", "list", "watch"]),
                rule(&[""], &["persistentvolumeclaims"], &["get", "list", "update", "watch"]),
                rule(&["storage.k8s.io"], &["storageclasses"], READ),
                rule(&["", "events.k8s.io"], &["events"], &["create", "patch", "update", "watch"]),
            ],
        ),
    ];
    for (name, rules) in controller_roles() {
        roles.push(role(&format!("system:controller:{name}"), &[], rules));
    }
    roles
}

fn binding(name: &str, role: &str, subjects: Value) -> Value {
    let mut binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(name, &[]),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": null,
    });
    binding["subjects"] = subjects;
    binding
}

fn group(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name})
}

fn user(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name})
}

fn service_account(name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": "kube-system"})
}

/// Every bootstrap ClusterRoleBinding.
pub(crate) fn cluster_role_bindings() -> Vec<Value> {
    let same = |name: &str, subjects: Value| binding(name, name, subjects);
    let mut bindings = vec![
        same("cluster-admin", json!([group("system:masters")])),
        same("system:basic-user", json!([group("system:authenticated")])),
        same("system:discovery", json!([group("system:authenticated")])),
        same(
            "system:public-info-viewer",
            json!([group("system:authenticated"), group("system:unauthenticated")]),
        ),
        same("system:monitoring", json!([group("system:monitoring")])),
        same("system:node-proxier", json!([user("system:kube-proxy")])),
        same("system:kube-scheduler", json!([user("system:kube-scheduler")])),
        same("system:kube-controller-manager", json!([user("system:kube-controller-manager")])),
        same("system:kube-dns", json!([service_account("kube-dns")])),
        same("system:volume-scheduler", json!([user("system:kube-scheduler")])),
        same("system:service-account-issuer-discovery", json!([group("system:serviceaccounts")])),
    ];
    for (name, _) in controller_roles() {
        let full = format!("system:controller:{name}");
        bindings.push(same(&full, json!([service_account(name)])));
    }
    bindings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binding_refers_to_a_bootstrap_role_and_names_are_unique() {
        let roles = cluster_roles();
        let names: std::collections::BTreeSet<&str> =
            roles.iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), roles.len());
        for b in cluster_role_bindings() {
            assert!(names.contains(b["roleRef"]["name"].as_str().unwrap()), "{b}");
        }
        for user_facing in
            ["cluster-admin", "admin", "edit", "view", "system:node", "system:controller:job-controller"]
        {
            assert!(names.contains(user_facing), "{user_facing}");
        }
    }
}
