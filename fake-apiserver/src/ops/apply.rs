//! What every write adds on top of storing an object, as the real server's handlers do it:
//!
//! - **ownership**: `metadata.managedFields` after creates, updates and patches (the request's
//!   manager owns what it set, `patching::managed::record_update`), and server-side apply itself
//!   (`application/apply-patch+yaml`: merge with the schema's granularity, conflicts, `force`,
//!   removal of dropped fields, create-on-apply);
//! - **custom-resource admission**: pruning of unknown fields under `fieldValidation`, defaults,
//!   and validation against the CRD's structural schema (`crate::structural`).
//!
//! The manager is the `fieldManager` parameter, else the User-Agent up to its first `/`.

use std::sync::Arc;

use serde_json::Value;

use super::write::{check_type, field_manager_required};
use crate::cluster::State;
use crate::error::{ApiError, Result, StatusCause};
use crate::patching::managed::{self, ApplyError, Managed, Reset, Writer};
use crate::patching::schema::Schema;
use crate::patching::{self, typed};
use crate::request::{FieldValidation, Request, Response};
use crate::resources::{Origin, ResourceInfo};
use crate::store::objects::StoredObject;
use crate::structural;

/// How a write to an existing object records ownership.
#[derive(Debug)]
pub(crate) enum Ownership<'a> {
    /// An update-like write by the request's manager, through this subresource (empty for none).
    Update(&'a str),
    /// A server-side apply, whose managed fields are already computed.
    Applied(Managed),
}

/// The managed fields a write ends with.
#[derive(Debug)]
pub(super) struct Recorded {
    /// The new managed fields, when they differ from the stored ones (`Some(None)`: none are left).
    pub(super) changed: Option<Option<Value>>,
    /// The stored ones, handed back when unchanged.
    pub(super) stored: Option<Value>,
}

impl Recorded {
    fn unchanged(stored: Option<Value>) -> Self {
        Self { changed: None, stored }
    }

    fn new(fields: Option<Value>) -> Self {
        Self { changed: Some(fields), stored: None }
    }
}

/// The field manager of a request.
fn manager_of(req: &Request) -> &str {
    match req.params.field_manager.as_deref() {
        Some(manager) if !manager.is_empty() => manager,
        _ => req.actor.split('/').next().unwrap_or_default(),
    }
}

/// The fields the endpoint resets, which no one owns through it.
fn reset_of(info: &ResourceInfo, sub: Option<&str>) -> Reset {
    match sub {
        Some("status") => Reset::AllButStatus,
        _ if info.status => Reset::Status,
        _ => Reset::Nothing,
    }
}

/// The structural schema of a custom resource, if it has one.
fn custom_schema(info: &ResourceInfo) -> Option<&Value> {
    match &info.origin {
        Origin::Custom { schema: Some(schema), .. } => Some(schema),
        _ => None,
    }
}

/// Validates a custom resource against its CRD's schema (422 with one cause per violation).
pub(super) fn validate_custom(info: &ResourceInfo, object: &Value, name: &str) -> Result<()> {
    let Some(schema) = custom_schema(info) else { return Ok(()) };
    let causes = structural::validate(object, schema);
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid(&info.kind, &info.group, name, causes)) }
}

/// `(namespace/name; group/version, Kind=Kind)`, as apply errors name the object.
fn object_ref(info: &ResourceInfo, req: &Request) -> String {
    let name = req.name.as_deref().unwrap_or_default();
    let namespace = req.namespace.as_deref().unwrap_or_default();
    format!("{namespace}/{name}; {}/{}, Kind={}", info.group, info.version, info.kind)
}

