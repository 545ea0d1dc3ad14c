//! Kubernetes strategic merge patch (`application/strategic-merge-patch+json`) for built-in types.
//!
//! This follows `k8s.io/apimachinery/pkg/util/strategicpatch` as the API server runs it
//! (`StrategicMergeMapPatch` with `MergeParallelList` and `IgnoreUnmatchedNulls`, i.e. patch version 2):
//!
//! * Objects merge key by key; a `null` patch value deletes the key. A patch value whose JSON type
//!   differs from the current one (or whose key is new) replaces it.
//! * Lists follow the field's schema from [`smp_schema`] (the Go `patchStrategy` / `patchMergeKey` tags):
//!   - merge lists of objects (`ListMap`) merge items with equal merge keys and add the others;
//!   - merge lists of scalars (`ListSet`) take the union, without duplicates;
//!   - every other list, and every list of a field the table does not describe, is replaced.
//! * Fields the table does not describe (unknown fields, unknown types, opaque values such as
//!   `RawExtension`) therefore behave like JSON merge patch: objects merge recursively, lists are replaced.
//! * Order of merged lists, exactly as apimachinery computes it: patch items keep the patch's relative
//!   order; items only on the server keep theirs and go before a patch item only when both are in the
//!   current list and the server item comes first there. So a merge that only adds items puts them
//!   **first** (the API server's well-known "prepend"), while `[b, c]` patched into `[a, b]` gives
//!   `[a, b, c]`.
//!
//! Directives (none of them is ever left in the result):
//!
//! * `$patch: replace` in an object replaces the object by the patch's other keys; as an element
//!   `{"$patch": "replace"}` of a merge list of objects it replaces the list by the other patch items.
//! * `$patch: delete` in an object empties it (the key stays, with `{}`, as in apimachinery); in an
//!   item of a merge list of objects it deletes the current items with that merge key.
//! * `$patch: merge` is rejected, as by apimachinery ("unknown patch type" in objects, "merging lists
//!   cannot yet be specified in the patch" in lists). Merging is what happens without a directive.
//! * `$setElementOrder/<field>: [...]` orders the merged list: listed items follow the given order and
//!   the others are interleaved by the rule above. The patch list must be a subsequence of it.
//! * `$retainKeys: [...]` drops every current key of the object not in the list; every non-null patch
//!   key must be in the list.
//! * `$deleteFromPrimitiveList/<field>: [...]` removes those values from a list of scalars, whatever the
//!   field's patch strategy.
//!
//! Inside values that are inserted rather than merged (new keys, replaced lists and objects, added list
//! items), apimachinery drops objects that carry `$patch` and `null` object values; so does this module,
//! and it also drops the other directive keys there, which apimachinery leaves to the typed decoding.

use serde_json::{Map, Value};

use super::smp_schema::{self, FieldSchema};

/// The key of the `$patch` directive.
const PATCH_DIRECTIVE: &str = "$patch";
/// The key of the `$retainKeys` directive.
const RETAIN_KEYS: &str = "$retainKeys";
/// The key prefix of `$setElementOrder/<field>` directives.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// The key prefix of `$deleteFromPrimitiveList/<field>` directives.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Why a strategic merge patch could not be applied.
///
/// Each variant documents the HTTP status the real API server answers with ([`SmpError::http_status`]):
/// apimachinery's sentinel errors for malformed directives become 400 (or 422), every other error of the
/// patch algorithm reaches the client as a 500 `InternalError` with reason `Unknown`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SmpError {
    /// The original object or the patch is not a JSON object (400, `invalid JSON document`).
    #[error("strategic merge patch: the {document} is not a json object")]
    NotAnObject {
        /// `"original"` or `"patch"`.
        document: &'static str,
    },
    /// A `$patch` directive with a value other than `replace` or `delete` (500).
    #[error("unknown $patch directive {directive} at {path}")]
    UnknownDirective {
        /// JSON path of the object carrying the directive.
        path: String,
        /// The directive's value, as JSON.
        directive: String,
    },
    /// `$patch: merge` as an element of a list (500).
    #[error("$patch: merge is not supported in the list item at {path}: merging lists cannot be specified")]
    MergeDirectiveInList {
        /// JSON path of the patch list item.
        path: String,
    },
    /// An item of a merge list lacks the field's merge key (500).
    #[error("the list item at {path} does not contain the merge key {key:?}")]
    MissingMergeKey {
        /// JSON path of the item (a patch item, or the list when a current item lacks the key).
        path: String,
        /// The merge key.
        key: &'static str,
    },
    /// A merge list of scalars (`patchStrategy:"merge"`, no merge key) holds objects (500).
    #[error("cannot merge the list of objects at {path}: the field has no merge key")]
    ListWithoutMergeKey {
        /// JSON path of the list.
        path: String,
    },
    /// A merged list mixes element types (objects, strings, numbers, ...) (500).
    #[error("the elements of the list at {path} do not all have the same json type")]
    MixedListElements {
        /// JSON path of the list.
        path: String,
    },
    /// A merged list contains lists (422, `lists of lists are not supported`).
    #[error("cannot merge the list at {path}: lists of lists are not supported")]
    ListOfLists {
        /// JSON path of the list.
        path: String,
    },
    /// A malformed `$retainKeys` directive, or a patch key missing from it (400).
    #[error("invalid $retainKeys directive at {path}: {reason}")]
    BadRetainKeys {
        /// JSON path of the object carrying the directive.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A malformed `$deleteFromPrimitiveList/<field>` directive (400).
    #[error("invalid $deleteFromPrimitiveList directive at {path}: {reason}")]
    BadDeleteFromPrimitiveList {
        /// JSON path of the directive key.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A malformed `$setElementOrder/<field>` directive: bad key or non-list value (400).
    #[error("invalid $setElementOrder directive at {path}: {reason}")]
    BadSetElementOrder {
        /// JSON path of the directive key.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `$setElementOrder/<field>` list that does not fit the patch or the current object (500).
    #[error("$setElementOrder list for {path} does not match: {reason}")]
    SetElementOrderMismatch {
        /// JSON path of the ordered field.
        path: String,
        /// What does not match.
        reason: &'static str,
    },
}

impl SmpError {
    /// The HTTP status code the Kubernetes API server answers a patch failing this way with.
    pub(crate) fn http_status(&self) -> u16 {
        match self {
            Self::NotAnObject { .. }
            | Self::BadRetainKeys { .. }
            | Self::BadDeleteFromPrimitiveList { .. }
            | Self::BadSetElementOrder { .. } => 400,
            Self::ListOfLists { .. } => 422,
            Self::UnknownDirective { .. }
            | Self::MergeDirectiveInList { .. }
            | Self::MissingMergeKey { .. }
            | Self::ListWithoutMergeKey { .. }
            | Self::MixedListElements { .. }
            | Self::SetElementOrderMismatch { .. } => 500,
        }
    }
}

/// Applies the strategic merge patch `patch` to `original`, an object of the built-in type `type_name`
/// (an OpenAPI definition name such as `io.k8s.api.core.v1.Pod`; an unknown name makes every field
/// unknown, so the patch degrades to JSON merge patch plus directives).
///
/// `original` may be `null` (an empty object). Neither input is modified.
pub(crate) fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    type_name: &str,
) -> Result<Value, SmpError> {
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err(SmpError::NotAnObject { document: "original" }),
    };
    let Value::Object(patch) = patch else {
        return Err(SmpError::NotAnObject { document: "patch" });
    };
    merge_map(original, patch.clone(), Ctx::Type(type_name), Path::ROOT).map(Value::Object)
}

