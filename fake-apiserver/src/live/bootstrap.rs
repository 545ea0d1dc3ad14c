//! A fresh cluster's objects, as kubeadm or kind leave them, written when the live cluster is
//! built (so they exist before the first request): the namespaces `default`, `kube-system`,
//! `kube-public` and `kube-node-lease`; the `kubernetes` Service with its Endpoints and
//! EndpointSlice; the bootstrap RBAC roles and bindings; the `system-*-critical` PriorityClasses;
//! the default StorageClass; the registered Nodes (Ready) with their Leases; and in every
//! namespace the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap (the controllers keep
//! these for namespaces created later).

use serde_json::{Value, json};

use super::config::{LiveCluster, node_ip};
use super::nodes::{LEASE_DURATION, LEASE_NAMESPACE};
use super::publishers::{default_service_account, root_ca_configmap};
use super::volumes::DEFAULT_STORAGE_CLASS;
use crate::cluster::State;
use crate::error::ApiError;
use crate::request::{Request, Verb};
use crate::store::history::EventType;

/// The namespaces every cluster starts with.
pub const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];
/// The ClusterIP of the `kubernetes` Service (the first address of the service range).
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

const ACTOR: &str = "kube-apiserver";

/// Creates an object unless it exists; other failures are bugs in the bootstrap data.
fn create(state: &mut State, api_version: &str, plural: &str, object: Value) {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let mut req = Request::new(Verb::Create, group, version, plural);
    if let Some(ns) = object["metadata"]["namespace"].as_str() {
        req.namespace = Some(ns.to_owned());
    }
    match state.create_as(ACTOR, req.body(object)) {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
        Err(e) => tracing::error!(plural, error = %e, "bootstrap object rejected"),
    }
}

/// Writes the bootstrap objects and the Nodes.
pub(crate) fn bootstrap(state: &mut State, live: &LiveCluster, root_ca: &str) {
    let now = state.clock.now_rfc3339();
    let micro = state.clock.now_micro();
    let mut namespaces: Vec<String> = Vec::new();
    if live.bootstrap {
        for ns in SYSTEM_NAMESPACES {
            create(
                state,
                "v1",
                "namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        kubernetes_service(state);
        for role in super::rbac::cluster_roles() {
            create(state, "rbac.authorization.k8s.io/v1", "clusterroles", role);
        }
        for binding in super::rbac::cluster_role_bindings() {
            create(state, "rbac.authorization.k8s.io/v1", "clusterrolebindings", binding);
        }
        for (name, value, description) in [
            (
                "system-cluster-critical",
                2_000_000_000,
                "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
            ),
            (
                "system-node-critical",
                2_000_001_000,
                "Used for system critical pods that must not be moved from their current node.",
            ),
        ] {
            create(
                state,
                "scheduling.k8s.io/v1",
                "priorityclasses",
                json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                       "value": value, "description": description, "preemptionPolicy": "PreemptLowerPriority"}),
            );
        }
        create(
            state,
            "storage.k8s.io/v1",
            "storageclasses",
            json!({
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": DEFAULT_STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "fake.kopf.dev/simulated-volume",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            }),
        );
        namespaces = state
            .stores
            .get(&crate::resources::StorageKey { group: String::new(), plural: "namespaces".into() })
            .map(|s| s.iter().filter(|n| !n.is_deleting()).map(|n| n.name().to_owned()).collect())
            .unwrap_or_default();
    }
    let node_info = state.registry.get("", "v1", "nodes");
    for (index, template) in live.nodes.iter().enumerate() {
        let node = template.to_node(index, &now);
        create(state, "v1", "nodes", node.clone());
        // The kubelet posts its status after registering (create drops a status).
        let key = (String::new(), template.name().to_owned());
        let nodes_key = crate::resources::StorageKey { group: String::new(), plural: "nodes".into() };
        if let (Some(info), Some(stored)) = (&node_info, state.current(&nodes_key, &key)) {
            let mut value = stored.value();
            value["status"] = node["status"].clone();
            let uid = stored.uid().to_owned();
            state.put(info, value, EventType::Modified);
            if state.registry.get("coordination.k8s.io", "v1", "leases").is_some() {
                create(
                    state,
                    "coordination.k8s.io/v1",
                    "leases",
                    json!({
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": template.name(), "namespace": LEASE_NAMESPACE,
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": template.name(), "uid": uid}]},
                        "spec": {"holderIdentity": template.name(), "leaseDurationSeconds": LEASE_DURATION, "renewTime": micro},
                    }),
                );
            }
        }
    }
    if live.has(super::Controller::ServiceAccount) {
        for ns in &namespaces {
            create(state, "v1", "serviceaccounts", default_service_account(ns));
        }
    }
    if live.has(super::Controller::RootCaPublisher) {
        for ns in &namespaces {
            create(state, "v1", "configmaps", root_ca_configmap(ns, root_ca));
        }
    }
}

/// The `kubernetes` Service, its Endpoints and EndpointSlice (the API server's own reconciler
/// keeps them; the address is the first node's, where a kind control plane runs).
fn kubernetes_service(state: &mut State) {
    let address = node_ip(0);
    create(
        state,
        "v1",
        "services",
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "clusterIP": KUBERNETES_SERVICE_IP,
                "clusterIPs": [KUBERNETES_SERVICE_IP],
                "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                "sessionAffinity": "None",
                "type": "ClusterIP",
            },
        }),
    );
    create(
        state,
        "v1",
        "endpoints",
        json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}],
        }),
    );
    create(
        state,
        "discovery.k8s.io/v1",
        "endpointslices",
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
        }),
    );
}

/// A self-signed CA certificate (PEM) made from the cluster's seed: Ed25519 signatures are
/// deterministic, so the same seed gives the same certificate, byte for byte.
pub(crate) fn seeded_ca(seed: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x6b75_6265_2d63_6100);
    let mut der =
        vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend((0..32).map(|_| rng.u8(..)));
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(der);
    let made = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519).and_then(|key| {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "kubernetes");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params.self_signed(&key)
    });
    match made {
        Ok(cert) => cert.pem(),
        Err(e) => {
            tracing::error!(error = %e, "cannot make the cluster's CA certificate");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeded_ca_is_a_certificate_that_repeats_for_a_seed() {
        let a = seeded_ca(7);
        assert!(a.starts_with("-----BEGIN CERTIFICATE-----"), "{a}");
        assert_eq!(a, seeded_ca(7));
        assert_ne!(a, seeded_ca(8));
    }
}
