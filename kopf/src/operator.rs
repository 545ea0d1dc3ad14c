//! The public builder: [`Operator`]. Each Kopf decorator is a method registering a closure
//! (`on_create`, `on_update`, `on_delete`, `on_resume`, `on_field`, `on_event`, `timer`); the
//! methods after it (`id`, `retries`, `timeout`, `backoff`, `errors`, `labels`, `annotations`,
//! `when`, `field`, `value`, `old`, `new`, `resource`, `optional`, `deleted`, …) configure the handler
//! registered last, as Kopf's decorator arguments do. Misconfiguration is collected and reported as
//! [`RegistrationError`]s when the operator is checked or run — never a panic.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::activities::ActivityKind;
use crate::context::Context;
use crate::engines::admission::Operation;
use crate::error::{ErrorsMode, HandlerError, RegistrationError};
use crate::memo::Memo;
use crate::registry::{
    Changing, DaemonSpec, DecodeCache, Filters, Handler, Invoker, Kind, MetaFilter, Options, Registry,
    TimerSpec, ValueFilter, WebhookKind, WebhookSpec, WhenArgs,
};
use crate::settings::Settings;
use crate::structs::ids::HandlerId;
use crate::structs::references::ResourceSelector;

/// The object type a handler receives: any typed Kubernetes resource (`#[derive(CustomResource)]`
/// types and k8s-openapi built-ins), or [`Body`] for untyped objects of a resource named with
/// `.resource("...")`.
pub trait HandlerObject: DeserializeOwned + Send + Sync + 'static {
    /// The resource the type belongs to, if the type says.
    fn selector() -> Option<ResourceSelector>;
}

impl<K> HandlerObject for K
where
    K: kube::Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
{
    fn selector() -> Option<ResourceSelector> {
        Some(ResourceSelector::Exact {
            group: K::group(&()).into_owned(),
            version: K::version(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
        })
    }
}

/// An untyped object: the JSON body of any resource.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct Body(pub Value);

impl std::ops::Deref for Body {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl HandlerObject for Body {
    fn selector() -> Option<ResourceSelector> {
        None
    }
}

/// What a handler may return on success: nothing (`()`), or a JSON value stored in
/// `status.<handler-id>` (a mapping is merged into it, anything else replaces it).
pub trait HandlerOutput {
    /// Whether a value of this type can be a result to store (`()` never is). The generated RBAC
    /// grants writes to the status subresource only for handlers that can store results.
    const STORES_RESULTS: bool = true;

    /// The result to store, if any.
    fn into_result(self) -> Option<Value>;
}

impl HandlerOutput for () {
    const STORES_RESULTS: bool = false;

    fn into_result(self) -> Option<Value> {
        None
    }
}

impl HandlerOutput for Value {
    fn into_result(self) -> Option<Value> {
        (!self.is_null()).then_some(self)
    }
}

impl HandlerOutput for Option<Value> {
    fn into_result(self) -> Option<Value> {
        self.filter(|v| !v.is_null())
    }
}

/// A handler's return type: `Result<R, E>` with `R:` [`HandlerOutput`] and `E: Into<HandlerError>`.
pub trait HandlerReturn {
    /// Whether a success can carry a result to store ([`HandlerOutput::STORES_RESULTS`]).
    const STORES_RESULTS: bool = true;

    /// The outcome.
    fn into_outcome(self) -> Result<Option<Value>, HandlerError>;
}

impl<R: HandlerOutput, E: Into<HandlerError>> HandlerReturn for Result<R, E> {
    const STORES_RESULTS: bool = R::STORES_RESULTS;

    fn into_outcome(self) -> Result<Option<Value>, HandlerError> {
        self.map(HandlerOutput::into_result).map_err(Into::into)
    }
}

/// [`erase`], with whether the handler's successes can carry results.
fn erased<K, F, Fut>(handler: F) -> (Invoker, bool)
where
    K: HandlerObject,
    F: Fn(Arc<K>, Context) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerReturn,
{
    (erase(handler), <Fut::Output as HandlerReturn>::STORES_RESULTS)
}

fn erase<K, F, Fut>(handler: F) -> Invoker
where
    K: HandlerObject,
    F: Fn(Arc<K>, Context) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerReturn,
{
    Arc::new(move |body: Arc<Value>, cache: &DecodeCache, ctx: Context| match cache.decode::<K>(&body) {
        Ok(object) => {
            let future = handler(object, ctx);
            Box::pin(async move { future.await.into_outcome() })
        }
        Err(e) => {
            let message = format!("the object does not decode as {}: {e}", std::any::type_name::<K>());
            Box::pin(std::future::ready(Err(HandlerError::permanent(message))))
        }
    })
}

/// Runs a blocking closure as a handler, on tokio's blocking pool (as Kopf runs sync handlers in
/// an executor), limited by `settings.execution.max_workers`. A panic in it is a handler failure.
///
/// ```
/// use kopf::{Body, Context, Operator};
/// let operator = Operator::new()
///     .on_create(kopf::blocking(|_obj: std::sync::Arc<Body>, _ctx: Context| {
///         std::thread::yield_now(); // some blocking work
///         Ok::<_, kopf::HandlerError>(())
///     }))
///     .resource("kopfexamples.kopf.dev");
/// assert!(operator.check().is_ok());
/// ```
pub fn blocking<K, F, R>(handler: F) -> impl Fn(Arc<K>, Context) -> BlockingFuture + Send + Sync + 'static
where
    K: Send + Sync + 'static,
    F: Fn(Arc<K>, Context) -> R + Send + Sync + 'static,
    R: HandlerReturn + Send + 'static,
{
    let handler = Arc::new(handler);
    move |object: Arc<K>, ctx: Context| {
        let handler = handler.clone();
        if ctx.is_daemon() {
            // A daemon lives long and waits on the operator's clock: its own thread, bridged.
            return BlockingFuture(Box::pin(crate::engines::bridge::run(ctx, move |ctx| {
                handler(object, ctx).into_outcome()
            })));
        }
        let limit = ctx.blocking_limit();
        BlockingFuture(Box::pin(async move {
            let _permit = match limit {
                Some(semaphore) => semaphore.acquire_owned().await.ok(),
                None => None,
            };
            match tokio::task::spawn_blocking(move || handler(object, ctx).into_outcome()).await {
                Ok(outcome) => outcome,
                Err(e) if e.is_panic() => Err(HandlerError::Other(panic_message(e.into_panic()).into())),
                Err(e) => Err(HandlerError::Other(Box::new(e))),
            }
        }))
    }
}

/// The future of a [`blocking`] handler.
pub struct BlockingFuture(crate::client::BoxFuture<'static, Result<Option<Value>, HandlerError>>);

impl std::fmt::Debug for BlockingFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingFuture")
    }
}

impl Future for BlockingFuture {
    type Output = Result<Option<Value>, HandlerError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => format!("the handler panicked: {s}"),
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => format!("the handler panicked: {s}"),
            Err(_) => "the handler panicked".to_owned(),
        },
    }
}

