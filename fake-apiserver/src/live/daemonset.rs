//! The DaemonSet controller: one Pod per Node that matches the template's node selector and
//! affinity and whose taints the Pod tolerates — with the tolerations every daemon Pod gets
//! (`not-ready` and `unreachable` NoExecute, `disk-pressure`, `memory-pressure`, `pid-pressure`
//! and `unschedulable` NoSchedule) — each Pod pinned to its Node by a `metadata.name` node
//! affinity and bound by the scheduler; surplus and misplaced Pods deleted, failed ones replaced,
//! rolling updates one Node at a time (`maxUnavailable` 1) waiting for the new Pod to be available.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::manager::{Cx, Reconciler};
use super::selector::{node_fits, untolerated};
use super::statefulset::revision_object;
use super::templates::{pod_available, pod_ready, pod_terminal, template_hash};
use super::world::{Kind, ObjKey, Object, World};

const REVISION_LABEL: &str = "controller-revision-hash";

/// The DaemonSet controller.
#[derive(Debug, Default)]
pub(crate) struct DaemonSets;

/// The tolerations the DaemonSet controller adds to its Pods.
fn daemon_tolerations(spec: &Value) -> Vec<Value> {
    let mut tolerations: Vec<Value> = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        if !tolerations.iter().any(|t| t["key"] == key && t["effect"] == effect) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        }
    }
    tolerations
}

/// The Node a daemon Pod is for: its `nodeName`, or the name its node affinity pins.
fn target_node(pod: &Object) -> Option<String> {
    if let Some(n) = pod.spec()["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Some(n.to_owned());
    }
    let terms = &pod.spec()["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    terms.as_array()?.iter().find_map(|t| {
        t["matchFields"].as_array()?.iter().find(|f| f["key"] == "metadata.name")?["values"][0]
            .as_str()
            .map(str::to_owned)
    })
}

impl Reconciler for DaemonSets {
    fn name(&self) -> &'static str {
        "daemonset-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::DaemonSet, Kind::Pod, Kind::Node, Kind::ControllerRevision]
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
            Kind::DaemonSet => out.push(object.key()),
            Kind::Node => out.extend(world.all(Kind::DaemonSet).map(|d| d.key())),
            _ => {
                if let Some(owner) = object.controller().filter(|o| o["kind"] == "DaemonSet") {
                    out.push((
                        object.namespace().to_owned(),
                        owner["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let ds = cx.world.get(Kind::DaemonSet, &key.0, &key.1)?.clone();
        if ds.deleting() {
            return None;
        }
        let spec = ds.spec();
        let template = &spec["template"];
        let hash = template_hash(template, spec["collisionCount"].as_i64().unwrap_or(0));
        let revision_name = format!("{}-{hash}", ds.name());
        let revisions: Vec<Arc<Object>> =
            cx.world.owned(Kind::ControllerRevision, ds.uid()).cloned().collect();
        if !revisions.iter().any(|r| r.name() == revision_name) {
            let number = revisions.iter().filter_map(|r| r.value["revision"].as_i64()).max().unwrap_or(0) + 1;
            cx.create(
                Kind::ControllerRevision,
                ds.namespace(),
                revision_object(Kind::DaemonSet, &ds, &revision_name, template, number),
            );
            cx.again = true;
            return None;
        }
        let mut pod_spec = template["spec"].clone();
        pod_spec["tolerations"] = json!(daemon_tolerations(&template["spec"]));
        let nodes: Vec<Arc<Object>> = cx.world.all(Kind::Node).filter(|n| !n.deleting()).cloned().collect();
        let wanted: Vec<&Arc<Object>> = nodes
            .iter()
            .filter(|n| {
                node_fits(&pod_spec, &n.value)
                    && untolerated(&pod_spec, &n.value, &["NoSchedule", "NoExecute"]).is_empty()
            })
            .collect();
        let mut by_node: BTreeMap<String, Vec<Arc<Object>>> = BTreeMap::new();
        for pod in cx.world.owned(Kind::Pod, ds.uid()) {
            if let Some(node) = target_node(pod) {
                by_node.entry(node).or_default().push(pod.clone());
            }
        }
        let min_ready = spec["minReadySeconds"].as_i64().unwrap_or(0);
        let now = cx.unix();
        let (mut scheduled, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0);
        let mut outdated: Vec<Arc<Object>> = Vec::new();
        let mut unavailable = 0;
        for node in &wanted {
            let pods: Vec<Arc<Object>> = by_node.remove(node.name()).unwrap_or_default();
            let live: Vec<&Arc<Object>> = pods.iter().filter(|p| !p.deleting() && !pod_terminal(p)).collect();
            for failed in pods.iter().filter(|p| p.status()["phase"] == "Failed" && !p.deleting()) {
                cx.delete(Kind::Pod, failed, None);
            }
            match live.as_slice() {
                [] => {
                    if !pods.iter().any(|p| p.deleting()) {
                        cx.create(Kind::Pod, ds.namespace(), self.pod(&ds, node.name(), &pod_spec, &hash));
                    }
                    unavailable += 1;
                }
                [pod, surplus @ ..] => {
                    scheduled += 1;
                    for extra in surplus {
                        cx.delete(Kind::Pod, extra, None);
                    }
                    if pod_ready(pod) {
                        ready += 1;
                    }
                    if pod_available(pod, min_ready, now) {
                        available += 1;
                    } else {
                        unavailable += 1;
                    }
                    if pod.label(REVISION_LABEL) == Some(hash.as_str()) {
                        updated += 1;
                    } else {
                        outdated.push((*pod).clone());
                    }
                }
            }
        }
        // Pods on Nodes that should not run one.
        for pods in by_node.values() {
            for pod in pods.iter().filter(|p| !p.deleting()) {
                if !pod_terminal(pod) {
                    misscheduled += 1;
                }
                cx.delete(Kind::Pod, pod, None);
            }
        }
        // Rolling update: one outdated Pod at a time while everything else is available.
        let strategy = &spec["updateStrategy"];
        if strategy["type"] != "OnDelete"
            && unavailable == 0
            && let Some(pod) = outdated.first()
        {
            cx.delete(Kind::Pod, pod, None);
        }
        let mut status = ds.status().clone();
        if !status.is_object() {
            status = json!({});
        }
        status["observedGeneration"] = json!(ds.generation());
        status["desiredNumberScheduled"] = json!(wanted.len());
        status["currentNumberScheduled"] = json!(scheduled);
        status["numberMisscheduled"] = json!(misscheduled);
        status["numberReady"] = json!(ready);
        status["numberAvailable"] = json!(available);
        status["numberUnavailable"] = json!(wanted.len() - available);
        status["updatedNumberScheduled"] = json!(updated);
        cx.update_status(Kind::DaemonSet, &ds, status);
        None
    }
}

impl DaemonSets {
    fn pod(&self, ds: &Object, node: &str, pod_spec: &Value, hash: &str) -> Value {
        let mut pod =
            super::templates::pod_from_template(&ds.spec()["template"], ds.namespace(), Kind::DaemonSet, ds);
        pod["spec"] = pod_spec.clone();
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}],
        });
        pod["metadata"]["labels"][REVISION_LABEL] = json!(hash);
        pod["metadata"]["labels"]["pod-template-generation"] = json!(ds.generation().to_string());
        pod
    }
}
