//! The EndpointSlice controller: for every Service with a selector, EndpointSlices (at most 100
//! endpoints each, one per distinct set of resolved ports) listing the selected Pods that have an
//! IP — `ready` when the Pod is ready and not terminating, `serving` when it is ready, `terminating`
//! while it is deleted — with their node and a reference to the Pod; named targetPorts resolve
//! against each Pod's container ports. A Service selecting nothing keeps one empty slice. Slices
//! carry `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, are owned by
//! their Service and rewritten only when their contents change.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::manager::{Cx, Reconciler};
use super::templates::{owner_ref, pod_ready, pod_terminal};
use super::world::{Kind, ObjKey, Object, World};

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslice-controller.k8s.io";
/// Endpoints per slice (`--max-endpoints-per-slice`).
pub(crate) const MAX_ENDPOINTS: usize = 100;

/// The EndpointSlice controller.
#[derive(Debug, Default)]
pub(crate) struct EndpointSlices;

fn selects(service: &Object, pod: &Object) -> bool {
    service.spec()["selector"]
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| pod.labels()[k] == *v))
}

/// The Service's ports with `targetPort` resolved against a Pod's container ports.
fn ports_for(service: &Object, pod: &Object) -> Vec<Value> {
    let mut ports = Vec::new();
    for port in service.spec()["ports"].as_array().into_iter().flatten() {
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        let target = match &port["targetPort"] {
            Value::Null => port["port"].as_i64(),
            Value::Number(n) => n.as_i64(),
            Value::String(name) => name.parse::<i64>().ok().or_else(|| {
                pod.spec()["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                    .find(|p| {
                        p["name"] == name.as_str() && p["protocol"].as_str().unwrap_or("TCP") == protocol
                    })
                    .and_then(|p| p["containerPort"].as_i64())
            }),
            _ => None,
        };
        let Some(target) = target else { continue };
        let mut p = json!({"port": target, "protocol": protocol});
        p["name"] = port["name"].as_str().map_or_else(|| json!(""), |n| json!(n));
        if let Some(app) = port["appProtocol"].as_str() {
            p["appProtocol"] = json!(app);
        }
        ports.push(p);
    }
    ports
}

fn endpoint(pod: &Object) -> Option<Value> {
    let ip = pod.status()["podIP"].as_str().filter(|ip| !ip.is_empty())?;
    let ready = pod_ready(pod);
    let mut e = json!({
        "addresses": [ip],
        "conditions": {"ready": ready && !pod.deleting(), "serving": ready, "terminating": pod.deleting()},
        "targetRef": {"kind": "Pod", "namespace": pod.namespace(), "name": pod.name(), "uid": pod.uid()},
    });
    if let Some(node) = pod.spec()["nodeName"].as_str().filter(|n| !n.is_empty()) {
        e["nodeName"] = json!(node);
    }
    Some(e)
}

impl Reconciler for EndpointSlices {
    fn name(&self) -> &'static str {
        "endpointslice-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Service, Kind::Pod, Kind::EndpointSlice]
    }

    fn on_change(
        &mut self,
        world: &World,
        kind: Kind,
        object: &Object,
        _deleted: bool,
        out: &mut Vec<ObjKey>,
    ) {
        match kind {
            Kind::Service => out.push(object.key()),
            Kind::EndpointSlice if object.label(MANAGED_BY) == Some(CONTROLLER) => {
                if let Some(service) = object.label(SERVICE_NAME) {
                    out.push((object.namespace().to_owned(), service.to_owned()));
                }
            }
            Kind::EndpointSlice => {}
            _ => {
                // A Pod may have joined or left any Service of its namespace.
                for service in world.in_namespace(Kind::Service, object.namespace()) {
                    if service.spec()["selector"].as_object().is_some_and(|s| !s.is_empty()) {
                        out.push(service.key());
                    }
                }
            }
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let existing: Vec<Arc<Object>> = cx
            .world
            .in_namespace(Kind::EndpointSlice, &key.0)
            .filter(|s| {
                s.label(SERVICE_NAME) == Some(key.1.as_str()) && s.label(MANAGED_BY) == Some(CONTROLLER)
            })
            .cloned()
            .collect();
        let Some(service) = cx.world.get(Kind::Service, &key.0, &key.1).cloned().filter(|s| !s.deleting())
        else {
            return None; // the slices go with their Service (owner references)
        };
        if service.spec()["selector"].as_object().is_none_or(|s| s.is_empty()) {
            for slice in &existing {
                cx.delete(Kind::EndpointSlice, slice, None);
            }
            return None;
        }
        // Endpoints grouped by their resolved ports, in Pod name order.
        let mut groups: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for pod in cx.world.in_namespace(Kind::Pod, &key.0) {
            if !selects(&service, pod) || pod_terminal(pod) {
                continue;
            }
            let Some(e) = endpoint(pod) else { continue };
            let ports = ports_for(&service, pod);
            let group = groups
                .entry(serde_json::to_string(&ports).unwrap_or_default())
                .or_insert_with(|| (ports, Vec::new()));
            group.1.push(e);
        }
        let mut desired: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
        for (_, (ports, endpoints)) in groups {
            for chunk in endpoints.chunks(MAX_ENDPOINTS) {
                desired.push((ports.clone(), chunk.to_vec()));
            }
        }
        if desired.is_empty() {
            let ports = ports_for(&service, &Object::new(json!({})));
            desired.push((ports, Vec::new()));
        }
        let mut labels = service.labels().as_object().cloned().unwrap_or_default();
        labels.insert(SERVICE_NAME.into(), json!(service.name()));
        labels.insert(MANAGED_BY.into(), json!(CONTROLLER));
        let family = service.spec()["ipFamilies"][0].as_str().unwrap_or("IPv4").to_owned();
        for (i, (ports, endpoints)) in desired.iter().enumerate() {
            match existing.get(i) {
                Some(slice) => {
                    let same =
                        slice.value["endpoints"].as_array().map_or(endpoints.is_empty(), |e| e == endpoints)
                            && slice.value["ports"].as_array().map_or(ports.is_empty(), |p| p == ports)
                            && slice.labels().as_object() == Some(&labels);
                    if !same {
                        let mut value = slice.value.clone();
                        value["endpoints"] = json!(endpoints);
                        value["ports"] = json!(ports);
                        value["metadata"]["labels"] = json!(labels);
                        value["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"] =
                            json!(cx.time());
                        if let Some(meta) = value["metadata"].as_object_mut() {
                            meta.remove("resourceVersion");
                            meta.remove("managedFields");
                        }
                        cx.replace(Kind::EndpointSlice, value);
                    }
                }
                None => cx.create(
                    Kind::EndpointSlice,
                    &key.0,
                    json!({
                        "apiVersion": "discovery.k8s.io/v1",
                        "kind": "EndpointSlice",
                        "metadata": {
                            "generateName": format!("{}-", service.name()),
                            "namespace": key.0,
                            "labels": labels,
                            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": cx.time()},
                            "ownerReferences": [owner_ref(Kind::Service, &service)],
                        },
                        "addressType": family,
                        "endpoints": endpoints,
                        "ports": ports,
                    }),
                ),
            }
        }
        for slice in existing.iter().skip(desired.len()) {
            cx.delete(Kind::EndpointSlice, slice, None);
        }
        None
    }
}
