//! Kopf's diffs: a list of `(op, field path, old, new)` items. Objects are diffed recursively;
//! lists and scalars are compared whole (any list edit is one `change`); a missing key and a JSON
//! `null` are the same "absent". Unlike Kopf (whose order comes from set iteration), items are in
//! key order, so a diff prints the same every run.

use serde_json::Value;

/// What happened to a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiffOp {
    /// The field appeared.
    Add,
    /// The field's value changed.
    Change,
    /// The field disappeared.
    Remove,
}

impl DiffOp {
    /// `add`, `change` or `remove`, as Kopf names them.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Change => "change",
            Self::Remove => "remove",
        }
    }
}

/// One change: the operation, the field path (empty for the root), the old and the new value.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffItem {
    /// The operation.
    pub op: DiffOp,
    /// The field path, e.g. `["spec", "field"]`.
    pub field: Vec<String>,
    /// The old value, `None` if absent.
    pub old: Option<Value>,
    /// The new value, `None` if absent.
    pub new: Option<Value>,
}

impl std::fmt::Display for DiffItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "None".to_owned(), Value::to_string);
        write!(
            f,
            "({}, ({}), {}, {})",
            self.op.as_str(),
            self.field.join(", "),
            show(&self.old),
            show(&self.new)
        )
    }
}

/// A diff between two states.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diff(Vec<DiffItem>);

impl Diff {
    /// The items.
    pub fn items(&self) -> &[DiffItem] {
        &self.0
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Iterates over the items.
    pub fn iter(&self) -> std::slice::Iter<'_, DiffItem> {
        self.0.iter()
    }

    /// The part of the diff under `path`, with paths made relative to it (Kopf's `reduce`): items
    /// below the path are kept; an item at or above it (a parent added, removed or replaced) is
    /// re-diffed at the path.
    #[must_use]
    pub fn reduce(&self, path: &[String]) -> Diff {
        let mut out = Vec::new();
        for item in &self.0 {
            if item.field.len() >= path.len() && item.field[..path.len()] == *path {
                out.push(DiffItem { field: item.field[path.len()..].to_vec(), ..item.clone() });
            } else if path.starts_with(&item.field) {
                let rest = &path[item.field.len()..];
                let old = item.old.as_ref().and_then(|v| resolve(v, rest));
                let new = item.new.as_ref().and_then(|v| resolve(v, rest));
                out.extend(diff(old, new).0);
            }
        }
        Diff(out)
    }
}

impl<'a> IntoIterator for &'a Diff {
    type Item = &'a DiffItem;
    type IntoIter = std::slice::Iter<'a, DiffItem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(")?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{item}")?;
        }
        f.write_str(")")
    }
}

/// The value at a path, `None` if absent (or null).
pub(crate) fn resolve<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut at = value;
    for key in path {
        at = at.as_object()?.get(key)?;
    }
    (!at.is_null()).then_some(at)
}

/// The diff between two states (`None` = absent).
pub fn diff(old: Option<&Value>, new: Option<&Value>) -> Diff {
    let mut items = Vec::new();
    walk(&mut Vec::new(), old.filter(|v| !v.is_null()), new.filter(|v| !v.is_null()), &mut items);
    Diff(items)
}

fn walk(path: &mut Vec<String>, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<DiffItem>) {
    match (old, new) {
        (None, None) => {}
        (Some(a), Some(b)) if a == b => {}
        (None, Some(b)) => {
            out.push(DiffItem { op: DiffOp::Add, field: path.clone(), old: None, new: Some(b.clone()) })
        }
        (Some(a), None) => {
            out.push(DiffItem { op: DiffOp::Remove, field: path.clone(), old: Some(a.clone()), new: None })
        }
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                path.push(key.clone());
                let av = a.get(key).filter(|v| !v.is_null());
                let bv = b.get(key).filter(|v| !v.is_null());
                walk(path, av, bv, out);
                path.pop();
            }
        }
        (Some(a), Some(b)) => {
            out.push(DiffItem {
                op: DiffOp::Change,
                field: path.clone(),
                old: Some(a.clone()),
                new: Some(b.clone()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn objects_are_diffed_recursively_and_lists_whole() {
        let old = json!({"spec": {"field": "a", "items": [1, 2], "gone": 1}});
        let new = json!({"spec": {"field": "b", "items": [1, 2, 3], "new": {"x": 1}}});
        let d = diff(Some(&old), Some(&new));
        let ops: Vec<(DiffOp, Vec<String>)> = d.iter().map(|i| (i.op, i.field.clone())).collect();
        assert_eq!(
            ops,
            vec![
                (DiffOp::Change, path(&["spec", "field"])),
                (DiffOp::Remove, path(&["spec", "gone"])),
                (DiffOp::Change, path(&["spec", "items"])),
                (DiffOp::Add, path(&["spec", "new"])),
            ]
        );
    }

    #[test]
    fn null_and_missing_are_the_same_absence() {
        assert!(diff(Some(&json!({"a": null})), Some(&json!({}))).is_empty());
        assert_eq!(diff(None, Some(&json!({"a": 1}))).items()[0].op, DiffOp::Add);
        assert_eq!(diff(Some(&json!(1)), None).items()[0].field, Vec::<String>::new());
    }

    #[test]
    fn reduce_narrows_to_a_field_and_rediffs_replaced_parents() {
        let d = diff(Some(&json!({"spec": {"a": 1, "b": 2}})), Some(&json!({"spec": {"a": 5, "b": 2}})));
        let r = d.reduce(&path(&["spec", "a"]));
        assert_eq!(
            r.items(),
            &[DiffItem { op: DiffOp::Change, field: vec![], old: Some(json!(1)), new: Some(json!(5)) }]
        );
        let added = diff(None, Some(&json!({"spec": {"a": 1}})));
        let r = added.reduce(&path(&["spec", "a"]));
        assert_eq!(r.items()[0].op, DiffOp::Add);
        assert_eq!(r.items()[0].new, Some(json!(1)));
        assert!(d.reduce(&path(&["spec", "b"])).is_empty());
    }

    #[test]
    fn diffs_print_like_kopf_tuples() {
        let d = diff(Some(&json!({"spec": {"a": 1}})), Some(&json!({"spec": {"a": 2}})));
        assert_eq!(d.to_string(), "((change, (spec, a), 1, 2))");
    }
}
