//! The Deployment controller, after kube-controller-manager's: one ReplicaSet per Pod template
//! (named `<deployment>-<pod-template-hash>`), rolling updates bounded by `maxSurge` and
//! `maxUnavailable` (or Recreate: old Pods gone before new ones start), proportional scaling of a
//! rollout in flight, revision annotations and ReplicaSet history (`revisionHistoryLimit`) so
//! `kubectl rollout undo` finds the previous template, pausing, and the status: `observedGeneration`,
//! replica counts, the `Available` condition and the `Progressing` condition with its progress
//! deadline (`ProgressDeadlineExceeded` when a rollout stalls for `progressDeadlineSeconds`).
//!
//! The API server does not default Deployments in the fake, so the controller reads the defaults
//! itself: 1 replica, RollingUpdate with 25 % surge and unavailability, 10 revisions kept, a
//! 600 s progress deadline.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::manager::{Cx, Reconciler};
use super::replicaset::{adopt_and_release, adopters, claim};
use super::templates::{
    POD_TEMPLATE_HASH, condition, int_or_percent, owner_ref, template_hash, without_hash,
};
use super::world::{Kind, ObjKey, Object, World};

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations of the Deployment that are not copied to its ReplicaSets.
const NOT_COPIED: [&str; 5] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
];

/// The Deployment controller.
#[derive(Debug, Default)]
pub(crate) struct Deployments;

/// A Deployment's spec with the API's defaults applied.
struct Spec {
    replicas: i64,
    recreate: bool,
    max_surge: i64,
    max_unavailable: i64,
    history: i64,
    deadline: Option<i64>,
    paused: bool,
    min_ready: i64,
}

impl Spec {
    fn of(d: &Object) -> Self {
        let spec = d.spec();
        let replicas = spec["replicas"].as_i64().unwrap_or(1).max(0);
        let recreate = spec["strategy"]["type"] == "Recreate";
        let rolling = &spec["strategy"]["rollingUpdate"];
        let (mut surge, mut unavailable) = if recreate {
            (0, 0)
        } else {
            (
                int_or_percent(&rolling["maxSurge"], replicas, true, "25%"),
                int_or_percent(&rolling["maxUnavailable"], replicas, false, "25%"),
            )
        };
        if !recreate && surge == 0 && unavailable == 0 {
            unavailable = 1; // ResolveFenceposts: a rollout must be able to move
        }
        surge = surge.max(0);
        Self {
            replicas,
            recreate,
            max_surge: surge,
            max_unavailable: if recreate || replicas == 0 { 0 } else { unavailable.clamp(0, replicas) },
            history: spec["revisionHistoryLimit"].as_i64().unwrap_or(10),
            deadline: match &spec["progressDeadlineSeconds"] {
                Value::Null => Some(600),
                v => v.as_i64().filter(|s| *s < i64::from(i32::MAX)),
            },
            paused: spec["paused"].as_bool().unwrap_or(false),
            min_ready: spec["minReadySeconds"].as_i64().unwrap_or(0),
        }
    }
}

fn replicas(rs: &Object) -> i64 {
    rs.spec()["replicas"].as_i64().unwrap_or(1)
}

fn status_count(rs: &Object, field: &str) -> i64 {
    rs.status()[field].as_i64().unwrap_or(0)
}

