//! Applying a cycle's patch (Kopf's `application.apply`): the merge patch to the main resource and,
//! when `status` is a subresource, its `status` part to `/status`; the transforms as RFC 6902
//! operations guarded by a `test` of the resourceVersion (a 422 keeps them for the next cycle, which
//! the newer version's event brings; other errors, 409 included, escalate); a 404 means the object
//! is gone and ends the work quietly.
//!
//! Unlike Kopf, the `/status` patch (handler results) goes before the main one (progress records):
//! if the results cannot be stored, the progress is not recorded either and the handler runs
//! again, so a handler's outcome is never recorded as done without its result.

use serde_json::{Map, Value, json};

use crate::client::{self, ApiClient, PatchBody};
use crate::settings::Settings;
use crate::structs::patch::{Patch, PatchFn};
use crate::structs::references::Resource;

/// What applying did.
#[derive(Default)]
pub(crate) struct Applied {
    /// The resourceVersion whose watch event will echo our change, if one will come; for an
    /// object released for deletion or found gone, [`NEVER_ARRIVES`] (its DELETED event ends the
    /// wait).
    pub(crate) expected_rv: Option<String>,
    /// Whether anything was sent.
    pub(crate) sent: bool,
    /// Transforms that hit a conflict, for the next cycle.
    pub(crate) leftover: Vec<PatchFn>,
}

/// What a patch's response tells about the echo to wait for.
struct Echo {
    /// The object's new resourceVersion.
    resource_version: Option<String>,
    /// Deleted and without finalizers: gone, no MODIFIED echo will come.
    released: bool,
}

impl Echo {
    fn of(response: &Value) -> Self {
        let metadata = &response["metadata"];
        Self {
            resource_version: metadata["resourceVersion"].as_str().map(str::to_owned),
            released: !metadata["deletionTimestamp"].is_null()
                && metadata["finalizers"].as_array().is_none_or(Vec::is_empty),
        }
    }
}

/// Drops `metadata.annotations`/`labels` and `metadata` left empty by the storages (e.g. a purge of
/// records that were never written), so that no request is sent for nothing.
fn prune_empty_metadata(main: &mut Map<String, Value>) {
    if let Some(metadata) = main.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.retain(|key, value| {
            !(matches!(key.as_str(), "annotations" | "labels")
                && value.as_object().is_some_and(Map::is_empty))
        });
        if metadata.is_empty() {
            main.remove("metadata");
        }
    }
}

/// Whether merging `patch` into `target` (RFC 7386) would change it.
fn changes(target: &Value, patch: &Value) -> bool {
    let Value::Object(fields) = patch else { return patch != target };
    let Some(current) = target.as_object() else { return true };
    fields.iter().any(|(key, value)| match (value, current.get(key)) {
        (Value::Null, existing) => existing.is_some(),
        (_, None) => true,
        (Value::Object(_), Some(existing)) => changes(existing, value),
        (value, Some(existing)) => value != existing,
    })
}

/// The resourceVersion awaited after an object was released for deletion (Kopf's sentinel).
pub(crate) const NEVER_ARRIVES: &str = "~which~never~arrives~";

