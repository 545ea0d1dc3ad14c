//! The ReplicaSet controller: keeps `spec.replicas` active Pods from the template — creating the
//! missing ones (named `<replicaset>-<random>`), deleting the surplus in the real controller's
//! order (unscheduled before scheduled, pending before running, not ready before ready, recently
//! ready before long ready, more restarts first, newest first), adopting orphans that match its
//! selector and releasing Pods that stopped matching — and reports `replicas`,
//! `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas` (ready for `minReadySeconds`) and
//! `observedGeneration`.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::manager::{Cx, Reconciler};
use super::selector;
use super::templates::{condition, owner_ref, pod_active, pod_available, pod_from_template, pod_ready};
use super::world::{Kind, ObjKey, Object, World};

/// How many Pods one sync creates or deletes at most (`burstReplicas`).
pub(crate) const BURST: usize = 500;

/// The ReplicaSet controller.
#[derive(Debug, Default)]
pub(crate) struct ReplicaSets;

/// Keys of the workload objects (of `kind`) in a namespace whose selector matches an orphan.
pub(crate) fn adopters(world: &World, kind: Kind, object: &Object, out: &mut Vec<ObjKey>) {
    for owner in world.in_namespace(kind, object.namespace()) {
        if selector::matches(&owner.spec()["selector"], object.labels()) {
            out.push(owner.key());
        }
    }
}

/// What a controller finds for itself: the objects of `kind` it controls that still match its
/// selector, the ones to release (controlled, no longer matching) and the orphans to adopt.
pub(crate) struct Claimed {
    pub(crate) mine: Vec<Arc<Object>>,
    pub(crate) release: Vec<Arc<Object>>,
    pub(crate) adopt: Vec<Arc<Object>>,
}

pub(crate) fn claim(world: &World, kind: Kind, owner: &Object, selector: &Value) -> Claimed {
    let mut claimed = Claimed { mine: Vec::new(), release: Vec::new(), adopt: Vec::new() };
    for o in world.owned(kind, owner.uid()) {
        if selector::matches(selector, o.labels()) {
            claimed.mine.push(o.clone());
        } else if !o.deleting() {
            claimed.release.push(o.clone());
        }
    }
    if !owner.deleting() {
        for o in world.in_namespace(kind, owner.namespace()) {
            if o.controller().is_none() && !o.deleting() && selector::matches(selector, o.labels()) {
                claimed.adopt.push(o.clone());
            }
        }
    }
    claimed
}

