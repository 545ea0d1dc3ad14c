//! Hierarchies (Kopf's `kopf.adopt`, `kopf.label`, `kopf.harmonize_naming`,
//! `kopf.adjust_namespace`, `kopf.append_owner_reference`, `kopf.remove_owner_reference`): make
//! children belong to their parent before they are created — owned by it (so Kubernetes' garbage
//! collector deletes them with it), named after it, in its namespace, with its labels.
//!
//! Every function works on any serializable object: a `serde_json::Value`, a k8s-openapi or
//! `#[derive(CustomResource)]` type, or a `Vec`/array of them (each element is changed, as Kopf
//! walks lists). The owner is any serializable object with `apiVersion`, `kind` and
//! `metadata.name`/`uid` — the handler's own object, typically.
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use serde_json::json;
//!
//! let parent = json!({
//!     "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
//!     "metadata": {"name": "ex1", "namespace": "ns1", "uid": "6b4e", "labels": {"app": "demo"}},
//! });
//! let mut child = ConfigMap::default();
//! kopf::adopt(&mut child, &parent, &kopf::Adoption::default()).unwrap();
//! assert_eq!(child.metadata.generate_name.as_deref(), Some("ex1-"));
//! assert_eq!(child.metadata.namespace.as_deref(), Some("ns1"));
//! assert_eq!(child.metadata.labels.unwrap()["app"], "demo");
//! assert_eq!(child.metadata.owner_references.unwrap()[0].uid, "6b4e");
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Why a hierarchy helper could not change the objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HierarchyError {
    /// The owner lacks what an owner reference needs (a `uid`: is it stored yet?).
    #[error("the owner cannot be referenced: {0}")]
    Owner(String),
    /// An object is not a JSON object, or the changed object no longer fits its type.
    #[error("the object cannot be changed: {0}")]
    Object(String),
}

/// The options of [`adopt`], [`label`] and [`harmonize_naming`] (Kopf's keyword arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Adoption {
    /// Overwrite names, namespaces and labels the children already have (default: keep them).
    pub forced: bool,
    /// Use the parent's name as the child's `name` rather than as its `generateName` prefix.
    pub strict: bool,
    /// Dotted paths of embedded objects labelled too (e.g. `spec.template` of a Deployment).
    pub nested: Vec<String>,
}

impl Adoption {
    /// Overwrite what the children already have.
    #[must_use]
    pub fn forced(mut self) -> Self {
        self.forced = true;
        self
    }

    /// Name the children exactly as the parent.
    #[must_use]
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Label this embedded object too (dotted path).
    #[must_use]
    pub fn nested(mut self, path: &str) -> Self {
        self.nested.push(path.to_owned());
        self
    }
}

/// Edits each object of `children` (one object, or an array of them, at any depth) as JSON.
fn each<C>(children: &mut C, mut f: impl FnMut(&mut Map<String, Value>)) -> Result<(), HierarchyError>
where
    C: Serialize + DeserializeOwned,
{
    let mut value = serde_json::to_value(&*children).map_err(|e| HierarchyError::Object(e.to_string()))?;
    walk(&mut value, &mut f)?;
    *children = serde_json::from_value(value).map_err(|e| HierarchyError::Object(e.to_string()))?;
    Ok(())
}

fn walk(value: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) -> Result<(), HierarchyError> {
    match value {
        Value::Object(object) => {
            f(object);
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|item| walk(item, f)),
        Value::Null => Ok(()),
        other => Err(HierarchyError::Object(format!("not a Kubernetes object: {other}"))),
    }
}

fn metadata(object: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = object.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().unwrap_or_else(|| unreachable!("just made an object"))
}

fn owner_value(owner: &impl Serialize) -> Result<Value, HierarchyError> {
    serde_json::to_value(owner).map_err(|e| HierarchyError::Owner(e.to_string()))
}