fn revision(rs: &Object) -> i64 {
    rs.annotation(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// A copy of a ReplicaSet with another size and the replica annotations of the Deployment.
struct Scale {
    rs: Arc<Object>,
    size: i64,
}

/// Sets a Deployment condition as `SetDeploymentCondition` does: the same status and reason
/// change nothing; the same status keeps the transition time.
fn set(conditions: &mut Vec<Value>, kind: &str, status: &str, reason: &str, message: &str, now: &str) {
    if let Some(i) = conditions.iter().position(|c| c["type"] == kind) {
        let old = &conditions[i];
        if old["status"] == status && old["reason"] == reason {
            return;
        }
        let transition = if old["status"] == status { old["lastTransitionTime"].clone() } else { json!(now) };
        conditions[i] = json!({"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": transition,
            "reason": reason, "message": message});
    } else {
        conditions
            .push(json!({"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}));
    }
}

impl Reconciler for Deployments {
    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Deployment, Kind::ReplicaSet, Kind::Pod]
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
            Kind::Deployment => out.push(object.key()),
            Kind::ReplicaSet => match object.controller() {
                Some(owner) if owner["kind"] == "Deployment" => {
                    out.push((
                        object.namespace().to_owned(),
                        owner["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
                Some(_) => {}
                None => adopters(world, Kind::Deployment, object, out),
            },
            _ => {
                // A Recreate rollout waits for the old Pods to be gone.
                if !deleted {
                    return;
                }
                let Some(rs) = object.controller().filter(|o| o["kind"] == "ReplicaSet") else { return };
                let rs =
                    world.get(Kind::ReplicaSet, object.namespace(), rs["name"].as_str().unwrap_or_default());
                if let Some(d) = rs.and_then(|rs| rs.controller()).filter(|o| o["kind"] == "Deployment")
                    && let Some(d) = world.get(
                        Kind::Deployment,
                        object.namespace(),
                        d["name"].as_str().unwrap_or_default(),
                    )
                    && d.spec()["strategy"]["type"] == "Recreate"
                {
                    out.push(d.key());
                }
            }
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let d = cx.world.get(Kind::Deployment, &key.0, &key.1)?.clone();
        let selector = &d.spec()["selector"];
        if selector.as_object().is_none_or(Map::is_empty) {
            return None; // "selector is empty": the real controller refuses it too
        }
        let claimed = claim(cx.world, Kind::ReplicaSet, &d, selector);
        if adopt_and_release(cx, Kind::ReplicaSet, Kind::Deployment, &d, &claimed) {
            cx.again = true;
            return None;
        }
        let mut all = claimed.mine;
        all.sort_by(|a, b| (a.created(), a.name()).cmp(&(b.created(), b.name())));
        let spec = Spec::of(&d);
        let template = without_hash(&d.spec()["template"]);
        let new_rs = all.iter().find(|rs| without_hash(&rs.spec()["template"]) == template).cloned();
        let old: Vec<Arc<Object>> =
            all.iter().filter(|rs| new_rs.as_ref().is_none_or(|n| n.uid() != rs.uid())).cloned().collect();
        let max_old_revision = old.iter().map(|rs| revision(rs)).max().unwrap_or(0);
        let mut status = d.status().clone();
        if !status.is_object() {
            status = json!({});
        }
        let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();
        let now = cx.time();

        if d.deleting() {
            return self.finish(cx, &d, &spec, &all, new_rs.as_deref(), status, conditions, false);
        }
        // Pausing and resuming move Progressing to Unknown, so a paused rollout never times out.
        let paused_cond =
            condition(d.status(), "Progressing").is_some_and(|c| c["reason"] == "DeploymentPaused");
        if spec.deadline.is_some() && spec.paused && !paused_cond {
            set(&mut conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", &now);
        } else if spec.deadline.is_some() && !spec.paused && paused_cond {
            set(
                &mut conditions,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                &now,
            );
        }

        // The new ReplicaSet's revision is the newest: an old template brought back (`rollout
        // undo`) moves its ReplicaSet's revision up and remembers the old number.
        if let Some(rs) = &new_rs {
            let current = revision(rs);
            let wanted = if current <= max_old_revision { max_old_revision + 1 } else { current };
            let mut annotations = replica_annotations(&d, &spec);
            if wanted != current {
                annotations.insert(REVISION.into(), json!(wanted.to_string()));
                if current > 0 {
                    let mut history: Vec<String> = rs
                        .annotation(REVISION_HISTORY)
                        .map(|h| h.split(',').map(str::to_owned).collect())
                        .unwrap_or_default();
                    history.push(current.to_string());
                    annotations.insert(REVISION_HISTORY.into(), json!(history.join(",")));
                }
            }
            let stale = annotations.iter().any(|(k, v)| rs.annotation(k) != v.as_str());
            let min_ready_stale = rs.spec()["minReadySeconds"].as_i64().unwrap_or(0) != spec.min_ready;
            if wanted != current || min_ready_stale || stale {
                cx.patch(
                    Kind::ReplicaSet,
                    rs,
                    json!({"metadata": {"annotations": annotations}, "spec": {"minReadySeconds": spec.min_ready}}),
                );
                cx.again = true;
                return None;
            }
            if d.annotation(REVISION) != Some(wanted.to_string().as_str()) {
                cx.patch(
                    Kind::Deployment,
                    &d,
                    json!({"metadata": {"annotations": {REVISION: wanted.to_string()}}}),
                );
            }
            if condition(&json!({"conditions": conditions}), "Progressing").is_none()
                && spec.deadline.is_some()
            {
                let message = format!("Found new replica set \"{}\"", rs.name());
                set(&mut conditions, "Progressing", "True", "FoundNewReplicaSet", &message, &now);
            }
        }

        let active_or_all = |rs: &&Arc<Object>| replicas(rs) > 0;
        let scaling_event = all.iter().filter(active_or_all).any(|rs| {
            rs.annotation(DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v != spec.replicas)
        });
        let mut scales: Vec<Scale> = Vec::new();
        if spec.paused || scaling_event {
            self.scale(&d, &spec, new_rs.as_ref(), &old, &mut scales);
        } else if spec.recreate {
            let active_old: Vec<&Arc<Object>> = old.iter().filter(|rs| replicas(rs) > 0).collect();
            if !active_old.is_empty() {
                scales.extend(active_old.into_iter().map(|rs| Scale { rs: rs.clone(), size: 0 }));
            } else if !old_pods_running(cx.world, &old) {
                match &new_rs {
                    None => {
                        return self.create_new(
                            cx,
                            &d,
                            &spec,
                            &template,
                            max_old_revision,
                            0,
                            status,
                            conditions,
                        );
                    }
                    Some(rs) if replicas(rs) != spec.replicas => {
                        scales.push(Scale { rs: rs.clone(), size: spec.replicas })
                    }
                    Some(_) => {}
                }
            }
        } else {
            let Some(rs) = &new_rs else {
                let total: i64 = all.iter().map(|rs| replicas(rs)).sum();
                let size = if spec.replicas == 0 {
                    0
                } else {
                    (spec.replicas + spec.max_surge - total).clamp(0, spec.replicas)
                };
                return self.create_new(cx, &d, &spec, &template, max_old_revision, size, status, conditions);
            };
            self.roll(&spec, rs, &old, &all, &mut scales);
        }
        let scaled = !scales.is_empty();
        for s in &scales {
            let mut annotations = replica_annotations(&d, &spec);
            if s.rs.annotation(REVISION).is_none() {
                annotations.remove(REVISION);
            }
            cx.patch(
                Kind::ReplicaSet,
                &s.rs,
                json!({"metadata": {"annotations": annotations}, "spec": {"replicas": s.size}}),
            );
        }
        if scaled {
            cx.again = true;
        }
        status["conditions"] = Value::Array(conditions);
        self.finish(
            cx,
            &d,
            &spec,
            &all,
            new_rs.as_deref(),
            status.clone(),
            status["conditions"].as_array().cloned().unwrap_or_default(),
            !scaled,
        )
    }
}

/// The replica annotations a Deployment puts on its ReplicaSets.
fn replica_annotations(d: &Object, spec: &Spec) -> Map<String, Value> {
    let mut annotations: Map<String, Value> = d.meta()["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    annotations.insert(DESIRED_REPLICAS.into(), json!(spec.replicas.to_string()));
    annotations.insert(MAX_REPLICAS.into(), json!((spec.replicas + spec.max_surge).to_string()));
    annotations
}

/// Whether any Pod of the old ReplicaSets is still there and not finished (Recreate waits).
fn old_pods_running(world: &World, old: &[Arc<Object>]) -> bool {
    old.iter().any(|rs| {
        world
            .owned(Kind::Pod, rs.uid())
            .any(|p| !matches!(p.status()["phase"].as_str(), Some("Succeeded" | "Failed")))
    })
}

impl Deployments {
    /// Creates the ReplicaSet of the current template.
    #[allow(clippy::too_many_arguments)]
    fn create_new(
        &self,
        cx: &mut Cx<'_>,
        d: &Object,
        spec: &Spec,
        template: &Value,
        max_old_revision: i64,
        size: i64,
        mut status: Value,
        mut conditions: Vec<Value>,
    ) -> Option<Instant> {
        let collisions = d.status()["collisionCount"].as_i64().unwrap_or(0);
        let hash = template_hash(template, collisions);
        let name = format!("{}-{hash}", d.name());
        let mut rs_template = template.clone();
        rs_template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
        let mut selector = d.spec()["selector"].clone();
        selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
        let mut annotations = replica_annotations(d, spec);
        annotations.insert(REVISION.into(), json!((max_old_revision + 1).to_string()));
        cx.create(
            Kind::ReplicaSet,
            d.namespace(),
            json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": name,
                    "namespace": d.namespace(),
                    "labels": rs_template["metadata"]["labels"].clone(),
                    "annotations": annotations,
                    "ownerReferences": [owner_ref(Kind::Deployment, d)],
                },
                "spec": {"replicas": size, "minReadySeconds": spec.min_ready, "selector": selector, "template": rs_template},
            }),
        );
        if spec.deadline.is_some() {
            let now = cx.time();
            set(
                &mut conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &format!("Created new replica set \"{name}\""),
                &now,
            );
            // A new rollout's progress is measured from now.
            for c in conditions.iter_mut().filter(|c| c["type"] == "Progressing") {
                c["lastUpdateTime"] = json!(now);
            }
        }
        cx.patch(
            Kind::Deployment,
            d,
            json!({"metadata": {"annotations": {REVISION: (max_old_revision + 1).to_string()}}}),
        );
        status["conditions"] = Value::Array(conditions);
        cx.update_status(Kind::Deployment, d, status);
        cx.again = true;
        None
    }

    /// A rolling update's step: scale the new ReplicaSet up within the surge, or the old ones
    /// down within the unavailability (`rolloutRolling`).
    fn roll(
        &self,
        spec: &Spec,
        new_rs: &Arc<Object>,
        old: &[Arc<Object>],
        all: &[Arc<Object>],
        scales: &mut Vec<Scale>,
    ) {
        let new_size = replicas(new_rs);
        // reconcileNewReplicaSet
        if new_size > spec.replicas {
            scales.push(Scale { rs: new_rs.clone(), size: spec.replicas });
            return;
        }
        if new_size < spec.replicas {
            let current: i64 = all.iter().map(|rs| replicas(rs)).sum();
            let max_total = spec.replicas + spec.max_surge;
            if current < max_total {
                let up = (max_total - current).min(spec.replicas - new_size);
                scales.push(Scale { rs: new_rs.clone(), size: new_size + up });
                return;
            }
        }
        // reconcileOldReplicaSets
        let old_count: i64 = old.iter().map(|rs| replicas(rs)).sum();
        if old_count == 0 {
            return;
        }
        let all_count: i64 = all.iter().map(|rs| replicas(rs)).sum();
        let min_available = spec.replicas - spec.max_unavailable;
        let new_unavailable = new_size - status_count(new_rs, "availableReplicas");
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return;
        }
        // cleanupUnhealthyReplicas: old Pods that are not available go first.
        let mut sizes: Vec<(Arc<Object>, i64)> = old.iter().map(|rs| (rs.clone(), replicas(rs))).collect();
        let mut cleaned = 0;
        for (rs, size) in sizes.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            let available = status_count(rs, "availableReplicas");
            if *size == 0 || available == *size {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(*size - available);
            *size -= down;
            cleaned += down;
        }
        // scaleDownOldReplicaSetsForRollingUpdate: then within the availability budget.
        let available: i64 = sizes.iter().map(|(rs, _)| status_count(rs, "availableReplicas")).sum::<i64>()
            + status_count(new_rs, "availableReplicas");
        if available > min_available {
            let mut budget = available - min_available;
            for (_, size) in sizes.iter_mut() {
                if budget == 0 {
                    break;
                }
                if *size == 0 {
                    continue;
                }
                let down = (*size).min(budget);
                *size -= down;
                budget -= down;
            }
        }
        for (rs, size) in sizes {
            if size != replicas(&rs) {
                scales.push(Scale { rs, size });
            }
        }
    }

    /// Scaling without a rollout (`sync` → `scale`): one active ReplicaSet takes the new size;
    /// with several (a rollout in flight), the difference is shared in proportion.
    fn scale(
        &self,
        d: &Object,
        spec: &Spec,
        new_rs: Option<&Arc<Object>>,
        old: &[Arc<Object>],
        scales: &mut Vec<Scale>,
    ) {
        let mut active: Vec<Arc<Object>> =
            new_rs.into_iter().chain(old.iter()).filter(|rs| replicas(rs) > 0).cloned().collect();
        if active.len() <= 1 {
            let target = active.first().cloned().or_else(|| new_rs.cloned()).or_else(|| {
                old.iter().max_by(|a, b| (a.created(), a.name()).cmp(&(b.created(), b.name()))).cloned()
            });
            if let Some(rs) = target
                && replicas(&rs) != spec.replicas
            {
                scales.push(Scale { rs, size: spec.replicas });
            }
            return;
        }
        if let Some(rs) = new_rs
            && replicas(rs) == spec.replicas
            && status_count(rs, "availableReplicas") == spec.replicas
        {
            // The new ReplicaSet is saturated: the old ones go.
            scales
                .extend(old.iter().filter(|rs| replicas(rs) > 0).map(|rs| Scale { rs: rs.clone(), size: 0 }));
            return;
        }
        if spec.recreate {
            return;
        }
        let current: i64 = active.iter().map(|rs| replicas(rs)).sum();
        let allowed = if spec.replicas > 0 { spec.replicas + spec.max_surge } else { 0 };
        let to_add = allowed - current;
        if to_add == 0 {
            return;
        }
        // Larger first; on ties newer first when growing, older first when shrinking.
        active.sort_by(|a, b| {
            let by_size = replicas(b).cmp(&replicas(a));
            let by_age = if to_add > 0 { b.created().cmp(a.created()) } else { a.created().cmp(b.created()) };
            by_size.then(by_age)
        });
        let mut added = 0;
        let mut sizes: Vec<i64> = Vec::with_capacity(active.len());
        for rs in &active {
            let size = replicas(rs);
            let proportion = if to_add == added {
                0
            } else {
                let fraction = if spec.replicas == 0 {
                    -size
                } else {
                    let annotated = rs
                        .annotation(MAX_REPLICAS)
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or_else(|| d.status()["replicas"].as_i64().unwrap_or(1))
                        .max(1);
                    ((size * (spec.replicas + spec.max_surge)) as f64 / annotated as f64).round() as i64
                        - size
                };
                let allowed = to_add - added;
                if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
            };
            added += proportion;
            sizes.push(size + proportion);
        }
        if let Some(first) = sizes.first_mut() {
            *first = (*first + to_add - added).max(0);
        }
        for (rs, size) in active.into_iter().zip(sizes) {
            if size != replicas(&rs)
                || rs.annotation(DESIRED_REPLICAS) != Some(spec.replicas.to_string().as_str())
            {
                scales.push(Scale { rs, size });
            }
        }
    }

    /// Cleans up old revisions when the rollout is complete and writes the status with its
    /// conditions (`syncRolloutStatus`); returns when the progress deadline falls.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        cx: &mut Cx<'_>,
        d: &Object,
        spec: &Spec,
        all: &[Arc<Object>],
        new_rs: Option<&Object>,
        mut status: Value,
        mut conditions: Vec<Value>,
        rollout: bool,
    ) -> Option<Instant> {
        let sum = |field: &str| -> i64 { all.iter().map(|rs| status_count(rs, field)).sum() };
        let available = sum("availableReplicas");
        let total_spec: i64 = all.iter().map(|rs| replicas(rs)).sum();
        let old_status = d.status();
        status["observedGeneration"] = json!(d.generation());
        status["replicas"] = json!(sum("replicas"));
        status["updatedReplicas"] = json!(new_rs.map_or(0, |rs| status_count(rs, "replicas")));
        status["readyReplicas"] = json!(sum("readyReplicas"));
        status["availableReplicas"] = json!(available);
        status["unavailableReplicas"] = json!((total_spec - available).max(0));
        let now = cx.time();
        if available >= spec.replicas - spec.max_unavailable {
            set(
                &mut conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                &now,
            );
        } else {
            set(
                &mut conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                &now,
            );
        }
        let mut deadline_at = None;
        match spec.deadline {
            None => conditions.retain(|c| c["type"] != "Progressing"),
            Some(seconds) if !spec.paused => {
                let count = |s: &Value, f: &str| s[f].as_i64().unwrap_or(0);
                let current = conditions.iter().find(|c| c["type"] == "Progressing").cloned();
                let complete_before = status["replicas"] == status["updatedReplicas"]
                    && current.as_ref().is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
                let complete = count(&status, "updatedReplicas") == spec.replicas
                    && count(&status, "replicas") == spec.replicas
                    && available == spec.replicas;
                let progressed = count(&status, "updatedReplicas") > count(old_status, "updatedReplicas")
                    || count(&status, "replicas") - count(&status, "updatedReplicas")
                        < count(old_status, "replicas") - count(old_status, "updatedReplicas")
                    || count(&status, "readyReplicas") > count(old_status, "readyReplicas")
                    || available > count(old_status, "availableReplicas");
                let subject = new_rs.map_or_else(
                    || format!("Deployment \"{}\"", d.name()),
                    |rs| format!("ReplicaSet \"{}\"", rs.name()),
                );
                if !complete_before {
                    if complete {
                        set(
                            &mut conditions,
                            "Progressing",
                            "True",
                            "NewReplicaSetAvailable",
                            &format!("{subject} has successfully progressed."),
                            &now,
                        );
                    } else if progressed {
                        let transition = current
                            .as_ref()
                            .filter(|c| c["status"] == "True")
                            .map_or_else(|| json!(now), |c| c["lastTransitionTime"].clone());
                        conditions.retain(|c| c["type"] != "Progressing");
                        conditions.push(json!({"type": "Progressing", "status": "True", "lastUpdateTime": now,
                            "lastTransitionTime": transition, "reason": "ReplicaSetUpdated", "message": format!("{subject} is progressing.")}));
                    } else if let Some(c) = &current
                        && c["reason"] != "ProgressDeadlineExceeded"
                        && c["reason"] != "NewReplicaSetAvailable"
                    {
                        let from =
                            c["lastUpdateTime"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
                        if let Some(from) = from {
                            let at = from + jiff::SignedDuration::from_secs(seconds);
                            if at < cx.clock.now() {
                                set(
                                    &mut conditions,
                                    "Progressing",
                                    "False",
                                    "ProgressDeadlineExceeded",
                                    &format!("{subject} has timed out progressing."),
                                    &now,
                                );
                            } else {
                                deadline_at = Some(cx.instant_at(at) + Duration::from_secs(1));
                            }
                        }
                    }
                }
                // A rollout still in progress is looked at again when its deadline passes.
                if deadline_at.is_none()
                    && !complete
                    && let Some(c) = conditions.iter().find(|c| c["type"] == "Progressing")
                    && c["reason"] != "ProgressDeadlineExceeded"
                    && c["reason"] != "NewReplicaSetAvailable"
                    && let Some(from) =
                        c["lastUpdateTime"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok())
                {
                    deadline_at = Some(
                        cx.instant_at(from + jiff::SignedDuration::from_secs(seconds))
                            + Duration::from_secs(1),
                    );
                }
            }
            Some(_) => {}
        }
        status["conditions"] = Value::Array(conditions);
        // Old revisions beyond the history limit go once the rollout is complete.
        let complete = status["updatedReplicas"] == json!(spec.replicas)
            && status["replicas"] == json!(spec.replicas)
            && status["availableReplicas"] == json!(spec.replicas);
        if rollout && (complete || spec.paused) && !d.deleting() {
            let mut dead: Vec<&Arc<Object>> = all
                .iter()
                .filter(|rs| new_rs.is_none_or(|n| n.uid() != rs.uid()))
                .filter(|rs| replicas(rs) == 0 && status_count(rs, "replicas") == 0 && !rs.deleting())
                .collect();
            let excess = dead.len() as i64 - spec.history.max(0);
            if excess > 0 {
                dead.sort_by(|a, b| (revision(a), a.created()).cmp(&(revision(b), b.created())));
                for rs in dead.into_iter().take(excess as usize) {
                    cx.delete(Kind::ReplicaSet, rs, None);
                }
            }
        }
        cx.update_status(Kind::Deployment, d, status);
        deadline_at
    }
}