/// A whole operator: handlers, settings and the operator-wide memo.
///
/// ```
/// use std::sync::Arc;
/// use kopf::{Body, Context, HandlerError, Operator};
/// use serde_json::json;
///
/// let operator = Operator::new()
///     .on_create(|obj: Arc<Body>, ctx: Context| async move {
///         ctx.info(format!("created with field={}", obj["spec"]["field"]));
///         Ok::<_, HandlerError>(json!({"message": "hello"}))
///     })
///     .resource("kopfexamples.kopf.dev")
///     .id("create_fn");
/// assert!(operator.check().is_ok());
/// ```
#[must_use]
#[derive(Clone)]
pub struct Operator {
    pub(crate) registry: Registry,
    pub(crate) settings: Settings,
    pub(crate) memo: Memo,
    errors: Vec<RegistrationError>,
    /// Per handler: (explicit id, base id) before the field suffix is applied at check time.
    ids: Vec<(bool, String)>,
    last: Option<usize>,
    crds: Vec<Value>,
    /// Permissions the handlers' own API calls need: (API groups, resources, verbs).
    pub(crate) rbac_rules: Vec<(Vec<String>, Vec<String>, Vec<String>)>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator").field("handlers", &self.registry.handlers).finish_non_exhaustive()
    }
}

impl Default for Operator {
    fn default() -> Self {
        Self::new()
    }
}

fn default_id<F>(location: &Location<'_>) -> String {
    let name = std::any::type_name::<F>();
    if !name.contains('{')
        && !name.contains('<')
        && let Some(last) = name.rsplit("::").next()
    {
        return last.to_owned();
    }
    let stem =
        std::path::Path::new(location.file()).file_stem().and_then(|s| s.to_str()).unwrap_or("handler");
    format!("{stem}_{}_{}", location.line(), location.column())
}

macro_rules! handler_method {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[track_caller]
        pub fn $name<K, F, Fut>(self, handler: F) -> Self
        where
            K: HandlerObject,
            F: Fn(Arc<K>, Context) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: HandlerReturn,
        {
            let location = Location::caller();
            let id = default_id::<F>(location);
            self.register(K::selector(), $kind, erased(handler), id, location)
        }
    };
}

impl Operator {
    /// An operator with no handlers and Kopf's default settings.
    pub fn new() -> Self {
        Self {
            registry: Registry::default(),
            settings: Settings::default(),
            memo: Memo::default(),
            errors: Vec::new(),
            ids: Vec::new(),
            last: None,
            crds: Vec::new(),
            rbac_rules: Vec::new(),
        }
    }