/// The owner reference to `owner` (Kopf's `build_owner_reference`): its `apiVersion`, `kind`,
/// `name` and `uid`, with `controller` and `blockOwnerDeletion` as given.
///
/// # Errors
/// The owner has no `uid`, `name`, `kind` or `apiVersion`.
pub fn owner_reference(
    owner: &impl Serialize,
    controller: bool,
    block_owner_deletion: bool,
) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference, HierarchyError> {
    let owner = owner_value(owner)?;
    let field = |value: &Value, what: &str| {
        value.as_str().map(str::to_owned).ok_or_else(|| HierarchyError::Owner(format!("it has no {what}")))
    };
    Ok(k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: field(&owner["apiVersion"], "apiVersion")?,
        kind: field(&owner["kind"], "kind")?,
        name: field(&owner["metadata"]["name"], "metadata.name")?,
        uid: field(&owner["metadata"]["uid"], "metadata.uid (is it stored yet?)")?,
        controller: Some(controller),
        block_owner_deletion: Some(block_owner_deletion),
    })
}

/// Adds an owner reference to `owner` to the children, unless one with its uid is there (Kopf's
/// `append_owner_reference`), with `controller` and `blockOwnerDeletion` true.
///
/// # Errors
/// The owner cannot be referenced, or a child is not an object.
pub fn append_owner_reference<C>(children: &mut C, owner: &impl Serialize) -> Result<(), HierarchyError>
where
    C: Serialize + DeserializeOwned,
{
    let reference = owner_reference(owner, true, true)?;
    let reference = serde_json::to_value(&reference).map_err(|e| HierarchyError::Owner(e.to_string()))?;
    each(children, |object| {
        let refs = metadata(object).entry("ownerReferences").or_insert_with(|| json!([]));
        if !refs.is_array() {
            *refs = json!([]);
        }
        if let Value::Array(refs) = refs
            && !refs.iter().any(|r| r["uid"] == reference["uid"])
        {
            refs.push(reference.clone());
        }
    })
}

/// Removes the owner references to `owner` (by uid) from the children (Kopf's
/// `remove_owner_reference`).
///
/// # Errors
/// The owner has no uid, or a child is not an object.
pub fn remove_owner_reference<C>(children: &mut C, owner: &impl Serialize) -> Result<(), HierarchyError>
where
    C: Serialize + DeserializeOwned,
{
    let owner = owner_value(owner)?;
    let uid = owner["metadata"]["uid"].clone();
    if !uid.is_string() {
        return Err(HierarchyError::Owner("it has no metadata.uid".into()));
    }
    each(children, |object| {
        if let Some(Value::Array(refs)) = metadata(object).get_mut("ownerReferences") {
            refs.retain(|r| r["uid"] != uid);
        }
    })
}

/// Sets labels on the children and on their `nested` embedded objects (Kopf's `label`): only
/// those absent unless `forced`. A `None` value is written as `null`, which removes the label when
/// the object is merge-patched.
///
/// ```
/// let mut pod = serde_json::json!({"metadata": {"labels": {"app": "mine"}}});
/// kopf::label(&mut pod, [("app", Some("theirs")), ("tier", Some("web"))], &kopf::Adoption::default()).unwrap();
/// assert_eq!(pod["metadata"]["labels"], serde_json::json!({"app": "mine", "tier": "web"}));
/// ```
///
/// # Errors
/// A child is not an object.
pub fn label<C, K, V>(
    children: &mut C,
    labels: impl IntoIterator<Item = (K, Option<V>)>,
    options: &Adoption,
) -> Result<(), HierarchyError>
where
    C: Serialize + DeserializeOwned,
    K: Into<String>,
    V: Into<String>,
{
    let labels: Vec<(String, Value)> = labels
        .into_iter()
        .map(|(k, v)| (k.into(), v.map_or(Value::Null, |v| Value::String(v.into()))))
        .collect();
    let nested: Vec<Vec<&str>> = options.nested.iter().map(|p| p.split('.').collect()).collect();
    let apply = |object: &mut Map<String, Value>| {
        let existing = metadata(object).entry("labels").or_insert_with(|| json!({}));
        if !existing.is_object() {
            *existing = json!({});
        }
        if let Value::Object(existing) = existing {
            for (key, value) in &labels {
                if options.forced || !existing.contains_key(key) {
                    existing.insert(key.clone(), value.clone());
                }
            }
        }
    };
    each(children, |object| {
        apply(object);
        for path in &nested {
            let mut target = Some(&mut *object);
            for step in path {
                target = target.and_then(|o| o.get_mut(*step)).and_then(Value::as_object_mut);
            }
            if let Some(embedded) = target {
                apply(embedded);
            }
        }
    })
}

