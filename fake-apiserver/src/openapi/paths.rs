//! The path items of a resource: its collection and object paths (and `status`, `scale`,
//! `finalize`) with one operation per verb, each carrying `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind`. kubectl reads them: `kubectl explain` finds a resource's kind
//! through them, and `kubectl apply`/`create` check that PATCH takes `fieldValidation` (then leave
//! validation to the server) and `application/strategic-merge-patch+json` (then compute a strategic
//! merge patch from the schemas).

use serde_json::{Map, Value, json};

use super::{Format, REF_PREFIX, gvk};
use crate::resources::ResourceInfo;

/// A query parameter: name, JSON type, description.
type Param = (&'static str, &'static str, &'static str);

const DRY_RUN: Param = (
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = (
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
);
const FIELD_VALIDATION: Param = (
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
);
const FORCE: Param = (
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.",
);
const LIST: &[Param] = &[
    ("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
    ("continue", "string", "The continue option should be set when retrieving more results from the server."),
    (
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    (
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    ("limit", "integer", "limit is a maximum number of responses to return for a list call."),
    (
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    (
        "resourceVersionMatch",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    ("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`."),
    ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
    (
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
    ),
];
const WRITE: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const DELETE: &[Param] = &[
    DRY_RUN,
    ("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
    ("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy."),
    (
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
    ),
];

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const BODY_TYPES: &[&str] = &["application/json", "application/yaml"];

/// One operation of a path.
struct Op<'a> {
    method: &'static str,
    action: &'static str,
    id: String,
    description: String,
    gvk: &'a Value,
    query: Vec<Param>,
    body: Option<(String, &'a [&'static str])>,
    responses: &'a [(u16, &'static str)],
    /// The schema of successful responses.
    schema: String,
}

/// Adds the paths of a resource. `kind` and `list` are definition names.
pub(super) fn add(
    paths: &mut Map<String, Value>,
    info: &ResourceInfo,
    kind: &str,
    list: &str,
    format: Format,
) {
    let prefix = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    let (collection, scope_id) = if info.namespaced {
        (format!("{prefix}/namespaces/{{namespace}}/{}", info.plural), "Namespaced")
    } else {
        (format!("{prefix}/{}", info.plural), "")
    };
    let object = format!("{collection}/{{name}}");
    let kind_gvk = gvk(&info.group, &info.version, &info.kind);
    let id = |verb: &str, suffix: &str| {
        format!(
            "{verb}{}{}{scope_id}{}{suffix}",
            camel_group(&info.group),
            capitalize(&info.version),
            info.kind
        )
    };
    let kind_ref = format!("{REF_PREFIX}{kind}");
    let patch_types: &[&str] = if info.is_custom() { &PATCH_TYPES[..3] } else { PATCH_TYPES };
    let status_ref = format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.Status");
    let delete_ref = format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions");
    let patch_ref = format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.Patch");
    let tag = tag(&info.group, &info.version);
    let mut path_params = vec![("name", "name of the object")];
    if info.namespaced {
        path_params.push(("namespace", "object name and auth scope, such as for teams and projects"));
    }

    let create = Op {
        method: "post",
        action: "post",
        id: id("create", ""),
        description: format!("create a {}", info.kind),
        gvk: &kind_gvk,
        query: WRITE.to_vec(),
        body: Some((kind_ref.clone(), BODY_TYPES)),
        responses: &[(200, "OK"), (201, "Created"), (202, "Accepted")],
        schema: kind_ref.clone(),
    };
    if !info.listable {
        insert(paths, &collection, &path_params[1..], &[create], &tag, format);
        return;
    }
    let mut deletecollection_query = DELETE.to_vec();
    deletecollection_query.extend_from_slice(LIST);
    let collection_ops = [
        Op {
            method: "get",
            action: "list",
            id: id("list", ""),
            description: format!("list or watch objects of kind {}", info.kind),
            gvk: &kind_gvk,
            query: LIST.to_vec(),
            body: None,
            responses: &[(200, "OK")],
            schema: format!("{REF_PREFIX}{list}"),
        },
        create,
        Op {
            method: "delete",
            action: "deletecollection",
            id: format!(
                "delete{}{}Collection{scope_id}{}",
                camel_group(&info.group),
                capitalize(&info.version),
                info.kind
            ),
            description: format!("delete collection of {}", info.kind),
            gvk: &kind_gvk,
            query: deletecollection_query,
            body: Some((delete_ref.clone(), BODY_TYPES)),
            responses: &[(200, "OK")],
            schema: status_ref.clone(),
        },
    ];
    insert(paths, &collection, &path_params[1..], &collection_ops, &tag, format);
    let object_ops = [
        Op {
            method: "get",
            action: "get",
            id: id("read", ""),
            description: format!("read the specified {}", info.kind),
            gvk: &kind_gvk,
            query: Vec::new(),
            body: None,
            responses: &[(200, "OK")],
            schema: kind_ref.clone(),
        },
        Op {
            method: "put",
            action: "put",
            id: id("replace", ""),
            description: format!("replace the specified {}", info.kind),
            gvk: &kind_gvk,
            query: WRITE.to_vec(),
            body: Some((kind_ref.clone(), BODY_TYPES)),
            responses: &[(200, "OK"), (201, "Created")],
            schema: kind_ref.clone(),
        },
        Op {
            method: "patch",
            action: "patch",
            id: id("patch", ""),
            description: format!("partially update the specified {}", info.kind),
            gvk: &kind_gvk,
            query: PATCH.to_vec(),
            body: Some((patch_ref.clone(), patch_types)),
            responses: &[(200, "OK"), (201, "Created")],
            schema: kind_ref.clone(),
        },
        Op {
            method: "delete",
            action: "delete",
            id: id("delete", ""),
            description: format!("delete a {}", info.kind),
            gvk: &kind_gvk,
            query: DELETE.to_vec(),
            body: Some((delete_ref, BODY_TYPES)),
            responses: &[(200, "OK"), (202, "Accepted")],
            schema: status_ref,
        },
    ];
    insert(paths, &object, &path_params, &object_ops, &tag, format);
    if info.namespaced {
        let all = Op {
            method: "get",
            action: "list",
            id: format!(
                "list{}{}{}ForAllNamespaces",
                camel_group(&info.group),
                capitalize(&info.version),
                info.kind
            ),
            description: format!("list or watch objects of kind {}", info.kind),
            gvk: &kind_gvk,
            query: LIST.to_vec(),
            body: None,
            responses: &[(200, "OK")],
            schema: format!("{REF_PREFIX}{list}"),
        };
        insert(paths, &format!("{prefix}/{}", info.plural), &[], &[all], &tag, format);
    }

    let scale_gvk = gvk("autoscaling", "v1", "Scale");
    let scale_ref = format!("{REF_PREFIX}io.k8s.api.autoscaling.v1.Scale");
    let mut subresources: Vec<(&str, &Value, &str, &[&str])> = Vec::new();
    if info.status {
        subresources.push(("Status", &kind_gvk, &kind_ref, &["get", "put", "patch"]));
    }
    if info.scale.is_some() {
        subresources.push(("Scale", &scale_gvk, &scale_ref, &["get", "put", "patch"]));
    }
    if info.group.is_empty() && info.plural == "namespaces" {
        subresources.push(("Finalize", &kind_gvk, &kind_ref, &["put"]));
    }
    for (name, sub_gvk, schema, methods) in subresources {
        let what = name.to_lowercase();
        let ops: Vec<Op> = methods
            .iter()
            .map(|method| {
                let (action, verb, query, body, responses): (_, _, &[Param], _, &[(u16, &str)]) =
                    match *method {
                        "get" => ("get", "read", &[], None, &[(200, "OK")]),
                        "put" => (
                            "put",
                            "replace",
                            WRITE,
                            Some((schema.to_owned(), BODY_TYPES)),
                            &[(200, "OK"), (201, "Created")],
                        ),
                        _ => (
                            "patch",
                            "patch",
                            PATCH,
                            Some((patch_ref.clone(), patch_types)),
                            &[(200, "OK"), (201, "Created")],
                        ),
                    };
                Op {
                    method,
                    action,
                    id: id(verb, name),
                    description: format!("{} {what} of the specified {}", verb_phrase(verb), info.kind),
                    gvk: sub_gvk,
                    query: query.to_vec(),
                    body,
                    responses,
                    schema: schema.to_owned(),
                }
            })
            .collect();
        insert(paths, &format!("{object}/{what}"), &path_params, &ops, &tag, format);
    }
}

fn verb_phrase(verb: &str) -> &'static str {
    match verb {
        "read" => "read",
        "replace" => "replace",
        _ => "partially update",
    }
}

/// Adds the operations to the path item (creating it with its path parameters).
fn insert(
    paths: &mut Map<String, Value>,
    path: &str,
    path_params: &[(&str, &str)],
    ops: &[Op<'_>],
    tag: &str,
    format: Format,
) {
    let item = paths.entry(path.to_owned()).or_insert_with(|| {
        let mut params: Vec<Value> = path_params
            .iter()
            .map(|(name, description)| parameter(format, name, "path", "string", description))
            .collect();
        params.push(parameter(
            format,
            "pretty",
            "query",
            "string",
            "If 'true', then the output is pretty printed.",
        ));
        json!({"parameters": params})
    });
    for op in ops {
        item[op.method] = operation(op, tag, format);
    }
}

fn parameter(format: Format, name: &str, location: &str, kind: &str, description: &str) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description});
    if location == "path" {
        p["required"] = json!(true);
    }
    let schema = json!({"type": kind, "uniqueItems": true});
    match format {
        Format::V3 => p["schema"] = schema,
        Format::V2 => {
            if let (Value::Object(p), Value::Object(schema)) = (&mut p, schema) {
                p.extend(schema);
            }
        }
    }
    p
}

fn operation(op: &Op<'_>, tag: &str, format: Format) -> Value {
    let mut params: Vec<Value> = op
        .query
        .iter()
        .map(|(name, kind, description)| parameter(format, name, "query", kind, description))
        .collect();
    let mut out = json!({
        "tags": [tag],
        "description": op.description,
        "operationId": op.id,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    });
    let mut responses = Map::new();
    for (code, description) in op.responses {
        let response = match format {
            Format::V3 => json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": op.schema}}},
            }),
            Format::V2 => json!({"description": description, "schema": {"$ref": op.schema}}),
        };
        responses.insert(code.to_string(), response);
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    out["responses"] = Value::Object(responses);
    match format {
        Format::V3 => {
            if let Some((schema, types)) = &op.body {
                let content: Map<String, Value> =
                    types.iter().map(|t| ((*t).to_owned(), json!({"schema": {"$ref": schema}}))).collect();
                out["requestBody"] = json!({"content": content, "required": true});
            }
        }
        Format::V2 => {
            if let Some((schema, types)) = &op.body {
                params.insert(
                    0,
                    json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": schema}}),
                );
                out["consumes"] = json!(types);
            }
            out["produces"] = json!(["application/json"]);
            out["schemes"] = json!(["https"]);
        }
    }
    if !params.is_empty() {
        out["parameters"] = Value::Array(params);
    }
    out
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`, core → `Core`, `kopf.dev` → `KopfDev`.
fn camel_group(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_owned();
    }
    group.trim_end_matches(".k8s.io").split(['.', '-']).map(capitalize).collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The operations' tag: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let camel = camel_group(group);
    let mut chars = camel.chars();
    let lower: String = chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default();
    format!("{lower}_{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_name_the_group_version_scope_and_kind_as_the_real_server_does() {
        assert_eq!(camel_group("rbac.authorization.k8s.io"), "RbacAuthorization");
        assert_eq!(camel_group(""), "Core");
        assert_eq!(tag("apps", "v1"), "apps_v1");
        assert_eq!(tag("kopf.dev", "v1"), "kopfDev_v1");
    }
}
