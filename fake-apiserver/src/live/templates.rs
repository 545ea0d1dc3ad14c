//! What the workload controllers share: Pods made from templates, controller owner references,
//! template hashes (`pod-template-hash`, `controller-revision-hash`), `IntOrString` percentages,
//! and conditions with their transition times.

use serde_json::{Map, Value, json};

use super::world::{Kind, Object};

/// The label that ties a ReplicaSet and its Pods to one template of a Deployment.
pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// A controller owner reference to `owner`.
pub(crate) fn owner_ref(kind: Kind, owner: &Object) -> Value {
    json!({
        "apiVersion": kind.api_version(),
        "kind": kind.name(),
        "name": owner.name(),
        "uid": owner.uid(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A Pod from a template, controlled by `owner` (`controller.GetPodFromTemplate`): the template's
/// labels, annotations, finalizers and spec, a generated name with the owner's name as prefix.
pub(crate) fn pod_from_template(
    template: &Value,
    namespace: &str,
    owner_kind: Kind,
    owner: &Object,
) -> Value {
    let meta = &template["metadata"];
    let mut metadata = Map::new();
    metadata.insert("generateName".into(), json!(format!("{}-", owner.name())));
    metadata.insert("namespace".into(), json!(namespace));
    for field in ["labels", "annotations", "finalizers"] {
        if !meta[field].is_null() {
            metadata.insert(field.into(), meta[field].clone());
        }
    }
    metadata.insert("ownerReferences".into(), json!([owner_ref(owner_kind, owner)]));
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"].clone()})
}

/// FNV-1a, 32 bits (the hash Kubernetes uses for template hashes).
pub(crate) fn fnv32a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// `rand.SafeEncodeString`: each character mapped into an alphabet without vowels or look-alikes.
pub(crate) fn safe_encode(text: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    text.bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

/// The hash of a Pod template (without its `pod-template-hash` label) and a collision count, as
/// a label value: the same template always gets the same hash.
pub(crate) fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut bytes = serde_json::to_vec(&without_hash(template)).unwrap_or_default();
    if collision_count > 0 {
        bytes.extend_from_slice(&collision_count.to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// A template without the `pod-template-hash` label (`EqualIgnoreHash`).
pub(crate) fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty()
            && let Some(meta) = t["metadata"].as_object_mut()
        {
            meta.remove("labels");
        }
    }
    if t["metadata"].as_object().is_some_and(Map::is_empty)
        && let Some(obj) = t.as_object_mut()
    {
        obj.remove("metadata");
    }
    t
}

/// Resolves an `IntOrString` (`3` or `"25%"`) against `total`, rounding percentages up or down.
pub(crate) fn int_or_percent(value: &Value, total: i64, round_up: bool, default: &str) -> i64 {
    let value = if value.is_null() { &Value::String(default.to_owned()) } else { value };
    if let Some(n) = value.as_i64() {
        return n;
    }
    let text = value.as_str().unwrap_or_default();
    match text.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
        Some(p) if round_up => (p * total + 99) / 100,
        Some(p) => p * total / 100,
        None => text.parse().unwrap_or(0),
    }
}

/// Sets a condition in a `conditions` list: a new status moves `lastTransitionTime` (and every
/// time field in `times`) to `now`; the same status keeps the transition time and updates only the
/// `always` time fields (e.g. a Deployment's `lastUpdateTime`) when reason or message change.
/// Returns whether anything changed.
pub(crate) fn set_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
    always: &[&str],
) -> bool {
    let position = conditions.iter().position(|c| c["type"] == kind);
    let mut condition = json!({"type": kind, "status": status});
    if !reason.is_empty() {
        condition["reason"] = json!(reason);
    }
    if !message.is_empty() {
        condition["message"] = json!(message);
    }
    match position {
        Some(i) => {
            let old = &conditions[i];
            let same_status = old["status"] == status;
            if same_status && old["reason"] == condition["reason"] && old["message"] == condition["message"] {
                return false;
            }
            let transition = if same_status { old["lastTransitionTime"].clone() } else { json!(now) };
            for field in always {
                condition[*field] = json!(now);
            }
            for (k, v) in old.as_object().into_iter().flatten() {
                if k.starts_with("last") && k != "lastTransitionTime" && condition.get(k).is_none() {
                    condition[k.as_str()] = v.clone();
                }
            }
            condition["lastTransitionTime"] = transition;
            conditions[i] = condition;
        }
        None => {
            for field in always {
                condition[*field] = json!(now);
            }
            condition["lastTransitionTime"] = json!(now);
            conditions.push(condition);
        }
    }
    true
}

/// The condition of a type in an object's status.
pub(crate) fn condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

/// Whether a Pod is Ready (its `Ready` condition is True).
pub(crate) fn pod_ready(pod: &Object) -> bool {
    condition(pod.status(), "Ready").is_some_and(|c| c["status"] == "True")
}

/// Whether a Pod has finished (phase Succeeded or Failed).
pub(crate) fn pod_terminal(pod: &Object) -> bool {
    matches!(pod.status()["phase"].as_str(), Some("Succeeded" | "Failed"))
}

/// Whether a Pod counts as active for a workload controller (not finished, not being deleted).
pub(crate) fn pod_active(pod: &Object) -> bool {
    !pod_terminal(pod) && !pod.deleting()
}

/// Whether a ready Pod has been ready for `min_ready` seconds at `now` (seconds since the epoch).
pub(crate) fn pod_available(pod: &Object, min_ready: i64, now: i64) -> bool {
    let Some(ready) = condition(pod.status(), "Ready").filter(|c| c["status"] == "True") else {
        return false;
    };
    if min_ready <= 0 {
        return true;
    }
    let since = ready["lastTransitionTime"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    since.is_some_and(|s| s.as_second() + min_ready <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_ignore_the_hash_label_and_change_with_the_template() {
        let a = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
        let mut labelled = a.clone();
        labelled["metadata"]["labels"][POD_TEMPLATE_HASH] = json!("abc");
        assert_eq!(template_hash(&a, 0), template_hash(&labelled, 0));
        let mut b = a.clone();
        b["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert_ne!(template_hash(&a, 0), template_hash(&b, 0));
        assert_ne!(template_hash(&a, 0), template_hash(&a, 1), "a collision count moves the hash");
        assert!(template_hash(&a, 0).chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn percentages_round_as_the_deployment_controller_does() {
        assert_eq!(int_or_percent(&json!("25%"), 10, true, "25%"), 3);
        assert_eq!(int_or_percent(&json!("25%"), 10, false, "25%"), 2);
        assert_eq!(int_or_percent(&json!(4), 10, false, "25%"), 4);
        assert_eq!(int_or_percent(&Value::Null, 4, true, "25%"), 1);
    }

    #[test]
    fn conditions_keep_their_transition_time_while_the_status_holds() {
        let mut conditions = Vec::new();
        assert!(set_condition(&mut conditions, "Available", "False", "A", "", "t1", &["lastUpdateTime"]));
        assert!(!set_condition(&mut conditions, "Available", "False", "A", "", "t2", &["lastUpdateTime"]));
        assert!(set_condition(&mut conditions, "Available", "False", "B", "", "t3", &["lastUpdateTime"]));
        assert_eq!(conditions[0]["lastTransitionTime"], "t1");
        assert_eq!(conditions[0]["lastUpdateTime"], "t3");
        assert!(set_condition(&mut conditions, "Available", "True", "B", "", "t4", &["lastUpdateTime"]));
        assert_eq!(conditions[0]["lastTransitionTime"], "t4");
    }
}
