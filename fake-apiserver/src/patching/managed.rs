//! `metadata.managedFields`: who owns which fields, kept on every write as the real server's field
//! manager keeps it (k8s.io/apiserver `managedfields` over structured-merge-diff).
//!
//! - One entry per manager identity: `(manager, Update, apiVersion, subresource)` for creates, updates
//!   and non-apply patches, `(manager, Apply, subresource)` for server-side apply.
//! - An update owns what it added or changed ([`record_update`]) and takes those fields from every
//!   other manager; fields it removed leave every set.
//! - An apply ([`apply`]) owns exactly its configuration; it merges it into the live object, removes
//!   what it applied last time and no one owns any more, and fails with conflicts when it changes a
//!   field another manager owns, unless forced, which moves the field to the applier. Equal values
//!   are shared, not conflicts.
//! - Server-set metadata (`name`, `uid`, `resourceVersion`, …) is never owned, and fields the
//!   endpoint resets (`status` on the main resource, all but `status` on `/status`) are not either.

use serde_json::{Map, Value, json};

use super::fieldset::{FieldSet, difference_in_place, render_path, union_in_place};
use super::schema::Schema;
use super::typed::{self, Comparison, ShapeError};

/// The manager that owns the fields of an object that had no managed fields when first applied.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The two operations of a managed-fields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who writes: the manager, the version it writes through and the subresource (empty for none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Writer<'a> {
    pub(crate) manager: &'a str,
    pub(crate) api_version: &'a str,
    pub(crate) subresource: &'a str,
}

/// Which fields the endpoint resets, so no manager owns them through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reset {
    /// Nothing is reset.
    Nothing,
    /// The main resource of a kind with a status subresource: `status` is reset.
    Status,
    /// The `status` subresource: everything but `status` is reset.
    AllButStatus,
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) subresource: String,
    pub(crate) fields: FieldSet,
}

impl Entry {
    fn is(&self, writer: &Writer<'_>, operation: Operation) -> bool {
        self.operation == operation
            && self.manager == writer.manager
            && self.subresource == writer.subresource
            && (operation == Operation::Apply || self.api_version == writer.api_version)
    }

    /// How conflicts name this manager: `"m"`, `"m" with subresource "status"`, `"m" using v1`.
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// The managed fields of one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Managed {
    pub(crate) entries: Vec<Entry>,
}

impl Managed {
    /// Decodes `metadata.managedFields`; `None` when it is not a valid list of entries.
    pub(crate) fn decode(value: Option<&Value>) -> Option<Managed> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Some(Managed::default());
        };
        let mut entries = Vec::new();
        for entry in value.as_array()? {
            let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
            let operation = match entry.get("operation").and_then(Value::as_str) {
                Some("Apply") => Operation::Apply,
                Some("Update") => Operation::Update,
                _ => return None,
            };
            if entry.get("fieldsType").and_then(Value::as_str).is_some_and(|t| t != "FieldsV1") {
                return None;
            }
            let fields = match entry.get("fieldsV1") {
                Some(v) => FieldSet::from_fields_v1(v)?,
                None => FieldSet::default(),
            };
            entries.push(Entry {
                manager: text("manager"),
                operation,
                api_version: text("apiVersion"),
                time: entry.get("time").and_then(Value::as_str).map(str::to_owned),
                subresource: text("subresource"),
                fields,
            });
        }
        Some(Managed { entries })
    }

    /// Whether a request's `managedFields` asks to reset them: an empty list, or one empty entry.
    pub(crate) fn is_reset(value: Option<&Value>) -> bool {
        match value.and_then(Value::as_array).map(Vec::as_slice) {
            Some([]) => true,
            Some([only]) => only.as_object().is_some_and(Map::is_empty),
            _ => false,
        }
    }

    /// The `managedFields` list, sorted as the real server sorts it (Apply before Update, then by
    /// time, manager, version, subresource); `None` when no one owns anything.
    pub(crate) fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            (a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
        });
        Some(Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    let mut entry = json!({
                        "manager": e.manager,
                        "operation": e.operation.as_str(),
                        "apiVersion": e.api_version,
                        "fieldsType": "FieldsV1",
                        "fieldsV1": e.fields.to_fields_v1(),
                    });
                    if let Some(time) = &e.time {
                        entry["time"] = json!(time);
                    }
                    if !e.subresource.is_empty() {
                        entry["subresource"] = json!(e.subresource);
                    }
                    entry
                })
                .collect(),
        ))
    }

    fn position(&self, writer: &Writer<'_>, operation: Operation) -> Option<usize> {
        self.entries.iter().position(|e| e.is(writer, operation))
    }
}

