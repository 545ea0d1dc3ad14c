//! Objects walked with their [`Schema`], as structured-merge-diff walks typed values: the field set
//! of an object (what an applier owns), the comparison of two versions (what an update added,
//! changed and removed), the merge of an applied configuration into the live object, and the
//! removal of fields an applier stopped applying.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, field_element, render_path};
use super::schema::{Kind, Schema};

/// Why a value does not fit its schema (a list-map item without keys, duplicate items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShapeError {
    /// The path to the offending value, innermost element first.
    path: Vec<String>,
    message: String,
}

impl ShapeError {
    fn new(message: String) -> Self {
        Self { path: Vec::new(), message }
    }

    fn at(mut self, element: &str) -> Self {
        self.path.push(element.to_owned());
        self
    }
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let elements: Vec<&str> = self.path.iter().rev().map(String::as_str).collect();
        write!(f, "{}: {}", render_path(&elements), self.message)
    }
}

type Result<T, E = ShapeError> = std::result::Result<T, E>;

/// The path element of a list item: `k:{…}` for list maps, `v:…` for sets.
fn item_element(kind: Kind<'_>, item: &Value, index: usize) -> Result<String> {
    match kind {
        Kind::ListMap(keys) => {
            let Some(object) = item.as_object() else {
                return Err(ShapeError::new(format!("element {index}: expected an object in a list map")));
            };
            let names = keys.names();
            let mut key = Map::new();
            for name in &names {
                if let Some(value) = object.get(*name) {
                    key.insert((*name).to_owned(), value.clone());
                }
            }
            if key.is_empty() {
                let missing = names.first().copied().unwrap_or_default();
                return Err(ShapeError::new(format!(
                    "element {index}: associative list with keys has an element that omits key field {missing:?}"
                )));
            }
            Ok(format!("k:{}", Value::Object(key)))
        }
        _ => Ok(format!("v:{item}")),
    }
}

/// The path elements of a list's items in order, and where each occurs (`None` when duplicated).
type ItemIndex = (Vec<String>, HashMap<String, Option<usize>>);

/// Indexes a list's items by path element; duplicates are an error unless allowed.
fn index_items(kind: Kind<'_>, items: &[Value], allow_duplicates: bool) -> Result<ItemIndex> {
    let mut elements = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, Option<usize>> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let element = item_element(kind, item, i)?;
        match seen.get_mut(&element) {
            Some(slot) if allow_duplicates => *slot = None,
            Some(_) => {
                return Err(ShapeError::new(format!(
                    "duplicate entries for key {}",
                    render_path(&[element.as_str()])
                )));
            }
            None => {
                seen.insert(element.clone(), Some(i));
            }
        }
        elements.push(element);
    }
    Ok((elements, seen))
}

/// The fields a value sets (structured-merge-diff's `ToFieldSet`): leaves, list items, empty and
/// null fields, map keys; declared struct fields with content only through what is below them.
pub(crate) fn field_set(value: &Value, schema: Schema<'_>) -> Result<FieldSet> {
    let kind = schema.kind(value);
    match (kind, value) {
        (Kind::Object, Value::Object(map)) => {
            let mut set = FieldSet::default();
            for (key, child) in map {
                let (child_schema, declared) = schema.child(key);
                let element = field_element(key);
                let mut sub = field_set(child, child_schema).map_err(|e| e.at(&element))?;
                let empty_object = child.as_object().is_some_and(Map::is_empty);
                if child.is_null() || empty_object || !declared {
                    sub.member = true;
                }
                set.attach(element, sub);
            }
            Ok(set)
        }
        (Kind::ListMap(_) | Kind::Set, Value::Array(items)) => {
            let item_schema = schema.item();
            let mut set = FieldSet::default();
            let (elements, _) = index_items(kind, items, false)?;
            for (item, element) in items.iter().zip(elements) {
                let mut sub = field_set(item, item_schema).map_err(|e| e.at(&element))?;
                sub.member = true;
                set.attach(element, sub);
            }
            Ok(set)
        }
        _ => Ok(FieldSet::member()),
    }
}