/// Applies the patch to the object described by `body`.
///
/// # Errors
/// API errors other than 404 (gone) and 422 (transform conflicts, kept for later).
pub(crate) async fn apply(
    client: &dyn ApiClient,
    settings: &Settings,
    resource: &Resource,
    body: &Value,
    patch: &Patch,
    sent: &mut (dyn FnMut(Option<&'static str>, &Value) + Send),
) -> client::Result<Applied> {
    let mut applied = Applied::default();
    if patch.is_empty() {
        return Ok(applied);
    }
    // A real change clears the touch annotation, so the next touch is a change again.
    settings.persistence.progress_storage.touch(body, patch, None);
    let data = patch.take();
    let namespace = body["metadata"]["namespace"].as_str();
    let Some(name) = body["metadata"]["name"].as_str() else { return Ok(applied) };

    let mut main: Map<String, Value> = data.merge;
    prune_empty_metadata(&mut main);
    let status = if resource.status_subresource { main.remove("status") } else { None };
    // What the newest response says (for the echo to wait for); the whole response is kept only
    // as the base of the transforms, so that an object waiting for its next request does not hold
    // a copy of itself.
    let mut last_echo: Option<Echo> = None;
    let mut last_response: Option<Value> = None;
    let mut requests: Vec<(Option<&'static str>, Value)> = Vec::new();
    if let Some(status) = status.filter(|s| !s.as_object().is_some_and(Map::is_empty)) {
        requests.push((Some("status"), json!({"status": status})));
    }
    if !main.is_empty() {
        requests.push((None, Value::Object(main)));
    }
    // What the newest seen body already has is not sent again (e.g. a timer's unchanged result).
    requests.retain(|(_, value)| changes(body, value));
    for (subresource, value) in requests {
        let patch_body = PatchBody::Merge(value.clone());
        applied.sent = true;
        last_response = None;
        match client::retrying::retrying(&settings.networking, || {
            client.patch(resource, namespace, name, &patch_body, subresource)
        })
        .await
        {
            Ok(response) => {
                sent(subresource, &value);
                last_echo = Some(Echo::of(&response));
                if !data.fns.is_empty() {
                    last_response = Some(response);
                }
            }
            Err(client::Error::NotFound(_)) => {
                tracing::debug!("Patching was skipped: the object does not exist anymore.");
                // Its DELETED event is coming; what is queued before it is stale.
                return Ok(Applied { expected_rv: Some(NEVER_ARRIVES.to_owned()), ..applied });
            }
            Err(e) => return Err(e),
        }
    }
    if !data.fns.is_empty() {
        // The newest body known: the merge patch's response, else the event's (borrowed: only the
        // transformed copy is a clone).
        let fresh = match last_response.take() {
            Some(response) => std::borrow::Cow::Owned(response),
            None => std::borrow::Cow::Borrowed(body),
        };
        let mut modified = fresh.as_ref().clone();
        for f in &data.fns {
            f(&mut modified);
        }
        let ops = json_patch::diff(&fresh, &modified);
        let rv = fresh["metadata"]["resourceVersion"].clone();
        drop((modified, fresh));
        if !ops.0.is_empty() {
            let mut list = vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv})];
            list.extend(
                serde_json::to_value(&ops).ok().and_then(|v| v.as_array().cloned()).unwrap_or_default(),
            );
            let value = Value::Array(list);
            let patch_body = PatchBody::Json(value.clone());
            applied.sent = true;
            match client::retrying::retrying(&settings.networking, || {
                client.patch(resource, namespace, name, &patch_body, None)
            })
            .await
            {
                Ok(response) => {
                    sent(None, &value);
                    last_echo = Some(Echo::of(&response));
                }
                // A failed `test` of the resourceVersion: the object has changed since, so its newer
                // event is on the way and the next cycle applies the transforms to it. Any other
                // error (a 409 included) escalates, so the worker retries after its pause.
                Err(client::Error::Unprocessable(_)) => applied.leftover = data.fns.clone(),
                Err(client::Error::NotFound(_)) => {
                    return Ok(Applied { expected_rv: Some(NEVER_ARRIVES.to_owned()), ..applied });
                }
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(Echo { resource_version, released }) = last_echo {
        let unchanged = resource_version.as_deref() == body["metadata"]["resourceVersion"].as_str();
        // No echo comes for a no-op patch. An object released for deletion gets Kopf's sentinel
        // version that never arrives: what is still in flight before its DELETED event — e.g. the
        // echo of the patch that purged the progress — must not be mistaken for a fresh state and
        // re-run the finished deletion handlers; the DELETED event (or the timeout) ends the wait.
        applied.expected_rv =
            if released { Some(NEVER_ARRIVES.to_owned()) } else { resource_version.filter(|_| !unchanged) };
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_patch_of_what_is_already_there_changes_nothing() {
        let body = json!({"status": {"tick": {"ok": 1}}, "metadata": {"annotations": {"a": "b"}}});
        assert!(!changes(&body, &json!({"status": {"tick": {"ok": 1}}})));
        assert!(!changes(&body, &json!({"metadata": {"annotations": {"gone": null}}})));
        assert!(changes(&body, &json!({"status": {"tick": {"ok": 2}}})));
        assert!(changes(&body, &json!({"metadata": {"annotations": {"a": null}}})));
        assert!(changes(&body, &json!({"status": {"new": {}}})), "an empty object is created");
    }

    fn json_values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0..3i64).prop_map(Value::from)
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop::collection::btree_map("[abc]", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        })
    }

    proptest! {
        #[test]
        fn changes_agrees_with_applying_the_merge_patch(target in json_values(), patch in json_values()) {
            let mut merged = target.clone();
            json_patch::merge(&mut merged, &patch);
            prop_assert_eq!(changes(&target, &patch), merged != target);
        }
    }
}