fn apply_error(info: &ResourceInfo, req: &Request, error: ApplyError) -> ApiError {
    match error {
        ApplyError::Conflicts(conflicts) => ApiError::ApplyConflict {
            resource: info.group_resource(),
            name: req.name.clone().unwrap_or_default(),
            causes: conflicts
                .into_iter()
                .map(|(manager, field)| StatusCause {
                    reason: "FieldManagerConflict".to_owned(),
                    message: format!("conflict with {manager}"),
                    field,
                })
                .collect(),
        },
        ApplyError::Shape(e) => ApiError::Internal(format!(
            "failed to create typed patch object ({}): {e}",
            object_ref(info, req)
        )),
    }
}

impl State {
    /// Prunes a custom resource's unknown fields (failing, warning or silent per `fieldValidation`
    /// when `report` is set) and applies its schema's defaults.
    pub(super) fn admit_custom(
        &mut self,
        info: &ResourceInfo,
        req: &Request,
        object: &mut Value,
        report: bool,
    ) -> Result<()> {
        let Some(schema) = custom_schema(info) else { return Ok(()) };
        let unknown = structural::prune(object, schema);
        if report && !unknown.is_empty() {
            let fields = unknown.iter().map(|p| format!("unknown field \"{p}\""));
            match req.params.field_validation {
                FieldValidation::Strict => {
                    let kind = &info.kind;
                    return Err(ApiError::BadRequest(format!(
                        "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                        info.version,
                        fields.collect::<Vec<_>>().join(", ")
                    )));
                }
                FieldValidation::Warn => self.warnings.extend(fields),
                FieldValidation::Ignore => {}
            }
        }
        structural::default(object, schema);
        Ok(())
    }

    /// The `managedFields` of a created object: its creator owns everything it set. `None` when
    /// the object does not fit its schema, as the real server's field manager then records nothing.
    pub(super) fn created_ownership(
        &self,
        info: &ResourceInfo,
        req: &Request,
        object: &Value,
        now: &str,
    ) -> Option<Value> {
        let zero = patching::zero_object(info);
        let fields = typed::created_fields_v1(object, &zero, Schema::root(info)).ok()?;
        let api_version = info.api_version();
        let writer = Writer { manager: manager_of(req), api_version: &api_version, subresource: "" };
        managed::created(fields, &writer, reset_of(info, None), now)
    }