/// Names the children after `name` (Kopf's `harmonize_naming`): `generateName: "<name>-"` (the
/// server adds a suffix), or exactly `name` when `strict` — but only children with neither a
/// `name` nor a `generateName`, unless `forced`.
///
/// # Errors
/// A child is not an object.
pub fn harmonize_naming<C>(children: &mut C, name: &str, options: &Adoption) -> Result<(), HierarchyError>
where
    C: Serialize + DeserializeOwned,
{
    each(children, |object| {
        let meta = metadata(object);
        let noname = !meta.contains_key("name") && !meta.contains_key("generateName");
        if options.forced || noname {
            if options.strict {
                meta.insert("name".into(), json!(name));
                meta.remove("generateName");
            } else {
                meta.insert("generateName".into(), json!(format!("{name}-")));
                meta.remove("name");
            }
        }
    })
}

/// Puts the children into `namespace` (Kopf's `adjust_namespace`), unless they have one and it is
/// not `forced`. `None` (a cluster-scoped parent) leaves them as they are, or removes their
/// namespace when forced.
///
/// # Errors
/// A child is not an object.
pub fn adjust_namespace<C>(
    children: &mut C,
    namespace: Option<&str>,
    forced: bool,
) -> Result<(), HierarchyError>
where
    C: Serialize + DeserializeOwned,
{
    each(children, |object| {
        let meta = metadata(object);
        if forced || meta.get("namespace").is_none_or(Value::is_null) {
            match namespace {
                Some(ns) => {
                    meta.insert("namespace".into(), json!(ns));
                }
                None => {
                    meta.remove("namespace");
                }
            }
        }
    })
}

