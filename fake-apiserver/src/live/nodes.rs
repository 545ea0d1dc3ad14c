//! Nodes: each simulated kubelet's own side of its Node (the Lease renewed every 10 s in
//! `kube-node-lease`, the status with its conditions re-posted on change and every 5 min), and the
//! node lifecycle controller of kube-controller-manager: a Node whose kubelet has not been heard of
//! for the node monitor grace period (50 s) goes `Unknown`; `not-ready`/`unreachable` NoExecute and
//! NoSchedule taints follow the Ready condition, `unschedulable` follows cordoning; the Pods of a
//! Node that is not Ready are marked not ready; taint-based eviction deletes the Pods that do not
//! tolerate a NoExecute taint, at once or when their `tolerationSeconds` run out (300 s for Pods
//! without their own, as the DefaultTolerationSeconds admission gives them); and Pods bound to a
//! Node that no longer exists are deleted (Pod garbage collection).
//!
//! A Node's kubelet is switched with [`super::NodeHealth`] (the `fake.kopf.dev/kubelet` annotation).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::control::{NODE_HEALTH_ANNOTATION, NodeHealth};
use super::manager::{Cx, Reconciler};
use super::selector::tolerates;
use super::templates::{condition, pod_terminal};
use super::world::{Kind, ObjKey, Object, World};

/// How often a kubelet renews its Lease (a quarter of the 40 s lease duration).
pub(crate) const LEASE_RENEW: Duration = Duration::from_secs(10);
/// The Lease's duration.
pub(crate) const LEASE_DURATION: i64 = 40;
/// How often a kubelet re-posts an unchanged status (`nodeStatusReportFrequency`).
pub(crate) const STATUS_REPORT: Duration = Duration::from_secs(300);
/// How long a kubelet may be silent before its Node goes Unknown (`--node-monitor-grace-period`).
pub(crate) const MONITOR_GRACE: Duration = Duration::from_secs(50);
/// The namespace of node Leases.
pub(crate) const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long Pods tolerate `not-ready`/`unreachable` when they say nothing (DefaultTolerationSeconds).
pub(crate) const DEFAULT_TOLERATION_SECONDS: i64 = 300;

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// A kubelet's node conditions, Ready or not.
pub(crate) fn conditions(ready: bool, heartbeat: &str, transition: &str) -> Value {
    let c = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": heartbeat, "lastTransitionTime": transition})
    };
    let ready = if ready {
        c("Ready", "True", "KubeletReady", "kubelet is posting ready status")
    } else {
        c(
            "Ready",
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
        )
    };
    json!([
        c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ready,
    ])
}

fn health(node: &Object) -> NodeHealth {
    NodeHealth::parse(node.annotation(NODE_HEALTH_ANNOTATION))
}

/// The kubelets' side of their Nodes: Leases and status.
#[derive(Debug, Default)]
pub(crate) struct NodeAgent {
    /// When each node's Lease and status were last written.
    renewed: HashMap<String, Instant>,
    reported: HashMap<String, Instant>,
}

impl Reconciler for NodeAgent {
    fn name(&self) -> &'static str {
        "kubelet"
    }

    fn manager(&self) -> &'static str {
        "kubelet"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Node, Kind::Lease]
    }

    fn on_change(&mut self, _: &World, kind: Kind, object: &Object, deleted: bool, out: &mut Vec<ObjKey>) {
        match kind {
            Kind::Node if deleted => {
                self.renewed.remove(object.name());
                self.reported.remove(object.name());
            }
            Kind::Node => out.push(object.key()),
            _ if object.namespace() == LEASE_NAMESPACE && deleted => {
                out.push((String::new(), object.name().to_owned()))
            }
            _ => {}
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let node = cx.world.get(Kind::Node, "", &key.1)?.clone();
        let health = health(&node);
        if health == NodeHealth::Stopped || node.deleting() {
            self.renewed.remove(&key.1);
            return None;
        }
        let now = cx.now;
        let lease = cx.world.get(Kind::Lease, LEASE_NAMESPACE, &key.1).cloned();
        let renew_due = self.renewed.get(&key.1).is_none_or(|at| *at + LEASE_RENEW <= now);
        match lease {
            None => {
                cx.create(
                    Kind::Lease,
                    LEASE_NAMESPACE,
                    json!({
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": key.1, "namespace": LEASE_NAMESPACE,
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": key.1, "uid": node.uid()}]},
                        "spec": {"holderIdentity": key.1, "leaseDurationSeconds": LEASE_DURATION, "renewTime": cx.micro_time()},
                    }),
                );
                self.renewed.insert(key.1.clone(), now);
            }
            Some(lease) if renew_due => {
                cx.patch(
                    Kind::Lease,
                    &lease,
                    json!({"spec": {"renewTime": cx.micro_time(), "holderIdentity": key.1}}),
                );
                self.renewed.insert(key.1.clone(), now);
            }
            Some(_) => {}
        }
        let ready = health == NodeHealth::Ready;
        let current = condition(node.status(), "Ready");
        let unchanged = current.is_some_and(|c| c["status"] == if ready { "True" } else { "False" });
        let report_due = self.reported.get(&key.1).is_none_or(|at| *at + STATUS_REPORT <= now);
        if !unchanged || report_due {
            let time = cx.time();
            let transition = match current {
                Some(c) if unchanged => c["lastTransitionTime"].as_str().unwrap_or(&time).to_owned(),
                _ => time.clone(),
            };
            let mut status = node.status().clone();
            if !status.is_object() {
                status = json!({});
            }
            status["conditions"] = conditions(ready, &time, &transition);
            if status["capacity"].is_null() {
                let defaults = super::config::NodeTemplate::new(key.1.as_str()).to_node(0, &time);
                status["capacity"] = defaults["status"]["capacity"].clone();
                status["allocatable"] = defaults["status"]["allocatable"].clone();
                status["nodeInfo"] = defaults["status"]["nodeInfo"].clone();
            }
            cx.update_status(Kind::Node, &node, status);
            self.reported.insert(key.1.clone(), now);
        }
        let next_renew = self.renewed.get(&key.1).map_or(now, |at| *at + LEASE_RENEW);
        let next_report = self.reported.get(&key.1).map_or(now, |at| *at + STATUS_REPORT);
        Some(next_renew.min(next_report))
    }
}

