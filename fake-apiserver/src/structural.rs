//! A custom resource's structural schema (the CRD version's `openAPIV3Schema`) at work on writes, as
//! the apiextensions server applies it:
//!
//! - **pruning**: fields the schema does not declare are dropped, except under
//!   `x-kubernetes-preserve-unknown-fields: true`; the dropped paths feed `fieldValidation`
//!   (`Strict`: the request fails, `Warn`: a warning, `Ignore`: nothing);
//! - **defaulting**: `default` values fill absent fields, and a `null` where the schema is not
//!   `nullable` is defaulted or dropped;
//! - **validation**: `type`, `required`, `enum`, `minimum`/`maximum` (and their exclusive forms),
//!   `minLength`/`maxLength`, `minItems`/`maxItems`, duplicate items of `set` and `map` lists, with the
//!   real server's causes and messages. `pattern`, `format` and CEL rules are not checked (no regular
//!   expression or CEL engine here).
//!
//! `apiVersion`, `kind` and `metadata` of the root (and of embedded resources) are the server's own
//! business and are left alone.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::StatusCause;

/// Keys of a resource that the schema does not govern.
const RESOURCE_KEYS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Drops the fields the schema does not declare; returns their paths (`spec.foo`,
/// `spec.items[0].bar`), sorted.
pub(crate) fn prune(object: &mut Value, schema: &Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_node(object, schema, true, &mut String::new(), &mut pruned);
    pruned.sort();
    pruned
}

fn is_true(node: &Value, key: &str) -> bool {
    node.get(key) == Some(&Value::Bool(true))
}

fn prune_node(value: &mut Value, node: &Value, resource: bool, path: &mut String, out: &mut Vec<String>) {
    if !node.is_object() {
        return;
    }
    let preserve = is_true(node, "x-kubernetes-preserve-unknown-fields");
    match value {
        Value::Object(map) => {
            let properties = node.get("properties").and_then(Value::as_object);
            let additional = node.get("additionalProperties");
            let mut unknown = Vec::new();
            for (key, child) in map.iter_mut() {
                if resource && RESOURCE_KEYS.contains(&key.as_str()) {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(property), _) => {
                        let embedded = is_true(property, "x-kubernetes-embedded-resource");
                        prune_node(child, property, embedded, path, out);
                    }
                    (None, Some(schema @ Value::Object(_))) => prune_node(child, schema, false, path, out),
                    (None, Some(Value::Bool(true))) => {}
                    _ if preserve => {}
                    _ => {
                        unknown.push(key.clone());
                        out.push(path.clone());
                    }
                }
                path.truncate(len);
            }
            for key in unknown {
                map.remove(&key);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = node.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    prune_node(item, item_schema, false, path, out);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// Applies the schema's `default`s to absent fields, and defaults or drops `null`s the schema does
/// not allow.
pub(crate) fn default(object: &mut Value, schema: &Value) {
    default_node(object, schema, true);
}

fn default_node(value: &mut Value, node: &Value, resource: bool) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = node.get("properties").and_then(Value::as_object) {
                for (key, property) in properties {
                    if resource && RESOURCE_KEYS.contains(&key.as_str()) {
                        continue;
                    }
                    match map.get(key) {
                        None => {
                            if let Some(default) = property.get("default") {
                                map.insert(key.clone(), default.clone());
                            }
                        }
                        Some(Value::Null) if !is_true(property, "nullable") => {
                            match property.get("default") {
                                Some(default) => map.insert(key.clone(), default.clone()),
                                None => map.remove(key),
                            };
                        }
                        Some(_) => {}
                    }
                    if let Some(child) = map.get_mut(key) {
                        default_node(child, property, is_true(property, "x-kubernetes-embedded-resource"));
                    }
                }
            }
            if let Some(additional @ Value::Object(_)) = node.get("additionalProperties") {
                for child in map.values_mut() {
                    default_node(child, additional, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = node.get("items").filter(|i| i.is_object()) {
                for item in items {
                    default_node(item, item_schema, false);
                }
            }
        }
        _ => {}
    }
}

/// Validates an object against the schema; one cause per violation, as the real server reports
/// them (fields like `spec.replicas`, messages like `Invalid value: "string": spec.replicas in body
/// must be of type integer: "string"`).
pub(crate) fn validate(object: &Value, schema: &Value) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    validate_node(object, schema, true, "", &mut causes);
    causes
}

fn cause(reason: &str, field: &str, message: String) -> StatusCause {
    StatusCause { reason: reason.to_owned(), message, field: field.to_owned() }
}

/// The type name the OpenAPI validator reports for a value.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn type_matches(node: &Value, value: &Value) -> bool {
    if is_true(node, "x-kubernetes-int-or-string") {
        return value.is_string() || is_integer(value);
    }
    match node.get("type").and_then(Value::as_str) {
        None | Some("") => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => is_integer(value),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(_) => true,
    }
}

/// A value as Go's `field.Error` prints it: strings quoted, the rest as JSON, whole floats (the
/// bounds of a schema stored as `10.0`) without a fraction.
fn shown(value: &Value) -> String {
    match value.as_f64() {
        Some(f) if value.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => value.to_string(),
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn validate_node(value: &Value, node: &Value, resource: bool, path: &str, out: &mut Vec<StatusCause>) {
    if !node.is_object() {
        return;
    }
    if value.is_null() {
        if !is_true(node, "nullable") && node.get("type").and_then(Value::as_str).is_some() {
            let expected = node["type"].as_str().unwrap_or_default();
            out.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: \"null\": {path} in body must be of type {expected}: \"null\""),
            ));
        }
        return;
    }
    if !type_matches(node, value) {
        let expected = if is_true(node, "x-kubernetes-int-or-string") {
            "integer,string"
        } else {
            node["type"].as_str().unwrap_or_default()
        };
        let actual = type_name(value);
        out.push(cause(
            "FieldValueTypeInvalid",
            path,
            format!("Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""),
        ));
        return;
    }
    if let Some(allowed) = node.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed.iter().map(shown).collect();
        out.push(cause(
            "FieldValueNotSupported",
            path,
            format!("Unsupported value: {}: supported values: {}", shown(value), supported.join(", ")),
        ));
    }
    match value {
        Value::Number(n) => validate_number(n.as_f64().unwrap_or_default(), value, node, path, out),
        Value::String(s) => validate_string(s, node, path, out),
        Value::Array(items) => validate_array(items, node, path, out),
        Value::Object(map) => validate_object(map, node, resource, path, out),
        _ => {}
    }
}

fn validate_number(number: f64, value: &Value, node: &Value, path: &str, out: &mut Vec<StatusCause>) {
    if let Some(min) = node.get("minimum").and_then(Value::as_f64) {
        let exclusive = is_true(node, "exclusiveMinimum");
        if number < min || (exclusive && number == min) {
            let bound = if exclusive { "greater than" } else { "greater than or equal to" };
            out.push(cause(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body should be {bound} {}",
                    shown(value),
                    shown(&node["minimum"])
                ),
            ));
        }
    }
    if let Some(max) = node.get("maximum").and_then(Value::as_f64) {
        let exclusive = is_true(node, "exclusiveMaximum");
        if number > max || (exclusive && number == max) {
            let bound = if exclusive { "less than" } else { "less than or equal to" };
            out.push(cause(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body should be {bound} {}",
                    shown(value),
                    shown(&node["maximum"])
                ),
            ));
        }
    }
}

