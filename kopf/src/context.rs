//! The one argument every handler gets besides its object: [`Context`], with Kopf's kwargs as
//! methods (`name`, `namespace`, `body`, `spec`, `old`, `new`, `diff`, `retry`, `started`, `runtime`,
//! `patch`, `memo`, a logger whose messages can also become Kubernetes Events).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::watch;

use crate::causation::Reason;
use crate::engines::stopping::Stopped;
use crate::execution::Runtime;
use crate::memo::Memo;
use crate::settings::{Level, Settings};
use crate::structs::diff::Diff;
use crate::structs::ids::HandlerId;
use crate::structs::patch::Patch;
use crate::structs::references::Resource;

/// Everything a handler may want to know or do besides its object. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) resource: Resource,
    pub(crate) body: Arc<Value>,
    pub(crate) reason: Option<Reason>,
    pub(crate) event_type: Option<&'static str>,
    pub(crate) old: Option<Value>,
    pub(crate) new: Option<Value>,
    pub(crate) diff: Diff,
    pub(crate) id: HandlerId,
    pub(crate) retry: u32,
    pub(crate) started: Timestamp,
    pub(crate) runtime: Duration,
    pub(crate) patch: Patch,
    pub(crate) memo: Memo,
    pub(crate) rt: Runtime,
    /// Daemons' and timers' stop flag (never set for other handlers).
    pub(crate) stopped: Stopped,
    /// Daemons' and timers' view of the freshest body.
    pub(crate) live_body: Option<watch::Receiver<Arc<Value>>>,
    /// Whether the handler is a daemon.
    pub(crate) daemon: bool,
    /// A changing handler's sub-handlers.
    pub(crate) children: Option<Arc<crate::execution::subhandlers::Children>>,
    /// Startup handlers' settings, changeable before the operator starts watching.
    pub(crate) settings_slot: Option<Arc<std::sync::Mutex<Settings>>>,
    /// Admission handlers' view of the request under review.
    pub(crate) admission: Option<Arc<crate::engines::admission::Review>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("handler", &self.inner.id)
            .field("resource", &self.inner.resource.name())
            .field("namespace", &self.namespace())
            .field("name", &self.name())
            .field("reason", &self.inner.reason)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self { inner: Arc::new(inner) }
    }

    /// The handler's id.
    pub fn id(&self) -> &str {
        self.inner.id.as_str()
    }

    /// The resource of the object.
    pub fn resource(&self) -> &Resource {
        &self.inner.resource
    }

    /// The whole object as JSON.
    pub fn body(&self) -> &Value {
        &self.inner.body
    }

    /// `metadata`.
    pub fn meta(&self) -> &Value {
        &self.inner.body["metadata"]
    }

    /// `spec` (`null` if absent).
    pub fn spec(&self) -> &Value {
        &self.inner.body["spec"]
    }

    /// `status` (`null` if absent).
    pub fn status(&self) -> &Value {
        &self.inner.body["status"]
    }

    /// `metadata.name`.
    pub fn name(&self) -> Option<&str> {
        self.meta()["name"].as_str()
    }

    /// `metadata.namespace` (`None` for cluster-scoped objects).
    pub fn namespace(&self) -> Option<&str> {
        self.meta()["namespace"].as_str()
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.meta()["uid"].as_str()
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.meta()["labels"][key].as_str()
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.meta()["annotations"][key].as_str()
    }

    /// Why the handler runs (`None` for raw-event handlers).
    pub fn reason(&self) -> Option<Reason> {
        self.inner.reason
    }

    /// For raw-event handlers: `ADDED`, `MODIFIED`, `DELETED`, or `None` for objects of the initial
    /// listing (as Kopf's `type`).
    pub fn event_type(&self) -> Option<&'static str> {
        self.inner.event_type
    }

    /// The essence before the change (`None` on creation); narrowed to the field for field handlers.
    pub fn old(&self) -> Option<&Value> {
        self.inner.old.as_ref()
    }

    /// The essence after the change; narrowed to the field for field handlers.
    #[allow(clippy::new_ret_no_self, reason = "Kopf's name for the new essence")]
    pub fn new(&self) -> Option<&Value> {
        self.inner.new.as_ref()
    }

    /// What changed, in Kopf's format.
    pub fn diff(&self) -> &Diff {
        &self.inner.diff
    }

    /// How many times the handler ran before (0 on the first attempt).
    pub fn retry(&self) -> u32 {
        self.inner.retry
    }

    /// When the handler first started, on the operator's clock.
    pub fn started(&self) -> Timestamp {
        self.inner.started
    }

    /// Time since the first attempt.
    pub fn runtime(&self) -> Duration {
        self.inner.runtime
    }

    /// The patch applied to the object after the handler.
    pub fn patch(&self) -> &Patch {
        &self.inner.patch
    }

    /// The object's memo.
    pub fn memo(&self) -> &Memo {
        &self.inner.memo
    }

    /// The operator's settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.rt.settings
    }

    /// Changes the operator's settings, in a startup handler (Kopf's mutable `settings` there);
    /// whether it could (elsewhere the settings are fixed).
    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) -> bool {
        match &self.inner.settings_slot {
            Some(slot) => {
                f(&mut slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
                true
            }
            None => false,
        }
    }

    pub(crate) fn blocking_limit(&self) -> Option<Arc<tokio::sync::Semaphore>> {
        self.inner.rt.blocking.clone()
    }

    pub(crate) fn rt(&self) -> &Runtime {
        &self.inner.rt
    }

    pub(crate) fn children(&self) -> Option<&Arc<crate::execution::subhandlers::Children>> {
        self.inner.children.as_ref()
    }

    /// A sub-handler's context: the parent's, with the child's id and history.
    pub(crate) fn for_child(&self, id: HandlerId, retry: u32, started: Timestamp, runtime: Duration) -> Self {
        let i = &self.inner;
        Self::from_inner(Inner {
            resource: i.resource.clone(),
            body: i.body.clone(),
            reason: i.reason,
            event_type: i.event_type,
            old: i.old.clone(),
            new: i.new.clone(),
            diff: i.diff.clone(),
            id,
            retry,
            started,
            runtime,
            patch: i.patch.clone(),
            memo: i.memo.clone(),
            rt: i.rt.clone(),
            stopped: i.stopped.clone(),
            live_body: i.live_body.clone(),
            daemon: false,
            children: None,
            settings_slot: None,
            admission: i.admission.clone(),
        })
    }

    /// Runs sub-handlers (Kopf's `kopf.execute()`), each with its own progress under
    /// `<handler>/<child>`: one pending child per call; `Ok` once all have succeeded, otherwise an
    /// error that retries this handler (after the soonest child delay) — return it with `?`.
    /// Finished children are not run again, also after a restart. Only in changing handlers.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kopf::{Body, Context, HandlerError, Operator, Subhandler};
    /// let operator = Operator::new()
    ///     .on_create(|obj: Arc<Body>, ctx: Context| async move {
    ///         let items: Vec<String> = obj["spec"]["items"].as_array().into_iter().flatten()
    ///             .filter_map(|i| i.as_str().map(str::to_owned)).collect();
    ///         let children = items.into_iter().map(|item| {
    ///             Subhandler::new(item.clone(), move |ctx: Context| {
    ///                 let item = item.clone();
    ///                 async move { ctx.info(format!("item {item}")); Ok::<_, HandlerError>(()) }
    ///             })
    ///         });
    ///         ctx.execute(children).await
    ///     })
    ///     .resource("kopfexamples.kopf.dev");
    /// assert!(operator.check().is_ok());
    /// ```
    ///
    /// # Errors
    /// A temporary error while children are pending; a permanent one if any failed for good or
    /// outside a changing handler.
    pub async fn execute(
        &self,
        children: impl IntoIterator<Item = crate::execution::subhandlers::Subhandler>,
    ) -> Result<(), crate::HandlerError> {
        crate::execution::subhandlers::execute(self, children.into_iter().collect()).await
    }

    /// For admission handlers: the operation under review (`None` elsewhere).
    pub fn operation(&self) -> Option<crate::Operation> {
        self.inner.admission.as_ref().map(|a| a.operation)
    }

    /// For admission handlers: the subresource under review (`None` for the main body).
    pub fn subresource(&self) -> Option<&str> {
        self.inner.admission.as_ref().and_then(|a| a.subresource.as_deref())
    }

    /// For admission handlers: whether the request is a dry run (nothing will be stored), so
    /// side effects must be skipped (Kopf's `dryrun`).
    pub fn dryrun(&self) -> bool {
        self.inner.admission.as_ref().is_some_and(|a| a.dryrun)
    }

    /// For admission handlers: who sends the request (`username`, `uid`, `groups`, `extra`, as the
    /// API server says; `null` elsewhere).
    pub fn userinfo(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.inner.admission.as_ref().map_or(&NULL, |a| &a.userinfo)
    }

    /// For admission handlers: the HTTP headers of the webhook request (empty elsewhere).
    pub fn headers(&self) -> &std::collections::BTreeMap<String, String> {
        static EMPTY: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        self.inner.admission.as_ref().map_or(&EMPTY, |a| &a.headers)
    }

    /// For admission handlers: the client certificate of the API server, if it sent one (an
    /// empty object otherwise, as Kopf's `sslpeer`).
    pub fn sslpeer(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.inner.admission.as_ref().map_or(&NULL, |a| &a.sslpeer)
    }

    /// For admission handlers: adds a warning to the review's answer, which the API server passes
    /// to the client (kubectl prints them); ignored elsewhere.
    pub fn add_warning(&self, warning: impl Into<String>) {
        if let Some(admission) = &self.inner.admission {
            admission.warnings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(warning.into());
        }
    }

    /// For admission handlers: the warnings added so far.
    pub fn warnings(&self) -> Vec<String> {
        match &self.inner.admission {
            Some(a) => a.warnings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            None => Vec::new(),
        }
    }

    pub(crate) fn is_daemon(&self) -> bool {
        self.inner.daemon
    }

    /// The index of the index handler with this id (Kopf's index kwargs), if there is one.
    pub fn index(&self, id: &str) -> Option<crate::Index> {
        self.inner.rt.indexes.get(id)
    }

    /// The stop flag of a daemon or timer (Kopf's `stopped`); never set for other handlers.
    pub fn stopped(&self) -> &Stopped {
        &self.inner.stopped
    }

    /// The freshest body the operator has seen: for daemons and timers, updated by every watch
    /// event while they run (Kopf's live body); for other handlers, [`Context::body`].
    pub fn fresh_body(&self) -> Arc<Value> {
        match &self.inner.live_body {
            Some(live) => live.borrow().clone(),
            None => self.inner.body.clone(),
        }
    }

    /// Sleeps on the operator's clock (virtual in KopfRunner tests), whether or not a stop is
    /// requested. In daemons, prefer [`Stopped::wait`], which ends early on a stop.
    pub async fn sleep(&self, duration: Duration) {
        self.inner.rt.activity.sleep_until(tokio::time::Instant::now() + duration).await;
    }

    /// [`Context::sleep`] for blocking daemons ([`crate::blocking`]).
    pub fn sleep_blocking(&self, duration: Duration) {
        self.inner.stopped.sleep_blocking(duration);
    }

    /// The operator's own connection to the API, typed ([`crate::Api`]), for reading and writing
    /// other objects (children, configuration) with the operator's credentials.
    pub fn api(&self) -> crate::Api {
        crate::Api::new(self.inner.rt.client.clone())
    }

    /// Applies what [`Context::patch`] holds now, instead of after the handler (for daemons that
    /// report progress while they run); the patch is empty afterwards.
    ///
    /// # Errors
    /// The API error of the patch request.
    pub async fn apply_patch(&self) -> Result<(), crate::client::Error> {
        let rt = &self.inner.rt;
        let body = self.fresh_body();
        let (namespace, name) = crate::reactor::processing::names(&body);
        let resource = &self.inner.resource;
        let mut sent = |subresource: Option<&'static str>, patch_body: &Value| {
            rt.observe(|| crate::observe::Observation::Patch {
                resource: resource.name(),
                namespace: namespace.clone(),
                name: name.clone(),
                subresource,
                body: patch_body.clone(),
            });
        };
        let patch = &self.inner.patch;
        crate::execution::application::apply(
            rt.client.as_ref(),
            &rt.settings,
            resource,
            &body,
            patch,
            &mut sent,
        )
        .await
        .map(|_| ())
    }

    fn object_label(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{ns}/{}", self.name().unwrap_or_default()),
            None => self.name().unwrap_or_default().to_owned(),
        }
    }

    /// Logs at a level; with `settings.posting.loggers`, also posts a `Logging` Event.
    pub fn log(&self, level: Level, message: impl Into<String>) {
        let message = message.into();
        let object = self.object_label();
        match level {
            Level::Debug => tracing::debug!(object = %object, handler = %self.id(), "[{object}] {message}"),
            Level::Info => tracing::info!(object = %object, handler = %self.id(), "[{object}] {message}"),
            Level::Warning => tracing::warn!(object = %object, handler = %self.id(), "[{object}] {message}"),
            Level::Error | Level::Critical => {
                tracing::error!(object = %object, handler = %self.id(), "[{object}] {message}")
            }
        }
        crate::execution::post_log(&self.inner.rt, &self.inner.body, level, &message);
    }

    /// Logs at debug level.
    pub fn debug(&self, message: impl Into<String>) {
        self.log(Level::Debug, message);
    }

    /// Logs at info level.
    pub fn info(&self, message: impl Into<String>) {
        self.log(Level::Info, message);
    }

    /// Logs a warning.
    pub fn warning(&self, message: impl Into<String>) {
        self.log(Level::Warning, message);
    }

    /// Logs an error.
    pub fn error(&self, message: impl Into<String>) {
        self.log(Level::Error, message);
    }

    /// Posts a Kubernetes Event about the object (Kopf's `kopf.event`; gated by
    /// `settings.posting.enabled` only).
    pub fn event(&self, event_type: &str, reason: &str, message: &str) {
        if self.inner.rt.settings.posting.enabled {
            self.inner.rt.poster.post(&self.inner.body, event_type, reason, message);
        }
    }
}