/// What changed between two versions of an object (structured-merge-diff's `Compare`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// Paths only in the new version.
    pub(crate) added: FieldSet,
    /// Leaves in both, with different values.
    pub(crate) modified: FieldSet,
    /// Paths only in the old version.
    pub(crate) removed: FieldSet,
}

impl Comparison {
    fn attach(&mut self, element: &str, child: Comparison) {
        if !child.added.is_empty() {
            self.added.attach(element.to_owned(), child.added);
        }
        if !child.modified.is_empty() {
            self.modified.attach(element.to_owned(), child.modified);
        }
        if !child.removed.is_empty() {
            self.removed.attach(element.to_owned(), child.removed);
        }
    }

    /// Added and modified paths together: what the new version set.
    pub(crate) fn changed(&self) -> FieldSet {
        let mut changed = self.added.clone();
        changed.union(&self.modified);
        changed
    }
}

/// Compares two versions of a value (either may be absent).
pub(crate) fn compare(old: Option<&Value>, new: Option<&Value>, schema: Schema<'_>) -> Result<Comparison> {
    compare_skipping(old, new, schema, None)
}

/// Compares two versions of a whole object, leaving out `metadata.managedFields`, which no one owns
/// and which the write recomputes.
pub(crate) fn compare_objects(old: &Value, new: &Value, schema: Schema<'_>) -> Result<Comparison> {
    let mut out = Comparison::default();
    let (Some(old_map), Some(new_map)) = (old.as_object(), new.as_object()) else {
        return compare(Some(old), Some(new), schema);
    };
    for (key, old_child, new_child) in pairs(old_map, new_map) {
        let skip = (key == "metadata").then_some("managedFields");
        if skip.is_none() && old_child == new_child {
            continue;
        }
        let element = field_element(key);
        let child =
            compare_skipping(old_child, new_child, schema.child(key).0, skip).map_err(|e| e.at(&element))?;
        out.attach(&element, child);
    }
    Ok(out)
}

/// The members of two objects side by side, in key order (a merge of the two sorted maps).
fn pairs<'v>(
    old: &'v Map<String, Value>,
    new: &'v Map<String, Value>,
) -> impl Iterator<Item = (&'v String, Option<&'v Value>, Option<&'v Value>)> {
    let mut old = old.iter().peekable();
    let mut new = new.iter().peekable();
    std::iter::from_fn(move || match (old.peek(), new.peek()) {
        (None, None) => None,
        (Some(_), None) => old.next().map(|(k, v)| (k, Some(v), None)),
        (None, Some(_)) => new.next().map(|(k, v)| (k, None, Some(v))),
        (Some((a, _)), Some((b, _))) => match a.cmp(b) {
            std::cmp::Ordering::Less => old.next().map(|(k, v)| (k, Some(v), None)),
            std::cmp::Ordering::Greater => new.next().map(|(k, v)| (k, None, Some(v))),
            std::cmp::Ordering::Equal => {
                let (k, v) = old.next()?;
                new.next().map(|(_, w)| (k, Some(v), Some(w)))
            }
        },
    })
}

