//! kube-scheduler: binds each unassigned Pod to a Node through `pods/<name>/binding`. The filters
//! run in the default profile's order — NodeUnschedulable, TaintToleration, NodeAffinity (with
//! `nodeSelector`), NodeResourcesFit, VolumeBinding — and the feasible node with the most
//! unrequested CPU and memory wins (LeastAllocated, counting 100m CPU and 200Mi for a container that
//! requests nothing), ties going to the first name, so placement repeats from run to run.
//!
//! A Pod that fits nowhere gets `PodScheduled=False` with reason `Unschedulable` and the real
//! message (`0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 2 Insufficient
//! cpu. preemption: …`); it is tried again when Nodes change, a Pod leaves, or a claim binds. Pods
//! bound but not yet seen back on the watch count as assumed, as in the scheduler's cache.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::manager::{Cx, Reconciler};
use super::quantity::{allocatable, pod_requests};
use super::selector::{node_fits, tolerates, untolerated};
use super::templates::{pod_terminal, set_condition};
use super::world::{Kind, ObjKey, Object, World};

const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// What LeastAllocated assumes a container uses when it requests nothing.
const NON_ZERO_CPU: i128 = 100;
const NON_ZERO_MEMORY: i128 = 200 * 1024 * 1024 * 1000;

/// The scheduler's state: what is placed on each node (bound Pods and assumed bindings whose
/// echo has not come yet), and the Pods waiting for the cluster to change.
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    /// Pod uid → its node and what it counts there.
    placed: HashMap<String, (String, Arc<BTreeMap<String, i128>>)>,
    /// Node → the sum of what its placed Pods count.
    usage: HashMap<String, BTreeMap<String, i128>>,
    unschedulable: BTreeSet<ObjKey>,
}

impl Scheduler {
    fn place(&mut self, pod: &Object, node: &str) {
        if self.placed.contains_key(pod.uid()) {
            return;
        }
        let mut counts = pod_requests(pod.spec());
        let (cpu, memory) = non_zero(pod);
        counts.insert("#cpu".into(), cpu);
        counts.insert("#memory".into(), memory);
        let usage = self.usage.entry(node.to_owned()).or_default();
        for (k, v) in &counts {
            *usage.entry(k.clone()).or_default() += v;
        }
        self.placed.insert(pod.uid().to_owned(), (node.to_owned(), Arc::new(counts)));
    }

    fn unplace(&mut self, uid: &str) {
        let Some((node, counts)) = self.placed.remove(uid) else { return };
        if let Some(usage) = self.usage.get_mut(&node) {
            for (k, v) in counts.iter() {
                *usage.entry(k.clone()).or_default() -= v;
            }
        }
    }

    fn retry_unschedulable(&self, namespace: Option<&str>, out: &mut Vec<ObjKey>) {
        out.extend(self.unschedulable.iter().filter(|(ns, _)| namespace.is_none_or(|n| n == ns)).cloned());
    }
}

/// The CPU and memory LeastAllocated counts for a Pod.
fn non_zero(pod: &Object) -> (i128, i128) {
    let (mut cpu, mut memory) = (0, 0);
    for c in pod.spec()["containers"].as_array().into_iter().flatten() {
        let r = &c["resources"]["requests"];
        let q = |k: &str| r[k].as_str().and_then(super::quantity::parse_milli);
        cpu += q("cpu").unwrap_or(NON_ZERO_CPU);
        memory += q("memory").unwrap_or(NON_ZERO_MEMORY);
    }
    (cpu, memory)
}

fn wants_us(pod: &Object) -> bool {
    pod.spec()["schedulerName"].as_str().is_none_or(|s| s.is_empty() || s == DEFAULT_SCHEDULER)
}

fn unassigned(pod: &Object) -> bool {
    pod.spec()["nodeName"].as_str().is_none_or(str::is_empty)
}

