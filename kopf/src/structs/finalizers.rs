//! Our finalizer on an object: present? deleting? And the JSON-patch transforms that add or remove
//! it (appended at the end; all occurrences removed, an emptied list dropped), as Kopf does.

use serde_json::Value;

pub(crate) fn is_deletion_ongoing(body: &Value) -> bool {
    !body["metadata"]["deletionTimestamp"].is_null()
}

pub(crate) fn is_deletion_blocked(body: &Value, finalizer: &str) -> bool {
    body["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// Appends the finalizer to `metadata.finalizers`.
pub(crate) fn block_deletion(body: &mut Value, finalizer: &str) {
    if is_deletion_blocked(body, finalizer) {
        return;
    }
    let meta = &mut body["metadata"];
    match meta["finalizers"].as_array_mut() {
        Some(list) => list.push(Value::String(finalizer.to_owned())),
        None => meta["finalizers"] = Value::Array(vec![Value::String(finalizer.to_owned())]),
    }
}

/// Removes every occurrence of the finalizer; drops an emptied list.
pub(crate) fn allow_deletion(body: &mut Value, finalizer: &str) {
    let meta = &mut body["metadata"];
    if let Some(list) = meta["finalizers"].as_array_mut() {
        list.retain(|x| x != finalizer);
        if list.is_empty()
            && let Some(m) = meta.as_object_mut()
        {
            m.remove("finalizers");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_finalizer_is_appended_and_removed_with_all_its_occurrences() {
        let mut body = json!({"metadata": {"finalizers": ["other"]}});
        block_deletion(&mut body, "ours");
        assert_eq!(body["metadata"]["finalizers"], json!(["other", "ours"]));
        body["metadata"]["finalizers"] = json!(["ours", "ours"]);
        allow_deletion(&mut body, "ours");
        assert!(body["metadata"].get("finalizers").is_none(), "an emptied list is dropped");
    }
}