/// [`compare`], leaving out the member `skip` of the objects compared at this level.
fn compare_skipping(
    old: Option<&Value>,
    new: Option<&Value>,
    schema: Schema<'_>,
    skip: Option<&str>,
) -> Result<Comparison> {
    let mut out = Comparison::default();
    if let (Some(old), Some(new)) = (old, new)
        && skip.is_none()
        && old == new
    {
        return Ok(out);
    }
    let Some(value) = new.or(old) else { return Ok(out) };
    let kind = schema.kind(value);
    let same_shape = match (old, new) {
        (Some(old), Some(new)) => (old.is_object() && new.is_object()) || (old.is_array() && new.is_array()),
        _ => true,
    };
    match (kind, same_shape) {
        (Kind::Object, true) => {
            let empty = Map::new();
            let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
            let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
            for (key, old_child, new_child) in pairs(old_map, new_map) {
                if old_child == new_child || skip == Some(key.as_str()) {
                    continue;
                }
                let element = field_element(key);
                let child = compare(old_child, new_child, schema.child(key).0).map_err(|e| e.at(&element))?;
                out.attach(&element, child);
            }
        }
        (Kind::ListMap(_) | Kind::Set, true) => {
            let empty = Vec::new();
            let old_items = old.and_then(Value::as_array).unwrap_or(&empty);
            let new_items = new.and_then(Value::as_array).unwrap_or(&empty);
            let (old_elements, old_index) = index_items(kind, old_items, true)?;
            let (new_elements, new_index) = index_items(kind, new_items, true)?;
            let item_schema = schema.item();
            let mut done: BTreeSet<&String> = BTreeSet::new();
            for element in old_elements.iter().chain(&new_elements) {
                if !done.insert(element) {
                    continue;
                }
                let old_item = old_index.get(element).copied().flatten().map(|i| &old_items[i]);
                let new_item = new_index.get(element).copied().flatten().map(|i| &new_items[i]);
                let child = compare(old_item, new_item, item_schema).map_err(|e| e.at(element))?;
                out.attach(element, child);
            }
        }
        _ => {
            match (old, new) {
                (None, _) => out.added.member = true,
                (_, None) => out.removed.member = true,
                _ => out.modified.member = true,
            }
            return Ok(out);
        }
    }
    match (old, new) {
        (None, _) => out.added.member = true,
        (_, None) => out.removed.member = true,
        _ => {}
    }
    Ok(out)
}

/// The `FieldsV1` of everything a create sets (what [`compare`] finds added to `zero`, the kind's
/// zero value), built directly: the hot path of every create.
pub(crate) fn created_fields_v1(
    value: &Value,
    zero: &Value,
    schema: Schema<'_>,
) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    added_into(value, Some(zero), schema, &mut out)?;
    Ok(out)
}

