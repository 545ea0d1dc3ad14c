//! The definitions of a custom resource version, built from its CRD's `openAPIV3Schema` the way the
//! real server's CRD OpenAPI builder does: named after the reversed group (`dev.kopf.v1.KopfExample`),
//! with `apiVersion`, `kind` and `metadata` (a reference to `ObjectMeta`) set on the top level, the
//! group-version-kind extension, and a `…List` definition next to it.

use serde_json::{Value, json};

use super::builtin::{API_VERSION_DESCRIPTION, KIND_DESCRIPTION, list_schema};
use super::{REF_PREFIX, gvk};
use crate::resources::ResourceInfo;

/// The definition name of a custom kind: the group's labels reversed, the version, the kind.
pub(super) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The kind's and the list kind's definitions: `(name, schema)` twice.
pub(super) fn definitions(info: &ResourceInfo, schema: Option<&Value>) -> [(String, Value); 2] {
    let name = definition_name(&info.group, &info.version, &info.kind);
    let mut kind = match schema {
        Some(schema) if schema.is_object() => schema.clone(),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    if kind.get("type").is_none() {
        kind["type"] = json!("object");
    }
    if !kind["properties"].is_object() {
        kind["properties"] = json!({});
    }
    kind["properties"]["apiVersion"] = json!({"description": API_VERSION_DESCRIPTION, "type": "string"});
    kind["properties"]["kind"] = json!({"description": KIND_DESCRIPTION, "type": "string"});
    kind["properties"]["metadata"] = json!({
        "$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    });
    kind["x-kubernetes-group-version-kind"] = json!([gvk(&info.group, &info.version, &info.kind)]);
    let list = list_schema(&name, &info.kind, gvk(&info.group, &info.version, &info.list_kind));
    [(definition_name(&info.group, &info.version, &info.list_kind), list), (name, kind)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_definitions_are_named_after_the_reversed_group() {
        assert_eq!(definition_name("kopf.dev", "v1", "KopfExample"), "dev.kopf.v1.KopfExample");
        assert_eq!(definition_name("example.com", "v2", "Widget"), "com.example.v2.Widget");
    }
}
