//! CustomResourceDefinitions as real resources: a CRD created through the API is validated, gets
//! its `NamesAccepted` and `Established` conditions, and its served versions appear in the registry
//! (and so in discovery) at once; updates re-register it; when it is deleted its objects are deleted
//! first, then the resource disappears and its watches end.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cluster::State;
use crate::error::StatusCause;
use crate::resources::{Origin, ResourceInfo, ScaleSpec, StorageKey};
use crate::store::history::EventType;

fn cause(reason: &str, field: &str, message: impl Into<String>) -> StatusCause {
    StatusCause { reason: reason.to_owned(), message: message.into(), field: field.to_owned() }
}

/// Validates a CRD the way the apiextensions server does for the rules clients hit in practice.
pub(crate) fn validate(crd: &Value) -> Result<(), Vec<StatusCause>> {
    let mut causes = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(cause("FieldValueRequired", "spec.group", "Required value"));
    } else if !crate::validation::dns1123_subdomain(group).is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: \"{group}\": must be a valid DNS subdomain"),
        ));
    } else if !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: \"{group}\": should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(cause("FieldValueRequired", "spec.names.plural", "Required value"));
    } else if !crate::validation::dns1123_label(plural).is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.names.plural",
            format!("Invalid value: \"{plural}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"),
        ));
    }
    if kind.is_empty() {
        causes.push(cause("FieldValueRequired", "spec.names.kind", "Required value"));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        Some(other) => causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""),
        )),
        None => causes.push(cause("FieldValueRequired", "spec.scope", "Required value")),
    }
    let versions = spec["versions"].as_array().map(Vec::as_slice).unwrap_or_default();
    if versions.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: null: must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions.iter().filter(|v| v["storage"].as_bool() == Some(true)).count();
        if storage != 1 {
            causes.push(cause(
                "FieldValueInvalid",
                "spec.versions",
                format!(
                    "Invalid value: {}: must have exactly one version marked as storage version",
                    versions.len()
                ),
            ));
        }
        for (i, v) in versions.iter().enumerate() {
            let vname = v["name"].as_str().unwrap_or_default();
            if vname.is_empty() || !crate::validation::dns1035_label(vname).is_empty() {
                causes.push(cause(
                    "FieldValueInvalid",
                    &format!("spec.versions[{i}].name"),
                    format!("Invalid value: \"{vname}\": a DNS-1035 label"),
                ));
            }
        }
        if !versions.iter().any(|v| v["served"].as_bool() == Some(true)) {
            causes.push(cause(
                "FieldValueInvalid",
                "spec.versions",
                "Invalid value: must have at least one served version",
            ));
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(causes) }
}

/// The resources a CRD serves: one per served version, all sharing one storage key.
pub(crate) fn resources_of(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let kind = text(&names["kind"]);
    let plural = text(&names["plural"]);
    let singular = names["singular"].as_str().map(str::to_owned).unwrap_or_else(|| kind.to_lowercase());
    let list_kind = names["listKind"].as_str().map(str::to_owned).unwrap_or_else(|| format!("{kind}List"));
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .map(|v| text(&v["name"]))
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool() == Some(true))
        .map(|v| {
            let sub = &v["subresources"];
            let scale = sub["scale"].as_object().map(|s| ScaleSpec {
                spec_replicas_path: s
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas")
                    .to_owned(),
                status_replicas_path: s
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .to_owned(),
                label_selector_path: s.get("labelSelectorPath").and_then(Value::as_str).map(str::to_owned),
            });
            let selectable_fields = v["selectableFields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["jsonPath"].as_str())
                        .map(|p| p.trim_start_matches('.').to_owned())
                        .collect()
                })
                .unwrap_or_default();
            ResourceInfo {
                group: text(&spec["group"]),
                version: text(&v["name"]),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status: sub["status"].is_object(),
                scale,
                listable: true,
                tracks_generation: true,
                selectable_fields,
                printer_columns: v["additionalPrinterColumns"].as_array().cloned().unwrap_or_default(),
                origin: Origin::Custom {
                    crd: text(&crd["metadata"]["name"]),
                    storage_version: storage_version.clone(),
                    schema: v["schema"].get("openAPIV3Schema").cloned().map(Arc::new),
                },
                storage: Default::default(),
            }
            .finish()
        })
        .collect()
}

impl State {
    /// The apiextensions controller's part of a create: accept the names, mark the CRD established.
    pub(crate) fn establish_crd(&mut self, name: &str) {
        let key =
            StorageKey { group: "apiextensions.k8s.io".into(), plural: "customresourcedefinitions".into() };
        let Some(created) = self.current(&key, &(String::new(), name.to_owned())) else {
            return;
        };
        let mut crd = created.value();
        let names = crd["spec"]["names"].clone();
        let mut accepted = names.clone();
        if accepted["singular"].is_null() {
            accepted["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
        }
        if accepted["listKind"].is_null() {
            accepted["listKind"] = json!(format!("{}List", names["kind"].as_str().unwrap_or_default()));
        }
        let now = self.clock.now_rfc3339();
        let storage: Vec<Value> = crd["spec"]["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["storage"].as_bool() == Some(true))
            .map(|v| v["name"].clone())
            .collect();
        crd["status"] = json!({
            "acceptedNames": accepted,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ],
            "storedVersions": storage,
        });
        if let Some(info) = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions") {
            let rv = {
                let stored = self.put(&info, crd.clone(), EventType::Modified);
                stored.resource_version()
            };
            self.journal_op(
                "apiextensions-controller",
                crate::request::Verb::Update,
                "customresourcedefinitions.apiextensions.k8s.io".into(),
                Some("status".into()),
                None,
                Some(created.name().to_owned()),
                200,
                Some(rv),
                None,
            );
        }
        self.register_crd(&crd);
    }

    /// (Re-)serves a CRD's versions.
    pub(crate) fn register_crd(&mut self, crd: &Value) {
        let resources = resources_of(crd);
        let Some(first) = resources.first() else { return };
        let key = (**first.storage_key()).clone();
        self.registry.remove_storage(&key);
        for info in resources {
            self.registry.insert(info);
        }
    }

    /// Stops serving a removed CRD's resource; its watches see the resource gone and end.
    pub(crate) fn unregister_crd(&mut self, crd: &Value) {
        let key = StorageKey {
            group: crd["spec"]["group"].as_str().unwrap_or_default().to_owned(),
            plural: crd["spec"]["names"]["plural"].as_str().unwrap_or_default().to_owned(),
        };
        self.registry.remove_storage(&key);
        self.stores.remove(&key);
        // Wake the watches so they notice.
        self.notify.wake();
    }
}