/// What the object being merged is, for schema look-ups.
#[derive(Clone, Copy, Debug)]
enum Ctx<'a> {
    /// An object of the named built-in type.
    Type(&'a str),
    /// A string-keyed map whose values are objects of the named type, if described.
    MapOf(Option<&'static str>),
    /// Anything the table does not describe.
    Unknown,
}

impl<'a> Ctx<'a> {
    /// The schema of the member `key` of this object.
    fn member(self, key: &str) -> Option<FieldSchema> {
        match self {
            Ctx::Type(type_name) => smp_schema::field(type_name, key),
            Ctx::MapOf(Some(value_type)) => Some(FieldSchema::Object(value_type)),
            Ctx::MapOf(None) | Ctx::Unknown => None,
        }
    }

    /// The context of the items of a merge list whose items are `item`.
    fn of_items(item: Option<&'static str>) -> Self {
        item.map_or(Ctx::Unknown, Ctx::Type)
    }
}

/// A JSON path, as a linked list of segments on the stack; rendered only for errors.
#[derive(Clone, Copy, Debug)]
struct Path<'a> {
    /// The enclosing path; `None` for the root.
    parent: Option<&'a Path<'a>>,
    /// The last segment.
    segment: Segment<'a>,
}

/// One segment of a [`Path`].
#[derive(Clone, Copy, Debug)]
enum Segment<'a> {
    /// The document itself.
    Root,
    /// An object member.
    Key(&'a str),
    /// A list position (in the patch's list, for patch items).
    Index(usize),
}

impl<'a> Path<'a> {
    /// The document root, rendered `$`.
    const ROOT: Path<'static> = Path { parent: None, segment: Segment::Root };

    /// The path of member `key` below this one.
    fn key<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path { parent: Some(self), segment: Segment::Key(key) }
    }

    /// The path of list position `index` below this one.
    fn index<'b>(&'b self, index: usize) -> Path<'b> {
        Path { parent: Some(self), segment: Segment::Index(index) }
    }

    /// JSONPath-style rendering: `$.spec.containers[0]`, `$.metadata.labels["app.kubernetes.io/name"]`.
    fn render(&self) -> String {
        let mut segments = vec![self.segment];
        let mut parent = self.parent;
        while let Some(path) = parent {
            segments.push(path.segment);
            parent = path.parent;
        }
        let mut out = String::new();
        for segment in segments.into_iter().rev() {
            match segment {
                Segment::Root => out.push('$'),
                Segment::Key(key)
                    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    out.push('.');
                    out.push_str(key);
                }
                Segment::Key(key) => out.push_str(&format!("[{key:?}]")),
                Segment::Index(index) => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }
}

