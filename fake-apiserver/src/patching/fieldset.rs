//! Field sets: the fields a manager owns, as server-side apply tracks them (structured-merge-diff's
//! `fieldpath.Set`), and their `FieldsV1` encoding in `metadata.managedFields`.
//!
//! A set is a tree of path elements, each written as `FieldsV1` writes it:
//! - `f:<name>`: a field of an object (struct fields and map keys alike);
//! - `k:{"name":"x"}`: the item of a list map with these key values (keys sorted, compact JSON);
//! - `v:<json>`: the item of a set list with this value;
//! - `i:<n>`: a list position (never produced here; decoded for completeness).
//!
//! A node is a *member* when the path itself is in the set; its children are deeper paths. In
//! `FieldsV1` a member without children is `{}`, and a member with children carries `".": {}`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of field paths, as a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    /// Whether the path of this node is itself in the set.
    pub(crate) member: bool,
    /// Deeper paths, by encoded path element (`f:spec`, `k:{"name":"x"}`, …); never empty nodes.
    pub(crate) children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// The set holding just this node.
    pub(crate) fn member() -> Self {
        Self { member: true, children: BTreeMap::new() }
    }

    /// Whether the set holds no path at all.
    pub(crate) fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// The child node for a path element, if any.
    pub(crate) fn child(&self, element: &str) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// Adds `child` under `element` unless it is empty (merging with what is there).
    pub(crate) fn attach(&mut self, element: String, child: FieldSet) {
        if child.is_empty() {
            return;
        }
        match self.children.get_mut(&element) {
            Some(existing) => existing.union(&child),
            None => {
                self.children.insert(element, child);
            }
        }
    }

    /// Adds every path of `other`.
    pub(crate) fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (element, child) in &other.children {
            match self.children.get_mut(element) {
                Some(mine) => mine.union(child),
                None => {
                    self.children.insert(element.clone(), child.clone());
                }
            }
        }
    }

    /// Removes every path of `other` (paths only, not what is below them).
    pub(crate) fn difference(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        if other.children.is_empty() || self.children.is_empty() {
            return;
        }
        self.children.retain(|element, child| {
            if let Some(theirs) = other.children.get(element) {
                child.difference(theirs);
            }
            !child.is_empty()
        });
    }

    /// The paths in both sets.
    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet { member: self.member && other.member, children: BTreeMap::new() };
        let (small, large) =
            if self.children.len() <= other.children.len() { (self, other) } else { (other, self) };
        for (element, child) in &small.children {
            if let Some(theirs) = large.children.get(element) {
                out.attach(element.clone(), child.intersection(theirs));
            }
        }
        out
    }

    /// Drops the membership of the path `elements` (nothing below it), pruning emptied nodes.
    pub(crate) fn remove_member(&mut self, elements: &[&str]) {
        let Some((first, rest)) = elements.split_first() else {
            self.member = false;
            return;
        };
        if let Some(child) = self.children.get_mut(*first) {
            child.remove_member(rest);
            if child.is_empty() {
                self.children.remove(*first);
            }
        }
    }

    /// Drops the path `element` and everything below it.
    pub(crate) fn remove_subtree(&mut self, element: &str) {
        self.children.remove(element);
    }

    /// Keeps only the subtree under `element`.
    pub(crate) fn keep_subtree(&mut self, element: &str) {
        self.member = false;
        self.children.retain(|e, _| e == element);
    }

    /// Every member path, each as its elements, in set order.
    pub(crate) fn members(&self) -> Vec<Vec<&str>> {
        fn walk<'a>(set: &'a FieldSet, prefix: &mut Vec<&'a str>, out: &mut Vec<Vec<&'a str>>) {
            if set.member {
                out.push(prefix.clone());
            }
            for (element, child) in &set.children {
                prefix.push(element);
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// The `FieldsV1` encoding.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            map.insert(element.clone(), child.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Decodes `FieldsV1`; `None` when it is not a tree of objects with valid path elements.
    pub(crate) fn from_fields_v1(value: &Value) -> Option<FieldSet> {
        fn node(value: &Value) -> Option<FieldSet> {
            let map = value.as_object()?;
            let mut set = FieldSet { member: map.is_empty(), children: BTreeMap::new() };
            for (element, child) in map {
                if element == "." {
                    set.member = true;
                    continue;
                }
                if !["f:", "k:", "v:", "i:"].iter().any(|p| element.starts_with(p)) {
                    return None;
                }
                set.attach(element.clone(), node(child)?);
            }
            Some(set)
        }
        let mut root = node(value)?;
        root.member = false; // the empty path is never owned
        Some(root)
    }
}

/// Whether a `FieldsV1` node (not the root) is itself a member.
fn encoded_member(node: &Map<String, Value>) -> bool {
    node.is_empty() || node.contains_key(".")
}

/// Whether a `FieldsV1` node has deeper paths.
fn encoded_children(node: &Map<String, Value>) -> bool {
    node.keys().any(|k| k != ".")
}

/// Removes the paths of `set` from a `FieldsV1` node in place (the stored encoding, so the hot
/// update path neither decodes nor re-encodes whole entries); `root` for the top of `fieldsV1`.
/// Returns whether the node is left empty and must go.
pub(crate) fn difference_in_place(node: &mut Map<String, Value>, set: &FieldSet, root: bool) -> bool {
    let member = !root && encoded_member(node) && !set.member;
    for (element, sub) in &set.children {
        if let Some(Value::Object(child)) = node.get_mut(element)
            && difference_in_place(child, sub, false)
        {
            node.remove(element);
        }
    }
    if encoded_children(node) {
        if member {
            node.entry(".").or_insert_with(|| Value::Object(Map::new()));
        } else {
            node.remove(".");
        }
        false
    } else {
        node.clear();
        !member
    }
}

/// Adds the paths of `set` to a `FieldsV1` node in place; `root` for the top of `fieldsV1`.
pub(crate) fn union_in_place(node: &mut Map<String, Value>, set: &FieldSet, root: bool) {
    let member = !root && (encoded_member(node) || set.member);
    for (element, sub) in &set.children {
        match node.get_mut(element) {
            Some(Value::Object(child)) => union_in_place(child, sub, false),
            _ => {
                node.insert(element.clone(), sub.to_fields_v1());
            }
        }
    }
    if member && encoded_children(node) {
        node.entry(".").or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The element for the field `name` of an object.
pub(crate) fn field_element(name: &str) -> String {
    let mut element = String::with_capacity(name.len() + 2);
    element.push_str("f:");
    element.push_str(name);
    element
}

/// A path as the real server prints it in conflicts: `.spec.containers[name="app"].image`.
pub(crate) fn render_path(elements: &[&str]) -> String {
    let mut out = String::new();
    for element in elements {
        let (kind, body) = element.split_at(element.len().min(2));
        match kind {
            "f:" => {
                out.push('.');
                out.push_str(body);
            }
            "k:" => {
                let keys = serde_json::from_str::<Map<String, Value>>(body).unwrap_or_default();
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={}", scalar(v))).collect();
                out.push('[');
                out.push_str(&parts.join(","));
                out.push(']');
            }
            "v:" => {
                let value = serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
                out.push_str(&format!("[={}]", scalar(&value)));
            }
            "i:" => out.push_str(&format!("[{body}]")),
            _ => out.push_str(element),
        }
    }
    out
}

/// A value as Go's `value.ToString` prints it: strings quoted, the rest as JSON.
fn scalar(value: &Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(v: &Value) -> FieldSet {
        FieldSet::from_fields_v1(v).unwrap()
    }

    #[test]
    fn fields_v1_round_trips_with_dot_marking_members_that_have_children() {
        let v = json!({"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}});
        let s = set(&v);
        assert!(s.child("f:data").unwrap().member);
        assert!(!s.child("f:metadata").unwrap().member);
        assert_eq!(s.to_fields_v1(), v);
    }

    #[test]
    fn difference_removes_paths_but_keeps_unrelated_children() {
        let mut a = set(&json!({"f:spec": {"f:a": {}, "f:b": {}}}));
        a.difference(&set(&json!({"f:spec": {"f:a": {}}})));
        assert_eq!(a.to_fields_v1(), json!({"f:spec": {"f:b": {}}}));
        a.difference(&set(&json!({"f:spec": {"f:b": {}}})));
        assert!(a.is_empty());
    }

    #[test]
    fn intersection_and_union_work_on_members() {
        let a = set(&json!({"f:spec": {"f:a": {}, "f:b": {}}}));
        let b = set(&json!({"f:spec": {"f:b": {}, "f:c": {}}}));
        assert_eq!(a.intersection(&b).to_fields_v1(), json!({"f:spec": {"f:b": {}}}));
        let mut u = a;
        u.union(&b);
        assert_eq!(u.members().len(), 3);
    }

    #[test]
    fn paths_render_like_the_real_conflict_messages() {
        assert_eq!(render_path(&["f:spec", "f:replicas"]), ".spec.replicas");
        assert_eq!(
            render_path(&["f:spec", "f:containers", r#"k:{"name":"app"}"#, "f:image"]),
            r#".spec.containers[name="app"].image"#
        );
        assert_eq!(render_path(&["f:metadata", "f:finalizers", r#"v:"a""#]), r#".metadata.finalizers[="a"]"#);
    }

    #[test]
    fn in_place_operations_on_fields_v1_match_the_tree_operations() {
        let cases = [
            (json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}}), json!({"f:data": {"f:a": {}}})),
            (json!({"f:data": {".": {}, "f:a": {}}}), json!({"f:data": {".": {}, "f:a": {}}})),
            (json!({"f:spec": {"f:x": {}}}), json!({"f:spec": {".": {}, "f:x": {"f:y": {}}}})),
            (json!({"f:spec": {}}), json!({"f:spec": {"f:x": {}}})),
        ];
        for (a, b) in cases {
            let (sa, sb) = (set(&a), set(&b));
            let mut expected = sa.clone();
            expected.difference(&sb);
            let mut encoded = a.as_object().unwrap().clone();
            difference_in_place(&mut encoded, &sb, true);
            assert_eq!(Value::Object(encoded), expected.to_fields_v1(), "{a} - {b}");
            let mut expected = sa.clone();
            expected.union(&sb);
            let mut encoded = a.as_object().unwrap().clone();
            union_in_place(&mut encoded, &sb, true);
            assert_eq!(Value::Object(encoded), expected.to_fields_v1(), "{a} + {b}");
        }
    }

    #[test]
    fn invalid_fields_v1_is_rejected() {
        assert!(FieldSet::from_fields_v1(&json!({"spec": {}})).is_none());
        assert!(FieldSet::from_fields_v1(&json!([])).is_none());
    }
}
