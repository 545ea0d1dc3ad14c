//! Writes: create, update (PUT) and patch, on the main resource and on the `status`, `scale` and
//! `finalize` subresources, with the real server's admission rules — kind and version checks,
//! server-set metadata, optimistic concurrency, generation, the status split, finalizer rules, and
//! no-op writes that store nothing. Every write keeps `metadata.managedFields` and, for custom
//! resources, prunes, defaults and validates against the CRD's schema (`super::apply`); `dryRun=All`
//! runs all of it and stores nothing.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::apply::Ownership;
use super::read::{object_key, scale_of};
use crate::cluster::State;
use crate::crds;
use crate::error::{ApiError, Result, StatusCause};
use crate::patching;
use crate::request::{PatchType, Request, Response, Verb};
use crate::resources::ResourceInfo;
use crate::store::history::EventType;
use crate::store::objects::StoredObject;
use crate::validation::{self, NameRule};

use super::apply::validate_custom;

impl State {
    /// Creates an object on behalf of an internal actor, journaling it like a client request.
    pub(crate) fn create_as(&mut self, actor: &str, mut req: Request) -> Result<Arc<StoredObject>> {
        let info =
            self.registry.get(&req.group, &req.version, &req.plural).ok_or(ApiError::NoSuchResource)?;
        if req.actor.is_empty() {
            actor.clone_into(&mut req.actor);
        }
        let result = self.create(&info, &mut req);
        let (code, rv) = match &result {
            Ok(o) => (201, Some(o.resource_version())),
            Err(e) => (e.code(), None),
        };
        let name = result.as_ref().ok().map(|o| o.name().to_owned());
        self.journal_op(
            actor,
            Verb::Create,
            resource_name(&info),
            None,
            req.namespace.clone(),
            name,
            code,
            rv,
            None,
        );
        result
    }

    pub(crate) fn create(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &mut Request,
    ) -> Result<Arc<StoredObject>> {
        if req.name.is_some() {
            return Err(crate::cluster::method_not_allowed(Verb::Create, info));
        }
        self.create_owned(info, req, None)
    }

