//! Deletion and what follows it: finalizers and `deletionTimestamp`, graceful deletion of pods,
//! delete preconditions, deletecollection, and the built-in controllers a real cluster runs in the
//! controller-manager — the garbage collector (Background, Foreground, Orphan), the namespace
//! controller and the CRD cleanup — run here synchronously after each request, so their effects are
//! deterministic and visible to the very next request.

use std::sync::Arc;

use serde_json::{Value, json};

use super::read::{object_key, parse_fields, parse_labels};
use super::write::resource_name;
use crate::cluster::{State, Task};
use crate::error::{ApiError, GroupResource, Result};
use crate::request::{ListResult, Params, Request, Response, Verb};
use crate::resources::{Origin, ResourceInfo, StorageKey};
use crate::store::history::EventType;
use crate::store::objects::{ObjectKey, Owner, StoredObject};

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";
const CRD_CLEANUP: &str = "customresourcecleanup.apiextensions.k8s.io";
const GC: &str = "garbage-collector";
const NAMESPACE_CONTROLLER: &str = "namespace-controller";
const CRD_CONTROLLER: &str = "apiextensions-controller";

/// How a deletion propagates to dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// The outcome of deleting one object.
#[derive(Debug)]
enum Deleted {
    /// Gone from storage; the object's last state.
    Removed(Arc<StoredObject>),
    /// Still there, with `deletionTimestamp` set, waiting for finalizers or a grace period.
    Pending(Arc<StoredObject>),
}

impl Deleted {
    fn object(&self) -> &Arc<StoredObject> {
        match self {
            Self::Removed(o) | Self::Pending(o) => o,
        }
    }
}

