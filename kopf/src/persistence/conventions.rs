//! Kopf's annotation-key conventions: safe keys (`/`→`.`, `<`/`>`→`_`), V1 keys (the whole key
//! including the prefix at most 63 characters) and V2 keys (the name part at most 63), cut and
//! suffixed with `-` + base64 (altchars `-.`) of a 4-byte BLAKE2b digest when too long; the
//! `-ofDRS` mark for ReplicaSets owned by Deployments; and the detection of other Kopf operators'
//! prefixes (`<prefix>/kopf-managed`, `kopf.zalando.org`, `*.kopf.zalando.org`).

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::Value;

const MAX_NAME: usize = 63;

/// Kopf's `safe` key form.
pub(crate) fn safe_key(key: &str) -> String {
    key.replace('/', ".").replace(['<', '>'], "_")
}

/// `-` + base64 (altchars `-.`) of BLAKE2b-32 of the key, with trailing `=`, `-`, `.` stripped.
pub(crate) fn suffix(key: &str) -> String {
    let digest = blake2b_simd::Params::new().hash_length(4).hash(key.as_bytes());
    let alphabet =
        base64::alphabet::Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")
            .unwrap_or(base64::alphabet::STANDARD);
    let engine = base64::engine::GeneralPurpose::new(&alphabet, base64::engine::general_purpose::PAD);
    let encoded = engine.encode(digest.as_bytes());
    format!("-{encoded}").trim_end_matches(['=', '-', '.']).to_owned()
}

fn take_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The V1 key: the whole key (prefix included) limited to 63 characters; hashes the safe key.
pub(crate) fn v1_key(prefix: &str, key: &str) -> String {
    let safe = safe_key(key);
    let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
    let room = MAX_NAME.saturating_sub(prefix.chars().count());
    let suffix = if safe.chars().count() <= room { String::new() } else { suffix(&safe) };
    let keep = room.saturating_sub(suffix.chars().count());
    format!("{prefix}{}{suffix}", take_chars(&safe, keep))
}

/// The V2 key: the name part limited to 63 characters; hashes the raw key.
pub(crate) fn v2_key(prefix: &str, key: &str) -> String {
    let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
    let suffix = if key.chars().count() > MAX_NAME { suffix(key) } else { String::new() };
    let keep = MAX_NAME.saturating_sub(suffix.chars().count());
    format!("{prefix}{}{suffix}", take_chars(&safe_key(key), keep))
}

/// Kopf's `mark_key`: ReplicaSets owned by a Deployment get `-ofDRS`, so annotations Kubernetes
/// copies down from the Deployment do not collide.
pub(crate) fn mark_key(key: &str, body: &Value) -> String {
    let owned_by_deployment = body["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|owners| owners.iter().any(|o| o["kind"] == "Deployment"));
    if body["kind"] == "ReplicaSet" && owned_by_deployment { format!("{key}-ofDRS") } else { key.to_owned() }
}

/// The keys to read and write for a record: `[V2, V1 if different]`.
pub(crate) fn make_keys(prefix: &str, key: &str, body: &Value, v1: bool) -> Vec<String> {
    let marked = mark_key(key, body);
    // The common case, with nothing to make safe and nothing to cut: both forms are the plain key.
    let plain = !marked.contains(['/', '<', '>']) && prefix.len() + 1 + marked.len() <= MAX_NAME;
    if plain {
        return vec![if prefix.is_empty() { marked } else { format!("{prefix}/{marked}") }];
    }
    let v2 = v2_key(prefix, &marked);
    let mut keys = vec![v2];
    if v1 {
        let v1 = v1_key(prefix, &marked);
        if v1 != keys[0] {
            keys.push(v1);
        }
    }
    keys
}

/// Prefixes of annotations managed by any Kopf-based operator.
pub(crate) fn marked_prefixes<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut prefixes = BTreeSet::new();
    for key in keys {
        if let Some((prefix, name)) = key.split_once('/')
            && (name == "kopf-managed"
                || prefix == "kopf.zalando.org"
                || prefix.ends_with(".kopf.zalando.org"))
        {
            prefixes.insert(prefix.to_owned());
        }
    }
    prefixes
}

/// Adds `<prefix>/kopf-managed: yes` to the patch when the prefix is not Kopf's own and the marker is
/// neither on the body nor in the patch.
pub(crate) fn store_marker(prefix: &str, patch: &crate::Patch, body: &Value) {
    if prefix.is_empty() || prefix.starts_with("kopf.") {
        return;
    }
    let marker = format!("{prefix}/kopf-managed");
    let on_body = !body["metadata"]["annotations"][&marker].is_null();
    let in_patch = patch.read(|m| {
        m.get("metadata").and_then(|v| v.get("annotations")).and_then(|a| a.get(&marker)).is_some()
    });
    if !on_body && !in_patch {
        patch.merge(serde_json::json!({"metadata": {"annotations": {marker: "yes"}}}));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PREFIX: &str = "kopf.zalando.org";

    #[test]
    fn short_ids_keep_their_safe_form_in_both_versions() {
        assert_eq!(v2_key(PREFIX, "create_fn"), "kopf.zalando.org/create_fn");
        assert_eq!(v1_key(PREFIX, "create_fn/item1"), "kopf.zalando.org/create_fn.item1");
        assert_eq!(make_keys(PREFIX, "fn<x>", &json!({}), true), vec!["kopf.zalando.org/fn_x_"]);
        assert_eq!(make_keys(PREFIX, "create_fn", &json!({}), true), vec!["kopf.zalando.org/create_fn"]);
        assert_eq!(make_keys("", "create_fn", &json!({}), true), vec!["create_fn"]);
    }

    #[test]
    fn long_ids_are_cut_and_hashed_as_kopf_does_test_vector() {
        // reference/kopf.md "Missing facts" 1: V2 hashes the raw id, V1 the safe id.
        let id = format!("parent/{}", "a".repeat(60));
        assert_eq!(v2_key(PREFIX, &id), format!("kopf.zalando.org/parent.{}-RZ80jw", "a".repeat(49)));
        assert_eq!(v1_key(PREFIX, &id), format!("kopf.zalando.org/parent.{}-GW36DQ", "a".repeat(32)));
        assert_eq!(make_keys(PREFIX, &id, &json!({}), true).len(), 2);
    }

    #[test]
    fn replica_sets_owned_by_deployments_get_the_ofdrs_mark() {
        let rs = json!({"kind": "ReplicaSet", "metadata": {"ownerReferences": [{"kind": "Deployment"}]}});
        assert_eq!(make_keys(PREFIX, "fn", &rs, true), vec!["kopf.zalando.org/fn-ofDRS"]);
    }

    #[test]
    fn other_kopf_operators_prefixes_are_detected() {
        let keys = ["my.op/kopf-managed", "kopf.zalando.org/x", "a.kopf.zalando.org/y", "plain/z"];
        let found = marked_prefixes(keys.into_iter());
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            vec!["a.kopf.zalando.org", "kopf.zalando.org", "my.op"]
        );
    }
}