    /// Creates the request's object; `applied` carries the managed fields of a create-on-apply,
    /// otherwise the request's manager owns what it set.
    pub(super) fn create_owned(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &mut Request,
        applied: Option<crate::patching::managed::Managed>,
    ) -> Result<Arc<StoredObject>> {
        let mut object = body_object(req)?;
        check_type(info, &mut object)?;
        self.admit_custom(info, req, &mut object, applied.is_none())?;
        let meta = metadata_mut(&mut object)?;
        if info.namespaced {
            let ns = req.namespace.clone().unwrap_or_default();
            match meta.get("namespace").and_then(Value::as_str) {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request"
                            .to_owned(),
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), Value::String(ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        if meta.get("resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::Internal(
                "resourceVersion should not be set on objects to be created".to_owned(),
            ));
        }
        let name = match meta.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(name) => name.to_owned(),
            None => match meta.get("generateName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let prefix = prefix.to_owned();
                    let name = format!("{prefix}{}", self.name_suffix());
                    metadata_mut(&mut object)?.insert("name".into(), Value::String(name.clone()));
                    name
                }
                None => String::new(), // validation reports it
            },
        };
        self.validate_meta(info, &object, &name)?;
        if info.namespaced {
            self.admit_namespace(info, req.namespace.as_deref().unwrap_or_default())?;
        }
        // The field manager runs before the strategy sets status and server-side metadata.
        let now = self.clock.now_rfc3339();
        let managed = match applied {
            Some(managed) => managed.encode(),
            None => self.created_ownership(info, req, &object, &now),
        };
        let uid = self.new_uid();
        let meta = metadata_mut(&mut object)?;
        for field in ["deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"] {
            meta.remove(field);
        }
        meta.insert("uid".into(), Value::String(uid));
        meta.insert("creationTimestamp".into(), Value::String(now));
        if info.tracks_generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        prepare_status_on_create(info, &mut object);
        normalize_metadata(&mut object);
        if let Some(fields) = managed {
            metadata_mut(&mut object)?.insert("managedFields".into(), fields);
        }
        validate_custom(info, &object, &name)?;
        if is_crd(info) {
            crds::validate(&object)
                .map_err(|causes| ApiError::invalid(&info.kind, &info.group, &name, causes))?;
        }
        self.commit_created(info, req, object)
    }

    /// Stores a created object that passed admission (the last step of a create).
    pub(super) fn finish_created(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &Request,
        object: Value,
    ) -> Result<Arc<StoredObject>> {
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let key = (req.namespace.clone().unwrap_or_default(), name.clone());
        if self.current(info.storage_key(), &key).is_some() {
            return Err(ApiError::AlreadyExists { resource: info.group_resource(), name });
        }
        if req.params.dry_run {
            return Ok(Arc::new(StoredObject::new(&object, &info.selectable_fields)));
        }
        let stored = self.put(info, object, EventType::Added);
        if is_crd(info) {
            // Served at once, like the real server's synchronous registration; the conditions
            // follow as the apiextensions controller's own write.
            self.register_crd(&stored.value());
            self.tasks.push_back(crate::cluster::Task::EstablishCrd { name: stored.name().to_owned() });
        }
        Ok(stored)
    }

    /// Updates and patches, on the main resource and its subresources.
    pub(crate) fn modify(&mut self, info: &Arc<ResourceInfo>, req: &mut Request) -> Result<Response> {
        let key = object_key(req);
        let sub_owned = req.subresource.clone();
        let sub = sub_owned.as_deref();
        let current = self.current(info.storage_key(), &key);
        let Some(current) = current else {
            if req.verb == Verb::Patch && req.patch_type == Some(PatchType::Apply) && sub.is_none() {
                return self.apply_create(info, req).map(Response::Object);
            }
            return Err(ApiError::not_found(&info.group_resource(), &key.1));
        };
        // Most of a write never looks at the managed fields: they are set apart and put back by
        // `write_existing`, so patches neither copy nor compare them.
        let mut old = current.value();
        let stored_managed =
            old.get_mut("metadata").and_then(Value::as_object_mut).and_then(|m| m.remove("managedFields"));
        if sub == Some("scale") {
            return self.modify_scale(info, req, &current, &old, stored_managed);
        }
        let mut new = match req.verb {
            Verb::Patch if req.patch_type == Some(PatchType::Apply) => {
                return self.apply_existing(info, req, &current, &old, stored_managed);
            }
            Verb::Update => {
                let mut new = body_object(req)?;
                check_type(info, &mut new)?;
                let body_name = new["metadata"]["name"].as_str().unwrap_or_default();
                if body_name != key.1 {
                    return Err(ApiError::BadRequest(format!(
                        "the name of the object ({body_name}) does not match the name on the URL ({})",
                        key.1
                    )));
                }
                if info.namespaced {
                    match new["metadata"]["namespace"].as_str() {
                        Some(ns) if !ns.is_empty() && ns != key.0 => {
                            return Err(ApiError::BadRequest(
                                "the namespace of the provided object does not match the namespace sent on the request"
                                    .to_owned(),
                            ));
                        }
                        _ => {}
                    }
                }
                new
            }
            _ => self.patched(info, req, &old)?,
        };
        let stored = if sub == Some("finalize") {
            self.write_finalize(info, &current, &old, &new, req, stored_managed)?
        } else {
            self.admit_custom(info, req, &mut new, true)?;
            let ownership = Ownership::Update(sub.unwrap_or_default());
            self.write_existing(info, &current, &old, new, sub, req, ownership, stored_managed)?
        };
        Ok(Response::Object(stored))
    }

    /// Applies a patch of any flavour to the current object.
    fn patched(&self, info: &ResourceInfo, req: &Request, old: &Value) -> Result<Value> {
        let patch = req
            .body
            .as_ref()
            .ok_or_else(|| ApiError::BadRequest("the body of the request was empty".into()))?;
        let patch_type = req.patch_type.ok_or_else(|| unsupported_patch(info))?;
        patching::apply(patch_type, info, old, patch)
    }

    /// The shared path of every write to an existing object. `old` is the stored object without its
    /// managed fields, which come apart as `stored_managed`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_existing(
        &mut self,
        info: &Arc<ResourceInfo>,
        current: &Arc<StoredObject>,
        old: &Value,
        mut new: Value,
        sub: Option<&str>,
        req: &Request,
        ownership: Ownership<'_>,
        stored_managed: Option<Value>,
    ) -> Result<Arc<StoredObject>> {
        if !new.is_object() {
            return Err(ApiError::BadRequest("the object provided is not a JSON object".to_owned()));
        }
        check_type(info, &mut new)?;
        let requested_managed =
            new.get_mut("metadata").and_then(Value::as_object_mut).and_then(|m| m.remove("managedFields"));
        let name = current.name().to_owned();
        match new["metadata"]["resourceVersion"].as_str().filter(|rv| !rv.is_empty()) {
            Some(rv) if rv != current.resource_version().to_string() => {
                return Err(ApiError::stale(&info.group_resource(), &name));
            }
            Some(_) => {}
            None if req.verb == Verb::Update && info.is_custom() => {
                return Err(ApiError::invalid(
                    &info.kind,
                    &info.group,
                    &name,
                    vec![cause(
                        "FieldValueInvalid",
                        "metadata.resourceVersion",
                        "Invalid value: 0x0: must be specified for an update",
                    )],
                ));
            }
            None => {}
        }
        if new["metadata"]["name"].as_str().is_some_and(|n| n != name) {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                new["metadata"]["name"].as_str().unwrap_or_default()
            )));
        }
        let mut result = keep_server_fields(info, old, new, sub)?;
        result["metadata"]["resourceVersion"] = Value::String(current.resource_version().to_string());
        normalize_metadata(&mut result);
        if sub.is_none() {
            // Stored metadata was valid when written: validation only reruns when a validated field
            // changed (it is a pure function of these fields).
            const VALIDATED: [&str; 8] = [
                "generateName",
                "name",
                "namespace",
                "generation",
                "labels",
                "annotations",
                "ownerReferences",
                "finalizers",
            ];
            if VALIDATED.iter().any(|f| old["metadata"].get(*f) != result["metadata"].get(*f)) {
                self.validate_meta(info, &result, &name)?;
            }
            if current.is_deleting() {
                let added: Vec<&str> = result["metadata"]["finalizers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter(|f| !current.finalizers().iter().any(|c| c == f))
                    .collect();
                if !added.is_empty() {
                    let list = added.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ");
                    return Err(ApiError::invalid(
                        &info.kind,
                        &info.group,
                        &name,
                        vec![cause(
                            "FieldValueForbidden",
                            "metadata.finalizers",
                            &format!(
                                "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
                            ),
                        )],
                    ));
                }
            }
            if info.tracks_generation && spec_changed(info, old, &result) {
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                result["metadata"]["generation"] = json!(generation);
            }
        }
        validate_custom(info, &result, &name)?;
        let scale = matches!(ownership, Ownership::Update("scale"));
        let managed =
            self.record_ownership(info, req, old, &result, ownership, requested_managed, stored_managed, sub);
        if !scale {
            return self.commit_updated(info, current, old, result, managed, sub, req);
        }
        self.finish_updated(info, current, old, result, managed, req)
    }

    /// Stores a changed object that passed admission (the last step of an update or patch): a
    /// no-op stores nothing; an object being deleted whose last finalizer went is removed.
    pub(super) fn finish_updated(
        &mut self,
        info: &Arc<ResourceInfo>,
        current: &Arc<StoredObject>,
        old: &Value,
        mut result: Value,
        managed: super::apply::Recorded,
        req: &Request,
    ) -> Result<Arc<StoredObject>> {
        let name = current.name().to_owned();
        if result == *old && managed.changed.is_none() {
            return Ok(current.clone());
        }
        if let Some(fields) = managed.changed.unwrap_or(managed.stored) {
            metadata_mut(&mut result)?.insert("managedFields".into(), fields);
        }
        if req.params.dry_run {
            return Ok(Arc::new(StoredObject::new(&result, &info.selectable_fields)));
        }
        let finalizers_left = result["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        let grace = result["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        if current.is_deleting() && !finalizers_left && grace == 0 {
            let key = (current.namespace().to_owned(), name);
            self.remove(info, &key);
            result["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
            return Ok(Arc::new(StoredObject::new(&result, &info.selectable_fields)));
        }
        let stored = self.put(info, result, EventType::Modified);
        if is_crd(info) {
            self.register_crd(&stored.value());
        }
        Ok(stored)
    }

    /// `PUT/PATCH namespaces/{name}/finalize`: only `spec.finalizers` changes; an emptied list lets a
    /// terminating namespace go.
    fn write_finalize(
        &mut self,
        info: &Arc<ResourceInfo>,
        current: &Arc<StoredObject>,
        old: &Value,
        new: &Value,
        req: &Request,
        stored_managed: Option<Value>,
    ) -> Result<Arc<StoredObject>> {
        let mut result = old.clone();
        set_or_remove(&mut result["spec"], "finalizers", new["spec"].get("finalizers").cloned());
        if result == *old {
            return Ok(current.clone());
        }
        if let Some(fields) = stored_managed {
            metadata_mut(&mut result)?.insert("managedFields".into(), fields);
        }
        if req.params.dry_run {
            return Ok(Arc::new(StoredObject::new(&result, &info.selectable_fields)));
        }
        let stored = self.put(info, result, EventType::Modified);
        self.tasks.push_back(crate::cluster::Task::CleanNamespace { name: stored.name().to_owned() });
        Ok(stored)
    }

    /// `/scale`: the patch or update applies to the Scale view; only the replicas go back.
    fn modify_scale(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &mut Request,
        current: &Arc<StoredObject>,
        old: &Value,
        stored_managed: Option<Value>,
    ) -> Result<Response> {
        let Some(spec) = info.scale.clone() else {
            return Err(ApiError::NoSuchResource);
        };
        let view = scale_of(info, old);
        let new_view = match req.verb {
            Verb::Update => body_object(req)?,
            _ => {
                let patch = req
                    .body
                    .as_ref()
                    .ok_or_else(|| ApiError::BadRequest("the body of the request was empty".into()))?;
                let patch_type = req.patch_type.ok_or_else(|| unsupported_patch(info))?;
                patching::apply_untyped(patch_type, &view, patch)?
            }
        };
        if let Some(rv) = new_view["metadata"]["resourceVersion"].as_str().filter(|rv| !rv.is_empty())
            && rv != current.resource_version().to_string()
        {
            return Err(ApiError::stale(&info.group_resource(), current.name()));
        }
        let Some(replicas) = new_view["spec"]["replicas"].as_i64() else {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                current.name(),
                vec![cause("FieldValueRequired", "spec.replicas", "Required value")],
            ));
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                current.name(),
                vec![cause(
                    "FieldValueInvalid",
                    "spec.replicas",
                    &format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                )],
            ));
        }
        let mut new = old.clone();
        set_path(&mut new, &spec.spec_replicas_path, json!(replicas));
        let mut plain = req.clone();
        plain.verb = Verb::Patch;
        plain.subresource = None;
        let stored = self.write_existing(
            info,
            current,
            old,
            new,
            None,
            &plain,
            Ownership::Update("scale"),
            stored_managed,
        )?;
        Ok(Response::Status(scale_of(info, &stored.value())))
    }

    /// Validates object metadata with the resource's name rule.
    pub(super) fn validate_meta(&self, info: &ResourceInfo, object: &Value, name: &str) -> Result<()> {
        let rule = name_rule(info);
        let causes = validation::validate_object_meta(&object["metadata"], rule, info.namespaced);
        if causes.is_empty() {
            return Ok(());
        }
        let causes = causes
            .into_iter()
            .map(|c| StatusCause { reason: c.reason.to_owned(), message: c.message, field: c.field })
            .collect();
        Err(ApiError::invalid(&info.kind, &info.group, name, causes))
    }

    /// NamespaceLifecycle admission: the namespace must exist and not be terminating.
    fn admit_namespace(&self, info: &ResourceInfo, namespace: &str) -> Result<()> {
        let ns_key = crate::resources::StorageKey { group: String::new(), plural: "namespaces".into() };
        match self.current(&ns_key, &(String::new(), namespace.to_owned())) {
            None => Err(ApiError::not_found(&crate::error::GroupResource::new("", "namespaces"), namespace)),
            Some(ns) if ns.is_deleting() => Err(ApiError::Forbidden {
                resource: info.group_resource(),
                name: String::new(),
                message: format!(
                    "{} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    info.group_resource()
                ),
            }),
            Some(_) => Ok(()),
        }
    }
}