/// Merges `patch` into `original`, both objects described by `ctx` (apimachinery's `mergeMap`).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ctx: Ctx<'_>,
    path: Path<'_>,
) -> Result<Map<String, Value>, SmpError> {
    if let Some(directive) = patch.remove(PATCH_DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => Ok(clean_map(patch)),
            Some("delete") => Ok(Map::new()),
            _ => Err(SmpError::UnknownDirective { path: path.render(), directive: directive.to_string() }),
        };
    }
    apply_retain_keys(&mut original, &mut patch, path)?;
    apply_set_element_order(&mut original, &mut patch, ctx, path)?;

    for (key, patch_value) in patch {
        if let Some(rest) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Some(field) = rest.strip_prefix('/') else {
                return Err(SmpError::BadDeleteFromPrimitiveList {
                    path: path.key(&key).render(),
                    reason: "the key must be `$deleteFromPrimitiveList/<field>`",
                });
            };
            delete_from_primitive_list(&mut original, field, patch_value, path.key(&key))?;
            continue;
        }
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(slot) = original.get_mut(&key) else {
            if let Some(value) = clean(patch_value) {
                original.insert(key, value);
            }
            continue;
        };
        let current = std::mem::take(slot);
        match merge_value(current, patch_value, ctx.member(&key), path.key(&key))? {
            Some(merged) => *slot = merged,
            None => {
                original.remove(&key);
            }
        }
    }
    Ok(original)
}

/// Merges the patch value of a member present in both documents; `None` removes the member.
fn merge_value(
    current: Value,
    patch: Value,
    schema: Option<FieldSchema>,
    path: Path<'_>,
) -> Result<Option<Value>, SmpError> {
    match (current, patch) {
        (Value::Object(current), Value::Object(mut patch)) => {
            let ctx = match schema {
                Some(FieldSchema::MapAtomic) => {
                    // `patchStrategy:"replace"`: the patch object is the new value.
                    let emptied = patch.remove(PATCH_DIRECTIVE).is_some_and(|d| d == "delete");
                    return Ok(Some(Value::Object(if emptied { Map::new() } else { clean_map(patch) })));
                }
                Some(FieldSchema::Object(type_name)) => Ctx::Type(type_name),
                Some(FieldSchema::MapGranular(value_type)) => Ctx::MapOf(value_type),
                _ => Ctx::Unknown,
            };
            merge_map(current, patch, ctx, path).map(|merged| Some(Value::Object(merged)))
        }
        (Value::Array(current), Value::Array(patch)) => {
            let merged = match schema {
                Some(FieldSchema::ListMap { keys, item }) => {
                    merge_list(current, patch, keys, Ctx::of_items(item), path)?
                }
                Some(FieldSchema::ListSet) => merge_list(current, patch, &[], Ctx::Unknown, path)?,
                _ => clean_list(patch),
            };
            Ok(Some(Value::Array(merged)))
        }
        (_, patch) => Ok(clean(patch)),
    }
}

/// Merges two lists of a merge-strategy field (apimachinery's `mergeSlice`). `keys` is empty for lists
/// of scalars.
///
/// Multi-key merge lists: the generated table only has single merge keys (a Go `patchMergeKey` names
/// one field), but `keys` may hold several. The first key is then required in every item and the
/// others are compared only when both items have them, so a patch item naming `containerPort` alone
/// matches the current `{containerPort: 80, protocol: TCP}`.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    keys: &'static [&'static str],
    item_ctx: Ctx<'_>,
    path: Path<'_>,
) -> Result<Vec<Value>, SmpError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if !list_of_objects(&original, &patch, path)? {
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for value in original.iter().chain(&patch) {
            if !merged.contains(value) {
                merged.push(value.clone());
            }
        }
        let (in_patch, server_only) = merged.into_iter().partition(|value| patch.contains(value));
        return Ok(normalize_order(in_patch, server_only, &patch, &original, &[]));
    }
    let Some(&primary_key) = keys.first() else {
        return Err(SmpError::ListWithoutMergeKey { path: path.render() });
    };

    // Directive elements first: deletions apply to the current list, `replace` swaps it for the patch.
    let mut base = original;
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for (index, item) in patch.into_iter().enumerate() {
        let Value::Object(item) = item else {
            return Err(SmpError::MixedListElements { path: path.render() });
        };
        let Some(directive) = item.get(PATCH_DIRECTIVE) else {
            plain.push((index, item));
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                if !item.contains_key(primary_key) {
                    return Err(missing_key(path.index(index), primary_key));
                }
                base.retain(|current| !current.as_object().is_some_and(|c| same_entry(c, &item, keys)));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(SmpError::MergeDirectiveInList { path: path.index(index).render() });
            }
            _ => {
                return Err(SmpError::UnknownDirective {
                    path: path.index(index).render(),
                    directive: directive.to_string(),
                });
            }
        }
    }
    if replace {
        base = plain.into_iter().filter_map(|(_, item)| clean(Value::Object(item))).collect();
        plain = Vec::new();
    }

    let server_order = base.clone();
    let mut merged = base;
    let mut patch_order = Vec::with_capacity(plain.len());
    for (index, item) in plain {
        if !item.contains_key(primary_key) {
            return Err(missing_key(path.index(index), primary_key));
        }
        patch_order.push(Value::Object(key_fields(&item, keys)));
        match merged
            .iter()
            .position(|current| current.as_object().is_some_and(|c| same_entry(c, &item, keys)))
        {
            Some(position) => {
                if let Value::Object(current) = std::mem::take(&mut merged[position]) {
                    merged[position] = Value::Object(merge_map(current, item, item_ctx, path.index(index))?);
                }
            }
            None => merged.extend(clean(Value::Object(item))),
        }
    }
    if merged.iter().any(|item| item.get(primary_key).is_none()) {
        return Err(missing_key(path, primary_key));
    }
    let (in_patch, server_only) =
        merged.into_iter().partition(|item| patch_order.iter().any(|p| same_item(item, p, keys)));
    Ok(normalize_order(in_patch, server_only, &patch_order, &server_order, keys))
}