/// Drops what no manager may own: server-set metadata, and what the endpoint resets.
fn restrict(set: &mut FieldSet, reset: Reset) {
    set.remove_member(&["f:apiVersion"]);
    set.remove_member(&["f:kind"]);
    set.remove_member(&["f:metadata"]);
    for field in SERVER_METADATA {
        set.remove_member(&["f:metadata", field]);
    }
    filter(set, reset);
}

fn filter(set: &mut FieldSet, reset: Reset) {
    match reset {
        Reset::Nothing => {}
        Reset::Status => set.remove_subtree("f:status"),
        Reset::AllButStatus => set.keep_subtree("f:status"),
    }
}

fn filter_comparison(comparison: &mut Comparison, reset: Reset) {
    filter(&mut comparison.added, reset);
    filter(&mut comparison.modified, reset);
    filter(&mut comparison.removed, reset);
}

/// The server-set metadata no manager owns, under `f:metadata`.
const SERVER_METADATA: [&str; 9] = [
    "f:name",
    "f:namespace",
    "f:creationTimestamp",
    "f:selfLink",
    "f:uid",
    "f:clusterName",
    "f:generation",
    "f:managedFields",
    "f:resourceVersion",
];

/// [`restrict`] on a `FieldsV1` encoding.
fn restrict_encoded(fields: &mut Map<String, Value>, reset: Reset) {
    fields.remove("f:apiVersion");
    fields.remove("f:kind");
    if let Some(Value::Object(meta)) = fields.get_mut("f:metadata") {
        meta.remove(".");
        for field in SERVER_METADATA {
            meta.remove(field);
        }
        if meta.is_empty() {
            fields.remove("f:metadata");
        }
    }
    match reset {
        Reset::Nothing => {}
        Reset::Status => {
            fields.remove("f:status");
        }
        Reset::AllButStatus => fields.retain(|k, _| k == "f:status"),
    }
}

/// One `managedFields` entry as JSON.
fn entry_json(writer: &Writer<'_>, operation: Operation, time: &str, fields: Value) -> Value {
    let mut entry = json!({
        "manager": writer.manager,
        "operation": operation.as_str(),
        "apiVersion": writer.api_version,
        "time": time,
        "fieldsType": "FieldsV1",
    });
    entry["fieldsV1"] = fields;
    if !writer.subresource.is_empty() {
        entry["subresource"] = json!(writer.subresource);
    }
    entry
}

/// The `managedFields` of a created object, from the `FieldsV1` of what its creator set
/// (`typed::created_fields_v1`); `None` when the creator owns nothing.
pub(crate) fn created(
    mut fields: Map<String, Value>,
    writer: &Writer<'_>,
    reset: Reset,
    now: &str,
) -> Option<Value> {
    restrict_encoded(&mut fields, reset);
    if fields.is_empty() {
        return None;
    }
    Some(Value::Array(vec![entry_json(writer, Operation::Update, now, Value::Object(fields))]))
}

