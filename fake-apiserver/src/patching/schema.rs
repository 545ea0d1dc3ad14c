//! The shape of a value for server-side apply: which objects are structs (declared fields) or maps,
//! which lists merge by key, as sets or atomically, and what is owned as a whole — from the generated
//! tables for built-ins ([`ssa_schema`]) and from a CRD's structural schema for custom resources
//! (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).
//!
//! Without a schema (undescribed fields, `x-kubernetes-preserve-unknown-fields`) the real server's
//! "deduced" type applies: objects are maps owned key by key, lists are atomic.

use std::cell::RefCell;

use serde_json::Value;

use super::smp_schema::FieldSchema;
use super::ssa_schema::{self, TypeFields};
use crate::resources::{Origin, ResourceInfo};

/// The OpenAPI name of `ObjectMeta`, which every resource's `metadata` is.
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// What is known of the type at one position of an object.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schema<'a> {
    /// Nothing: objects are maps of deduced values, lists atomic.
    Deduced,
    /// Owned and replaced as a whole.
    Atomic,
    /// A built-in struct, with its fields looked up once.
    Struct(TypeFields),
    /// A built-in map, owned key by key; the value type when values are structs.
    Map(Option<&'static str>),
    /// A built-in list merged by keys.
    ListMap {
        /// The key fields.
        keys: &'static [&'static str],
        /// The item type, when items are structs.
        item: Option<&'static str>,
    },
    /// A list of scalars merged as a set.
    Set,
    /// A node of a CRD's `openAPIV3Schema`.
    Crd(&'a Value),
    /// The root of a custom resource (or an embedded resource): `metadata` is `ObjectMeta`.
    CrdRoot(&'a Value),
}

/// How a value is walked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind<'a> {
    /// An object whose keys are fields.
    Object,
    /// A list merged by the given keys.
    ListMap(Keys<'a>),
    /// A list of scalars merged as a set.
    Set,
    /// A leaf: a scalar, or anything owned as a whole.
    Leaf,
}

/// The key fields of a list map.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keys<'a> {
    /// From the generated table.
    Static(&'static [&'static str]),
    /// From a CRD's `x-kubernetes-list-map-keys`.
    Json(&'a [Value]),
}

impl<'a> Keys<'a> {
    /// The key names.
    pub(crate) fn names(self) -> Vec<&'a str> {
        match self {
            Keys::Static(keys) => keys.to_vec(),
            Keys::Json(keys) => keys.iter().filter_map(Value::as_str).collect(),
        }
    }
}

impl<'a> Schema<'a> {
    /// The built-in type named `type_name` (an OpenAPI definition name).
    pub(crate) fn built_in(type_name: &'static str) -> Schema<'static> {
        of_type(type_name)
    }

    /// The schema of a whole object of this resource.
    pub(crate) fn root(info: &'a ResourceInfo) -> Schema<'a> {
        match &info.origin {
            Origin::BuiltIn { openapi } => Schema::built_in(openapi),
            Origin::Custom { schema, .. } => Schema::CrdRoot(schema.as_deref().unwrap_or(&Value::Null)),
        }
    }

    /// How `value`, found at this position, is walked.
    pub(crate) fn kind(self, value: &Value) -> Kind<'a> {
        let object = value.is_object();
        let array = value.is_array();
        match self {
            Schema::Atomic => Kind::Leaf,
            Schema::Deduced | Schema::Struct(_) | Schema::Map(_) | Schema::CrdRoot(_) => {
                if object {
                    Kind::Object
                } else {
                    Kind::Leaf
                }
            }
            Schema::ListMap { keys, .. } if array => Kind::ListMap(Keys::Static(keys)),
            Schema::Set if array => Kind::Set,
            Schema::ListMap { .. } | Schema::Set => Kind::Leaf,
            Schema::Crd(node) => crd_kind(node, object, array),
        }
    }

    /// The schema of the field `key` of an object here, and whether the field is declared (a struct
    /// field) rather than a map key.
    pub(crate) fn child(self, key: &str) -> (Schema<'a>, bool) {
        match self {
            Schema::Struct(fields) => (from_field(fields.field(key)), true),
            Schema::Map(value) => (value.map_or(Schema::Deduced, of_type), false),
            Schema::CrdRoot(_) if key == "metadata" => (Schema::built_in(OBJECT_META), true),
            Schema::CrdRoot(_) if key == "apiVersion" || key == "kind" => (Schema::Atomic, true),
            Schema::Crd(node) | Schema::CrdRoot(node) => {
                if let Some(property) = node.get("properties").and_then(|p| p.get(key)) {
                    let embedded = property.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
                    return (if embedded { Schema::CrdRoot(property) } else { Schema::Crd(property) }, true);
                }
                match node.get("additionalProperties") {
                    Some(additional @ Value::Object(_)) => (Schema::Crd(additional), false),
                    _ => (Schema::Deduced, false),
                }
            }
            Schema::Deduced | Schema::Atomic | Schema::ListMap { .. } | Schema::Set => {
                (Schema::Deduced, false)
            }
        }
    }

    /// The schema of the items of a list here.
    pub(crate) fn item(self) -> Schema<'a> {
        match self {
            Schema::ListMap { item, .. } => item.map_or(Schema::Deduced, of_type),
            Schema::Set => Schema::Atomic,
            Schema::Crd(node) => match node.get("items") {
                Some(items @ Value::Object(_)) => Schema::Crd(items),
                _ => Schema::Deduced,
            },
            _ => Schema::Deduced,
        }
    }
}