/// The name rule of a resource: DNS-1123 labels for namespaces and services, path segments for the
/// RBAC kinds (so `system:*` names work), DNS-1123 subdomains for the rest.
pub(super) fn name_rule(info: &ResourceInfo) -> NameRule {
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces") => NameRule::Dns1123Label,
        ("", "services") => NameRule::Dns1035Label,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    }
}

pub(crate) fn resource_name(info: &ResourceInfo) -> String {
    if info.group.is_empty() { info.plural.clone() } else { format!("{}.{}", info.plural, info.group) }
}

pub(crate) fn is_crd(info: &ResourceInfo) -> bool {
    info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions"
}

pub(super) fn cause(reason: &str, field: &str, message: &str) -> StatusCause {
    StatusCause { reason: reason.to_owned(), message: message.to_owned(), field: field.to_owned() }
}

fn unsupported_patch(info: &ResourceInfo) -> ApiError {
    let accepted = if info.is_custom() {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    } else {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
         application/strategic-merge-patch+json"
    };
    ApiError::UnsupportedMediaType(format!(
        "the body of the request was in an unknown format - accepted media types include: {accepted}"
    ))
}

pub(super) fn field_manager_required(info: &ResourceInfo) -> ApiError {
    ApiError::BadRequest(format!(
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch ({})",
        info.kind
    ))
}

