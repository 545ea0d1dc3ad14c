//! Matching as the controllers and the scheduler do it: `metav1.LabelSelector`s (matchLabels and
//! matchExpressions), node selector terms (match expressions on labels, match fields on the name),
//! and taints against tolerations.

use serde_json::Value;

/// Whether `labels` (a JSON object) satisfy a `LabelSelector`. An empty selector matches everything;
/// a missing one (`null`) matches nothing, as for workload controllers.
pub(crate) fn matches(selector: &Value, labels: &Value) -> bool {
    if selector.is_null() {
        return false;
    }
    let label = |k: &str| labels[k].as_str();
    let by_labels =
        selector["matchLabels"].as_object().is_none_or(|m| m.iter().all(|(k, v)| label(k) == v.as_str()));
    by_labels
        && selector["matchExpressions"]
            .as_array()
            .is_none_or(|exprs| exprs.iter().all(|e| expression(e, |k| label(k).map(str::to_owned))))
}

/// One `{key, operator, values}` requirement; `value` looks a key up.
fn expression(expr: &Value, value: impl Fn(&str) -> Option<String>) -> bool {
    let key = expr["key"].as_str().unwrap_or_default();
    let values: Vec<&str> =
        expr["values"].as_array().map(|v| v.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let actual = value(key);
    match expr["operator"].as_str().unwrap_or_default() {
        "In" => actual.is_some_and(|a| values.contains(&a.as_str())),
        "NotIn" => actual.is_none_or(|a| !values.contains(&a.as_str())),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        "Gt" | "Lt" => {
            let (Some(a), Some(b)) = (
                actual.and_then(|a| a.parse::<i64>().ok()),
                values.first().and_then(|v| v.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if expr["operator"] == "Gt" { a > b } else { a < b }
        }
        _ => false,
    }
}

/// Whether a node satisfies a Pod's `nodeSelector` and required node affinity.
pub(crate) fn node_fits(pod_spec: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    let selector_ok = pod_spec["nodeSelector"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| labels[k].as_str() == v.as_str()));
    if !selector_ok {
        return false;
    }
    let terms = &pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    let Some(terms) = terms.as_array() else { return true };
    // The terms are ORed; within a term, every expression and field must hold.
    terms.iter().any(|term| {
        let label_ok = term["matchExpressions"]
            .as_array()
            .is_none_or(|es| es.iter().all(|e| expression(e, |k| labels[k].as_str().map(str::to_owned))));
        let field_ok = term["matchFields"].as_array().is_none_or(|es| {
            es.iter().all(|e| {
                expression(e, |k| {
                    (k == "metadata.name")
                        .then(|| node["metadata"]["name"].as_str().unwrap_or_default().to_owned())
                })
            })
        });
        let empty = term["matchExpressions"].as_array().is_none_or(Vec::is_empty)
            && term["matchFields"].as_array().is_none_or(Vec::is_empty);
        !empty && label_ok && field_ok
    })
}

/// Whether a toleration tolerates a taint.
pub(crate) fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = toleration["effect"].as_str().unwrap_or_default();
    if !effect.is_empty() && Some(effect) != taint["effect"].as_str() {
        return false;
    }
    let key = toleration["key"].as_str().unwrap_or_default();
    let operator = toleration["operator"].as_str().unwrap_or("Equal");
    if key.is_empty() {
        return operator == "Exists"; // an empty key with Exists tolerates everything
    }
    if Some(key) != taint["key"].as_str() {
        return false;
    }
    match operator {
        "Exists" => true,
        _ => toleration["value"].as_str().unwrap_or_default() == taint["value"].as_str().unwrap_or_default(),
    }
}

/// The taints of `node` with one of `effects` that none of the Pod's tolerations tolerate.
pub(crate) fn untolerated<'a>(pod_spec: &Value, node: &'a Value, effects: &[&str]) -> Vec<&'a Value> {
    let tolerations = pod_spec["tolerations"].as_array().map(Vec::as_slice).unwrap_or_default();
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| effects.contains(&t["effect"].as_str().unwrap_or_default()))
        .filter(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_selectors_combine_labels_and_expressions() {
        let labels = json!({"app": "web", "tier": "front", "version": "3"});
        assert!(matches(&json!({}), &labels), "empty selects everything");
        assert!(!matches(&Value::Null, &labels), "missing selects nothing");
        assert!(matches(&json!({"matchLabels": {"app": "web"}}), &labels));
        assert!(!matches(&json!({"matchLabels": {"app": "db"}}), &labels));
        let sel = json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "version", "operator": "NotIn", "values": ["1"]},
        ]});
        assert!(matches(&sel, &labels));
    }

    #[test]
    fn node_affinity_terms_are_ored_and_fields_match_the_name() {
        let node = json!({"metadata": {"name": "n2", "labels": {"zone": "b", "cores": "16"}}});
        let by_name = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
        ]}}}});
        assert!(node_fits(&by_name, &node));
        let big = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["32"]}]},
        ]}}}});
        assert!(!node_fits(&big, &node));
        assert!(!node_fits(&json!({"nodeSelector": {"zone": "a"}}), &node));
    }

    #[test]
    fn tolerations_match_taints_by_key_value_and_effect() {
        let taint = json!({"key": "gpu", "value": "true", "effect": "NoSchedule"});
        assert!(tolerates(&json!({"key": "gpu", "operator": "Exists"}), &taint));
        assert!(tolerates(&json!({"key": "gpu", "value": "true"}), &taint));
        assert!(!tolerates(&json!({"key": "gpu", "value": "false"}), &taint));
        assert!(!tolerates(&json!({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}), &taint));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
        let node = json!({"spec": {"taints": [taint]}});
        assert_eq!(untolerated(&json!({}), &node, &["NoSchedule"]).len(), 1);
        assert!(untolerated(&json!({}), &node, &["NoExecute"]).is_empty());
    }
}
