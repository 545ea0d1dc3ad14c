//! The StatefulSet controller: Pods with stable names `<set>-<ordinal>` (from `ordinals.start`),
//! created in order — with `OrderedReady`, ordinal n only once n-1 is Running and Ready; with
//! `Parallel`, all at once — and removed from the highest ordinal down; each Pod's
//! PersistentVolumeClaims `<template>-<set>-<ordinal>` made from `volumeClaimTemplates` before the
//! Pod (the volume binder binds them at once); Pods that failed replaced; rolling updates from the
//! highest ordinal down to `partition`, one Pod at a time, waiting for each replacement to be
//! ready (or nothing for `OnDelete`). Revisions are ControllerRevisions `<set>-<hash>`; the status
//! reports the replica counts, `currentRevision` and `updateRevision`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::manager::{Cx, Reconciler};
use super::templates::{owner_ref, pod_available, pod_ready, template_hash};
use super::world::{Kind, ObjKey, Object, World};

const REVISION_LABEL: &str = "controller-revision-hash";
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The StatefulSet controller.
#[derive(Debug, Default)]
pub(crate) struct StatefulSets;

/// The ControllerRevision of a template, as StatefulSets and DaemonSets keep their history.
pub(crate) fn revision_object(
    owner_kind: Kind,
    owner: &Object,
    name: &str,
    template: &Value,
    number: i64,
) -> Value {
    let mut template = template.clone();
    template["$patch"] = json!("replace");
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": name,
            "namespace": owner.namespace(),
            "labels": owner.spec()["selector"]["matchLabels"].clone(),
            "ownerReferences": [owner_ref(owner_kind, owner)],
        },
        "data": {"spec": {"template": template}},
        "revision": number,
    })
}

fn running_and_ready(pod: &Object) -> bool {
    pod.status()["phase"] == "Running" && pod_ready(pod) && !pod.deleting()
}