/// Makes the children belong to `owner` (Kopf's `adopt`): an owner reference to it, named after
/// it, in its namespace, with its labels (see [`Adoption`] for overwriting, strict names and
/// embedded objects).
///
/// # Errors
/// The owner cannot be referenced, or a child is not an object (or no longer fits its type).
pub fn adopt<C>(children: &mut C, owner: &impl Serialize, options: &Adoption) -> Result<(), HierarchyError>
where
    C: Serialize + DeserializeOwned,
{
    let owner = owner_value(owner)?;
    let meta = &owner["metadata"];
    append_owner_reference(children, &owner)?;
    if let Some(name) = meta["name"].as_str() {
        harmonize_naming(children, name, options)?;
    }
    adjust_namespace(children, meta["namespace"].as_str(), options.forced)?;
    let labels: Vec<(String, Option<String>)> = meta["labels"]
        .as_object()
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned))).collect())
        .unwrap_or_default();
    label(children, labels, options)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn owner() -> Value {
        json!({
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfExample",
            "metadata": {"name": "owner", "namespace": "ns1", "uid": "uid-1", "labels": {"a": "1", "b": "2"}},
        })
    }

    #[test]
    fn an_owner_reference_is_appended_once_and_removed_by_uid() {
        let mut children = json!([{"metadata": {"ownerReferences": [{"uid": "other"}]}}, {}]);
        append_owner_reference(&mut children, &owner()).unwrap();
        append_owner_reference(&mut children, &owner()).unwrap();
        let expected = json!({"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "name": "owner",
            "uid": "uid-1", "controller": true, "blockOwnerDeletion": true});
        assert_eq!(children[0]["metadata"]["ownerReferences"], json!([{"uid": "other"}, expected]));
        assert_eq!(children[1]["metadata"]["ownerReferences"], json!([expected]));
        remove_owner_reference(&mut children, &owner()).unwrap();
        assert_eq!(children[0]["metadata"]["ownerReferences"], json!([{"uid": "other"}]));
        assert_eq!(children[1]["metadata"]["ownerReferences"], json!([]));
    }

    #[test]
    fn an_owner_without_a_uid_is_an_error_not_a_panic() {
        let mut child = json!({});
        let err = append_owner_reference(&mut child, &json!({"metadata": {"name": "x"}})).unwrap_err();
        assert!(matches!(err, HierarchyError::Owner(_)), "{err}");
        assert!(matches!(
            adopt(&mut json!("text"), &owner(), &Adoption::default()),
            Err(HierarchyError::Object(_))
        ));
    }

    #[test]
    fn naming_prefixes_unnamed_children_or_names_them_strictly() {
        let mut children = json!([{}, {"metadata": {"name": "own"}}, {"metadata": {"generateName": "x-"}}]);
        harmonize_naming(&mut children, "parent", &Adoption::default()).unwrap();
        assert_eq!(children[0]["metadata"], json!({"generateName": "parent-"}));
        assert_eq!(children[1]["metadata"], json!({"name": "own"}));
        assert_eq!(children[2]["metadata"], json!({"generateName": "x-"}));
        harmonize_naming(&mut children, "parent", &Adoption::default().forced().strict()).unwrap();
        for child in children.as_array().unwrap() {
            assert_eq!(child["metadata"], json!({"name": "parent"}));
        }
    }

    #[test]
    fn namespaces_are_kept_unless_forced() {
        let mut children = json!([{}, {"metadata": {"namespace": "mine"}}]);
        adjust_namespace(&mut children, Some("ns1"), false).unwrap();
        assert_eq!(
            (children[0]["metadata"]["namespace"].clone(), children[1]["metadata"]["namespace"].clone()),
            (json!("ns1"), json!("mine"))
        );
        adjust_namespace(&mut children, Some("ns2"), true).unwrap();
        assert_eq!(children[1]["metadata"]["namespace"], "ns2");
    }

    #[test]
    fn labels_go_to_nested_objects_too_and_none_writes_null() {
        let mut deployment = Deployment::default();
        let options = Adoption::default().nested("spec.template").nested("spec.missing");
        label(&mut deployment, [("app", Some("web"))], &options).unwrap();
        assert_eq!(deployment.metadata.labels.clone().unwrap()["app"], "web");
        let removal = label(&mut deployment, [("app", None::<&str>)], &Adoption::default().forced());
        assert!(matches!(removal, Err(HierarchyError::Object(_))), "a typed object holds no null label");
        let template = deployment.spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(template["app"], "web");
        let mut raw = json!({});
        label(&mut raw, [("gone", None::<&str>)], &Adoption::default()).unwrap();
        assert_eq!(raw, json!({"metadata": {"labels": {"gone": null}}}));
    }

    #[test]
    fn adoption_of_typed_children_keeps_what_they_have_unless_forced() {
        let mut cms = vec![ConfigMap::default(), ConfigMap::default()];
        cms[1].metadata.name = Some("named".into());
        cms[1].metadata.labels = Some([("a".to_owned(), "mine".to_owned())].into());
        adopt(&mut cms, &owner(), &Adoption::default()).unwrap();
        assert_eq!(cms[0].metadata.generate_name.as_deref(), Some("owner-"));
        assert_eq!(cms[1].metadata.name.as_deref(), Some("named"));
        assert_eq!(cms[1].metadata.labels.as_ref().unwrap()["a"], "mine");
        assert_eq!(cms[1].metadata.labels.as_ref().unwrap()["b"], "2");
        for cm in &cms {
            assert_eq!(cm.metadata.namespace.as_deref(), Some("ns1"));
            assert_eq!(cm.metadata.owner_references.as_ref().unwrap().len(), 1);
        }
        adopt(&mut cms, &owner(), &Adoption::default().forced().strict()).unwrap();
        assert_eq!(cms[1].metadata.name.as_deref(), Some("owner"));
        assert_eq!(cms[1].metadata.labels.as_ref().unwrap()["a"], "1");
        assert_eq!(cms[1].metadata.owner_references.as_ref().unwrap().len(), 1, "still once");
    }
}
