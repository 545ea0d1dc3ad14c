//! Resource quantities (`100m`, `1.5`, `128Mi`, `2G`, `1e3`) and the Pod resource requests the
//! scheduler sums, in milli-units so CPU and memory share one integer type.

use std::collections::BTreeMap;

use serde_json::Value;

/// A quantity in thousandths of its unit (millicores for CPU, millibytes for memory), or `None`
/// if it does not parse.
pub(crate) fn parse_milli(text: &str) -> Option<i128> {
    let text = text.trim();
    let suffixes: [(&str, f64); 14] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, scale) = suffixes
        .iter()
        .find_map(|(s, scale)| text.strip_suffix(s).map(|n| (n, *scale)))
        .or_else(|| text.strip_suffix('E').map(|n| (n, 1e18)))
        .unwrap_or((text, 1.0));
    if number.is_empty() || number.starts_with('+') && number.len() == 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some((value * scale * 1000.0).ceil() as i128)
}

/// What a Pod asks for, in milli-units per resource name (plus `pods`: 1000 for the Pod itself):
/// the larger of the sum over containers and the largest init container, plus the overhead.
pub(crate) fn pod_requests(spec: &Value) -> BTreeMap<String, i128> {
    fn add(into: &mut BTreeMap<String, i128>, requests: &Value) {
        for (name, q) in requests.as_object().into_iter().flatten() {
            if let Some(v) =
                q.as_str().and_then(parse_milli).or_else(|| q.as_f64().map(|f| (f * 1000.0) as i128))
            {
                *into.entry(name.clone()).or_default() += v;
            }
        }
    }
    let mut total = BTreeMap::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        let requests = &c["resources"]["requests"];
        // A limit without a request defaults the request to the limit.
        let requests = if requests.is_null() { &c["resources"]["limits"] } else { requests };
        add(&mut total, requests);
    }
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let mut one = BTreeMap::new();
        add(&mut one, &c["resources"]["requests"]);
        for (k, v) in one {
            let entry = total.entry(k).or_default();
            *entry = (*entry).max(v);
        }
    }
    add(&mut total, &spec["overhead"]);
    total.insert("pods".into(), 1000);
    total
}

/// A node's allocatable resources in milli-units.
pub(crate) fn allocatable(node: &Value) -> BTreeMap<String, i128> {
    let status = &node["status"];
    let source = if status["allocatable"].is_object() { &status["allocatable"] } else { &status["capacity"] };
    source
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str().and_then(parse_milli)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_parse_in_milli_units() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("1Ki"), Some(1_024_000));
        assert_eq!(parse_milli("1G"), Some(1_000_000_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("lots"), None);
        assert_eq!(parse_milli("-1"), None);
    }

    #[test]
    fn pod_requests_sum_containers_and_take_the_largest_init_container() {
        let spec = json!({
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"resources": {"limits": {"cpu": "200m"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "1"}}}],
        });
        let r = pod_requests(&spec);
        assert_eq!(r["cpu"], 1000);
        assert_eq!(r["memory"], 64 * 1024 * 1024 * 1000);
        assert_eq!(r["pods"], 1000);
    }
}