/// The node lifecycle controller (with the taint-eviction and Pod GC controllers).
#[derive(Debug, Default)]
pub(crate) struct NodeLifecycle;

/// When a kubelet was last heard of: its Lease's renew time or its Ready heartbeat, the later.
fn last_heard(world: &World, node: &Object) -> Option<jiff::Timestamp> {
    let lease = world
        .get(Kind::Lease, LEASE_NAMESPACE, node.name())
        .and_then(|l| l.spec()["renewTime"].as_str()?.parse::<jiff::Timestamp>().ok());
    let heartbeat = condition(node.status(), "Ready")
        .and_then(|c| c["lastHeartbeatTime"].as_str()?.parse::<jiff::Timestamp>().ok());
    lease.max(heartbeat)
}

impl Reconciler for NodeLifecycle {
    fn name(&self) -> &'static str {
        "node-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Node, Kind::Lease, Kind::Pod]
    }

    fn on_change(
        &mut self,
        world: &World,
        kind: Kind,
        object: &Object,
        deleted: bool,
        out: &mut Vec<ObjKey>,
    ) {
        match kind {
            Kind::Node => out.push(object.key()),
            Kind::Lease if object.namespace() == LEASE_NAMESPACE => {
                out.push((String::new(), object.name().to_owned()))
            }
            Kind::Pod if !deleted => {
                let Some(node) = object.spec()["nodeName"].as_str().filter(|n| !n.is_empty()) else { return };
                let tainted = world.get(Kind::Node, "", node).is_none_or(|n| {
                    n.spec()["taints"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|t| t["effect"] == "NoExecute"))
                });
                if tainted && !object.deleting() {
                    out.push((String::new(), node.to_owned()));
                }
            }
            _ => {}
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let Some(node) = cx.world.get(Kind::Node, "", &key.1).cloned() else {
            // Pod GC: Pods bound to a Node that is gone are deleted at once.
            let orphans: Vec<Arc<Object>> = cx.world.pods_on(&key.1).cloned().collect();
            for pod in orphans {
                cx.delete(Kind::Pod, &pod, Some(0));
            }
            return None;
        };
        let mut next: Option<Instant> = None;
        let mut wake = |at: Instant| next = Some(next.map_or(at, |n: Instant| n.min(at)));

        // Health: a silent kubelet's Node goes Unknown after the grace period.
        let ready = condition(node.status(), "Ready")
            .and_then(|c| c["status"].as_str())
            .unwrap_or("Unknown")
            .to_owned();
        if ready != "Unknown"
            && let Some(heard) = last_heard(cx.world, &node)
        {
            let deadline = heard + jiff::SignedDuration::try_from(MONITOR_GRACE).unwrap_or_default();
            if cx.clock.now() > deadline {
                let time = cx.time();
                let mut status = node.status().clone();
                if let Some(conditions) = status["conditions"].as_array_mut() {
                    for c in conditions {
                        c["status"] = json!("Unknown");
                        c["reason"] = json!("NodeStatusUnknown");
                        c["message"] = json!("Kubelet stopped posting node status.");
                        c["lastTransitionTime"] = json!(time);
                    }
                }
                cx.update_status(Kind::Node, &node, status);
                cx.again = true;
                return None;
            }
            wake(cx.instant_at(deadline) + Duration::from_millis(1));
        }

        // Taints follow the Ready condition and cordoning.
        let mut wanted: Vec<(&str, &str)> = match ready.as_str() {
            "True" => vec![],
            "False" => vec![(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")],
            _ => vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")],
        };
        if node.spec()["unschedulable"].as_bool() == Some(true) {
            wanted.push((UNSCHEDULABLE, "NoSchedule"));
        }
        let current: Vec<Value> = node.spec()["taints"].as_array().cloned().unwrap_or_default();
        let managed = |t: &Value| matches!(t["key"].as_str(), Some(NOT_READY | UNREACHABLE | UNSCHEDULABLE));
        let mut taints: Vec<Value> = current.iter().filter(|t| !managed(t)).cloned().collect();
        for (k, effect) in &wanted {
            let existing = current.iter().find(|t| t["key"] == *k && t["effect"] == *effect);
            taints.push(match existing {
                Some(t) => t.clone(),
                None if *effect == "NoExecute" => json!({"key": k, "effect": effect, "timeAdded": cx.time()}),
                None => json!({"key": k, "effect": effect}),
            });
        }
        if taints != current {
            let value = if taints.is_empty() { Value::Null } else { Value::Array(taints) };
            cx.patch(Kind::Node, &node, json!({"spec": {"taints": value}}));
            cx.again = true;
            return next;
        }

        let no_execute: Vec<Value> = current.iter().filter(|t| t["effect"] == "NoExecute").cloned().collect();
        if ready == "True" && no_execute.is_empty() {
            return next;
        }
        let pods: Vec<Arc<Object>> = cx.world.pods_on(&key.1).filter(|p| !pod_terminal(p)).cloned().collect();
        // The Pods of a Node whose kubelet is silent are not ready either (a kubelet that runs
        // reports its Pods itself).
        if ready == "Unknown" {
            for pod in pods.iter().filter(|p| !p.deleting()) {
                let Some(c) = condition(pod.status(), "Ready").filter(|c| c["status"] == "True") else {
                    continue;
                };
                let mut status = pod.status().clone();
                let mut c = c.clone();
                c["status"] = json!("False");
                c["lastTransitionTime"] = json!(cx.time());
                if let Some(list) = status["conditions"].as_array_mut() {
                    for x in list.iter_mut().filter(|x| x["type"] == "Ready") {
                        *x = c.clone();
                    }
                }
                cx.update_status(Kind::Pod, pod, status);
            }
        }

        // Taint-based eviction.
        for pod in pods.iter().filter(|p| !p.deleting()) {
            let Some(at) = eviction_time(pod, &no_execute) else { continue };
            if at <= cx.clock.now() {
                let mut status = pod.status().clone();
                let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();
                super::templates::set_condition(
                    &mut conditions,
                    "DisruptionTarget",
                    "True",
                    "DeletionByTaintManager",
                    "Taint manager: deleting due to NoExecute taint",
                    &cx.time(),
                    &[],
                );
                status["conditions"] = Value::Array(conditions);
                cx.update_status(Kind::Pod, pod, status);
                cx.delete(Kind::Pod, pod, None);
            } else {
                wake(cx.instant_at(at));
            }
        }
        next
    }
}

/// When a Pod must leave a Node with these NoExecute taints: now for an untolerated one, else the
/// earliest end of a toleration with `tolerationSeconds`; never if it tolerates them all forever.
fn eviction_time(pod: &Object, taints: &[Value]) -> Option<jiff::Timestamp> {
    let tolerations: Vec<Value> = pod.spec()["tolerations"].as_array().cloned().unwrap_or_default();
    let mut earliest: Option<jiff::Timestamp> = None;
    for taint in taints {
        let added = taint["timeAdded"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let key = taint["key"].as_str().unwrap_or_default();
        let matching: Vec<&Value> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        let seconds = if matching.is_empty() {
            if key == NOT_READY || key == UNREACHABLE {
                Some(DEFAULT_TOLERATION_SECONDS) // DefaultTolerationSeconds admission
            } else {
                return Some(jiff::Timestamp::UNIX_EPOCH); // untolerated: now
            }
        } else if matching.iter().any(|t| t["tolerationSeconds"].is_null()) {
            None // tolerated forever
        } else {
            matching.iter().filter_map(|t| t["tolerationSeconds"].as_i64()).min()
        };
        if let Some(s) = seconds {
            let at = added + jiff::SignedDuration::from_secs(s.max(0));
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(tolerations: Value) -> Object {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        pod["spec"]["tolerations"] = tolerations;
        Object::new(pod)
    }

    #[test]
    fn pods_are_evicted_when_their_toleration_runs_out_and_300_s_is_the_default() {
        let taint = json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"});
        let t = |s: &str| s.parse::<jiff::Timestamp>().ok();
        assert_eq!(eviction_time(&pod(json!([])), std::slice::from_ref(&taint)), t("2026-01-01T00:05:00Z"));
        let short = json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]);
        assert_eq!(eviction_time(&pod(short), std::slice::from_ref(&taint)), t("2026-01-01T00:00:30Z"));
        let forever = json!([{"operator": "Exists"}]);
        assert_eq!(eviction_time(&pod(forever), std::slice::from_ref(&taint)), None);
        let other = json!({"key": "maintenance", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"});
        assert_eq!(eviction_time(&pod(json!([])), &[other]), Some(jiff::Timestamp::UNIX_EPOCH));
    }
}