fn validate_string(text: &str, node: &Value, path: &str, out: &mut Vec<StatusCause>) {
    let length = text.chars().count() as u64;
    if let Some(max) = node.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        out.push(cause("FieldValueTooLong", path, format!("Too long: may not be more than {max} {unit}")));
    }
    if let Some(min) = node.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        out.push(cause(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {text:?}: {path} in body should be at least {min} chars long"),
        ));
    }
}

fn validate_array(items: &[Value], node: &Value, path: &str, out: &mut Vec<StatusCause>) {
    let count = items.len() as u64;
    if let Some(max) = node.get("maxItems").and_then(Value::as_u64)
        && count > max
    {
        out.push(cause(
            "FieldValueTooMany",
            path,
            format!("Too many: {count}: must have at most {max} items"),
        ));
    }
    if let Some(min) = node.get("minItems").and_then(Value::as_u64)
        && count < min
    {
        out.push(cause(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {count}: {path} in body should have at least {min} items"),
        ));
    }
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    out.push(cause(
                        "FieldValueDuplicate",
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {}", shown(item)),
                    ));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = node
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Map<String, Value> =
                    keys.iter().filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone()))).collect();
                if !seen.insert(Value::Object(key.clone()).to_string()) {
                    out.push(cause(
                        "FieldValueDuplicate",
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {}", Value::Object(key)),
                    ));
                }
            }
        }
        _ => {}
    }
    if let Some(item_schema) = node.get("items").filter(|i| i.is_object()) {
        for (i, item) in items.iter().enumerate() {
            validate_node(item, item_schema, false, &format!("{path}[{i}]"), out);
        }
    }
}

