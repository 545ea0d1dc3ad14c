//! The definitions of the built-in types, generated once per process from k8s-openapi's `schemars`
//! implementations and finished as the real server's documents have them: definition names such as
//! `io.k8s.api.core.v1.Pod`, `x-kubernetes-group-version-kind` on every kind (and on the `…List`
//! kinds, which k8s-openapi does not model), and the list, map and patch extensions of the fields.
//!
//! The definitions are kept in one canonical form — references as `#/components/schemas/<name>`,
//! `$ref` with siblings (a description) allowed — that `super` turns into the v2 or v3 form.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::extensions;
use super::{REF_PREFIX, gvk};

/// Every built-in definition and what each refers to.
#[derive(Debug)]
pub(super) struct Definitions {
    /// Definition name → schema (canonical form).
    pub(super) schemas: BTreeMap<String, Value>,
    /// Definition name → the definitions its schema refers to directly.
    refs: BTreeMap<String, Vec<String>>,
}

/// The built-in definitions, generated on first use (a few hundred milliseconds in a debug build;
/// a server that is never asked for OpenAPI never pays for them).
pub(super) fn definitions() -> &'static Definitions {
    static DEFINITIONS: OnceLock<Definitions> = OnceLock::new();
    DEFINITIONS.get_or_init(generate)
}

impl Definitions {
    /// The named definitions and everything they refer to, transitively (unknown names are skipped).
    pub(super) fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = roots.into_iter().collect();
        while let Some(name) = stack.pop() {
            let Some((name, _)) = self.schemas.get_key_value(name) else { continue };
            if seen.insert(name.as_str()) {
                stack.extend(self.refs.get(name).into_iter().flatten().map(String::as_str));
            }
        }
        seen
    }
}

/// The name of the list kind's definition: `io.k8s.api.core.v1.Pod` → `io.k8s.api.core.v1.PodList`.
pub(super) fn list_name(kind_definition: &str) -> String {
    format!("{kind_definition}List")
}

fn generate() -> Definitions {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = REF_PREFIX.trim_start_matches('#').trim_end_matches('/').into();
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    let kinds = crate::builtin::all();
    for kind in &kinds {
        (kind.schema)(&mut generator);
    }
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::WatchEvent<k8s_openapi::api::core::v1::Pod>>();
    let mut schemas: BTreeMap<String, Value> = generator.take_definitions(false).into_iter().collect();
    for (name, schema) in &mut schemas {
        add_field_extensions(name, schema);
    }
    for kind in &kinds {
        let kind_gvk = gvk(kind.group, kind.version, kind.kind);
        if let Some(schema) = schemas.get_mut(kind.openapi_name) {
            schema["x-kubernetes-group-version-kind"] = json!([kind_gvk]);
        }
        if kind.flags.listable && kind.namespaced.is_some() {
            let list_kind = format!("{}List", kind.kind);
            let schema = list_schema(kind.openapi_name, kind.kind, gvk(kind.group, kind.version, &list_kind));
            schemas.insert(list_name(kind.openapi_name), schema);
        }
    }
    let refs = schemas
        .iter()
        .map(|(name, schema)| {
            let mut found = Vec::new();
            collect_refs(schema, &mut found);
            (name.clone(), found)
        })
        .collect();
    Definitions { schemas, refs }
}

/// Adds `x-kubernetes-list-type` and friends to the fields of a built-in type, and
/// `x-kubernetes-map-type: atomic` to the atomic types.
fn add_field_extensions(name: &str, schema: &mut Value) {
    if extensions::atomic_type(name) {
        schema["x-kubernetes-map-type"] = json!("atomic");
    }
    let fields = extensions::fields(name);
    if fields.is_empty() {
        return;
    }
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { return };
    for (field, ext) in fields {
        let Some(property) = properties.get_mut(*field).and_then(Value::as_object_mut) else { continue };
        if let Some(list_type) = ext.list_type {
            property.insert("x-kubernetes-list-type".into(), json!(list_type));
        }
        if !ext.list_map_keys.is_empty() {
            property.insert("x-kubernetes-list-map-keys".into(), json!(ext.list_map_keys));
        }
        if let Some(map_type) = ext.map_type {
            property.insert("x-kubernetes-map-type".into(), json!(map_type));
        }
        if let Some(strategy) = ext.patch_strategy {
            property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        }
        if let Some(key) = ext.patch_merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
    }
}

/// The schema of a `…List` kind, as the real server describes it.
pub(super) fn list_schema(item_definition: &str, kind: &str, list_gvk: Value) -> Value {
    let mut schema = json!({
        "description": format!("{kind}List is a list of {kind}."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{item_definition}")},
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {
                "$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
    });
    schema["x-kubernetes-group-version-kind"] = Value::Array(vec![list_gvk]);
    schema
}

/// The description of `apiVersion` in every kind.
pub(super) const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";

/// The description of `kind` in every kind.
pub(super) const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The names of the definitions a schema refers to.
pub(super) fn collect_refs(schema: &Value, found: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix(REF_PREFIX) {
                            found.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, found)),
        _ => {}
    }
}