    /// The managed fields after a write to an existing object. An update starts from the request's
    /// managed fields when it sends other valid ones (an empty list resets them), else from the
    /// stored ones; a value that does not fit the schema leaves them as they are, as the real
    /// server's field manager does.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_ownership(
        &self,
        info: &ResourceInfo,
        req: &Request,
        old: &Value,
        result: &Value,
        ownership: Ownership<'_>,
        requested: Option<Value>,
        stored: Option<Value>,
        sub: Option<&str>,
    ) -> Recorded {
        let subresource = match ownership {
            Ownership::Applied(managed) => {
                let encoded = managed.encode();
                return if encoded == stored { Recorded::unchanged(stored) } else { Recorded::new(encoded) };
            }
            Ownership::Update(subresource) => subresource,
        };
        let (base, from_store) = match requested {
            Some(requested) if subresource.is_empty() && Some(&requested) != stored.as_ref() => {
                if Managed::is_reset(Some(&requested)) {
                    (None, false)
                } else if Managed::decode(Some(&requested)).is_some_and(|m| !m.entries.is_empty()) {
                    (Some(requested), false)
                } else {
                    (stored, true)
                }
            }
            _ => (stored, true),
        };
        let Ok(comparison) = typed::compare_objects(old, result, Schema::root(info)) else {
            return if from_store { Recorded::unchanged(base) } else { Recorded::new(base) };
        };
        let mut entries = match base {
            Some(Value::Array(entries)) => entries,
            _ => Vec::new(),
        };
        let api_version = info.api_version();
        let writer = Writer { manager: manager_of(req), api_version: &api_version, subresource };
        let now = || self.clock.now_rfc3339();
        let touched = managed::record_update(&mut entries, comparison, &writer, reset_of(info, sub), now);
        let fields = (!entries.is_empty()).then_some(Value::Array(entries));
        if from_store && !touched { Recorded::unchanged(fields) } else { Recorded::new(fields) }
    }

    /// Checks an apply configuration: a field manager, a matching type, no managed fields, and for
    /// custom resources no field the schema does not declare (apply is always strict about them).
    fn apply_config(&self, info: &ResourceInfo, req: &Request) -> Result<Value> {
        if req.params.field_manager.as_deref().is_none_or(str::is_empty) {
            return Err(field_manager_required(info));
        }
        let mut config = match req.body.clone() {
            Some(config @ Value::Object(_)) => config,
            Some(_) => return Err(ApiError::BadRequest("the patch is not a JSON or YAML object".to_owned())),
            None => return Err(ApiError::BadRequest("the body of the request was empty".to_owned())),
        };
        check_type(info, &mut config)?;
        if config["metadata"].get("managedFields").is_some_and(|m| !m.is_null()) {
            return Err(ApiError::BadRequest("metadata.managedFields must be nil".to_owned()));
        }
        if let Some(schema) = custom_schema(info) {
            let unknown = structural::prune(&mut config.clone(), schema);
            if !unknown.is_empty() {
                let errors: Vec<String> =
                    unknown.iter().map(|p| format!(".{p}: field not declared in schema")).collect();
                let detail = match errors.as_slice() {
                    [one] => one.clone(),
                    many => format!("errors:\n  {}", many.join("\n  ")),
                };
                return Err(ApiError::Internal(format!(
                    "failed to create typed patch object ({}): {detail}",
                    object_ref(info, req)
                )));
            }
        }
        Ok(config)
    }

    /// Server-side apply to an existing object (main resource or `status`).
    pub(super) fn apply_existing(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &Request,
        current: &Arc<StoredObject>,
        old: &Value,
        stored_managed: Option<Value>,
    ) -> Result<Response> {
        let config = self.apply_config(info, req)?;
        let sub = req.subresource.as_deref();
        let mut managed = Managed::decode(stored_managed.as_ref()).unwrap_or_default();
        let api_version = info.api_version();
        let writer = Writer {
            manager: req.params.field_manager.as_deref().unwrap_or_default(),
            api_version: &api_version,
            subresource: sub.unwrap_or_default(),
        };
        let now = self.clock.now_rfc3339();
        let schema = Schema::root(info);
        let mut merged = managed::apply(
            Some(old),
            &config,
            &mut managed,
            &writer,
            req.params.force,
            schema,
            reset_of(info, sub),
            &now,
        )
        .map_err(|e| apply_error(info, req, e))?;
        self.admit_custom(info, req, &mut merged, false)?;
        let ownership = Ownership::Applied(managed);
        let stored = self.write_existing(info, current, old, merged, sub, req, ownership, stored_managed)?;
        Ok(Response::Object(stored))
    }

    /// Server-side apply of an object that does not exist yet: it is created, owned by the applier.
    pub(super) fn apply_create(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &mut Request,
    ) -> Result<Arc<StoredObject>> {
        let config = self.apply_config(info, req)?;
        let url_name = req.name.clone().unwrap_or_default();
        let name = config["metadata"]["name"].as_str().unwrap_or_default();
        if name != url_name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({name}) does not match the name on the URL ({url_name})"
            )));
        }
        let mut managed = Managed::default();
        let api_version = info.api_version();
        let writer = Writer {
            manager: req.params.field_manager.as_deref().unwrap_or_default(),
            api_version: &api_version,
            subresource: "",
        };
        let now = self.clock.now_rfc3339();
        let merged = managed::apply(
            None,
            &config,
            &mut managed,
            &writer,
            req.params.force,
            Schema::root(info),
            reset_of(info, None),
            &now,
        )
        .map_err(|e| apply_error(info, req, e))?;
        let mut create = req.clone();
        create.name = None;
        create.body = Some(merged);
        self.create_owned(info, &mut create, Some(managed))
    }
}