fn validate_object(
    map: &Map<String, Value>,
    node: &Value,
    resource: bool,
    path: &str,
    out: &mut Vec<StatusCause>,
) {
    if let Some(required) = node.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if resource && RESOURCE_KEYS.contains(&name) {
                continue;
            }
            if !map.contains_key(name) {
                out.push(cause("FieldValueRequired", &child_path(path, name), "Required value".to_owned()));
            }
        }
    }
    let properties = node.get("properties").and_then(Value::as_object);
    let additional = node.get("additionalProperties").filter(|a| a.is_object());
    for (key, child) in map {
        if resource && RESOURCE_KEYS.contains(&key.as_str()) {
            continue;
        }
        let schema = properties.and_then(|p| p.get(key)).or(additional);
        if let Some(schema) = schema {
            let embedded = is_true(schema, "x-kubernetes-embedded-resource");
            validate_node(child, schema, embedded, &child_path(path, key), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["field"], "properties": {
                "field": {"type": "string", "enum": ["a", "b"]},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 5, "default": 1},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            }},
        }})
    }

    #[test]
    fn pruning_drops_undeclared_fields_and_keeps_preserved_ones() {
        let mut object = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "odd": 1},
            "spec": {"field": "a", "foo": 1, "free": {"any": 1}, "items": [{"name": "x", "bar": 2}]}, "top": 1});
        let pruned = prune(&mut object, &schema());
        assert_eq!(pruned, ["spec.foo", "spec.items[0].bar", "top"]);
        assert_eq!(object["spec"], json!({"field": "a", "free": {"any": 1}, "items": [{"name": "x"}]}));
        assert_eq!(object["metadata"]["odd"], 1);
    }

    #[test]
    fn defaults_fill_absent_fields() {
        let mut object = json!({"spec": {"field": "a"}});
        default(&mut object, &schema());
        assert_eq!(object["spec"]["replicas"], 1);
    }

    #[test]
    fn validation_reports_types_required_enums_and_bounds_like_the_real_server() {
        let object = json!({"spec": {"replicas": "two"}});
        let causes = validate(&object, &schema());
        assert_eq!(causes[0].field, "spec.field");
        assert_eq!(causes[0].reason, "FieldValueRequired");
        assert_eq!(
            causes[1].message,
            "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
        );
        let causes = validate(&json!({"spec": {"field": "c", "replicas": 9}}), &schema());
        assert_eq!(causes[0].message, "Unsupported value: \"c\": supported values: \"a\", \"b\"");
        assert_eq!(
            causes[1].message,
            "Invalid value: 9: spec.replicas in body should be less than or equal to 5"
        );
    }
}