    /// Declares a CustomResourceDefinition the operator serves, from its Rust type: printed by the
    /// `manifests` command and installed by developer mode (`--fake-cluster`). The operator does
    /// not install CRDs in a real cluster by itself.
    ///
    /// ```
    /// # use kube::CustomResource;
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(CustomResource, Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
    /// #[kube(group = "example.com", version = "v1", kind = "Thing", namespaced)]
    /// struct ThingSpec { size: u32 }
    ///
    /// let operator = kopf::Operator::new().with_crd::<Thing>();
    /// assert_eq!(operator.crds()[0]["metadata"]["name"], "things.example.com");
    /// ```
    pub fn with_crd<K: kube::CustomResourceExt>(mut self) -> Self {
        self.crds.push(serde_json::to_value(K::crd()).unwrap_or_default());
        self
    }

    /// Declares a CustomResourceDefinition given as JSON (see [`Operator::with_crd`]).
    pub fn with_crd_json(mut self, crd: Value) -> Self {
        self.crds.push(crd);
        self
    }

    /// Declares a permission the handlers' own API calls need — children made through
    /// [`Context::api`], Events posted with [`Context::event`], status written with
    /// [`Context::patch`] by a handler that returns nothing — for the generated RBAC
    /// ([`crate::rbac`]), granted wherever the operator serves (cluster-wide, or in each served
    /// namespace). What the framework itself does needs no declaration.
    ///
    /// ```
    /// let operator = kopf::Operator::new().rbac_rule(&[""], &["pods"], &["create"]);
    /// let rbac = kopf::rbac(&operator, &[], &kopf::RbacOptions::default());
    /// assert_eq!(rbac.permissions().map(|p| p.to_string()).collect::<Vec<_>>(), ["create pods (core) cluster-wide"]);
    /// ```
    pub fn rbac_rule(mut self, api_groups: &[&str], resources: &[&str], verbs: &[&str]) -> Self {
        let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        self.rbac_rules.push((owned(api_groups), owned(resources), owned(verbs)));
        self
    }

    /// The declared CustomResourceDefinitions.
    pub fn crds(&self) -> &[Value] {
        &self.crds
    }

    fn register(
        mut self,
        selector: Option<ResourceSelector>,
        kind: Kind,
        invoker: (Invoker, bool),
        id: String,
        location: &Location<'_>,
    ) -> Self {
        let (invoker, stores_results) = invoker;
        self.registry.handlers.push(Handler {
            id: HandlerId::new(id.clone()),
            kind,
            selector,
            filters: Filters::default(),
            options: Options::default(),
            invoker,
            stores_results,
            location: location.to_string(),
        });
        self.ids.push((false, id));
        self.last = Some(self.registry.handlers.len() - 1);
        self
    }

    handler_method!(
        /// Registers a creation handler (Kopf's `@kopf.on.create`): runs once when an object is first
        /// seen without a diff-base.
        on_create, Kind::Changing(Changing::Create)
    );
    handler_method!(
        /// Registers an update handler (`@kopf.on.update`): runs when the object's essence changes.
        on_update, Kind::Changing(Changing::Update)
    );
    handler_method!(
        /// Registers a deletion handler (`@kopf.on.delete`): kopf puts its finalizer on matching objects
        /// and removes it once deletion handlers are done (see [`Operator::optional`]).
        on_delete, Kind::Changing(Changing::Delete { optional: false })
    );
    handler_method!(
        /// Registers a resume handler (`@kopf.on.resume`): runs for objects found by this process's
        /// initial listing (not during deletion unless [`Operator::deleted`]).
        on_resume, Kind::Changing(Changing::Resume { deleted: false })
    );
    handler_method!(
        /// Registers a raw-event handler (`@kopf.on.event`): every watch event and every listed
        /// object; errors are logged and ignored.
        on_event, Kind::Watching
    );
    handler_method!(
        /// Registers an index handler (`@kopf.index`): runs on every event of every object; what it
        /// returns goes into the index named by its id, which every handler reads with
        /// [`Context::index`] (see [`crate::Index`]). Other handlers of the operator wait until
        /// every indexed resource is listed and indexed once. Errors are ignored by default.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use kopf::{Body, Context, HandlerError, Operator};
        /// use serde_json::json;
        /// let operator = Operator::new()
        ///     .index(|pod: Arc<Body>, _ctx: Context| async move {
        ///         let app = pod["metadata"]["labels"]["app"].as_str().unwrap_or("none").to_owned();
        ///         Ok::<_, HandlerError>(json!({app: pod["metadata"]["name"]}))
        ///     })
        ///     .resource("pods")
        ///     .id("pods_by_app");
        /// assert!(operator.check().is_ok());
        /// ```
        index, Kind::Indexing
    );

    handler_method!(
        /// Registers a validating admission handler (`@kopf.on.validate`): the operator's webhook
        /// server calls it before the API server stores a change (see
        /// [`crate::AdmissionSettings`]); an error rejects the change — with its message, and the
        /// code of [`HandlerError::admission`]. The context has the request's
        /// [`Context::operation`], [`Context::old`]/[`Context::new`] objects, [`Context::dryrun`],
        /// [`Context::userinfo`], and takes warnings ([`Context::add_warning`]). Options:
        /// [`Operator::operations`], [`Operator::subresource`], [`Operator::persistent`],
        /// [`Operator::side_effects`], [`Operator::ignore_failures`] and the filters; errors are
        /// never retried.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use kopf::{Body, Context, HandlerError, Operation, Operator};
        /// let operator = Operator::new()
        ///     .on_validate(|obj: Arc<Body>, _ctx: Context| async move {
        ///         if obj["spec"]["field"].as_str().unwrap_or_default().is_empty() {
        ///             return Err(HandlerError::admission("spec.field must not be empty").with_code(400));
        ///         }
        ///         Ok(())
        ///     })
        ///     .resource("kopfexamples.kopf.dev")
        ///     .operations([Operation::Create, Operation::Update]);
        /// assert!(operator.check().is_ok());
        /// ```
        on_validate, Kind::Webhook(WebhookSpec::new(WebhookKind::Validating))
    );
    handler_method!(
        /// Registers a mutating admission handler (`@kopf.on.mutate`): what it puts into
        /// [`Context::patch`] is answered to the API server as a JSON patch, applied before the
        /// object is validated and stored. Mutating handlers are not called for deletions unless
        /// registered for `DELETE` alone. See [`Operator::on_validate`] for the rest.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use kopf::{Body, Context, HandlerError, Operator};
        /// use serde_json::json;
        /// let operator = Operator::new()
        ///     .on_mutate(|_obj: Arc<Body>, ctx: Context| async move {
        ///         ctx.patch().merge(json!({"metadata": {"labels": {"mutated": "yes"}}}));
        ///         Ok::<_, HandlerError>(())
        ///     })
        ///     .resource("kopfexamples.kopf.dev");
        /// assert!(operator.check().is_ok());
        /// ```
        on_mutate, Kind::Webhook(WebhookSpec::new(WebhookKind::Mutating))
    );

    #[track_caller]
    fn webhook_option(self, option: &'static str, f: impl FnOnce(&mut Handler) + Send + 'static) -> Self {
        let location = Location::caller().to_string();
        self.modify(option, move |h, _| match h.kind {
            Kind::Webhook(_) => {
                f(h);
                Ok(())
            }
            other => Err(RegistrationError::NotApplicable { option, kind: other.name(), location }),
        })
    }

    /// The operations an admission handler is for (Kopf's `operations=`; default: all).
    #[track_caller]
    pub fn operations(self, operations: impl IntoIterator<Item = Operation>) -> Self {
        let operations: Vec<Operation> = operations.into_iter().collect();
        self.webhook_option("operations", move |h| {
            if let Kind::Webhook(spec) = &mut h.kind {
                for op in operations {
                    spec.operations.insert(op);
                }
            }
        })
    }

    /// The subresource an admission handler is for (`status`, `scale`, …; `*` for any); without
    /// it, only the main body (Kopf's `subresource=`).
    #[track_caller]
    pub fn subresource(self, subresource: &str) -> Self {
        let subresource = subresource.to_owned();
        self.webhook_option("subresource", move |h| h.filters.subresource = Some(subresource))
    }

    /// Keeps the admission handler's webhook in the managed configuration when the operator
    /// exits (Kopf's `persistent=True`): the API server keeps calling it, and with
    /// [`Operator::ignore_failures`] unset, rejects changes while the operator is away.
    #[track_caller]
    pub fn persistent(self) -> Self {
        self.webhook_option("persistent", |h| {
            if let Kind::Webhook(spec) = &mut h.kind {
                spec.persistent = true;
            }
        })
    }

    /// Declares that the admission handler has side effects, which it skips on dry runs
    /// ([`Context::dryrun`]); the webhook gets `sideEffects: NoneOnDryRun` instead of `None`
    /// (Kopf's `side_effects=True`).
    #[track_caller]
    pub fn side_effects(self) -> Self {
        self.webhook_option("side_effects", |h| {
            if let Kind::Webhook(spec) = &mut h.kind {
                spec.side_effects = true;
            }
        })
    }

    /// Lets the API server admit changes when the webhook cannot be called (`failurePolicy:
    /// Ignore` instead of `Fail`; Kopf's `ignore_failures=True`).
    #[track_caller]
    pub fn ignore_failures(self) -> Self {
        self.webhook_option("ignore_failures", |h| {
            if let Kind::Webhook(spec) = &mut h.kind {
                spec.ignore_failures = true;
            }
        })
    }

    /// Registers a field handler (`@kopf.on.field`): runs when the field's value changes (also on
    /// creation when the field is present). Its id gets the `/<field>` suffix.
    #[track_caller]
    pub fn on_field<K, F, Fut>(self, field: &str, handler: F) -> Self
    where
        K: HandlerObject,
        F: Fn(Arc<K>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        let location = Location::caller();
        let id = default_id::<F>(location);
        let mut this =
            self.register(K::selector(), Kind::Changing(Changing::Field), erased(handler), id, location);
        if let Some(i) = this.last {
            this.registry.handlers[i].filters.field = Some(split_field(field));
        }
        this
    }

    /// Registers a timer (`@kopf.timer`): runs every `interval` while the object exists (see
    /// [`Operator::idle`], [`Operator::initial_delay`], [`Operator::sharp`]). Timers put kopf's
    /// finalizer on their objects, as in Kopf.
    #[track_caller]
    pub fn timer<K, F, Fut>(self, interval: Duration, handler: F) -> Self
    where
        K: HandlerObject,
        F: Fn(Arc<K>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        let location = Location::caller();
        let id = default_id::<F>(location);
        let spec = TimerSpec { interval: Some(interval), idle: None, initial_delay: None, sharp: false };
        self.register(K::selector(), Kind::Timer(spec), erased(handler), id, location)
    }

    /// Registers a daemon (`@kopf.daemon`): runs for as long as the object exists and matches the
    /// filters, started on creation or when the operator starts, stopped on deletion (kopf's
    /// finalizer keeps the object until it has exited), on a filter mismatch and on exit. Loop on
    /// [`Context::stopped`]; a normal return ends the daemon for good, an error restarts it after
    /// its backoff. See [`Operator::initial_delay`], [`Operator::cancellation_backoff`],
    /// [`Operator::cancellation_timeout`], [`Operator::cancellation_polling`]; blocking daemons go
    /// through [`blocking`] and wait with [`crate::Stopped::wait_blocking`].
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use kopf::{Body, Context, HandlerError, Operator};
    /// let operator = Operator::new()
    ///     .daemon(|_obj: Arc<Body>, ctx: Context| async move {
    ///         while !ctx.stopped().wait(Duration::from_secs(10)).await {
    ///             ctx.info("still here");
    ///         }
    ///         Ok::<_, HandlerError>(())
    ///     })
    ///     .resource("kopfexamples.kopf.dev")
    ///     .cancellation_backoff(Duration::from_secs(5));
    /// assert!(operator.check().is_ok());
    /// ```
    #[track_caller]
    pub fn daemon<K, F, Fut>(self, handler: F) -> Self
    where
        K: HandlerObject,
        F: Fn(Arc<K>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        let location = Location::caller();
        let id = default_id::<F>(location);
        self.register(K::selector(), Kind::Daemon(DaemonSpec::default()), erased(handler), id, location)
    }

    #[track_caller]
    fn activity<F, Fut>(self, kind: ActivityKind, handler: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        let location = Location::caller();
        let id = default_id::<F>(location);
        let invoker: Invoker = Arc::new(move |_body: Arc<Value>, _cache: &DecodeCache, ctx: Context| {
            let future = handler(ctx);
            Box::pin(async move { future.await.into_outcome() })
        });
        self.register(None, Kind::Activity(kind), (invoker, false), id, location)
    }

    /// Registers a startup handler (`@kopf.on.startup`): runs before any watching, retried until it
    /// succeeds (a permanent failure stops the operator); it may change the settings with
    /// [`Context::update_settings`] and fill the operator's memo.
    ///
    /// ```
    /// use kopf::{Context, HandlerError, Operator};
    /// let operator = Operator::new().on_startup(|ctx: Context| async move {
    ///     ctx.update_settings(|s| s.posting.enabled = false);
    ///     Ok::<_, HandlerError>(())
    /// });
    /// assert!(operator.check().is_ok());
    /// ```
    #[track_caller]
    pub fn on_startup<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        self.activity(ActivityKind::Startup, handler)
    }