impl State {
    pub(crate) fn delete(&mut self, info: &Arc<ResourceInfo>, req: &Request) -> Result<Response> {
        let key = object_key(req);
        let params = self.delete_params(req)?;
        if let Some(current) = self.current(info.storage_key(), &key) {
            self.admit_delete(info, req, &current, &params)?;
        }
        match self.delete_object(info, &key, &params)? {
            Deleted::Pending(object) => Ok(Response::Object(object)),
            // Pods and custom resources answer with the deleted object, the rest with a Status.
            Deleted::Removed(object) if info.is_custom() || info.graceful_deletion() => {
                Ok(Response::Object(object))
            }
            Deleted::Removed(object) => {
                let mut details = json!({"name": object.name(), "kind": info.plural, "uid": object.uid()});
                if !info.group.is_empty() {
                    details["group"] = json!(info.group);
                }
                Ok(Response::Status(json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                })))
            }
        }
    }

    pub(crate) fn delete_collection(
        &mut self,
        info: &Arc<ResourceInfo>,
        req: &Request,
    ) -> Result<ListResult> {
        let params = self.delete_params(req)?;
        let labels = parse_labels(&params)?;
        let fields = parse_fields(info, &params)?;
        // DeleteCollection lists through the same storage call as a list, shard selector included.
        let shards = self.parse_shards(&params)?;
        let targets: Vec<ObjectKey> = self
            .stores
            .get(&**info.storage_key())
            .map(|objects| {
                objects
                    .iter()
                    .filter(|o| {
                        req.namespace.as_ref().is_none_or(|ns| ns == o.namespace())
                            && labels.matches(&o.labels)
                            && fields.matches(|path| o.field(path))
                            && shards.as_ref().is_none_or(|s| s.matches(&o.uid, o.namespace()))
                    })
                    .map(|o| (o.namespace().to_owned(), o.name().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let mut items = Vec::with_capacity(targets.len());
        for key in targets {
            items.push(self.delete_object(info, &key, &params)?.object().clone());
        }
        Ok(ListResult {
            info: info.clone(),
            items,
            resource_version: self.rv,
            continue_token: None,
            remaining_item_count: None,
            shard_selector: shards.map(|s| s.to_string()),
        })
    }

    /// The query parameters merged with a `DeleteOptions` body, as the real server reads them.
    fn delete_params(&self, req: &Request) -> Result<Params> {
        let mut params = req.params.clone();
        let Some(body) = &req.body else { return Ok(params) };
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the body of the request was not a DeleteOptions object".to_owned(),
            ));
        }
        if let Some(policy) = body["propagationPolicy"].as_str() {
            params.propagation_policy = Some(policy.to_owned());
        }
        if body["orphanDependents"].as_bool() == Some(true) && params.propagation_policy.is_none() {
            params.propagation_policy = Some("Orphan".to_owned());
        }
        if let Some(grace) = body["gracePeriodSeconds"].as_i64() {
            params.grace_period_seconds = Some(grace);
        }
        if body["dryRun"].as_array().is_some_and(|d| d.iter().any(|v| v == "All")) {
            params.dry_run = true;
        }
        let pre = &body["preconditions"];
        if let Some(uid) = pre["uid"].as_str() {
            params.preconditions.uid = Some(uid.to_owned());
        }
        if let Some(rv) = pre["resourceVersion"].as_str() {
            params.preconditions.resource_version = Some(rv.to_owned());
        }
        Ok(params)
    }

    fn delete_object(
        &mut self,
        info: &Arc<ResourceInfo>,
        key: &ObjectKey,
        params: &Params,
    ) -> Result<Deleted> {
        let gr = info.group_resource();
        let current =
            self.current(info.storage_key(), key).ok_or_else(|| ApiError::not_found(&gr, &key.1))?;
        if let Some(uid) = &params.preconditions.uid
            && uid != current.uid()
        {
            return Err(precondition_failed(&gr, &key.1, "UID", uid, current.uid()));
        }
        if let Some(rv) = &params.preconditions.resource_version
            && *rv != current.resource_version().to_string()
        {
            return Err(precondition_failed(
                &gr,
                &key.1,
                "ResourceVersion",
                rv,
                &current.resource_version().to_string(),
            ));
        }
        let is_namespace = info.group.is_empty() && info.plural == "namespaces";
        if is_namespace && matches!(key.1.as_str(), "default" | "kube-system" | "kube-public") {
            return Err(ApiError::Forbidden {
                resource: gr,
                name: key.1.clone(),
                message: format!("namespaces \"{}\" is forbidden: this namespace may not be deleted", key.1),
            });
        }
        let policy = match params.propagation_policy.as_deref() {
            None | Some("") | Some("Background") => Propagation::Background,
            Some("Foreground") => Propagation::Foreground,
            Some("Orphan") => Propagation::Orphan,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{other}\": \
                     supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                )));
            }
        };
        if current.is_deleting() {
            return self.delete_again(info, key, current, params);
        }
        let mut object = current.value();
        let mut finalizers = current.finalizers().to_vec();
        let mut add = |f: &str| {
            if !finalizers.iter().any(|x| x == f) {
                finalizers.push(f.to_owned());
            }
        };
        match policy {
            Propagation::Foreground => add(FOREGROUND),
            Propagation::Orphan => add(ORPHAN),
            Propagation::Background => {}
        }
        if super::write::is_crd(info) {
            add(CRD_CLEANUP);
        }
        let grace =
            if info.graceful_deletion() { pod_grace(&object, params.grace_period_seconds) } else { 0 };
        let namespace_pending =
            is_namespace && object["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        if finalizers.is_empty() && grace == 0 && !namespace_pending {
            if params.dry_run {
                return Ok(Deleted::Removed(current));
            }
            let removed = self.remove(info, key).ok_or_else(|| ApiError::not_found(&gr, &key.1))?;
            return Ok(Deleted::Removed(removed));
        }
        let when = self.clock.now() + jiff::SignedDuration::from_secs(grace);
        let meta = &mut object["metadata"];
        meta["deletionTimestamp"] = json!(crate::clock::rfc3339_seconds(when));
        meta["deletionGracePeriodSeconds"] = json!(grace);
        meta["finalizers"] = json!(finalizers);
        if info.tracks_generation {
            meta["generation"] = json!(meta["generation"].as_i64().unwrap_or(0) + 1);
        }
        if is_namespace {
            object["status"]["phase"] = json!("Terminating");
        }
        if params.dry_run {
            return Ok(Deleted::Pending(Arc::new(StoredObject::new(&object, &info.selectable_fields))));
        }
        let stored = self.put(info, object, EventType::Modified);
        match policy {
            Propagation::Foreground => self.tasks.push_back(Task::StartForeground {
                key: (**info.storage_key()).clone(),
                object: key.clone(),
            }),
            Propagation::Orphan => self
                .tasks
                .push_back(Task::StartOrphan { key: (**info.storage_key()).clone(), object: key.clone() }),
            Propagation::Background => {}
        }
        if is_namespace {
            self.tasks.push_back(Task::CleanNamespace { name: key.1.clone() });
        }
        if super::write::is_crd(info) {
            self.tasks.push_back(Task::CleanCrd { name: key.1.clone() });
        }
        Ok(Deleted::Pending(stored))
    }

    /// A repeated delete changes nothing, except that a shorter grace period shortens a pending
    /// graceful deletion (a grace of 0 finishes it once no finalizer is left).
    fn delete_again(
        &mut self,
        info: &Arc<ResourceInfo>,
        key: &ObjectKey,
        current: Arc<StoredObject>,
        params: &Params,
    ) -> Result<Deleted> {
        let mut object = current.value();
        let pending = object["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        let Some(requested) = params.grace_period_seconds.filter(|g| *g >= 0 && *g < pending) else {
            return Ok(Deleted::Pending(current));
        };
        if params.dry_run {
            return Ok(Deleted::Pending(current));
        }
        if requested == 0 && current.finalizers().is_empty() {
            let removed =
                self.remove(info, key).ok_or_else(|| ApiError::not_found(&info.group_resource(), &key.1))?;
            return Ok(Deleted::Removed(removed));
        }
        let when = self.clock.now() + jiff::SignedDuration::from_secs(requested);
        object["metadata"]["deletionTimestamp"] = json!(crate::clock::rfc3339_seconds(when));
        object["metadata"]["deletionGracePeriodSeconds"] = json!(requested);
        Ok(Deleted::Pending(self.put(info, object, EventType::Modified)))
    }

    /// Follow-up of an object leaving storage.
    pub(crate) fn after_removal(&mut self, info: &ResourceInfo, removed: &StoredObject) {
        self.tasks.push_back(Task::OwnerGone { uid: removed.uid().to_owned() });
        for owner in &removed.owners {
            if let Some((key, object)) = self.owner_location(removed.namespace(), owner) {
                self.tasks.push_back(Task::CheckForeground { key, object });
            }
        }
        if info.namespaced && self.namespace_terminating(removed.namespace()) {
            self.tasks.push_back(Task::CleanNamespace { name: removed.namespace().to_owned() });
        }
        if let Origin::Custom { crd, .. } = &info.origin {
            self.tasks.push_back(Task::CleanCrd { name: crd.clone() });
        }
        if super::write::is_crd(info) {
            self.unregister_crd(&removed.value());
        }
    }

    fn namespace_terminating(&self, name: &str) -> bool {
        self.current(&namespaces_key(), &(String::new(), name.to_owned())).is_some_and(|ns| ns.is_deleting())
    }

    /// Runs the built-in controllers until they have nothing left to do.
    pub(crate) fn run_controllers(&mut self) {
        let mut budget = 10_000_000usize;
        while let Some(task) = self.tasks.pop_front() {
            budget -= 1;
            if budget == 0 {
                tracing::error!("built-in controllers did not converge; dropping their remaining work");
                self.tasks.clear();
                return;
            }
            match task {
                Task::OwnerGone { uid } => self.collect_dependents(&uid, false),
                Task::StartForeground { key, object } => {
                    if let Some(owner) = self.current(&key, &object) {
                        self.collect_dependents(owner.uid(), true);
                    }
                    self.tasks.push_back(Task::CheckForeground { key, object });
                }
                Task::CheckForeground { key, object } => self.check_foreground(&key, &object),
                Task::StartOrphan { key, object } => self.orphan_dependents(&key, &object),
                Task::CleanNamespace { name } => self.clean_namespace(&name),
                Task::CleanCrd { name } => self.clean_crd(&name),
                Task::EstablishCrd { name } => self.establish_crd(&name),
            }
        }
    }

    /// Deletes the dependents of `uid` that have no other live owner, and strips the reference from
    /// those that do. In foreground mode, blocking dependents are deleted in the foreground too.
    fn collect_dependents(&mut self, uid: &str, foreground: bool) {
        let dependents: Vec<(StorageKey, ObjectKey)> =
            self.dependents.get(uid).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        for (key, object) in dependents {
            let Some(dependent) = self.current(&key, &object) else {
                continue;
            };
            let Some(info) = self.registry.preferred(&key.group, &key.plural) else {
                continue;
            };
            let other_live_owner = dependent
                .owners
                .iter()
                .any(|o| o.uid != uid && self.owner_location(dependent.namespace(), o).is_some());
            if other_live_owner {
                if !foreground {
                    self.controller_update(GC, &info, &object, |v| strip_owner(v, uid));
                }
                continue;
            }
            if dependent.is_deleting() {
                continue;
            }
            let blocking = dependent.owners.iter().any(|o| o.uid == uid && o.block);
            let mut params = Params::default();
            if foreground && blocking {
                params.propagation_policy = Some("Foreground".to_owned());
            }
            self.controller_delete(GC, &info, &object, &params);
        }
    }

    /// Where a live owner named by an owner reference is stored (same namespace as its dependent,
    /// or cluster-scoped), if it exists with the referenced uid.
    pub(crate) fn owner_location(&self, namespace: &str, owner: &Owner) -> Option<(StorageKey, ObjectKey)> {
        let (group, _) = owner.api_version.rsplit_once('/').unwrap_or(("", &owner.api_version));
        let info = self.registry.by_group_kind(group, &owner.kind)?;
        let ns = if info.namespaced { namespace.to_owned() } else { String::new() };
        let object = (ns, owner.name.clone());
        let key = (**info.storage_key()).clone();
        self.current(&key, &object).filter(|o| o.uid() == owner.uid).map(|_| (key, object))
    }

    /// Releases an owner in foreground deletion once no blocking dependent is left.
    fn check_foreground(&mut self, key: &StorageKey, object: &ObjectKey) {
        let (key, object) = (key.clone(), object.clone());
        let Some(owner) = self.current(&key, &object) else {
            return;
        };
        if !owner.is_deleting() || !owner.finalizers().iter().any(|f| f == FOREGROUND) {
            return;
        }
        let uid = owner.uid();
        let blocked = self.dependents.get(uid).is_some_and(|deps| {
            deps.iter().any(|(k, o)| {
                self.current(k, o).is_some_and(|d| d.owners.iter().any(|r| r.uid == uid && r.block))
            })
        });
        if blocked {
            return;
        }
        if let Some(info) = self.registry.preferred(&key.group, &key.plural) {
            self.controller_update(GC, &info, &object, |v| remove_finalizer(v, FOREGROUND));
        }
    }

    fn orphan_dependents(&mut self, key: &StorageKey, object: &ObjectKey) {
        let Some(owner) = self.current(key, object) else {
            return;
        };
        let uid = owner.uid().to_owned();
        let dependents: Vec<(StorageKey, ObjectKey)> =
            self.dependents.get(&uid).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        for (dep_key, dep) in dependents {
            if let Some(info) = self.registry.preferred(&dep_key.group, &dep_key.plural) {
                self.controller_update(GC, &info, &dep, |v| strip_owner(v, &uid));
            }
        }
        if let Some(info) = self.registry.preferred(&key.group, &key.plural) {
            self.controller_update(GC, &info, object, |v| remove_finalizer(v, ORPHAN));
        }
    }

    /// The namespace controller: delete what is in a terminating namespace; when it is empty, drop
    /// the `kubernetes` finalizer so the namespace goes.
    fn clean_namespace(&mut self, name: &str) {
        let ns_key = (String::new(), name.to_owned());
        let Some(ns) = self.current(&namespaces_key(), &ns_key) else {
            return;
        };
        if !ns.is_deleting() {
            return;
        }
        let mut remaining = false;
        let keys: Vec<StorageKey> = self.stores.keys().cloned().collect();
        for key in keys {
            let contents: Vec<(ObjectKey, bool)> = self
                .stores
                .get(&key)
                .map(|objects| {
                    objects
                        .in_namespace(name)
                        .map(|o| ((o.namespace().to_owned(), o.name().to_owned()), o.is_deleting()))
                        .collect()
                })
                .unwrap_or_default();
            if contents.is_empty() {
                continue;
            }
            let Some(info) = self.registry.preferred(&key.group, &key.plural) else {
                continue;
            };
            if !info.namespaced {
                continue;
            }
            for (object, deleting) in contents {
                if !deleting {
                    self.controller_delete(NAMESPACE_CONTROLLER, &info, &object, &Params::default());
                }
                if self.current(&key, &object).is_some() {
                    remaining = true;
                }
            }
        }
        if remaining {
            return;
        }
        if let Some(info) = self.registry.get("", "v1", "namespaces") {
            self.controller_update(NAMESPACE_CONTROLLER, &info, &ns_key, |v| {
                if let Some(f) = v["spec"]["finalizers"].as_array_mut() {
                    f.retain(|x| x != "kubernetes");
                }
            });
            // With no finalizers of any kind left, the namespace is gone.
            if let Some(ns) = self.current(&namespaces_key(), &ns_key) {
                let spec_empty = ns.value()["spec"]["finalizers"].as_array().is_none_or(Vec::is_empty);
                if spec_empty && ns.finalizers().is_empty() {
                    self.remove(&info, &ns_key);
                    self.journal_op(
                        NAMESPACE_CONTROLLER,
                        Verb::Delete,
                        "namespaces".into(),
                        None,
                        None,
                        Some(name.to_owned()),
                        200,
                        Some(self.rv),
                        None,
                    );
                }
            }
        }
    }

    /// The CRD cleanup: delete the custom objects of a terminating CRD; when none are left, drop the
    /// cleanup finalizer so the CRD goes (and its resource with it).
    fn clean_crd(&mut self, name: &str) {
        let crd_key =
            StorageKey { group: "apiextensions.k8s.io".into(), plural: "customresourcedefinitions".into() };
        let Some(crd) = self.current(&crd_key, &(String::new(), name.to_owned())) else {
            return;
        };
        if !crd.is_deleting() {
            return;
        }
        let value = crd.value();
        let group = value["spec"]["group"].as_str().unwrap_or_default().to_owned();
        let plural = value["spec"]["names"]["plural"].as_str().unwrap_or_default().to_owned();
        let key = StorageKey { group: group.clone(), plural: plural.clone() };
        if let Some(info) = self.registry.preferred(&group, &plural) {
            let objects: Vec<(ObjectKey, bool)> = self
                .stores
                .get(&key)
                .map(|m| {
                    m.iter()
                        .map(|o| ((o.namespace().to_owned(), o.name().to_owned()), o.is_deleting()))
                        .collect()
                })
                .unwrap_or_default();
            for (object, deleting) in objects {
                if !deleting {
                    self.controller_delete(CRD_CONTROLLER, &info, &object, &Params::default());
                }
            }
        }
        if self.stores.get(&key).is_some_and(|m| !m.is_empty()) {
            return;
        }
        if let Some(info) = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions") {
            self.controller_update(CRD_CONTROLLER, &info, &(String::new(), name.to_owned()), |v| {
                remove_finalizer(v, CRD_CLEANUP);
            });
        }
    }

    /// A controller's write: change the current object with `f`; finishes a deletion whose last
    /// finalizer went.
    fn controller_update(
        &mut self,
        actor: &str,
        info: &Arc<ResourceInfo>,
        object: &ObjectKey,
        f: impl FnOnce(&mut Value),
    ) {
        let Some(current) = self.current(info.storage_key(), object) else {
            return;
        };
        let before = current.value();
        let mut after = before.clone();
        f(&mut after);
        if after == before {
            return;
        }
        let done = current.is_deleting()
            && after["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty)
            && after["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
            && !(info.group.is_empty()
                && info.plural == "namespaces"
                && after["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()));
        if done {
            self.remove(info, object);
        } else {
            self.put(info, after, EventType::Modified);
        }
        let ns = (!object.0.is_empty()).then(|| object.0.clone());
        self.journal_op(
            actor,
            Verb::Patch,
            resource_name(info),
            None,
            ns,
            Some(object.1.clone()),
            200,
            Some(self.rv),
            None,
        );
    }

    fn controller_delete(
        &mut self,
        actor: &str,
        info: &Arc<ResourceInfo>,
        object: &ObjectKey,
        params: &Params,
    ) {
        let result = self.delete_object(info, object, params);
        let code = match &result {
            Ok(_) => 200,
            Err(e) => e.code(),
        };
        let ns = (!object.0.is_empty()).then(|| object.0.clone());
        self.journal_op(
            actor,
            Verb::Delete,
            resource_name(info),
            None,
            ns,
            Some(object.1.clone()),
            code,
            Some(self.rv),
            None,
        );
    }
}

fn namespaces_key() -> StorageKey {
    StorageKey { group: String::new(), plural: "namespaces".into() }
}

fn precondition_failed(gr: &GroupResource, name: &str, what: &str, wanted: &str, actual: &str) -> ApiError {
    ApiError::Conflict {
        resource: gr.clone(),
        name: name.to_owned(),
        message: format!(
            "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}"
        ),
    }
}

/// A pod's grace period: the request's, else its spec's, else 30 s; zero for pods never scheduled or
/// already finished (nothing runs them).
fn pod_grace(pod: &Value, requested: Option<i64>) -> i64 {
    let unscheduled = pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
    let finished = matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    if unscheduled || finished {
        return 0;
    }
    requested.or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30).max(0)
}

fn strip_owner(object: &mut Value, uid: &str) {
    if let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() {
        refs.retain(|r| r["uid"].as_str() != Some(uid));
        if refs.is_empty()
            && let Some(meta) = object["metadata"].as_object_mut()
        {
            meta.remove("ownerReferences");
        }
    }
}

fn remove_finalizer(object: &mut Value, finalizer: &str) {
    if let Some(list) = object["metadata"]["finalizers"].as_array_mut() {
        list.retain(|f| f.as_str() != Some(finalizer));
        if list.is_empty()
            && let Some(meta) = object["metadata"].as_object_mut()
        {
            meta.remove("finalizers");
        }
    }
}