/// A built-in field's schema from its table entry (`None`: a scalar or an opaque value).
fn from_field(field: Option<FieldSchema>) -> Schema<'static> {
    match field {
        None => Schema::Deduced,
        Some(FieldSchema::Object(type_name)) => of_type(type_name),
        Some(FieldSchema::ListMap { keys, item }) => Schema::ListMap { keys, item },
        Some(FieldSchema::ListSet) => Schema::Set,
        Some(FieldSchema::ListAtomic | FieldSchema::MapAtomic) => Schema::Atomic,
        Some(FieldSchema::MapGranular(value)) => Schema::Map(value),
    }
}

/// A built-in struct type, atomic or not. Every write walks `ObjectMeta` and a few other types,
/// whose long names cost several binary searches to resolve, so each thread keeps the last ones it
/// resolved, keyed by the address of the generated tables' static names.
fn of_type(type_name: &'static str) -> Schema<'static> {
    thread_local! {
        static RESOLVED: RefCell<Vec<((usize, usize), Schema<'static>)>> = const { RefCell::new(Vec::new()) };
    }
    let resolve = || {
        if ssa_schema::is_atomic(type_name) {
            Schema::Atomic
        } else {
            Schema::Struct(ssa_schema::type_fields(type_name))
        }
    };
    let key = (type_name.as_ptr() as usize, type_name.len());
    RESOLVED.with(|resolved| {
        let Ok(mut resolved) = resolved.try_borrow_mut() else { return resolve() };
        if let Some((_, schema)) = resolved.iter().find(|(k, _)| *k == key) {
            return *schema;
        }
        let schema = resolve();
        if resolved.len() >= 64 {
            resolved.clear();
        }
        resolved.push((key, schema));
        schema
    })
}

/// How a CRD schema node walks a value.
fn crd_kind(node: &Value, object: bool, array: bool) -> Kind<'_> {
    if node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return Kind::Leaf;
    }
    if object {
        return if node.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
            Kind::Leaf
        } else {
            Kind::Object
        };
    }
    if array {
        return match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => match node.get("x-kubernetes-list-map-keys").and_then(Value::as_array) {
                Some(keys) if !keys.is_empty() => Kind::ListMap(Keys::Json(keys)),
                _ => Kind::Leaf,
            },
            Some("set") => Kind::Set,
            _ => Kind::Leaf,
        };
    }
    Kind::Leaf
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn built_in_containers_merge_by_name_and_selectors_are_atomic() {
        let spec = Schema::built_in("io.k8s.api.core.v1.PodSpec");
        let (containers, declared) = spec.child("containers");
        assert!(declared);
        assert!(matches!(containers.kind(&json!([])), Kind::ListMap(keys) if keys.names() == ["name"]));
        let deployment = Schema::built_in("io.k8s.api.apps.v1.DeploymentSpec");
        assert!(matches!(deployment.child("selector").0.kind(&json!({})), Kind::Leaf));
        let ports = Schema::built_in("io.k8s.api.core.v1.Container").child("ports").0;
        assert!(
            matches!(ports.kind(&json!([])), Kind::ListMap(keys) if keys.names() == ["containerPort", "protocol"])
        );
    }

    #[test]
    fn crd_list_types_and_map_types_come_from_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "plain": {"type": "array", "items": {"type": "string"}},
            "sel": {"type": "object", "x-kubernetes-map-type": "atomic"},
        }});
        let root = Schema::Crd(&schema);
        assert!(matches!(root.child("items").0.kind(&json!([])), Kind::ListMap(_)));
        assert!(matches!(root.child("tags").0.kind(&json!([])), Kind::Set));
        assert!(matches!(root.child("plain").0.kind(&json!([])), Kind::Leaf));
        assert!(matches!(root.child("sel").0.kind(&json!({})), Kind::Leaf));
        assert!(!root.child("unknown").1);
    }
}