/// Checks that the items of both lists share one JSON type; true when they are objects.
fn list_of_objects(original: &[Value], patch: &[Value], path: Path<'_>) -> Result<bool, SmpError> {
    let mut first: Option<std::mem::Discriminant<Value>> = None;
    for item in original.iter().chain(patch) {
        if item.is_array() {
            return Err(SmpError::ListOfLists { path: path.render() });
        }
        let kind = std::mem::discriminant(item);
        if *first.get_or_insert(kind) != kind {
            return Err(SmpError::MixedListElements { path: path.render() });
        }
    }
    Ok(original.iter().chain(patch).next().is_some_and(Value::is_object))
}

/// Whether two list items are the same merge-list entry: equal values for scalar lists (`keys` empty),
/// otherwise objects with equal primary keys whose other keys agree where both have them.
fn same_item(a: &Value, b: &Value, keys: &[&str]) -> bool {
    match (a, b) {
        _ if keys.is_empty() => a == b,
        (Value::Object(a), Value::Object(b)) => same_entry(a, b, keys),
        _ => false,
    }
}

/// [`same_item`] for two objects of a merge list with at least one key.
fn same_entry(a: &Map<String, Value>, b: &Map<String, Value>, keys: &[&str]) -> bool {
    let Some((&primary, others)) = keys.split_first() else {
        return a == b;
    };
    let primary_matches = matches!((a.get(primary), b.get(primary)), (Some(x), Some(y)) if x == y);
    primary_matches
        && others.iter().all(|key| match (a.get(*key), b.get(*key)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        })
}

/// The merge-key fields of a patch item, which is all list ordering needs of it.
fn key_fields(item: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter().filter_map(|key| item.get(*key).map(|value| ((*key).to_owned(), value.clone()))).collect()
}

/// The error for an item lacking the merge key.
fn missing_key(path: Path<'_>, key: &'static str) -> SmpError {
    SmpError::MissingMergeKey { path: path.render(), key }
}

/// Orders a merged list (apimachinery's `normalizeElementOrder`): `in_patch` items sorted by their
/// position in `patch_order`, `server_only` items by theirs in `server_order`, then interleaved.
fn normalize_order(
    mut in_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    keys: &[&str],
) -> Vec<Value> {
    let position = |list: &[Value], item: &Value| list.iter().position(|x| same_item(x, item, keys));
    in_patch.sort_by_key(|item| position(patch_order, item).unwrap_or(usize::MAX));
    server_only.sort_by_key(|item| position(server_order, item).unwrap_or(usize::MAX));
    // apimachinery's `mergeSortedSlice`: a server-only item goes first only when both it and the next
    // patch item are in the current list and it comes earlier there.
    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                matches!((position(server_order, l), position(server_order, r)), (Some(i), Some(j)) if i < j)
            }
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    out
}