fn ordinal(set: &str, pod: &Object) -> Option<i64> {
    pod.name().strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

impl Reconciler for StatefulSets {
    fn name(&self) -> &'static str {
        "statefulset-controller"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::StatefulSet, Kind::Pod, Kind::ControllerRevision, Kind::PersistentVolumeClaim]
    }

    fn on_change(&mut self, _: &World, kind: Kind, object: &Object, _deleted: bool, out: &mut Vec<ObjKey>) {
        match kind {
            Kind::StatefulSet => out.push(object.key()),
            Kind::PersistentVolumeClaim => {}
            _ => {
                if let Some(owner) = object.controller().filter(|o| o["kind"] == "StatefulSet") {
                    out.push((
                        object.namespace().to_owned(),
                        owner["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }

    fn reconcile(&mut self, cx: &mut Cx<'_>, key: &ObjKey) -> Option<Instant> {
        let set = cx.world.get(Kind::StatefulSet, &key.0, &key.1)?.clone();
        if set.deleting() {
            return None;
        }
        let spec = set.spec();
        let template = &spec["template"];
        let update_revision = format!("{}-{}", set.name(), template_hash(template, 0));
        let revisions: Vec<Arc<Object>> =
            cx.world.owned(Kind::ControllerRevision, set.uid()).cloned().collect();
        if !revisions.iter().any(|r| r.name() == update_revision) {
            let number = revisions.iter().filter_map(|r| r.value["revision"].as_i64()).max().unwrap_or(0) + 1;
            cx.create(
                Kind::ControllerRevision,
                set.namespace(),
                revision_object(Kind::StatefulSet, &set, &update_revision, template, number),
            );
            cx.again = true;
            return None;
        }
        let status_current = set.status()["currentRevision"].as_str().unwrap_or(&update_revision).to_owned();
        let replicas = spec["replicas"].as_i64().unwrap_or(1).max(0);
        let start = spec["ordinals"]["start"].as_i64().unwrap_or(0).max(0);
        let parallel = spec["podManagementPolicy"] == "Parallel";
        let pods: BTreeMap<i64, Arc<Object>> = cx
            .world
            .owned(Kind::Pod, set.uid())
            .filter_map(|p| Some((ordinal(set.name(), p)?, p.clone())))
            .collect();

        let mut acted = false;
        // Failed Pods are replaced.
        for pod in pods.values() {
            if pod.status()["phase"] == "Failed" && !pod.deleting() {
                cx.delete(Kind::Pod, pod, None);
                acted = true;
            }
        }
        // Create the missing ordinals, in order.
        if !acted {
            for i in start..start + replicas {
                match pods.get(&i) {
                    Some(pod) => {
                        if !parallel && !running_and_ready(pod) {
                            break; // OrderedReady: wait for this one
                        }
                    }
                    None => {
                        self.create_pod(cx, &set, i, &update_revision);
                        acted = true;
                        if !parallel {
                            break;
                        }
                    }
                }
            }
        }
        // Condemned ordinals go from the highest down.
        if !acted {
            let condemned: Vec<&Arc<Object>> = pods
                .iter()
                .rev()
                .filter(|(i, _)| **i < start || **i >= start + replicas)
                .map(|(_, p)| p)
                .collect();
            let all_healthy = pods.values().all(|p| running_and_ready(p) || p.deleting());
            for pod in condemned {
                if pod.deleting() {
                    if !parallel {
                        break;
                    }
                    continue;
                }
                if !parallel && !all_healthy {
                    break;
                }
                cx.delete(Kind::Pod, pod, None);
                acted = true;
                if !parallel {
                    break;
                }
            }
        }
        // Rolling update: the highest outdated ordinal at or above the partition, one at a time.
        let strategy = &spec["updateStrategy"];
        if !acted && strategy["type"] != "OnDelete" {
            let partition = strategy["rollingUpdate"]["partition"].as_i64().unwrap_or(0);
            let all_ready =
                (start..start + replicas).all(|i| pods.get(&i).is_some_and(|p| running_and_ready(p)));
            if all_ready
                && let Some(pod) = pods
                    .iter()
                    .rev()
                    .filter(|(i, _)| **i >= start + partition && **i < start + replicas)
                    .map(|(_, p)| p)
                    .find(|p| p.label(REVISION_LABEL) != Some(update_revision.as_str()))
            {
                cx.delete(Kind::Pod, pod, None);
            }
        }

        let live: Vec<&Arc<Object>> = pods.values().filter(|p| !p.deleting()).collect();
        let updated =
            live.iter().filter(|p| p.label(REVISION_LABEL) == Some(update_revision.as_str())).count() as i64;
        let current_revision = if updated == replicas && live.len() as i64 == replicas {
            update_revision.clone()
        } else {
            status_current
        };
        let min_ready = spec["minReadySeconds"].as_i64().unwrap_or(0);
        let now = cx.unix();
        let mut status = set.status().clone();
        if !status.is_object() {
            status = json!({});
        }
        status["observedGeneration"] = json!(set.generation());
        status["replicas"] = json!(live.len());
        status["readyReplicas"] = json!(live.iter().filter(|p| pod_ready(p)).count());
        status["availableReplicas"] = json!(live.iter().filter(|p| pod_available(p, min_ready, now)).count());
        status["currentReplicas"] =
            json!(live.iter().filter(|p| p.label(REVISION_LABEL) == Some(current_revision.as_str())).count());
        status["updatedReplicas"] = json!(updated);
        status["currentRevision"] = json!(current_revision);
        status["updateRevision"] = json!(update_revision);
        status["collisionCount"] = json!(status["collisionCount"].as_i64().unwrap_or(0));
        cx.update_status(Kind::StatefulSet, &set, status);
        // Old revisions beyond the history limit go.
        let limit = spec["revisionHistoryLimit"].as_i64().unwrap_or(10).max(0) as usize;
        let mut old: Vec<&Arc<Object>> = revisions
            .iter()
            .filter(|r| r.name() != update_revision && r.name() != current_revision && !r.deleting())
            .collect();
        if old.len() > limit {
            old.sort_by_key(|r| r.value["revision"].as_i64().unwrap_or(0));
            let excess = old.len() - limit;
            for r in old.into_iter().take(excess) {
                cx.delete(Kind::ControllerRevision, r, None);
            }
        }
        None
    }
}

impl StatefulSets {
    /// Creates ordinal `i`'s claims (if missing) and Pod.
    fn create_pod(&self, cx: &mut Cx<'_>, set: &Object, i: i64, revision: &str) {
        let spec = set.spec();
        let name = format!("{}-{i}", set.name());
        let whole_set = spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete";
        let mut volumes: Vec<Value> =
            spec["template"]["spec"]["volumes"].as_array().cloned().unwrap_or_default();
        for claim in spec["volumeClaimTemplates"].as_array().into_iter().flatten() {
            let template_name = claim["metadata"]["name"].as_str().unwrap_or_default();
            let claim_name = format!("{template_name}-{name}");
            if cx.world.get(Kind::PersistentVolumeClaim, set.namespace(), &claim_name).is_none() {
                let mut labels = claim["metadata"]["labels"].as_object().cloned().unwrap_or_default();
                for (k, v) in spec["selector"]["matchLabels"].as_object().into_iter().flatten() {
                    labels.insert(k.clone(), v.clone());
                }
                let mut metadata =
                    json!({"name": claim_name, "namespace": set.namespace(), "labels": labels});
                if whole_set {
                    metadata["ownerReferences"] = json!([owner_ref(Kind::StatefulSet, set)]);
                }
                cx.create(
                    Kind::PersistentVolumeClaim,
                    set.namespace(),
                    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": claim["spec"].clone()}),
                );
            }
            volumes.retain(|v| v["name"] != template_name);
            volumes.push(json!({"name": template_name, "persistentVolumeClaim": {"claimName": claim_name}}));
        }
        let mut pod =
            super::templates::pod_from_template(&spec["template"], set.namespace(), Kind::StatefulSet, set);
        let meta = &mut pod["metadata"];
        if let Some(m) = meta.as_object_mut() {
            m.remove("generateName");
        }
        meta["name"] = json!(name);
        meta["labels"][REVISION_LABEL] = json!(revision);
        meta["labels"][POD_NAME_LABEL] = json!(name);
        meta["labels"][POD_INDEX_LABEL] = json!(i.to_string());
        pod["spec"]["hostname"] = json!(name);
        if let Some(service) = spec["serviceName"].as_str().filter(|s| !s.is_empty()) {
            pod["spec"]["subdomain"] = json!(service);
        }
        if !volumes.is_empty() {
            pod["spec"]["volumes"] = json!(volumes);
        }
        cx.create(Kind::Pod, set.namespace(), pod);
    }
}