impl Reconciler for Scheduler {
    fn name(&self) -> &'static str {
        "default-scheduler"
    }

    fn manager(&self) -> &'static str {
        "kube-scheduler"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Pod, Kind::Node, Kind::PersistentVolumeClaim]
    }

    fn on_change(
        &mut self,
        world: &World,
        kind: Kind,
        object: &Object,
        deleted: bool,
        out: &mut Vec<ObjKey>,
    ) {
        let _ = world;
        match kind {
            Kind::Pod => {
                if deleted || pod_terminal(object) {
                    if self.placed.contains_key(object.uid()) {
                        self.unplace(object.uid());
                        self.retry_unschedulable(None, out); // capacity freed
                    }
                } else if let Some(node) = object.spec()["nodeName"].as_str().filter(|n| !n.is_empty()) {
                    self.place(object, node);
                }
                if !deleted && unassigned(object) && wants_us(object) {
                    out.push(object.key());
                }
            }
            Kind::Node => self.retry_unschedulable(None, out),
            _ => self.retry_unschedulable(Some(object.namespace()), out),
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let Some(pod) = cx.world.get(Kind::Pod, &key.0, &key.1).cloned() else {
            self.unschedulable.remove(key);
            return None;
        };
        if unassigned(&pod) {
            self.unplace(pod.uid()); // an assumed binding that failed
        }
        if !unassigned(&pod) || pod.deleting() || pod_terminal(&pod) || !wants_us(&pod) {
            self.unschedulable.remove(key);
            return None;
        }
        match self.schedule(cx.world, &pod) {
            Ok(node) => {
                self.place(&pod, &node);
                self.unschedulable.remove(key);
                cx.bind(&pod, &node);
            }
            Err(message) => {
                self.unschedulable.insert(key.clone());
                let mut status = pod.status().clone();
                if !status.is_object() {
                    status = json!({});
                }
                let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();
                let now = cx.time();
                if set_condition(
                    &mut conditions,
                    "PodScheduled",
                    "False",
                    "Unschedulable",
                    &message,
                    &now,
                    &[],
                ) {
                    for c in &mut conditions {
                        if c["type"] == "PodScheduled" {
                            c["lastProbeTime"] = Value::Null;
                        }
                    }
                    status["conditions"] = Value::Array(conditions);
                    status["phase"] = json!("Pending");
                    cx.update_status(Kind::Pod, &pod, status);
                }
            }
        }
        None
    }
}

/// Why a node was filtered out, and whether preemption could help.
struct Rejection {
    reason: String,
    resources: bool,
}

impl Scheduler {
    /// The node for a Pod, or the unschedulable message.
    fn schedule(&mut self, world: &World, pod: &Object) -> Result<String, String> {
        let nodes: Vec<Arc<Object>> = world.all(Kind::Node).cloned().collect();
        if let Some(message) = volume_problem(world, pod) {
            let n = nodes.len();
            return Err(format!(
                "0/{n} nodes are available: {message}. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
            ));
        }
        let requests = pod_requests(pod.spec());
        let (pod_cpu, pod_memory) = non_zero(pod);
        let empty = BTreeMap::new();
        let mut rejections: Vec<Rejection> = Vec::new();
        let mut best: Option<(i128, String)> = None;
        for node in &nodes {
            if node.deleting() {
                continue;
            }
            let spec = pod.spec();
            let rejection = |reason: String, resources: bool| Rejection { reason, resources };
            if node.spec()["unschedulable"].as_bool() == Some(true)
                && !spec["tolerations"].as_array().into_iter().flatten().any(|t| {
                    tolerates(t, &json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}))
                })
            {
                rejections.push(rejection("node(s) were unschedulable".into(), false));
                continue;
            }
            if let Some(taint) = untolerated(spec, &node.value, &["NoSchedule", "NoExecute"]).first() {
                let key = taint["key"].as_str().unwrap_or_default();
                let value = taint["value"].as_str().unwrap_or_default();
                rejections
                    .push(rejection(format!("node(s) had untolerated taint {{{key}: {value}}}"), false));
                continue;
            }
            if !node_fits(spec, &node.value) {
                rejections.push(rejection("node(s) didn't match Pod's node affinity/selector".into(), false));
                continue;
            }
            let usage = self.usage.get(node.name()).unwrap_or(&empty);
            let alloc = allocatable(&node.value);
            let short: Vec<&String> = requests
                .iter()
                .filter(|(r, want)| {
                    **want > 0
                        && usage.get(*r).copied().unwrap_or(0) + **want > alloc.get(*r).copied().unwrap_or(0)
                })
                .map(|(r, _)| r)
                .collect();
            if !short.is_empty() {
                for r in short {
                    let reason =
                        if r == "pods" { "Too many pods".to_owned() } else { format!("Insufficient {r}") };
                    rejections.push(rejection(reason, true));
                }
                continue;
            }
            let score = |used: i128, want: i128, capacity: i128| {
                if capacity <= 0 { 0 } else { ((capacity - used - want).max(0) * 100) / capacity }
            };
            let cpu = score(
                usage.get("#cpu").copied().unwrap_or(0),
                pod_cpu,
                alloc.get("cpu").copied().unwrap_or(0),
            );
            let memory = score(
                usage.get("#memory").copied().unwrap_or(0),
                pod_memory,
                alloc.get("memory").copied().unwrap_or(0),
            );
            let total = cpu + memory;
            if best.as_ref().is_none_or(|(s, _)| total > *s) {
                best = Some((total, node.name().to_owned()));
            }
        }
        if let Some((_, node)) = best {
            return Ok(node);
        }
        Err(unschedulable_message(nodes.len(), &rejections))
    }
}

