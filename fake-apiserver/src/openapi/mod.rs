//! OpenAPI documents as the real server serves them, generated from the registry:
//!
//! - `/openapi/v2`: one Swagger 2.0 document (JSON only: a request that accepts nothing but
//!   protobuf gets 406, where the real server would answer protobuf);
//! - `/openapi/v3`: the index, `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}}}`,
//!   one entry per served group-version;
//! - `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`: one OpenAPI 3.0 document per
//!   group-version, with its paths and the definitions its kinds need.
//!
//! Built-in schemas come from k8s-openapi's `schemars` implementations ([`builtin`]), custom ones
//! from the CRDs' `openAPIV3Schema` ([`crd`]). Nothing is built until a client asks: the built-in
//! definitions once per process, each document once per content (keyed by a fingerprint of the
//! resources it describes, which is also its `hash`), so documents follow CRDs as they come and go.

mod builtin;
mod crd;
mod extensions;
mod paths;

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::accept::Accept;
use crate::discovery::KUBERNETES_VERSION;
use crate::error::ApiError;
use crate::resources::{Origin, ResourceInfo};
use crate::watch::lock;

/// Where definitions live in the canonical (and v3) form.
const REF_PREFIX: &str = "#/components/schemas/";
/// Where definitions live in v2.
const V2_REF_PREFIX: &str = "#/definitions/";

/// Which document a path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Document {
    /// `/openapi/v2`
    V2,
    /// `/openapi/v3`
    V3Index,
    /// `/openapi/v3/<path>`, the path being `api/v1` or `apis/<group>/<version>`.
    V3(String),
}

/// The two document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Format {
    V2,
    V3,
}

/// The definitions every document carries for its paths' request and response bodies.
const META_DEFINITIONS: [&str; 4] = [
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
];

/// A group-version-kind as the documents write it.
fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// The path of a group-version in the v3 index: `api/v1`, `apis/apps/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// Serves a document; `resources` are every served resource (the registry's order).
///
/// # Errors
/// 404 for a group-version that is not served, 406 when `Accept` rules out JSON.
pub(crate) fn serve(
    resources: &[Arc<ResourceInfo>],
    document: &Document,
    accept: &Accept<'_>,
) -> Result<Bytes, ApiError> {
    if !accept.allows_json() {
        return Err(ApiError::NotAcceptable(
            "only the following media types are accepted: application/json".to_owned(),
        ));
    }
    match document {
        Document::V2 => {
            let all: Vec<&Arc<ResourceInfo>> = resources.iter().collect();
            Ok(cached((Format::V2, String::new(), fingerprint(&all)), || build(&all, Format::V2)))
        }
        Document::V3Index => Ok(Bytes::from(serde_json::to_vec(&v3_index(resources)).unwrap_or_default())),
        Document::V3(path) => {
            let path = path.trim_matches('/');
            let in_gv: Vec<&Arc<ResourceInfo>> =
                resources.iter().filter(|r| gv_path(&r.group, &r.version) == path).collect();
            if in_gv.is_empty() {
                return Err(ApiError::NoSuchResource);
            }
            Ok(cached((Format::V3, path.to_owned(), fingerprint(&in_gv)), || build(&in_gv, Format::V3)))
        }
    }
}

