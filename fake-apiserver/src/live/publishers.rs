//! The per-namespace publishers of kube-controller-manager: the ServiceAccount controller keeps a
//! `default` ServiceAccount in every namespace, and the root-CA publisher keeps the
//! `kube-root-ca.crt` ConfigMap (the cluster's CA bundle) in every namespace — also in namespaces
//! created later, and again after someone deletes or edits them. Terminating namespaces are left
//! alone, as the real controllers leave them.

use serde_json::json;
use tokio::time::Instant;

use super::control::lock;
use super::manager::{Cx, Reconciler};
use super::world::{Kind, ObjKey, Object, World};

/// The name of the CA ConfigMap.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The ServiceAccount a namespace gets.
pub(crate) fn default_service_account(namespace: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}})
}

/// The CA ConfigMap a namespace gets.
pub(crate) fn root_ca_configmap(namespace: &str, pem: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
            "annotations": {"kubernetes.io/description": DESCRIPTION}},
        "data": {"ca.crt": pem},
    })
}

fn live_namespace(world: &World, name: &str) -> bool {
    world.get(Kind::Namespace, "", name).is_some_and(|ns| !ns.deleting())
}

/// The ServiceAccount controller.
#[derive(Debug, Default)]
pub(crate) struct ServiceAccounts;

impl Reconciler for ServiceAccounts {
    fn name(&self) -> &'static str {
        "service-account-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Namespace, Kind::ServiceAccount]
    }

    fn on_change(&mut self, _: &World, kind: Kind, object: &Object, deleted: bool, out: &mut Vec<ObjKey>) {
        match kind {
            Kind::Namespace if !deleted => out.push(object.key()),
            Kind::ServiceAccount if deleted && object.name() == "default" => {
                out.push((String::new(), object.namespace().to_owned()));
            }
            _ => {}
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let namespace = &key.1;
        if live_namespace(cx.world, namespace)
            && cx.world.get(Kind::ServiceAccount, namespace, "default").is_none()
        {
            cx.create(Kind::ServiceAccount, namespace, default_service_account(namespace));
        }
        None
    }
}

/// The root-CA publisher.
#[derive(Debug, Default)]
pub(crate) struct RootCaPublisher;

impl Reconciler for RootCaPublisher {
    fn name(&self) -> &'static str {
        "root-ca-cert-publisher"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Namespace, Kind::ConfigMap]
    }

    fn on_change(&mut self, _: &World, kind: Kind, object: &Object, deleted: bool, out: &mut Vec<ObjKey>) {
        match kind {
            Kind::Namespace if !deleted => out.push(object.key()),
            Kind::ConfigMap if object.name() == ROOT_CA_CONFIGMAP => {
                out.push((String::new(), object.namespace().to_owned()));
            }
            _ => {}
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let namespace = &key.1;
        if !live_namespace(cx.world, namespace) {
            return None;
        }
        let pem = lock(&cx.shared.root_ca).clone();
        match cx.world.get(Kind::ConfigMap, namespace, ROOT_CA_CONFIGMAP).cloned() {
            None => cx.create(Kind::ConfigMap, namespace, root_ca_configmap(namespace, &pem)),
            Some(cm) if cm.value["data"]["ca.crt"].as_str() != Some(pem.as_str()) => {
                cx.patch(Kind::ConfigMap, &cm, json!({"data": {"ca.crt": pem}}));
            }
            Some(_) => {}
        }
        None
    }
}
