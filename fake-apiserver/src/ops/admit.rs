//! The admission gate of writes (see [`crate::admission`]): at the point where a create, update
//! or delete would store, a write that a webhook intercepts is set aside as a [`Pending`] write;
//! [`crate::Cluster::handle`] then calls the webhooks with the lock released, re-admits the
//! mutated object ([`State::readmit`]: type, pruning and defaults, server-set metadata, status,
//! generation, validation) and commits it ([`State::commit`]) unless the stored object moved on
//! meanwhile, in which case the write is retried from the start, as the real server's storage
//! retries its update loop.

use std::sync::Arc;

use serde_json::{Value, json};

use super::apply::{Recorded, validate_custom};
use super::write::{
    check_type, is_crd, keep_server_fields, metadata_mut, normalize_metadata, prepare_status_on_create,
    spec_changed,
};
use crate::admission::Review;
use crate::admission::hooks::{self, Hook};
use crate::cluster::State;
use crate::crds;
use crate::error::{ApiError, Result};
use crate::request::{Params, Request, Response, Verb};
use crate::resources::{ResourceInfo, StorageKey};
use crate::store::objects::StoredObject;

/// A write waiting for its webhooks.
#[derive(Debug)]
pub(crate) struct Pending {
    /// What the webhooks are told (its object changes as mutating webhooks patch it).
    pub(crate) review: Review,
    commit: Commit,
}

/// How a pending write is finished.
#[derive(Debug)]
enum Commit {
    Create {
        info: Arc<ResourceInfo>,
        req: Request,
        object: Value,
    },
    Update {
        info: Arc<ResourceInfo>,
        req: Request,
        current: Arc<StoredObject>,
        old: Value,
        result: Value,
        managed: Recorded,
        sub: Option<String>,
    },
    /// Deletions carry no object: the request runs again, past the gate.
    Delete,
}

/// The group of the webhook configurations.
const ADMISSION_GROUP: &str = "admissionregistration.k8s.io";

impl State {
    /// The webhooks of the stored configurations, mutating ones first, each kind in the order of
    /// the configurations' names (read once per change of the configurations).
    pub(crate) fn webhook_hooks(&mut self) -> Arc<Vec<Hook>> {
        if let Some(hooks) = &self.webhooks {
            return hooks.clone();
        }
        let mut all = Vec::new();
        for (plural, mutating) in
            [("mutatingwebhookconfigurations", true), ("validatingwebhookconfigurations", false)]
        {
            let key = StorageKey { group: ADMISSION_GROUP.to_owned(), plural: plural.to_owned() };
            if let Some(store) = self.stores.get(&key) {
                for configuration in store.iter() {
                    all.extend(hooks::parse(&configuration.value(), mutating));
                }
            }
        }
        let hooks = Arc::new(all);
        self.webhooks = Some(hooks.clone());
        hooks
    }

    /// Forgets the parsed webhooks when a configuration changes.
    pub(crate) fn webhooks_changed(&mut self, key: &StorageKey) {
        if key.group == ADMISSION_GROUP {
            self.webhooks = None;
        }
    }