/// The request body as a JSON object.
pub(crate) fn body_object(req: &mut Request) -> Result<Value> {
    match req.body.take() {
        Some(object @ Value::Object(_)) => Ok(object),
        Some(_) => Err(ApiError::BadRequest("the object provided is not a JSON object".to_owned())),
        None => Err(ApiError::BadRequest("the body of the request was empty".to_owned())),
    }
}

/// `metadata` as a mutable map, created when absent.
pub(crate) fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>> {
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the object provided is not a JSON object".to_owned()))?;
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if meta.is_null() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().ok_or_else(|| ApiError::BadRequest("metadata must be an object".to_owned()))
}

/// Defaults `apiVersion` and `kind` from the URL, as the real decoder does, and rejects mismatches:
/// a wrong version is a 400; a wrong kind is a 400 for built-ins and a 422 for custom resources.
pub(crate) fn check_type(info: &ResourceInfo, object: &mut Value) -> Result<()> {
    let expected_version = info.api_version();
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the object provided is not a JSON object".to_owned()))?;
    match map.get("apiVersion").and_then(Value::as_str).filter(|v| !v.is_empty()) {
        Some(v) if v != expected_version => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
        _ => {
            map.insert("apiVersion".into(), Value::String(expected_version));
        }
    }
    match map.get("kind").and_then(Value::as_str).filter(|k| !k.is_empty()) {
        Some(k) if k != info.kind => {
            let k = k.to_owned();
            if info.is_custom() {
                let name = map
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err(ApiError::Invalid {
                    kind: k.clone(),
                    group: info.group.clone(),
                    name: name.to_owned(),
                    message: format!(
                        "{k}.{} \"{name}\" is invalid: kind: Invalid value: \"{k}\": must be {}",
                        info.group, info.kind
                    ),
                    causes: vec![cause(
                        "FieldValueInvalid",
                        "kind",
                        &format!("Invalid value: \"{k}\": must be {}", info.kind),
                    )],
                });
            }
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
        _ => {
            map.insert("kind".into(), Value::String(info.kind.clone()));
        }
    }
    Ok(())
}

/// Status on create: custom resources with a status subresource drop it; built-ins get their
/// strategy's initial status.
pub(super) fn prepare_status_on_create(info: &ResourceInfo, object: &mut Value) {
    if !info.status {
        return;
    }
    let Some(map) = object.as_object_mut() else { return };
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => {
            map.insert("status".into(), json!({"phase": "Pending", "qosClass": "BestEffort"}));
        }
        ("", "namespaces") => {
            map.insert("status".into(), json!({"phase": "Active"}));
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.insert("finalizers".into(), json!(["kubernetes"]));
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            map.insert(
                "status".into(),
                json!({"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}),
            );
        }
        _ => {
            map.remove("status");
        }
    }
}

/// Whether anything outside `metadata` (and outside `status` when it is a subresource) changed.
pub(super) fn spec_changed(info: &ResourceInfo, old: &Value, new: &Value) -> bool {
    let status_split = info.status || !info.is_custom();
    let counted = |(key, _): &(&String, &Value)| match key.as_str() {
        "metadata" => false,
        "status" => !status_split,
        _ => true,
    };
    match (old.as_object(), new.as_object()) {
        (Some(old), Some(new)) => !old.iter().filter(counted).eq(new.iter().filter(counted)),
        _ => old != new,
    }
}

/// What an update of `old` to `new` may change: through `/status`, only the status; through the
/// main resource, everything but the status (when it is a subresource) and the server-owned
/// metadata (uid, timestamps, generation, namespace, name), which stay as they were.
pub(super) fn keep_server_fields(
    info: &ResourceInfo,
    old: &Value,
    new: Value,
    sub: Option<&str>,
) -> Result<Value> {
    if sub == Some("status") {
        let mut result = old.clone();
        set_or_remove(&mut result, "status", new.get("status").cloned());
        return Ok(result);
    }
    let mut result = new;
    if info.status {
        set_or_remove(&mut result, "status", old.get("status").cloned());
    }
    let meta = metadata_mut(&mut result)?;
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match old["metadata"].get(field) {
            Some(v) => meta.insert(field.to_owned(), v.clone()),
            None => meta.remove(field),
        };
    }
    meta.remove("selfLink");
    Ok(result)
}

pub(super) fn set_or_remove(object: &mut Value, field: &str, value: Option<Value>) {
    if !object.is_object() {
        *object = json!({});
    }
    if let Some(map) = object.as_object_mut() {
        match value {
            Some(v) => map.insert(field.to_owned(), v),
            None => map.remove(field),
        };
    }
}

/// Writes a value at a dotted path (`.spec.replicas`), creating objects on the way.
pub(crate) fn set_path(object: &mut Value, path: &str, value: Value) {
    let segments: Vec<&str> = path.trim_start_matches('.').split('.').filter(|s| !s.is_empty()).collect();
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut at = object;
    for seg in parents {
        if !at.get(*seg).is_some_and(Value::is_object) {
            at[*seg] = json!({});
        }
        at = &mut at[*seg];
    }
    at[*last] = value;
}

/// `ObjectMeta` is a Go struct with `omitempty` fields: empty lists, maps and strings vanish when
/// the real server stores an object, so they vanish here too.
pub(super) fn normalize_metadata(object: &mut Value) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    meta.retain(|_, v| match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    });
}