/// The scheduler's FitError message, with the preemption post-filter's.
fn unschedulable_message(nodes: usize, rejections: &[Rejection]) -> String {
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut helpless, mut victimless) = (0, 0);
    for r in rejections {
        *histogram.entry(&r.reason).or_default() += 1;
    }
    // Preemption counts nodes, each once: a node short of a resource has no victims to offer.
    let mut seen_resource_nodes = 0;
    for r in rejections {
        if r.resources {
            seen_resource_nodes += 1;
        } else {
            helpless += 1;
        }
    }
    victimless += seen_resource_nodes.min(nodes.saturating_sub(helpless));
    let mut reasons: Vec<String> = histogram.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
    reasons.sort();
    let mut message = format!("0/{nodes} nodes are available");
    if !reasons.is_empty() {
        message.push_str(": ");
        message.push_str(&reasons.join(", "));
    }
    message.push('.');
    let mut preemption = Vec::new();
    if helpless > 0 {
        preemption.push(format!("{helpless} Preemption is not helpful for scheduling"));
    }
    if victimless > 0 {
        preemption.push(format!("{victimless} No preemption victims found for incoming pod"));
    }
    if !preemption.is_empty() {
        preemption.sort();
        message.push_str(&format!(" preemption: 0/{nodes} nodes are available: {}.", preemption.join(", ")));
    }
    message
}

/// A claim the Pod needs that is missing or not bound yet.
fn volume_problem(world: &World, pod: &Object) -> Option<String> {
    for volume in pod.spec()["volumes"].as_array().into_iter().flatten() {
        let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() else { continue };
        match world.get(Kind::PersistentVolumeClaim, pod.namespace(), claim) {
            None => return Some(format!("persistentvolumeclaim \"{claim}\" not found")),
            Some(pvc) if pvc.status()["phase"] != "Bound" => {
                return Some("pod has unbound immediate PersistentVolumeClaims".into());
            }
            Some(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_counts_reasons_and_says_whether_preemption_helps() {
        let rejections = [
            Rejection { reason: "node(s) had untolerated taint {gpu: true}".into(), resources: false },
            Rejection { reason: "Insufficient cpu".into(), resources: true },
            Rejection { reason: "Insufficient cpu".into(), resources: true },
        ];
        assert_eq!(
            unschedulable_message(3, &rejections),
            "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 2 Insufficient cpu. \
             preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
        assert_eq!(unschedulable_message(0, &[]), "0/0 nodes are available.");
    }
}