/// Fills `out` (the node of `value`) with the encoding of what `value` adds to `zero`.
fn added_into(
    value: &Value,
    zero: Option<&Value>,
    schema: Schema<'_>,
    out: &mut Map<String, Value>,
) -> Result<()> {
    let kind = schema.kind(value);
    match (kind, value) {
        (Kind::Object, Value::Object(map)) => {
            for (key, child) in map {
                let zero_child = zero.and_then(|z| z.get(key));
                if zero_child == Some(child) {
                    continue;
                }
                let element = field_element(key);
                let mut node = Map::new();
                let child_schema = schema.child(key).0;
                let member = match zero_child {
                    None => true,
                    Some(z) => {
                        let same_shape =
                            (z.is_object() && child.is_object()) || (z.is_array() && child.is_array());
                        !same_shape || matches!(child_schema.kind(child), Kind::Leaf)
                    }
                };
                if member {
                    added_into(child, None, child_schema, &mut node).map_err(|e| e.at(&element))?;
                } else {
                    added_into(child, zero_child, child_schema, &mut node).map_err(|e| e.at(&element))?;
                }
                if node.is_empty() && !member {
                    continue;
                }
                if member && !node.is_empty() {
                    node.insert(".".to_owned(), Value::Object(Map::new()));
                }
                out.insert(element, Value::Object(node));
            }
        }
        (Kind::ListMap(_) | Kind::Set, Value::Array(items)) => {
            let item_schema = schema.item();
            for (i, item) in items.iter().enumerate() {
                let element = item_element(kind, item, i)?;
                if out.contains_key(&element) {
                    continue;
                }
                let mut node = Map::new();
                added_into(item, None, item_schema, &mut node).map_err(|e| e.at(&element))?;
                if !node.is_empty() {
                    node.insert(".".to_owned(), Value::Object(Map::new()));
                }
                out.insert(element, Value::Object(node));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Merges an applied configuration into the live value (structured-merge-diff's `Merge` with the
/// applied side winning at leaves). A `null` in the configuration removes the field.
pub(crate) fn merge(live: Option<&Value>, config: &Value, schema: Schema<'_>) -> Result<Value> {
    let Some(live) = live else { return Ok(without_nulls(config)) };
    match (schema.kind(config), live, config) {
        (Kind::Object, Value::Object(live_map), Value::Object(config_map)) => {
            let mut out = live_map.clone();
            for (key, value) in config_map {
                if value.is_null() {
                    out.remove(key);
                    continue;
                }
                let element = field_element(key);
                let merged =
                    merge(live_map.get(key), value, schema.child(key).0).map_err(|e| e.at(&element))?;
                out.insert(key.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (kind @ (Kind::ListMap(_) | Kind::Set), Value::Array(live_items), Value::Array(config_items)) => {
            merge_list(kind, live_items, config_items, schema.item()).map(Value::Array)
        }
        _ => Ok(without_nulls(config)),
    }
}

/// The list merge of structured-merge-diff (`visitListItems`): items merge by key; the applied
/// order wins for applied items, live-only items keep their place relative to them.
fn merge_list(kind: Kind<'_>, lhs: &[Value], rhs: &[Value], item: Schema<'_>) -> Result<Vec<Value>> {
    let (rhs_elements, rhs_index) = index_items(kind, rhs, false)?;
    let (lhs_elements, lhs_index) = index_items(kind, lhs, true)?;
    let lhs_item = |element: &str| lhs_index.get(element).copied().flatten().map(|i| &lhs[i]);
    let rhs_item = |element: &str| rhs_index.get(element).copied().flatten().map(|i| &rhs[i]);
    let mut shared = rhs_elements.iter().filter(|e| lhs_index.contains_key(*e));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let merge_item = |element: &str| -> Result<Option<Value>> {
        match rhs_item(element) {
            Some(config) => merge(lhs_item(element), config, item).map(Some).map_err(|e| e.at(element)),
            None => Ok(lhs_item(element).cloned()),
        }
    };
    let (mut l, mut r) = (0, 0);
    while l < lhs_elements.len() || r < rhs_elements.len() {
        if l < lhs_elements.len() && r < rhs_elements.len() {
            let element = &lhs_elements[l];
            if *element == rhs_elements[r] {
                merged_rhs.insert(element);
                out.extend(merge_item(element)?);
                l += 1;
                r += 1;
                next_shared = shared.next();
                continue;
            }
            if rhs_index.contains_key(element) && next_shared.is_some_and(|s| s != element) {
                l += 1;
                continue;
            }
        }
        if l < lhs_elements.len() {
            let element = &lhs_elements[l];
            if !rhs_index.contains_key(element) {
                out.push(lhs[l].clone());
                l += 1;
                continue;
            }
            if merged_rhs.contains(element.as_str()) || r >= rhs_elements.len() {
                l += 1;
                continue;
            }
        }
        if r < rhs_elements.len() {
            let element = &rhs_elements[r];
            merged_rhs.insert(element);
            out.extend(merge_item(element)?);
            r += 1;
            if next_shared.is_some_and(|s| s == element) {
                next_shared = shared.next();
            }
        }
    }
    Ok(out)
}

/// A copy without the `null` members of objects, which typed decoding drops.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Removes from `value` what an applier applied last time (`last`) and no manager owns now
/// (`owned`, every manager's fields including the applier's new ones): structured-merge-diff's
/// `prune`. A declared field stays while anything below it is owned; map keys and list items stay
/// only when owned themselves.
pub(crate) fn prune(value: &mut Value, last: &FieldSet, owned: &FieldSet, schema: Schema<'_>) -> Result<()> {
    let kind = schema.kind(value);
    match (kind, value) {
        (Kind::Object, Value::Object(map)) => {
            for (element, last_child) in &last.children {
                let Some(key) = element.strip_prefix("f:") else { continue };
                let (child_schema, declared) = schema.child(key);
                let owned_child = owned.child(element);
                if last_child.member && !kept(owned_child, declared) {
                    map.remove(key);
                } else if !last_child.children.is_empty()
                    && let Some(child) = map.get_mut(key)
                {
                    let empty = FieldSet::default();
                    prune(child, last_child, owned_child.unwrap_or(&empty), child_schema)
                        .map_err(|e| e.at(element))?;
                }
            }
        }
        (Kind::ListMap(_) | Kind::Set, Value::Array(items)) => {
            let item_schema = schema.item();
            let (elements, _) = index_items(kind, items, true)?;
            let mut keep = Vec::with_capacity(items.len());
            for (item, element) in std::mem::take(items).into_iter().zip(&elements) {
                let Some(last_child) = last.child(element) else {
                    keep.push(item);
                    continue;
                };
                let owned_child = owned.child(element);
                if last_child.member && !kept(owned_child, false) {
                    continue;
                }
                let mut item = item;
                if !last_child.children.is_empty() {
                    let empty = FieldSet::default();
                    prune(&mut item, last_child, owned_child.unwrap_or(&empty), item_schema)
                        .map_err(|e| e.at(element))?;
                }
                keep.push(item);
            }
            *items = keep;
        }
        _ => {}
    }
    Ok(())
}

/// Whether a pruned path stays: someone owns it, or (for declared fields) something below it.
fn kept(owned: Option<&FieldSet>, declared: bool) -> bool {
    owned.is_some_and(|o| o.member || (declared && !o.children.is_empty()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    #[test]
    fn field_set_of_an_apply_owns_leaves_items_and_map_keys_but_not_struct_fields() {
        let config = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
            "template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
        let set = field_set(&config, Schema::built_in(DEPLOYMENT)).unwrap();
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
    }

    #[test]
    fn comparison_marks_added_subtrees_and_modified_leaves() {
        let old = json!({"data": {"a": "1"}});
        let new = json!({"data": {"a": "2", "b": "3"}, "metadata": {"labels": {"x": "y"}}});
        let c = compare(Some(&old), Some(&new), Schema::built_in("io.k8s.api.core.v1.ConfigMap")).unwrap();
        assert_eq!(c.modified.to_fields_v1(), json!({"f:data": {"f:a": {}}}));
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:data": {"f:b": {}}, "f:metadata": {".": {}, "f:labels": {".": {}, "f:x": {}}}})
        );
        assert!(c.removed.is_empty());
    }

    #[test]
    fn created_fields_v1_is_what_compare_finds_added_to_the_zero_value() {
        let schema = Schema::built_in(DEPLOYMENT);
        let zero = json!({"spec": {}, "status": {}});
        let object = json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"replicas": 1,
            "selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}},
            "status": {}});
        let compared = compare(Some(&zero), Some(&object), schema).unwrap();
        let direct = created_fields_v1(&object, &zero, schema).unwrap();
        assert_eq!(Value::Object(direct), compared.changed().to_fields_v1());
    }

    #[test]
    fn merge_keeps_live_list_map_items_and_merges_applied_ones_by_key() {
        let schema = Schema::built_in("io.k8s.api.core.v1.PodSpec");
        let live = json!({"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]});
        let config = json!({"containers": [{"name": "b", "image": "2"}, {"name": "c", "image": "3"}]});
        let merged = merge(Some(&live), &config, schema).unwrap();
        assert_eq!(
            merged,
            json!({"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}]})
        );
    }

    #[test]
    fn duplicate_keys_in_an_applied_list_are_an_error_naming_the_path() {
        let schema = Schema::built_in("io.k8s.api.core.v1.PodSpec");
        let config = json!({"containers": [{"name": "a"}, {"name": "a"}]});
        let err = field_set(&config, schema).unwrap_err();
        assert_eq!(err.to_string(), ".containers: duplicate entries for key [name=\"a\"]");
    }

    #[test]
    fn prune_removes_dropped_fields_unless_owned() {
        let schema = Schema::built_in("io.k8s.api.core.v1.ConfigMap");
        let mut value = json!({"data": {"a": "1", "b": "2"}});
        let last = FieldSet::from_fields_v1(&json!({"f:data": {"f:a": {}, "f:b": {}}})).unwrap();
        let owned = FieldSet::from_fields_v1(&json!({"f:data": {"f:b": {}}})).unwrap();
        prune(&mut value, &last, &owned, schema).unwrap();
        assert_eq!(value, json!({"data": {"b": "2"}}));
    }
}