/// Applies and removes the `$retainKeys` directive (apimachinery's `applyRetainKeysDirective`).
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    path: Path<'_>,
) -> Result<(), SmpError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(SmpError::BadRetainKeys {
            path: path.render(),
            reason: "the value must be a list of field names".to_owned(),
        });
    };
    let retained = |key: &str| retain.iter().any(|name| name.as_str() == Some(key));
    for (key, value) in patch.iter() {
        let directive = key.starts_with(DELETE_FROM_PRIMITIVE_LIST) || key.starts_with(SET_ELEMENT_ORDER);
        if !value.is_null() && !directive && !retained(key) {
            return Err(SmpError::BadRetainKeys {
                path: path.render(),
                reason: format!("the patch sets {key:?}, which the list does not name"),
            });
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// Applies and removes the `$setElementOrder/<field>` directives and their lists
/// (apimachinery's `mergePatchIntoOriginal`).
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ctx: Ctx<'_>,
    path: Path<'_>,
) -> Result<(), SmpError> {
    let directives: Vec<String> =
        patch.keys().filter(|key| key.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
    for directive in directives {
        let directive_path = path.key(&directive);
        let Some(field) = directive.strip_prefix(SET_ELEMENT_ORDER).and_then(|rest| rest.strip_prefix('/'))
        else {
            return Err(SmpError::BadSetElementOrder {
                path: directive_path.render(),
                reason: "the key must be `$setElementOrder/<field>`",
            });
        };
        let Some(Value::Array(order)) = patch.remove(&directive) else {
            return Err(SmpError::BadSetElementOrder {
                path: directive_path.render(),
                reason: "the value must be a list",
            });
        };
        let field_path = path.key(field);
        let mismatch = |reason| SmpError::SetElementOrderMismatch { path: field_path.render(), reason };
        let (keys, item_ctx, merge): (&'static [&'static str], _, _) = match ctx.member(field) {
            Some(FieldSchema::ListMap { keys, item }) => (keys, Ctx::of_items(item), true),
            Some(FieldSchema::ListSet) => (&[], Ctx::Unknown, true),
            _ => (&[], Ctx::Unknown, false),
        };
        let current = match original.get(field) {
            None => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(_) => return Err(mismatch("the current value is not a list")),
        };
        let patch_list = match patch.remove(field) {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(_) => return Err(mismatch("the patch value is not a list")),
        };
        validate_order(patch_list.as_deref().unwrap_or_default(), &order, keys, field_path)?;
        let merged = match (current.clone(), patch_list) {
            (None, None) => continue,
            (Some(current), None) => current,
            (None, Some(patch_list)) => clean_list(patch_list),
            (Some(current), Some(patch_list)) if merge => {
                merge_list(current, patch_list, keys, item_ctx, field_path)?
            }
            (Some(_), Some(patch_list)) => clean_list(patch_list),
        };
        if let Some(&primary_key) = keys.first() {
            let objects = merged.iter().chain(&order);
            if objects.clone().any(|item| !item.is_object()) {
                return Err(mismatch("the list items must be objects"));
            }
            if objects.clone().any(|item| item.get(primary_key).is_none()) {
                return Err(missing_key(field_path, primary_key));
            }
        }
        let (in_order, server_only) =
            merged.into_iter().partition(|item| order.iter().any(|o| same_item(item, o, keys)));
        let server_order = current.unwrap_or_default();
        original.insert(
            field.to_owned(),
            Value::Array(normalize_order(in_order, server_only, &order, &server_order, keys)),
        );
    }
    Ok(())
}

/// Checks that the patch list's items (deletions and directives aside) appear in the
/// `$setElementOrder` list, in the same relative order (apimachinery's `validatePatchWithSetOrderList`).
fn validate_order(
    patch_list: &[Value],
    order: &[Value],
    keys: &'static [&'static str],
    path: Path<'_>,
) -> Result<(), SmpError> {
    let mut items = patch_list.iter().filter(|item| item.get(PATCH_DIRECTIVE).is_none()).peekable();
    for ordered in order {
        let Some(item) = items.peek() else {
            return Ok(());
        };
        if let Some(&primary_key) = keys.first()
            && ordered.get(primary_key).is_none()
        {
            return Err(missing_key(path, primary_key));
        }
        if same_item(item, ordered, keys) {
            items.next();
        }
    }
    match items.next() {
        None => Ok(()),
        Some(_) => Err(SmpError::SetElementOrderMismatch {
            path: path.render(),
            reason: "the patch list has items missing from it or in another order",
        }),
    }
}

/// Applies a `$deleteFromPrimitiveList/<field>` directive: removes the listed values from the
/// current list, if there is one.
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    to_delete: Value,
    path: Path<'_>,
) -> Result<(), SmpError> {
    let Value::Array(to_delete) = to_delete else {
        return Err(SmpError::BadDeleteFromPrimitiveList {
            path: path.render(),
            reason: "the value must be a list",
        });
    };
    if to_delete.iter().any(|value| value.is_object() || value.is_array()) {
        return Err(SmpError::BadDeleteFromPrimitiveList {
            path: path.render(),
            reason: "only scalar values can be deleted",
        });
    }
    if let Some(Value::Array(items)) = original.get_mut(field) {
        items.retain(|item| !to_delete.contains(item));
    }
    Ok(())
}

/// Prepares a patch value that is inserted rather than merged: `None` if it is itself a directive
/// object; otherwise drops `null` object members, objects carrying `$patch` and other directive keys.
fn clean(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) if map.contains_key(PATCH_DIRECTIVE) => None,
        Value::Object(map) => Some(Value::Object(clean_map(map))),
        Value::Array(items) => Some(Value::Array(clean_list(items))),
        other => Some(other),
    }
}

/// [`clean`] for the members of an object.
fn clean_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(key, value)| !value.is_null() && !is_directive_key(key))
        .filter_map(|(key, value)| clean(value).map(|value| (key, value)))
        .collect()
}

/// [`clean`] for the items of a list (`null` items are kept, as by apimachinery).
fn clean_list(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().filter_map(clean).collect()
}

/// Whether an object key is a patch directive.
fn is_directive_key(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)] // the helpers take values so that tests can pass `json!` literals
mod tests {
    use serde_json::json;

    use super::*;

    const POD: &str = "io.k8s.api.core.v1.Pod";

    fn apply(original: Value, patch: Value, type_name: &str) -> Value {
        match strategic_merge_patch(&original, &patch, type_name) {
            Ok(result) => result,
            Err(err) => panic!("patch failed: {err}"),
        }
    }

    fn fail(original: Value, patch: Value, type_name: &str) -> SmpError {
        match strategic_merge_patch(&original, &patch, type_name) {
            Ok(result) => panic!("patch unexpectedly applied: {result}"),
            Err(err) => err,
        }
    }