/// The v3 index: one entry per served group-version, its URL carrying the content's hash.
fn v3_index(resources: &[Arc<ResourceInfo>]) -> Value {
    let mut by_gv: BTreeMap<String, Vec<&Arc<ResourceInfo>>> = BTreeMap::new();
    for r in resources {
        by_gv.entry(gv_path(&r.group, &r.version)).or_default().push(r);
    }
    let paths: Map<String, Value> = by_gv
        .into_iter()
        .map(|(path, in_gv)| {
            let url = format!("/openapi/v3/{path}?hash={:016X}", fingerprint(&in_gv));
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// A hash of everything a document says about these resources.
fn fingerprint(resources: &[&Arc<ResourceInfo>]) -> u64 {
    let mut h = DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    for r in resources {
        (&r.group, &r.version, &r.kind, &r.list_kind, &r.plural).hash(&mut h);
        (r.namespaced, r.status, r.scale.is_some(), r.listable).hash(&mut h);
        match &r.origin {
            Origin::BuiltIn { openapi } => openapi.hash(&mut h),
            Origin::Custom { schema, .. } => schema.as_deref().map(Value::to_string).hash(&mut h),
        }
    }
    h.finish()
}

type CacheKey = (Format, String, u64);

/// Documents by content, shared by every cluster of the process (a document is a pure function of
/// its key). Bounded: cleared when full, so a long run of changing CRDs cannot grow it forever.
fn cached(key: CacheKey, build: impl FnOnce() -> Bytes) -> Bytes {
    const CAPACITY: usize = 256;
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Bytes>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(bytes) = lock(cache).get(&key) {
        return bytes.clone();
    }
    let bytes = build();
    let mut cache = lock(cache);
    if cache.len() >= CAPACITY {
        cache.clear();
    }
    cache.insert(key, bytes.clone());
    bytes
}

/// Builds a document describing these resources.
fn build(resources: &[&Arc<ResourceInfo>], format: Format) -> Bytes {
    let base = builtin::definitions();
    let mut custom: BTreeMap<String, Value> = BTreeMap::new();
    let mut roots: Vec<String> = META_DEFINITIONS.iter().map(|s| (*s).to_owned()).collect();
    let mut paths = Map::new();
    for r in resources {
        let (kind, list) = match &r.origin {
            Origin::BuiltIn { openapi } => ((*openapi).to_owned(), builtin::list_name(openapi)),
            Origin::Custom { schema, .. } => {
                let [(list_name, list), (kind_name, kind)] = crd::definitions(r, schema.as_deref());
                builtin::collect_refs(&kind, &mut roots);
                builtin::collect_refs(&list, &mut roots);
                custom.insert(list_name.clone(), list);
                custom.insert(kind_name.clone(), kind);
                (kind_name, list_name)
            }
        };
        if r.scale.is_some() {
            roots.push("io.k8s.api.autoscaling.v1.Scale".to_owned());
        }
        roots.push(kind.clone());
        roots.push(list.clone());
        paths::add(&mut paths, r, &kind, &list, format);
    }
    let mut schemas: Map<String, Value> = base
        .closure(roots.iter().map(String::as_str))
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), base.schemas.get(name)?.clone())))
        .collect();
    schemas.extend(custom);
    let (major, minor) = KUBERNETES_VERSION;
    let info = json!({"title": "Kubernetes", "version": format!("v{major}.{minor}.0")});
    let bearer = json!({"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}});
    let mut document = match format {
        Format::V3 => {
            schemas.values_mut().for_each(wrap_ref_siblings);
            json!({
                "openapi": "3.0.0",
                "info": info,
                "paths": paths,
                "components": {"schemas": schemas, "securitySchemes": bearer},
                "security": [{"BearerToken": []}],
            })
        }
        Format::V2 => json!({
            "swagger": "2.0",
            "info": info,
            "paths": paths,
            "definitions": schemas,
            "securityDefinitions": bearer,
            "security": [{"BearerToken": []}],
        }),
    };
    if format == Format::V2 {
        rewrite_refs(&mut document);
    }
    Bytes::from(serde_json::to_vec(&document).unwrap_or_default())
}

/// OpenAPI 3.0 ignores the siblings of `$ref`, so the real server writes a reference with a
/// description as `{"allOf": [{"$ref": …}], "description": …}`; kubectl reads both forms.
fn wrap_ref_siblings(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            // A string: a property named `$ref` (JSONSchemaProps has one) is no reference.
            if map.len() > 1
                && map.get("$ref").is_some_and(Value::is_string)
                && let Some(target) = map.remove("$ref")
            {
                map.insert("allOf".into(), json!([{"$ref": target}]));
            }
            map.values_mut().for_each(wrap_ref_siblings);
        }
        Value::Array(items) => items.iter_mut().for_each(wrap_ref_siblings),
        _ => {}
    }
}

/// Points references at `#/definitions/`, where Swagger 2.0 keeps them.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref")
                && let Some(name) = target.strip_prefix(REF_PREFIX)
            {
                *target = format!("{V2_REF_PREFIX}{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_with_siblings_are_wrapped_in_all_of_for_v3() {
        let mut schema = json!({"properties": {
            "spec": {"$ref": "#/components/schemas/X", "description": "d"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Y"}},
        }});
        schema.as_object_mut().into_iter().flat_map(|m| m.values_mut()).for_each(wrap_ref_siblings);
        assert_eq!(
            schema["properties"]["spec"],
            json!({"allOf": [{"$ref": "#/components/schemas/X"}], "description": "d"})
        );
        assert_eq!(schema["properties"]["items"]["items"], json!({"$ref": "#/components/schemas/Y"}));
        let mut props = json!({"properties": {"$ref": {"type": "string"}, "id": {"type": "string"}}});
        wrap_ref_siblings(&mut props);
        assert_eq!(props["properties"]["$ref"], json!({"type": "string"}), "a property named $ref stays");
    }
}