/// Records an update-like write (PUT, non-apply PATCH) on the stored `managedFields` list in place:
/// the writer owns what it added or changed, which every other manager loses, and removed fields
/// leave every set. The writer's entry gets `now` when it took any field. Returns whether anything
/// changed.
pub(crate) fn record_update(
    entries: &mut Vec<Value>,
    mut comparison: Comparison,
    writer: &Writer<'_>,
    reset: Reset,
    now: impl FnOnce() -> String,
) -> bool {
    filter_comparison(&mut comparison, reset);
    let changed = comparison.changed();
    if changed.is_empty() && comparison.removed.is_empty() {
        return false;
    }
    for entry in entries.iter_mut() {
        if let Some(Value::Object(fields)) = entry.get_mut("fieldsV1") {
            for set in [&changed, &comparison.removed] {
                if !set.is_empty() {
                    difference_in_place(fields, set, true);
                }
            }
        }
    }
    let mut taken = changed;
    restrict(&mut taken, reset);
    if !taken.is_empty() {
        let now = now();
        let own = entries.iter_mut().find(|e| {
            let text = |key: &str| e.get(key).and_then(Value::as_str).unwrap_or_default();
            text("operation") == "Update"
                && text("manager") == writer.manager
                && text("apiVersion") == writer.api_version
                && text("subresource") == writer.subresource
        });
        match own {
            Some(entry) => {
                if let Some(Value::Object(fields)) = entry.get_mut("fieldsV1") {
                    union_in_place(fields, &taken, true);
                } else {
                    entry["fieldsV1"] = taken.to_fields_v1();
                }
                entry["time"] = json!(now);
            }
            None => entries.push(entry_json(writer, Operation::Update, &now, taken.to_fields_v1())),
        }
    }
    entries.retain(|e| e.get("fieldsV1").and_then(Value::as_object).is_some_and(|f| !f.is_empty()));
    let key = |e: &Value| {
        let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        (text("operation"), text("time"), text("manager"), text("apiVersion"), text("subresource"))
    };
    if entries.len() > 1 {
        entries.sort_by_cached_key(key);
    }
    true
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApplyError {
    /// The configuration or the live object does not fit the schema.
    Shape(ShapeError),
    /// Fields owned by other managers would change: `(manager description, path)`, sorted.
    Conflicts(Vec<(String, String)>),
}

impl From<ShapeError> for ApplyError {
    fn from(e: ShapeError) -> Self {
        ApplyError::Shape(e)
    }
}

/// Server-side apply of `config` onto `live` (`None` when the object is created by the apply):
/// returns the merged object and updates `managed`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    live: Option<&Value>,
    config: &Value,
    managed: &mut Managed,
    writer: &Writer<'_>,
    force: bool,
    schema: Schema<'_>,
    reset: Reset,
    now: &str,
) -> Result<Value, ApplyError> {
    let mut applied = typed::field_set(config, schema)?;
    restrict(&mut applied, reset);
    let empty = Value::Object(Map::new());
    let live_value = live.unwrap_or(&empty);
    let mut merged = typed::merge(Some(live_value), config, schema)?;

    if let Some(live) = live
        && managed.entries.is_empty()
    {
        let mut existing = typed::field_set(live, schema)?;
        restrict(&mut existing, reset);
        if !existing.is_empty() {
            managed.entries.push(Entry {
                manager: BEFORE_FIRST_APPLY.to_owned(),
                operation: Operation::Update,
                api_version: writer.api_version.to_owned(),
                time: None,
                subresource: String::new(),
                fields: existing,
            });
        }
    }

    let (index, last) = match managed.position(writer, Operation::Apply) {
        Some(i) => {
            let last = std::mem::replace(&mut managed.entries[i].fields, applied);
            (i, Some(last))
        }
        None => {
            managed.entries.push(Entry {
                manager: writer.manager.to_owned(),
                operation: Operation::Apply,
                api_version: writer.api_version.to_owned(),
                time: None,
                subresource: writer.subresource.to_owned(),
                fields: applied,
            });
            (managed.entries.len() - 1, None)
        }
    };
    let entry_changed = last.as_ref() != Some(&managed.entries[index].fields);
    if let Some(last) = last.filter(|l| !l.is_empty()) {
        let mut owned = FieldSet::default();
        for entry in &managed.entries {
            owned.union(&entry.fields);
        }
        typed::prune(&mut merged, &last, &owned, schema)?;
    }

    let mut comparison = typed::compare(Some(live_value), Some(&merged), schema)?;
    filter_comparison(&mut comparison, reset);
    let changed = comparison.changed();
    let mut conflicts: Vec<(&Entry, Vec<String>)> = Vec::new();
    for (i, entry) in managed.entries.iter().enumerate() {
        if i == index {
            continue;
        }
        let clash = entry.fields.intersection(&changed);
        if !clash.is_empty() {
            conflicts.push((entry, clash.members().iter().map(|p| render_path(p)).collect()));
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| {
            (&a.0.manager, a.0.operation, &a.0.api_version, &a.0.subresource).cmp(&(
                &b.0.manager,
                b.0.operation,
                &b.0.api_version,
                &b.0.subresource,
            ))
        });
        return Err(ApplyError::Conflicts(
            conflicts
                .into_iter()
                .flat_map(|(entry, paths)| {
                    let who = entry.describe();
                    paths.into_iter().map(move |p| (who.clone(), p))
                })
                .collect(),
        ));
    }
    for (i, entry) in managed.entries.iter_mut().enumerate() {
        if i != index {
            entry.fields.difference(&changed);
            entry.fields.difference(&comparison.removed);
        }
    }
    let entry = &mut managed.entries[index];
    entry.api_version = writer.api_version.to_owned();
    if entry_changed || merged != *live_value || entry.time.is_none() {
        entry.time = Some(now.to_owned());
    }
    managed.entries.retain(|e| !e.fields.is_empty());
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm() -> Schema<'static> {
        Schema::built_in("io.k8s.api.core.v1.ConfigMap")
    }

    fn writer(manager: &str) -> Writer<'_> {
        Writer { manager, api_version: "v1", subresource: "" }
    }

    #[test]
    fn an_update_takes_changed_fields_from_other_managers() {
        let old = json!({});
        let new = json!({"data": {"a": "1", "b": "1"}});
        let fields = typed::created_fields_v1(&new, &old, cm()).unwrap();
        let Some(Value::Array(mut entries)) = created(fields, &writer("one"), Reset::Nothing, "t1") else {
            panic!("the creator owns fields");
        };
        let newer = json!({"data": {"a": "2", "b": "1"}});
        let c = typed::compare(Some(&new), Some(&newer), cm()).unwrap();
        record_update(&mut entries, c, &writer("two"), Reset::Nothing, || "t2".to_owned());
        assert_eq!(entries[0]["fieldsV1"], json!({"f:data": {".": {}, "f:b": {}}}));
        assert_eq!(entries[1]["fieldsV1"], json!({"f:data": {"f:a": {}}}));
        assert_eq!(entries[1]["time"], "t2");
    }

    #[test]
    fn an_apply_conflicts_with_another_managers_different_value_but_shares_an_equal_one() {
        let mut managed = Managed::default();
        let live = apply(
            None,
            &json!({"data": {"a": "1", "b": "1"}}),
            &mut managed,
            &writer("one"),
            false,
            cm(),
            Reset::Nothing,
            "t",
        )
        .unwrap();
        let err = apply(
            Some(&live),
            &json!({"data": {"a": "2"}}),
            &mut managed.clone(),
            &writer("two"),
            false,
            cm(),
            Reset::Nothing,
            "t",
        )
        .unwrap_err();
        assert_eq!(err, ApplyError::Conflicts(vec![("\"one\"".into(), ".data.a".into())]));
        let shared = apply(
            Some(&live),
            &json!({"data": {"a": "1"}}),
            &mut managed,
            &writer("two"),
            false,
            cm(),
            Reset::Nothing,
            "t",
        )
        .unwrap();
        assert_eq!(shared, live);
        assert_eq!(managed.entries.len(), 2);
    }

    #[test]
    fn applying_to_an_object_without_managed_fields_gives_its_fields_to_before_first_apply() {
        let mut managed = Managed::default();
        let live = json!({"data": {"a": "1"}});
        let err = apply(
            Some(&live),
            &json!({"data": {"a": "2"}}),
            &mut managed,
            &writer("ap"),
            false,
            cm(),
            Reset::Nothing,
            "t",
        )
        .unwrap_err();
        assert_eq!(
            err,
            ApplyError::Conflicts(vec![("\"before-first-apply\" using v1".into(), ".data.a".into())])
        );
    }

    #[test]
    fn encoding_sorts_apply_entries_first_and_round_trips() {
        let mut managed = Managed::default();
        apply(
            None,
            &json!({"data": {"b": "2"}}),
            &mut managed,
            &writer("ap"),
            false,
            cm(),
            Reset::Nothing,
            "t2",
        )
        .unwrap();
        managed.entries.push(Entry {
            manager: "up".into(),
            operation: Operation::Update,
            api_version: "v1".into(),
            time: Some("t1".into()),
            subresource: String::new(),
            fields: FieldSet::member(),
        });
        let encoded = managed.encode().unwrap();
        assert_eq!(encoded[0]["operation"], "Apply");
        assert_eq!(encoded[1]["operation"], "Update");
        assert_eq!(Managed::decode(Some(&encoded)).unwrap().entries.len(), 2);
    }
}