/// Adopts or releases: the owner reference is added to or removed from the object.
pub(crate) fn adopt_and_release(
    cx: &mut Cx<'_>,
    kind: Kind,
    owner_kind: Kind,
    owner: &Object,
    claimed: &Claimed,
) -> bool {
    for o in &claimed.adopt {
        let mut refs = o.meta()["ownerReferences"].as_array().cloned().unwrap_or_default();
        refs.push(owner_ref(owner_kind, owner));
        cx.patch(kind, o, json!({"metadata": {"ownerReferences": refs, "uid": o.uid()}}));
    }
    for o in &claimed.release {
        let refs: Vec<Value> = o.meta()["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["uid"] != owner.uid())
            .cloned()
            .collect();
        let refs = if refs.is_empty() { Value::Null } else { Value::Array(refs) };
        cx.patch(kind, o, json!({"metadata": {"ownerReferences": refs, "uid": o.uid()}}));
    }
    !claimed.adopt.is_empty() || !claimed.release.is_empty()
}

/// The order Pods are deleted in when scaling down (`controller.ActivePods` ranking): the first
/// to go sort first.
pub(crate) fn deletion_order(pods: &mut [Arc<Object>]) {
    fn phase_rank(pod: &Object) -> u8 {
        match pod.status()["phase"].as_str() {
            Some("Pending") | None => 0,
            Some("Unknown") => 1,
            _ => 2,
        }
    }
    fn ready_since(pod: &Object) -> String {
        condition(pod.status(), "Ready")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or_default()
            .to_owned()
    }
    fn restarts(pod: &Object) -> i64 {
        pod.status()["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
            .sum()
    }
    pods.sort_by_cached_key(|p| {
        let assigned = p.spec()["nodeName"].as_str().is_some_and(|n| !n.is_empty());
        let ready = pod_ready(p);
        (
            assigned,
            phase_rank(p),
            ready,
            Reverse(if ready { ready_since(p) } else { String::new() }),
            Reverse(restarts(p)),
            Reverse(p.created().to_owned()),
            p.name().to_owned(),
        )
    });
}

impl Reconciler for ReplicaSets {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::ReplicaSet, Kind::Pod]
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
            Kind::ReplicaSet => out.push(object.key()),
            _ => match object.controller() {
                Some(owner) if owner["kind"] == "ReplicaSet" => {
                    out.push((
                        object.namespace().to_owned(),
                        owner["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
                Some(_) => {}
                None => adopters(world, Kind::ReplicaSet, object, out),
            },
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let rs = cx.world.get(Kind::ReplicaSet, &key.0, &key.1)?.clone();
        let spec = rs.spec();
        let claimed = claim(cx.world, Kind::Pod, &rs, &spec["selector"]);
        if adopt_and_release(cx, Kind::Pod, Kind::ReplicaSet, &rs, &claimed) {
            cx.again = true;
            return None;
        }
        let mut active: Vec<Arc<Object>> = claimed.mine.iter().filter(|p| pod_active(p)).cloned().collect();
        let desired = spec["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        if !rs.deleting() {
            if active.len() < desired {
                let template = &spec["template"];
                for _ in 0..(desired - active.len()).min(BURST) {
                    cx.create(
                        Kind::Pod,
                        rs.namespace(),
                        pod_from_template(template, rs.namespace(), Kind::ReplicaSet, &rs),
                    );
                }
            } else if active.len() > desired {
                deletion_order(&mut active);
                for pod in active.iter().take((active.len() - desired).min(BURST)) {
                    cx.delete(Kind::Pod, pod, None);
                }
            }
        }
        let min_ready = spec["minReadySeconds"].as_i64().unwrap_or(0);
        let now = cx.unix();
        let template_labels = &spec["template"]["metadata"]["labels"];
        let fully_labeled = active
            .iter()
            .filter(|p| {
                template_labels.as_object().is_none_or(|m| m.iter().all(|(k, v)| p.labels()[k] == *v))
            })
            .count();
        let ready = active.iter().filter(|p| pod_ready(p)).count();
        let available = active.iter().filter(|p| pod_available(p, min_ready, now)).count();
        let mut status = rs.status().clone();
        if !status.is_object() {
            status = json!({});
        }
        status["replicas"] = json!(active.len());
        status["fullyLabeledReplicas"] = json!(fully_labeled);
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(available);
        status["observedGeneration"] = json!(rs.generation());
        cx.update_status(Kind::ReplicaSet, &rs, status);
        // Ready Pods that are not available yet become available after minReadySeconds.
        (ready > available).then(|| cx.now + Duration::from_secs(1)).and_then(|_| {
            active
                .iter()
                .filter(|p| pod_ready(p) && !pod_available(p, min_ready, now))
                .filter_map(|p| {
                    let since = condition(p.status(), "Ready")?["lastTransitionTime"]
                        .as_str()?
                        .parse::<jiff::Timestamp>()
                        .ok()?;
                    Some(cx.instant_at(since + jiff::SignedDuration::from_secs(min_ready)))
                })
                .min()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, phase: &str, ready: bool, created: &str) -> Arc<Object> {
        Arc::new(Object::new(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        })))
    }

    #[test]
    fn surplus_pods_go_unscheduled_first_then_pending_then_not_ready_then_newest() {
        let mut pods = vec![
            pod("ready-old", "n1", "Running", true, "2026-01-01T00:00:00Z"),
            pod("ready-new", "n1", "Running", true, "2026-01-01T00:01:00Z"),
            pod("unready", "n1", "Running", false, "2026-01-01T00:00:00Z"),
            pod("pending", "n1", "Pending", false, "2026-01-01T00:00:00Z"),
            pod("unscheduled", "", "Pending", false, "2026-01-01T00:00:00Z"),
        ];
        deletion_order(&mut pods);
        let names: Vec<&str> = pods.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["unscheduled", "pending", "unready", "ready-new", "ready-old"]);
    }
}