    /// Registers a cleanup handler (`@kopf.on.cleanup`): runs once the operator has stopped
    /// watching, at a graceful exit.
    #[track_caller]
    pub fn on_cleanup<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        self.activity(ActivityKind::Cleanup, handler)
    }

    /// Registers a login handler (`@kopf.on.login`): returns a [`crate::ConnectionInfo`] (as its
    /// result) that the operator's API client uses instead of the client it was given; called
    /// again when the API answers 401.
    ///
    /// ```
    /// use kopf::{ConnectionInfo, Context, HandlerError, Operator};
    /// let operator = Operator::new().on_login(|_ctx: Context| async move {
    ///     let info = ConnectionInfo::with_token("https://10.0.0.1:6443", "s3cret");
    ///     Ok::<_, HandlerError>(serde_json::to_value(info).expect("serializable"))
    /// });
    /// assert!(operator.check().is_ok());
    /// ```
    #[track_caller]
    pub fn on_login<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        self.activity(ActivityKind::Login, handler)
    }

    /// Registers a probe handler (`@kopf.on.probe`): its result is the value under its id in
    /// [`crate::RunningOperator::probe`] (Kopf's liveness endpoint), refreshed at most every 10 s.
    #[track_caller]
    pub fn on_probe<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerReturn,
    {
        self.activity(ActivityKind::Probe, handler)
    }

    pub(crate) fn has_login_handlers(&self) -> bool {
        self.registry.handlers.iter().any(|h| h.kind == Kind::Activity(ActivityKind::Login))
    }

    #[track_caller]
    fn modify(
        mut self,
        option: &'static str,
        f: impl FnOnce(&mut Handler, &mut (bool, String)) -> Result<(), RegistrationError>,
    ) -> Self {
        let location = Location::caller().to_string();
        match self.last {
            Some(i) => {
                if let Err(e) = f(&mut self.registry.handlers[i], &mut self.ids[i]) {
                    self.errors.push(e);
                }
            }
            None => self.errors.push(RegistrationError::NoHandler { option, location }),
        }
        self
    }

    /// Sets the handler's id (Kopf's `id=`); field handlers still get the `/<field>` suffix.
    #[track_caller]
    pub fn id(self, id: &str) -> Self {
        let id = id.to_owned();
        let location = Location::caller().to_string();
        self.modify("id", move |_, ids| {
            if id.is_empty() {
                return Err(RegistrationError::Invalid {
                    option: "id",
                    reason: "an id must not be empty".into(),
                    location,
                });
            }
            *ids = (true, id);
            Ok(())
        })
    }

    /// Names the resource of a handler on untyped objects ([`Body`]), or overrides a typed one:
    /// `plural`, `plural.group`, `group/version/plural`, a kind or a short name.
    #[track_caller]
    pub fn resource(self, selector: &str) -> Self {
        let selector = ResourceSelector::parse(selector);
        self.modify("resource", move |h, _| {
            h.selector = Some(selector);
            Ok(())
        })
    }

    /// Fails the handler for good after this many attempts.
    #[track_caller]
    pub fn retries(self, retries: u32) -> Self {
        self.modify("retries", move |h, _| {
            h.options.retries = Some(retries);
            Ok(())
        })
    }

    /// Fails the handler for good once this much time has passed since its first attempt.
    #[track_caller]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.modify("timeout", move |h, _| {
            h.options.timeout = Some(timeout);
            Ok(())
        })
    }

    /// The retry delay after arbitrary errors (default: `settings.execution.default_backoff`).
    #[track_caller]
    pub fn backoff(self, backoff: Duration) -> Self {
        self.modify("backoff", move |h, _| {
            h.options.backoff = Some(backoff);
            Ok(())
        })
    }

    /// How arbitrary errors are treated (default: temporary; raw-event handlers always ignore them).
    #[track_caller]
    pub fn errors(self, mode: ErrorsMode) -> Self {
        self.modify("errors", move |h, _| {
            h.options.errors = Some(mode);
            Ok(())
        })
    }

    /// Only objects whose label matches: a value (`"x"`), or [`MetaFilter::Present`],
    /// [`MetaFilter::Absent`], [`MetaFilter::Predicate`]. Several calls all apply.
    #[track_caller]
    pub fn labels(self, key: &str, filter: impl Into<MetaFilter>) -> Self {
        let (key, filter) = (key.to_owned(), filter.into());
        self.modify("labels", move |h, _| {
            h.filters.labels.push((key, filter));
            Ok(())
        })
    }

    /// Only objects whose annotation matches (see [`Operator::labels`]).
    #[track_caller]
    pub fn annotations(self, key: &str, filter: impl Into<MetaFilter>) -> Self {
        let (key, filter) = (key.to_owned(), filter.into());
        self.modify("annotations", move |h, _| {
            h.filters.annotations.push((key, filter));
            Ok(())
        })
    }

    /// Only when the predicate holds (Kopf's `when=`).
    #[track_caller]
    pub fn when(self, predicate: impl Fn(&WhenArgs<'_>) -> bool + Send + Sync + 'static) -> Self {
        let predicate: crate::registry::When = Arc::new(predicate);
        self.modify("when", move |h, _| {
            h.filters.when = Some(predicate);
            Ok(())
        })
    }

    /// Restricts the handler to a field (dotted path): update handlers then run only when it
    /// changes, the id gets the `/<field>` suffix, and the field joins the essence.
    #[track_caller]
    pub fn field(self, field: &str) -> Self {
        let field = split_field(field);
        self.modify("field", move |h, _| {
            h.filters.field = Some(field);
            Ok(())
        })
    }

    /// Only when the field (see [`Operator::field`]) has this value (old or new for changing handlers).
    #[track_caller]
    pub fn value(self, filter: ValueFilter) -> Self {
        self.modify("value", move |h, _| {
            h.filters.value = Some(filter);
            Ok(())
        })
    }

    /// Only when the old value of the field matches.
    #[track_caller]
    pub fn old(self, filter: ValueFilter) -> Self {
        self.modify("old", move |h, _| {
            h.filters.old = Some(filter);
            Ok(())
        })
    }

    /// Only when the new value of the field matches.
    #[track_caller]
    pub fn new_value(self, filter: ValueFilter) -> Self {
        self.modify("new", move |h, _| {
            h.filters.new = Some(filter);
            Ok(())
        })
    }

    /// Makes a deletion handler optional: it puts no finalizer on objects and runs only if
    /// something else did (Kopf's `optional=True`).
    #[track_caller]
    pub fn optional(self) -> Self {
        let location = Location::caller().to_string();
        self.modify("optional", move |h, _| match &mut h.kind {
            Kind::Changing(Changing::Delete { optional }) => {
                *optional = true;
                Ok(())
            }
            other => {
                Err(RegistrationError::NotApplicable { option: "optional", kind: other.name(), location })
            }
        })
    }

    /// Lets a resume handler also run during deletion (Kopf's `deleted=True`).
    #[track_caller]
    pub fn deleted(self) -> Self {
        let location = Location::caller().to_string();
        self.modify("deleted", move |h, _| match &mut h.kind {
            Kind::Changing(Changing::Resume { deleted }) => {
                *deleted = true;
                Ok(())
            }
            other => {
                Err(RegistrationError::NotApplicable { option: "deleted", kind: other.name(), location })
            }
        })
    }

    #[track_caller]
    fn timer_option(self, option: &'static str, f: impl FnOnce(&mut TimerSpec) + Send + 'static) -> Self {
        let location = Location::caller().to_string();
        self.modify(option, move |h, _| match &mut h.kind {
            Kind::Timer(spec) => {
                f(spec);
                Ok(())
            }
            other => Err(RegistrationError::NotApplicable { option, kind: other.name(), location }),
        })
    }

    /// A timer runs only after the object has not changed (in essence) for this long.
    #[track_caller]
    pub fn idle(self, idle: Duration) -> Self {
        self.timer_option("idle", move |s| s.idle = Some(idle))
    }

    /// A timer's or daemon's first run waits this long (interrupted by a stop).
    #[track_caller]
    pub fn initial_delay(self, delay: Duration) -> Self {
        let location = Location::caller().to_string();
        self.modify("initial_delay", move |h, _| match &mut h.kind {
            Kind::Timer(spec) => {
                spec.initial_delay = Some(delay);
                Ok(())
            }
            Kind::Daemon(spec) => {
                spec.initial_delay = Some(delay);
                Ok(())
            }
            other => Err(RegistrationError::NotApplicable {
                option: "initial_delay",
                kind: other.name(),
                location,
            }),
        })
    }

    #[track_caller]
    fn daemon_option(self, option: &'static str, f: impl FnOnce(&mut DaemonSpec) + Send + 'static) -> Self {
        let location = Location::caller().to_string();
        self.modify(option, move |h, _| match &mut h.kind {
            Kind::Daemon(spec) => {
                f(spec);
                Ok(())
            }
            other => Err(RegistrationError::NotApplicable { option, kind: other.name(), location }),
        })
    }

    /// After a stop request, how long a daemon may go on before it is cancelled.
    #[track_caller]
    pub fn cancellation_backoff(self, backoff: Duration) -> Self {
        self.daemon_option("cancellation_backoff", move |s| s.cancellation_backoff = Some(backoff))
    }

    /// How long a blocking daemon (which cannot be cancelled) is waited for after its cancellation
    /// before it is abandoned and its object released (default: forever).
    #[track_caller]
    pub fn cancellation_timeout(self, timeout: Duration) -> Self {
        self.daemon_option("cancellation_timeout", move |s| s.cancellation_timeout = Some(timeout))
    }

    /// How often a blocking daemon that is not exiting is reported while it is waited for
    /// (default: `settings.background.cancellation_polling`).
    #[track_caller]
    pub fn cancellation_polling(self, polling: Duration) -> Self {
        self.daemon_option("cancellation_polling", move |s| s.cancellation_polling = Some(polling))
    }

    /// A timer runs on a fixed grid (`interval - elapsed % interval`), not `interval` after each run.
    #[track_caller]
    pub fn sharp(self) -> Self {
        self.timer_option("sharp", |s| s.sharp = true)
    }

    /// Changes the settings.
    pub fn settings(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        self
    }

    /// Replaces the operator-wide memo (copied into each object's memo at first sight).
    pub fn memo(mut self, memo: Memo) -> Self {
        self.memo = memo;
        self
    }

    /// Checks the registration; the errors found, if any.
    ///
    /// # Errors
    /// Every misconfiguration, with where it was registered.
    pub fn check(&self) -> Result<(), Vec<RegistrationError>> {
        let mut errors = self.errors.clone();
        let mut seen: Vec<(String, String, &'static str, String)> = Vec::new();
        for (i, h) in self.registry.handlers.iter().enumerate() {
            let id = self.final_id(i).to_string();
            let Some(selector) = &h.selector else {
                if !matches!(h.kind, Kind::Activity(_)) {
                    errors.push(RegistrationError::NoResource { location: h.location.clone() });
                }
                continue;
            };
            if h.filters.value.is_some() && (h.filters.old.is_some() || h.filters.new.is_some()) {
                errors.push(RegistrationError::Invalid {
                    option: "value",
                    reason: "value= cannot be combined with old=/new=".into(),
                    location: h.location.clone(),
                });
            }
            if h.filters.value.is_some() && h.filters.field.is_none() {
                errors.push(RegistrationError::Invalid {
                    option: "value",
                    reason: "value= needs field=".into(),
                    location: h.location.clone(),
                });
            }
            if let Kind::Timer(spec) = h.kind
                && spec.interval.is_some_and(|i| i.is_zero())
            {
                errors.push(RegistrationError::Invalid {
                    option: "interval",
                    reason: "a timer interval must be positive".into(),
                    location: h.location.clone(),
                });
            }
            if matches!(h.kind, Kind::Webhook(_)) {
                let o = &h.options;
                let given = [
                    ("retries", o.retries.is_some()),
                    ("timeout", o.timeout.is_some()),
                    ("backoff", o.backoff.is_some()),
                    ("errors", o.errors.is_some()),
                ];
                for (option, _) in given.into_iter().filter(|(_, set)| *set) {
                    errors.push(RegistrationError::NotApplicable {
                        option,
                        kind: h.kind.name(),
                        location: h.location.clone(),
                    });
                }
            }
            let key = (id, selector.to_string(), h.kind.name(), h.location.clone());
            if let Some(first) = seen.iter().find(|s| s.0 == key.0 && s.1 == key.1 && s.2 == key.2) {
                errors.push(RegistrationError::DuplicateId {
                    id: key.0.clone(),
                    resource: key.1.clone(),
                    first: first.3.clone(),
                    second: key.3.clone(),
                });
            }
            seen.push(key);
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn final_id(&self, i: usize) -> HandlerId {
        let h = &self.registry.handlers[i];
        let base = HandlerId::new(self.ids[i].1.clone());
        match &h.filters.field {
            Some(field) if !matches!(h.kind, Kind::Timer(_)) => base.with_field(field),
            _ => base,
        }
    }

    /// The checked registry, with final ids (field suffixes applied).
    pub(crate) fn into_parts(mut self) -> Result<(Registry, Settings, Memo), Vec<RegistrationError>> {
        self.check()?;
        for i in 0..self.registry.handlers.len() {
            let id = self.final_id(i);
            self.registry.handlers[i].id = id;
        }
        Ok((self.registry, self.settings, self.memo))
    }
}

fn split_field(field: &str) -> Vec<String> {
    field.split('.').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn noop(_: Arc<Body>, _: Context) -> Result<(), HandlerError> {
        Ok(())
    }

    #[test]
    fn named_functions_get_their_name_as_id_and_fields_a_suffix() {
        let op = Operator::new()
            .on_create(noop)
            .resource("kopfexamples")
            .on_update(noop)
            .resource("kopfexamples")
            .id("upd")
            .field("spec.field");
        let (registry, _, _) = op.into_parts().unwrap();
        let ids: Vec<&str> = registry.handlers.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, vec!["noop", "upd/spec.field"]);
    }

    #[test]
    fn misconfiguration_is_reported_not_panicked() {
        let errors = Operator::new()
            .id("x")
            .on_create(noop)
            .on_update(noop)
            .resource("r")
            .optional()
            .check()
            .unwrap_err();
        assert!(matches!(errors[0], RegistrationError::NoHandler { option: "id", .. }), "{errors:?}");
        assert!(
            errors.iter().any(|e| matches!(e, RegistrationError::NotApplicable { option: "optional", .. })),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| matches!(e, RegistrationError::NoResource { .. })), "{errors:?}");
    }

    #[test]
    fn duplicate_ids_for_the_same_resource_and_reason_are_rejected() {
        let errors = Operator::new()
            .on_create(noop)
            .resource("r")
            .id("a")
            .on_create(noop)
            .resource("r")
            .id("a")
            .check()
            .unwrap_err();
        assert!(matches!(errors[0], RegistrationError::DuplicateId { .. }), "{errors:?}");
        assert!(
            Operator::new()
                .on_create(noop)
                .resource("r")
                .id("a")
                .on_resume(noop)
                .resource("r")
                .id("a")
                .check()
                .is_ok(),
            "create+resume may share an id"
        );
    }
}