    /// What the webhooks of a write are told, if any webhook may intercept it.
    #[allow(clippy::too_many_arguments, reason = "the parts of an admission request")]
    fn admission_review(
        &mut self,
        info: &ResourceInfo,
        req: &Request,
        operation: &'static str,
        name: &str,
        object: Option<Value>,
        old_object: Option<Value>,
        params: &Params,
    ) -> Option<Review> {
        let hooks = self.webhook_hooks();
        if hooks.is_empty() {
            return None;
        }
        let namespace =
            if info.namespaced { req.namespace.clone().unwrap_or_default() } else { String::new() };
        let namespace_labels = (!namespace.is_empty()).then(|| {
            let key = StorageKey { group: String::new(), plural: "namespaces".into() };
            self.current(&key, &(String::new(), namespace.clone())).map(|ns| ns.labels()).unwrap_or_default()
        });
        let equivalents = if info.is_custom() {
            self.registry
                .all()
                .filter(|r| r.group == info.group && r.plural == info.plural && r.version != info.version)
                .map(|r| (r.version.clone(), r.kind.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let review = Review {
            hooks,
            operation,
            group: info.group.clone(),
            version: info.version.clone(),
            kind: info.kind.clone(),
            plural: info.plural.clone(),
            subresource: req.subresource.clone().unwrap_or_default(),
            namespace,
            name: name.to_owned(),
            object,
            old_object,
            dry_run: params.dry_run,
            options: options(operation, req.verb, params),
            namespace_labels,
            equivalents,
            user_info: user_info(req),
        };
        review.intercepted().then_some(review)
    }

    /// The gate of a create: store it now, or set it aside for its webhooks.
    pub(super) fn commit_created(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &Request,
        object: Value,
    ) -> Result<Arc<StoredObject>> {
        if self.admitting {
            let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            if let Some(review) =
                self.admission_review(info, req, "CREATE", &name, Some(object.clone()), None, &req.params)
            {
                let commit = Commit::Create { info: info.clone(), req: req.clone(), object };
                return self.set_aside(review, commit);
            }
        }
        self.finish_created(info, req, object)
    }

    /// The gate of an update or patch (also of `status`): store it now, or set it aside.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn commit_updated(
        &mut self,
        info: &Arc<ResourceInfo>,
        current: &Arc<StoredObject>,
        old: &Value,
        result: Value,
        managed: Recorded,
        sub: Option<&str>,
        req: &Request,
    ) -> Result<Arc<StoredObject>> {
        if self.admitting {
            let mut shown = result.clone();
            if let Some(fields) = managed.changed.clone().unwrap_or_else(|| managed.stored.clone()) {
                metadata_mut(&mut shown)?.insert("managedFields".into(), fields);
            }
            if let Some(review) = self.admission_review(
                info,
                req,
                "UPDATE",
                current.name(),
                Some(shown),
                Some(current.value()),
                &req.params,
            ) {
                let commit = Commit::Update {
                    info: info.clone(),
                    req: req.clone(),
                    current: current.clone(),
                    old: old.clone(),
                    result,
                    managed,
                    sub: sub.map(str::to_owned),
                };
                return self.set_aside(review, commit);
            }
        }
        self.finish_updated(info, current, old, result, managed, req)
    }

    /// The gate of a delete: go on now, or set it aside for its webhooks.
    pub(super) fn admit_delete(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &Request,
        current: &Arc<StoredObject>,
        params: &Params,
    ) -> Result<()> {
        if self.admitting
            && let Some(review) = self.admission_review(
                info,
                req,
                "DELETE",
                current.name(),
                None,
                Some(current.value()),
                params,
            )
        {
            return self.set_aside(review, Commit::Delete).map(|_| ());
        }
        Ok(())
    }

    fn set_aside(&mut self, review: Review, commit: Commit) -> Result<Arc<StoredObject>> {
        self.pending = Some(Pending { review, commit });
        Err(ApiError::Internal("the write awaits its admission webhooks".to_owned()))
    }

    /// Admits an object the mutating webhooks changed as the server admits a request's object:
    /// its type, pruning and defaults, the server-set metadata, the status rules, the generation,
    /// and validation; the review then shows the result to the validating webhooks.
    ///
    /// # Errors
    /// The validation error of the mutated object.
    pub(crate) fn readmit(&mut self, pending: &mut Pending) -> Result<()> {
        let Some(mutated) = pending.review.object.clone() else { return Ok(()) };
        match &mut pending.commit {
            Commit::Create { info, req, object } => {
                let mut admitted = mutated;
                check_type(info, &mut admitted)?;
                self.admit_custom(info, req, &mut admitted, false)?;
                let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                let meta = metadata_mut(&mut admitted)?;
                for field in ["uid", "creationTimestamp", "generation", "namespace", "name", "managedFields"]
                {
                    match object["metadata"].get(field) {
                        Some(v) => meta.insert(field.to_owned(), v.clone()),
                        None => meta.remove(field),
                    };
                }
                for field in
                    ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"]
                {
                    meta.remove(field);
                }
                prepare_status_on_create(info, &mut admitted);
                normalize_metadata(&mut admitted);
                self.validate_meta(info, &admitted, &name)?;
                validate_custom(info, &admitted, &name)?;
                if is_crd(info) {
                    crds::validate(&admitted)
                        .map_err(|causes| ApiError::invalid(&info.kind, &info.group, &name, causes))?;
                }
                pending.review.object = Some(admitted.clone());
                *object = admitted;
            }
            Commit::Update { info, req, current, old, result, managed, sub } => {
                let mut admitted = mutated;
                check_type(info, &mut admitted)?;
                if let Some(meta) = admitted.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("managedFields");
                }
                self.admit_custom(info, req, &mut admitted, false)?;
                let name = current.name().to_owned();
                let mut next = keep_server_fields(info, old, admitted, sub.as_deref())?;
                if sub.is_none() && info.tracks_generation && spec_changed(info, old, &next) {
                    let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                    next["metadata"]["generation"] = json!(generation);
                }
                next["metadata"]["resourceVersion"] = json!(current.resource_version().to_string());
                normalize_metadata(&mut next);
                if sub.is_none() {
                    self.validate_meta(info, &next, &name)?;
                }
                validate_custom(info, &next, &name)?;
                let mut shown = next.clone();
                if let Some(fields) = managed.changed.clone().unwrap_or_else(|| managed.stored.clone()) {
                    metadata_mut(&mut shown)?.insert("managedFields".into(), fields);
                }
                pending.review.object = Some(shown);
                *result = next;
            }
            Commit::Delete => {}
        }
        Ok(())
    }

    /// Finishes a write whose webhooks admitted it; `None` when the stored object changed since
    /// it was reviewed (the write is then tried again from the start).
    ///
    /// # Errors
    /// The error of the store step (a name taken meanwhile, …).
    pub(crate) fn commit(&mut self, pending: Pending, original: &Request) -> Result<Option<Response>> {
        match pending.commit {
            Commit::Create { info, req, object } => {
                self.finish_created(&info, &req, object).map(|o| Some(Response::Object(o)))
            }
            Commit::Update { info, req, current, old, result, managed, .. } => {
                let key = (current.namespace().to_owned(), current.name().to_owned());
                match self.current(info.storage_key(), &key) {
                    Some(now) if now.resource_version() == current.resource_version() => {}
                    _ => return Ok(None),
                }
                self.finish_updated(&info, &current, &old, result, managed, &req)
                    .map(|o| Some(Response::Object(o)))
            }
            Commit::Delete => {
                let info = self
                    .registry
                    .get(&original.group, &original.version, &original.plural)
                    .ok_or(ApiError::NoSuchResource)?;
                self.delete(&info, original).map(Some)
            }
        }
    }
}

/// Who sent the request, as the webhooks see it: its identity, or the API server's loopback
/// identity for requests without one.
fn user_info(req: &Request) -> Value {
    let user = req.user.clone().unwrap_or_else(crate::Identity::loopback);
    let mut info = json!({"username": user.name(), "groups": user.groups()});
    if !user.uid().is_empty() {
        info["uid"] = json!(user.uid());
    }
    info
}

/// The options of the request, as the webhooks see them (`CreateOptions`, `UpdateOptions`,
/// `PatchOptions`, `DeleteOptions`).
fn options(operation: &str, verb: Verb, params: &Params) -> Value {
    let kind = match (operation, verb) {
        ("CREATE", _) => "CreateOptions",
        ("DELETE", _) => "DeleteOptions",
        (_, Verb::Patch) => "PatchOptions",
        _ => "UpdateOptions",
    };
    let mut options = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
    if params.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    if kind == "DeleteOptions" {
        if let Some(policy) = &params.propagation_policy {
            options["propagationPolicy"] = json!(policy);
        }
        if let Some(grace) = params.grace_period_seconds {
            options["gracePeriodSeconds"] = json!(grace);
        }
    } else if let Some(manager) = params.field_manager.as_deref().filter(|m| !m.is_empty()) {
        options["fieldManager"] = json!(manager);
    }
    if kind == "PatchOptions" && params.force {
        options["force"] = json!(true);
    }
    options
}