    fn pod_with_containers(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    fn containers(pod: &Value) -> &Value {
        &pod["spec"]["containers"]
    }

    #[test]
    fn the_table_follows_patch_strategy_tags_not_server_side_apply_markers() {
        use FieldSchema::*;
        let field = smp_schema::field;
        let container = Some("io.k8s.api.core.v1.Container");
        assert_eq!(
            field("io.k8s.api.core.v1.PodSpec", "containers"),
            Some(ListMap { keys: &["name"], item: container })
        );
        assert_eq!(
            field("io.k8s.api.core.v1.Container", "ports")
                .map(|f| matches!(f, ListMap { keys: &["containerPort"], .. })),
            Some(true)
        );
        assert_eq!(field("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers"), Some(ListSet));
        assert_eq!(field("io.k8s.api.core.v1.PodSpec", "tolerations"), Some(ListAtomic));
        assert_eq!(field("io.k8s.api.core.v1.PodSpec", "nodeSelector"), Some(MapGranular(None)));
        assert_eq!(field("io.k8s.api.core.v1.ResourceRequirements", "claims"), Some(ListAtomic));
        assert_eq!(field("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector"), Some(MapAtomic));
        assert_eq!(field("io.k8s.api.core.v1.PodSpec", "hostname"), None);
        assert_eq!(field("io.k8s.api.core.v1.NoSuchType", "spec"), None);
    }

    #[test]
    fn containers_are_merged_by_name_keeping_unpatched_fields_and_containers() {
        let original = pod_with_containers(json!([
            {"name": "a", "image": "a:1", "args": ["x"]},
            {"name": "b", "image": "b:1"},
        ]));
        let patch = json!({"spec": {"containers": [{"name": "a", "image": "a:2"}]}});
        let result = apply(original, patch, POD);
        assert_eq!(
            containers(&result),
            &json!([{"name": "a", "image": "a:2", "args": ["x"]}, {"name": "b", "image": "b:1"}])
        );
        assert_eq!(result["metadata"], json!({"name": "p"}));
    }

    #[test]
    fn a_container_added_by_a_patch_goes_first_like_on_the_api_server() {
        let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}]));
        let patch = json!({"spec": {"containers": [{"name": "c", "image": "c:1"}]}});
        let result = apply(original, patch, POD);
        assert_eq!(
            containers(&result),
            &json!([{"name": "c", "image": "c:1"}, {"name": "a"}, {"name": "b"}])
        );
    }

    #[test]
    fn env_vars_are_merged_by_name_inside_a_merged_container() {
        let original = pod_with_containers(json!([
            {"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
        ]));
        let patch = json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}]}]}});
        let result = apply(original, patch, POD);
        assert_eq!(
            containers(&result)[0]["env"],
            json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}])
        );
    }

    #[test]
    fn container_ports_are_merged_by_container_port_alone() {
        let original =
            pod_with_containers(json!([{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]));
        let patch =
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "web"}]}]}});
        let result = apply(original, patch, POD);
        assert_eq!(
            containers(&result)[0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "web"}])
        );
    }

    #[test]
    fn pod_conditions_are_merged_by_type() {
        let original = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "PodScheduled", "status": "True"},
        ]}});
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let result = apply(original, patch, POD);
        assert_eq!(
            result["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
    }

    #[test]
    fn owner_references_are_merged_by_uid() {
        let original =
            json!({"metadata": {"ownerReferences": [{"uid": "1", "kind": "ReplicaSet", "name": "rs"}]}});
        let patch = json!({"metadata": {"ownerReferences": [{"uid": "1", "controller": true}]}});
        let result = apply(original, patch, POD);
        assert_eq!(
            result["metadata"]["ownerReferences"],
            json!([{"uid": "1", "kind": "ReplicaSet", "name": "rs", "controller": true}])
        );
    }

    #[test]
    fn patch_delete_in_a_list_item_removes_every_item_with_that_merge_key() {
        let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}, {"name": "a"}]));
        let patch = json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}});
        let result = apply(original, patch, POD);
        assert_eq!(containers(&result), &json!([{"name": "b"}]));
    }

    #[test]
    fn patch_delete_in_an_object_empties_it_like_apimachinery() {
        let original = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}});
        let patch = json!({"metadata": {"labels": {"$patch": "delete"}}});
        let result = apply(original, patch, POD);
        assert_eq!(result["metadata"], json!({"name": "p", "labels": {}}));
    }

    #[test]
    fn patch_replace_in_an_object_replaces_it_with_the_other_patch_keys() {
        let original = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}});
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "c": "3", "d": null}}});
        let result = apply(original, patch, POD);
        assert_eq!(result["metadata"], json!({"name": "p", "labels": {"c": "3"}}));
    }

    #[test]
    fn patch_replace_element_replaces_the_whole_merge_list_with_the_other_items() {
        let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}]));
        let patch = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "z", "image": "z:1"}]}});
        let result = apply(original, patch, POD);
        assert_eq!(containers(&result), &json!([{"name": "z", "image": "z:1"}]));

        let emptied = apply(
            pod_with_containers(json!([{"name": "a"}])),
            json!({"spec": {"containers": [{"$patch": "replace"}]}}),
            POD,
        );
        assert_eq!(containers(&emptied), &json!([]));
    }

    #[test]
    fn patch_merge_is_rejected_in_objects_and_lists_as_by_the_api_server() {
        let original = pod_with_containers(json!([{"name": "a"}]));
        let in_object = fail(original.clone(), json!({"spec": {"$patch": "merge"}}), POD);
        assert!(
            matches!(&in_object, SmpError::UnknownDirective { path, .. } if path == "$.spec"),
            "{in_object}"
        );
        assert_eq!(in_object.http_status(), 500);
        let in_list =
            fail(original, json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}), POD);
        assert!(
            matches!(&in_list, SmpError::MergeDirectiveInList { path } if path == "$.spec.containers[0]")
        );
        assert_eq!(in_list.http_status(), 500);
    }

    #[test]
    fn an_unknown_patch_directive_is_an_error_naming_its_json_path() {
        let original = pod_with_containers(json!([{"name": "a"}]));
        let err = fail(original, json!({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}), POD);
        assert_eq!(err.to_string(), "unknown $patch directive \"bogus\" at $.spec.containers[0]");
        let err = fail(json!({}), json!({"$patch": 3}), POD);
        assert_eq!(err.to_string(), "unknown $patch directive 3 at $");
    }

    #[test]
    fn set_element_order_reorders_the_merged_list() {
        let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a:2"}],
        }});
        let result = apply(original, patch, POD);
        assert_eq!(
            containers(&result),
            &json!([{"name": "c"}, {"name": "a", "image": "a:2"}, {"name": "b"}])
        );
        assert!(result["spec"].get("$setElementOrder/containers").is_none());
    }

    #[test]
    fn set_element_order_interleaves_unlisted_items_by_their_current_position() {
        let original = pod_with_containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}});
        let result = apply(original, patch, POD);
        assert_eq!(containers(&result), &json!([{"name": "b"}, {"name": "c"}, {"name": "a"}]));
    }

    #[test]
    fn set_element_order_orders_a_primitive_list() {
        let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch =
            json!({"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["b"]}});
        let result = apply(original, patch, POD);
        assert_eq!(result["metadata"], json!({"finalizers": ["c", "b", "a"]}));
    }

    #[test]
    fn set_element_order_contradicting_the_patch_list_is_an_error() {
        let original = pod_with_containers(json!([{"name": "1"}, {"name": "3"}, {"name": "2"}]));
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3", "image": "x"}, {"name": "1", "image": "y"}],
        }});
        let err = fail(original, patch, POD);
        assert!(
            matches!(&err, SmpError::SetElementOrderMismatch { path, .. } if path == "$.spec.containers")
        );
        let bad_value =
            fail(pod_with_containers(json!([])), json!({"spec": {"$setElementOrder/containers": "a"}}), POD);
        assert_eq!(bad_value.http_status(), 400);
    }

    #[test]
    fn retain_keys_drops_current_fields_missing_from_the_list() {
        let original = json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let result = apply(original, patch, "io.k8s.api.apps.v1.Deployment");
        assert_eq!(result, json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}}));
    }

    #[test]
    fn retain_keys_inside_a_volume_switches_its_source() {
        let original = json!({"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}}, {"name": "w", "emptyDir": {}}]}});
        let patch = json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}]}});
        let result = apply(original, patch, POD);
        assert_eq!(
            result["spec"]["volumes"],
            json!([{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}])
        );
    }

    #[test]
    fn retain_keys_rejects_a_patch_field_it_does_not_list() {
        let original = json!({"spec": {"strategy": {"type": "RollingUpdate"}}});
        let patch =
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}});
        let err = fail(original.clone(), patch, "io.k8s.api.apps.v1.Deployment");
        assert!(matches!(&err, SmpError::BadRetainKeys { path, .. } if path == "$.spec.strategy"));
        assert_eq!(err.http_status(), 400);
        let not_a_list =
            fail(original, json!({"spec": {"$retainKeys": "type"}}), "io.k8s.api.apps.v1.Deployment");
        assert_eq!(not_a_list.http_status(), 400);
    }

    #[test]
    fn delete_from_primitive_list_removes_values_from_finalizers() {
        let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}});
        let result = apply(original, patch, POD);
        assert_eq!(result["metadata"], json!({"finalizers": ["a", "c"]}));
        let absent = apply(
            json!({"metadata": {}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            POD,
        );
        assert_eq!(absent["metadata"], json!({}));
    }

    #[test]
    fn delete_from_primitive_list_needs_a_field_and_a_list_of_scalars() {
        let original = json!({"metadata": {"finalizers": ["a"]}});
        for patch in [
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [{"a": 1}]}}),
            json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
        ] {
            let err = fail(original.clone(), patch, POD);
            assert!(matches!(err, SmpError::BadDeleteFromPrimitiveList { .. }), "{err}");
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn null_deletes_a_key_and_nulls_are_dropped_from_new_values() {
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let patch = json!({"metadata": {"labels": {"a": null}, "annotations": {"x": "1", "y": null}}});
        let result = apply(original, patch, POD);
        assert_eq!(result["metadata"], json!({"labels": {"b": "2"}, "annotations": {"x": "1"}}));
    }

    #[test]
    fn atomic_lists_are_replaced_by_the_patch_list() {
        let original = json!({"spec": {
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "containers": [{"name": "a", "args": ["x", "y"]}],
        }});
        let patch = json!({"spec": {
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "containers": [{"name": "a", "args": ["z"]}],
        }});
        let result = apply(original, patch, POD);
        assert_eq!(result["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
        assert_eq!(containers(&result)[0]["args"], json!(["z"]));
    }

    #[test]
    fn lists_that_only_server_side_apply_merges_are_replaced() {
        let original =
            pod_with_containers(json!([{"name": "a", "resources": {"claims": [{"name": "gpu"}]}}]));
        let patch =
            json!({"spec": {"containers": [{"name": "a", "resources": {"claims": [{"name": "fpga"}]}}]}});
        let result = apply(original, patch, POD);
        assert_eq!(containers(&result)[0]["resources"]["claims"], json!([{"name": "fpga"}]));
    }

    #[test]
    fn finalizers_are_merged_as_a_set_with_new_values_first() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}});
        let overlapping = apply(original.clone(), json!({"metadata": {"finalizers": ["b", "c", "c"]}}), POD);
        assert_eq!(overlapping["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let disjoint = apply(original, json!({"metadata": {"finalizers": ["new"]}}), POD);
        assert_eq!(disjoint["metadata"]["finalizers"], json!(["new", "a", "b"]));
    }

    #[test]
    fn node_selector_is_merged_key_by_key_despite_its_atomic_map_type() {
        let original = json!({"spec": {"nodeSelector": {"zone": "a", "disk": "ssd"}}});
        let patch = json!({"spec": {"nodeSelector": {"zone": "b"}}});
        let result = apply(original, patch, POD);
        assert_eq!(result["spec"]["nodeSelector"], json!({"zone": "b", "disk": "ssd"}));
    }

    #[test]
    fn a_pod_disruption_budget_selector_is_replaced_as_a_whole() {
        let original = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}});
        let patch = json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}});
        let result = apply(original, patch, "io.k8s.api.policy.v1.PodDisruptionBudget");
        assert_eq!(result["spec"], json!({"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}));
    }

    #[test]
    fn fields_missing_from_the_table_merge_like_json_merge_patch() {
        let original = json!({"spec": {"x-custom": {"a": {"b": 1}, "list": [1, 2]}, "hostname": "h"}});
        let patch =
            json!({"spec": {"x-custom": {"a": {"c": 2}, "list": [3]}, "hostname": {"now": "an object"}}});
        let result = apply(original, patch, POD);
        assert_eq!(
            result["spec"],
            json!({"x-custom": {"a": {"b": 1, "c": 2}, "list": [3]}, "hostname": {"now": "an object"}})
        );
        let unknown_type = apply(
            json!({"spec": {"containers": [{"name": "a"}]}}),
            json!({"spec": {"containers": [{"name": "b"}]}}),
            "io.example.v1.Widget",
        );
        assert_eq!(unknown_type, json!({"spec": {"containers": [{"name": "b"}]}}));
    }

    #[test]
    fn directives_inside_inserted_values_never_reach_the_result() {
        let original = json!({"spec": {}});
        let patch = json!({"spec": {"volumes": [
            {"name": "v", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}},
            {"name": "gone", "$patch": "delete"},
        ], "affinity": {"$patch": "replace", "nodeAffinity": {}}}});
        let result = apply(original, patch, POD);
        assert_eq!(result, json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}));
    }

    #[test]
    fn a_merge_list_item_without_its_merge_key_is_an_error() {
        let original = pod_with_containers(json!([{"name": "a"}]));
        let err = fail(original, json!({"spec": {"containers": [{"name": "a"}, {"image": "x"}]}}), POD);
        assert_eq!(
            err.to_string(),
            "the list item at $.spec.containers[1] does not contain the merge key \"name\""
        );
        assert_eq!(err.http_status(), 500);
    }

    #[test]
    fn malformed_lists_are_errors() {
        let original = json!({"metadata": {"finalizers": ["a"]}});
        let nested = fail(original.clone(), json!({"metadata": {"finalizers": [["b"]]}}), POD);
        assert!(matches!(&nested, SmpError::ListOfLists { path } if path == "$.metadata.finalizers"));
        assert_eq!(nested.http_status(), 422);
        let mixed = fail(original.clone(), json!({"metadata": {"finalizers": [1]}}), POD);
        assert!(matches!(mixed, SmpError::MixedListElements { .. }));
        let objects = fail(original, json!({"metadata": {"finalizers": [{"a": 1}]}}), POD);
        assert!(matches!(objects, SmpError::MixedListElements { .. }));
        let no_key = fail(
            json!({"metadata": {"finalizers": [{"a": 1}]}}),
            json!({"metadata": {"finalizers": [{"b": 1}]}}),
            POD,
        );
        assert!(matches!(no_key, SmpError::ListWithoutMergeKey { .. }));
    }

    #[test]
    fn both_documents_must_be_json_objects_but_the_original_may_be_null() {
        let err = fail(json!([]), json!({}), POD);
        assert_eq!(err.to_string(), "strategic merge patch: the original is not a json object");
        assert_eq!(err.http_status(), 400);
        assert!(matches!(fail(json!({}), json!("x"), POD), SmpError::NotAnObject { document: "patch" }));
        assert_eq!(apply(Value::Null, json!({"a": 1}), POD), json!({"a": 1}));
    }

    #[test]
    fn json_paths_quote_keys_that_are_not_plain_identifiers() {
        let root = Path::ROOT;
        let labels = root.key("metadata");
        let labels = labels.key("labels");
        assert_eq!(
            labels.key("app.kubernetes.io/name").render(),
            "$.metadata.labels[\"app.kubernetes.io/name\"]"
        );
        assert_eq!(labels.index(2).render(), "$.metadata.labels[2]");
    }
}
