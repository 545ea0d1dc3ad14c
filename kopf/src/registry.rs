//! The registry: handlers as the operator builder registered them — kind (changing, watching,
//! timer), resource selector, filters and options — and the queries the reactor asks of it: which
//! handlers a resource has, which a cause selects, whether an object needs our finalizer.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::causation::Reason;
use crate::client::BoxFuture;
use crate::context::Context;
use crate::error::{ErrorsMode, HandlerError};
use crate::structs::diff::{self, Diff};
use crate::structs::ids::HandlerId;
use crate::structs::references::{Resource, ResourceSelector};

/// A type-erased handler: the body in (decoded to the handler's type through the cache), the
/// result out.
pub(crate) type Invoker = Arc<
    dyn Fn(Arc<Value>, &DecodeCache, Context) -> BoxFuture<'static, Result<Option<Value>, HandlerError>>
        + Send
        + Sync,
>;

/// The last typed decoding of a body, reused while the body is the same allocation: a timer's
/// runs on an unchanged object, or several handlers of one cycle, decode it once.
#[derive(Default)]
pub(crate) struct DecodeCache(std::sync::Mutex<Option<(std::sync::Weak<Value>, Decoded)>>);

/// A body decoded to some handler's type.
type Decoded = Arc<dyn std::any::Any + Send + Sync>;

/// A predicate on a label's or annotation's value (`None` when absent).
pub type MetaPredicate = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// A predicate on a field's value (`None` when absent).
pub type ValuePredicate = Arc<dyn Fn(Option<&Value>) -> bool + Send + Sync>;

impl std::fmt::Debug for DecodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecodeCache")
    }
}

impl DecodeCache {
    /// The body as `K`, decoded now or earlier from this very body.
    ///
    /// # Errors
    /// When the body does not decode as `K`.
    pub(crate) fn decode<K>(&self, body: &Arc<Value>) -> Result<Arc<K>, serde_json::Error>
    where
        K: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        let mut slot = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Holding the Weak keeps the allocation, so an equal pointer is the same body.
        if let Some((weak, decoded)) = slot.as_ref()
            && std::ptr::eq(weak.as_ptr(), Arc::as_ptr(body))
            && let Ok(typed) = decoded.clone().downcast::<K>()
        {
            return Ok(typed);
        }
        let typed = Arc::new(K::deserialize(&**body)?);
        *slot = Some((Arc::downgrade(body), typed.clone()));
        Ok(typed)
    }

    /// Forgets the decoding (an idle object then holds no typed copy of itself).
    pub(crate) fn clear(&self) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// The kinds of changing handlers (Kopf's `on.create/update/delete/resume/field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Changing {
    Create,
    Update,
    Delete { optional: bool },
    Resume { deleted: bool },
    Field,
}

/// What a timer does (Kopf's `kopf.timer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerSpec {
    pub(crate) interval: Option<Duration>,
    pub(crate) idle: Option<Duration>,
    pub(crate) initial_delay: Option<Duration>,
    pub(crate) sharp: bool,
}

/// What a daemon does (Kopf's `kopf.daemon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DaemonSpec {
    pub(crate) initial_delay: Option<Duration>,
    pub(crate) cancellation_backoff: Option<Duration>,
    pub(crate) cancellation_timeout: Option<Duration>,
    pub(crate) cancellation_polling: Option<Duration>,
}

/// Which admission webhook a handler serves (Kopf's `WebhookType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WebhookKind {
    Validating,
    Mutating,
}

/// What an admission handler serves (Kopf's `on.validate`/`on.mutate` options but the filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WebhookSpec {
    pub(crate) reason: WebhookKind,
    /// The operations it is for; empty means all (`['*']` in the configuration).
    pub(crate) operations: crate::engines::admission::Operations,
    /// Kept in the managed configuration when the operator exits.
    pub(crate) persistent: bool,
    /// The handler has side effects, skipped on dry runs (`sideEffects: NoneOnDryRun`).
    pub(crate) side_effects: bool,
    /// The API server admits the object if the webhook cannot be reached (`failurePolicy: Ignore`).
    pub(crate) ignore_failures: bool,
}

impl WebhookSpec {
    pub(crate) fn new(reason: WebhookKind) -> Self {
        Self {
            reason,
            operations: crate::engines::admission::Operations::default(),
            persistent: false,
            side_effects: false,
            ignore_failures: false,
        }
    }
}

/// The kind of a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Changing(Changing),
    Watching,
    Timer(TimerSpec),
    Daemon(DaemonSpec),
    Indexing,
    Activity(crate::activities::ActivityKind),
    Webhook(WebhookSpec),
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Changing(Changing::Create) => "create",
            Self::Changing(Changing::Update) => "update",
            Self::Changing(Changing::Delete { .. }) => "delete",
            Self::Changing(Changing::Resume { .. }) => "resume",
            Self::Changing(Changing::Field) => "field",
            Self::Watching => "event",
            Self::Timer(_) => "timer",
            Self::Daemon(_) => "daemon",
            Self::Indexing => "index",
            Self::Activity(crate::activities::ActivityKind::Startup) => "startup",
            Self::Activity(crate::activities::ActivityKind::Cleanup) => "cleanup",
            Self::Activity(crate::activities::ActivityKind::Login) => "login",
            Self::Activity(crate::activities::ActivityKind::Probe) => "probe",
            Self::Webhook(WebhookSpec { reason: WebhookKind::Validating, .. }) => "validate",
            Self::Webhook(WebhookSpec { reason: WebhookKind::Mutating, .. }) => "mutate",
        }
    }
}

/// A filter on a label or annotation.
#[derive(Clone)]
pub enum MetaFilter {
    /// The key is present (any value, also empty).
    Present,
    /// The key is absent.
    Absent,
    /// The key has exactly this value.
    Value(String),
    /// A predicate on the value (`None` when absent).
    Predicate(MetaPredicate),
}

impl std::fmt::Debug for MetaFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Present => f.write_str("Present"),
            Self::Absent => f.write_str("Absent"),
            Self::Value(v) => write!(f, "Value({v:?})"),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

impl From<&str> for MetaFilter {
    fn from(v: &str) -> Self {
        Self::Value(v.to_owned())
    }
}

impl MetaFilter {
    fn check(&self, value: Option<&str>) -> bool {
        match self {
            Self::Present => value.is_some(),
            Self::Absent => value.is_none(),
            Self::Value(v) => value == Some(v.as_str()),
            Self::Predicate(p) => p(value),
        }
    }
}

/// A filter on a field's value (`value=`, `old=`, `new=` in Kopf).
#[derive(Clone)]
pub enum ValueFilter {
    /// The field is present.
    Present,
    /// The field is absent.
    Absent,
    /// The field equals this value.
    Equals(Value),
    /// A predicate on the value (`None` when absent).
    Predicate(ValuePredicate),
}

impl std::fmt::Debug for ValueFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Present => f.write_str("Present"),
            Self::Absent => f.write_str("Absent"),
            Self::Equals(v) => write!(f, "Equals({v})"),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

impl ValueFilter {
    fn check(&self, value: Option<&Value>) -> bool {
        match self {
            Self::Present => value.is_some(),
            Self::Absent => value.is_none(),
            Self::Equals(v) => value == Some(v),
            Self::Predicate(p) => p(value),
        }
    }
}

/// What a `when` predicate sees.
#[derive(Debug)]
pub struct WhenArgs<'a> {
    /// The object.
    pub body: &'a Value,
    /// The old essence, if any.
    pub old: Option<&'a Value>,
    /// The new essence, if any.
    pub new: Option<&'a Value>,
    /// The diff.
    pub diff: &'a Diff,
    /// The reason, for changing handlers.
    pub reason: Option<Reason>,
}

/// A `when` predicate.
pub(crate) type When = Arc<dyn Fn(&WhenArgs<'_>) -> bool + Send + Sync>;

/// All filters of a handler.
#[derive(Clone, Default)]
pub(crate) struct Filters {
    pub(crate) labels: Vec<(String, MetaFilter)>,
    pub(crate) annotations: Vec<(String, MetaFilter)>,
    pub(crate) when: Option<When>,
    pub(crate) field: Option<Vec<String>>,
    pub(crate) value: Option<ValueFilter>,
    pub(crate) old: Option<ValueFilter>,
    pub(crate) new: Option<ValueFilter>,
    /// Admission handlers: the subresource served (`None`: the main body; `"*"`: any).
    pub(crate) subresource: Option<String>,
}

/// Retry and error options of a handler.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    pub(crate) retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) backoff: Option<Duration>,
    pub(crate) errors: Option<ErrorsMode>,
}

/// One registered handler.
#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) id: HandlerId,
    pub(crate) kind: Kind,
    pub(crate) selector: Option<ResourceSelector>,
    pub(crate) filters: Filters,
    pub(crate) options: Options,
    pub(crate) invoker: Invoker,
    /// Whether its successes can carry a result to store (by its return type).
    pub(crate) stores_results: bool,
    pub(crate) location: String,
}

impl Handler {
    /// A handler made at run time (a sub-handler): no resource, no filters, default options.
    pub(crate) fn transient(id: HandlerId, invoker: Invoker) -> Self {
        Self {
            id,
            kind: Kind::Changing(Changing::Create),
            selector: None,
            filters: Filters::default(),
            options: Options::default(),
            invoker,
            stores_results: true,
            location: "sub-handler".to_owned(),
        }
    }
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("selector", &self.selector)
            .finish()
    }
}

/// The values filters look at during one cycle.
pub(crate) struct Match<'a> {
    pub(crate) body: &'a Value,
    pub(crate) old: Option<&'a Value>,
    pub(crate) new: Option<&'a Value>,
    pub(crate) diff: &'a Diff,
    pub(crate) reason: Option<Reason>,
}

impl Handler {
    /// All filters but the field-change test (Kopf's "prematch").
    pub(crate) fn prematches(&self, m: &Match<'_>) -> bool {
        let labels = &m.body["metadata"]["labels"];
        let annotations = &m.body["metadata"]["annotations"];
        let meta_ok = |filters: &[(String, MetaFilter)], map: &Value| {
            filters.iter().all(|(k, f)| f.check(map[k].as_str()))
        };
        if !meta_ok(&self.filters.labels, labels) || !meta_ok(&self.filters.annotations, annotations) {
            return false;
        }
        let field = self.filters.field.as_deref().unwrap_or_default();
        fn at<'v>(v: Option<&'v Value>, field: &[String]) -> Option<&'v Value> {
            v.and_then(|v| diff::resolve(v, field))
        }
        let changing = matches!(self.kind, Kind::Changing(_));
        if let Some(value) = &self.filters.value {
            let ok = if changing {
                value.check(at(m.new, field)) || value.check(at(m.old, field))
            } else {
                value.check(diff::resolve(m.body, field))
            };
            if !ok {
                return false;
            }
        }
        if let Some(old) = &self.filters.old
            && !old.check(at(m.old, field))
        {
            return false;
        }
        if let Some(new) = &self.filters.new
            && !new.check(at(m.new, field))
        {
            return false;
        }
        if let Some(when) = &self.filters.when {
            let args = WhenArgs { body: m.body, old: m.old, new: m.new, diff: m.diff, reason: m.reason };
            if !when(&args) {
                return false;
            }
        }
        true
    }

    /// All filters, including that the handler's field changed (update and field handlers).
    pub(crate) fn matches(&self, m: &Match<'_>) -> bool {
        if !self.prematches(m) {
            return false;
        }
        match (&self.filters.field, self.kind) {
            (Some(field), Kind::Changing(Changing::Update | Changing::Field)) => {
                !m.diff.reduce(field).is_empty()
            }
            _ => true,
        }
    }
}

/// The handlers of one served resource, resolved at startup.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceHandlers {
    pub(crate) changing: Vec<Arc<Handler>>,
    pub(crate) watching: Vec<Arc<Handler>>,
    /// Daemons and timers.
    pub(crate) spawning: Vec<Arc<Handler>>,
    pub(crate) indexing: Vec<Arc<Handler>>,
}

impl ResourceHandlers {
    /// The dotted `field=` paths of every handler, restored into the essence.
    pub(crate) fn extra_fields(&self) -> Vec<Vec<String>> {
        let mut fields: Vec<Vec<String>> = self
            .changing
            .iter()
            .chain(&self.watching)
            .chain(&self.spawning)
            .filter_map(|h| h.filters.field.clone())
            .collect();
        fields.sort();
        fields.dedup();
        fields
    }

    /// The changing handlers a cause selects, in registration order, one per id.
    pub(crate) fn select(&self, reason: Reason, initial: bool, m: &Match<'_>) -> Vec<Arc<Handler>> {
        let mut selected: Vec<Arc<Handler>> = Vec::new();
        for handler in &self.changing {
            let Kind::Changing(kind) = handler.kind else { continue };
            let wanted = match kind {
                Changing::Create => reason == Reason::Create,
                Changing::Update => reason == Reason::Update,
                Changing::Delete { .. } => reason == Reason::Delete,
                Changing::Resume { deleted } => initial && (reason != Reason::Delete || deleted),
                Changing::Field => reason.has_handlers(),
            };
            if wanted && handler.matches(m) && !selected.iter().any(|h| h.id == handler.id) {
                selected.push(handler.clone());
            }
        }
        selected
    }

    /// Whether any changing handler prematches (otherwise the object is handled in stealth).
    pub(crate) fn any_prematch(&self, m: &Match<'_>) -> bool {
        self.changing.iter().any(|h| h.prematches(m))
    }

    /// Whether a non-optional deletion handler (or a daemon or timer) needs our finalizer.
    pub(crate) fn requires_finalizer(&self, m: &Match<'_>) -> bool {
        let deletion = self.changing.iter().any(|h| {
            matches!(h.kind, Kind::Changing(Changing::Delete { optional: false })) && h.prematches(m)
        });
        let spawning = self.spawning.iter().any(|h| h.prematches(m));
        deletion || spawning
    }
}

/// All handlers of an operator, by resource selector.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    pub(crate) handlers: Vec<Handler>,
}

impl Registry {
    /// The activities of a kind, in registration order.
    pub(crate) fn activities(&self, kind: crate::activities::ActivityKind) -> Vec<Arc<Handler>> {
        self.handlers.iter().filter(|h| h.kind == Kind::Activity(kind)).cloned().map(Arc::new).collect()
    }

    /// The ids of the index handlers.
    pub(crate) fn index_ids(&self) -> Vec<String> {
        self.handlers.iter().filter(|h| h.kind == Kind::Indexing).map(|h| h.id.as_str().to_owned()).collect()
    }

    /// The distinct selectors of the watched resources, in registration order (admission
    /// handlers need no watching: their resources come from [`Registry::webhook_selectors`]).
    pub(crate) fn selectors(&self) -> Vec<ResourceSelector> {
        let mut out: Vec<ResourceSelector> = Vec::new();
        let watched = self.handlers.iter().filter(|h| !matches!(h.kind, Kind::Webhook(_)));
        for selector in watched.filter_map(|h| h.selector.clone()) {
            if !out.contains(&selector) {
                out.push(selector);
            }
        }
        out
    }

    /// The distinct selectors of the admission handlers, in registration order.
    pub(crate) fn webhook_selectors(&self) -> Vec<ResourceSelector> {
        let mut out: Vec<ResourceSelector> = Vec::new();
        let webhooks = self.handlers.iter().filter(|h| matches!(h.kind, Kind::Webhook(_)));
        for selector in webhooks.filter_map(|h| h.selector.clone()) {
            if !out.contains(&selector) {
                out.push(selector);
            }
        }
        out
    }

    /// The admission handlers, in registration order.
    pub(crate) fn webhooks(&self) -> Vec<Arc<Handler>> {
        self.handlers.iter().filter(|h| matches!(h.kind, Kind::Webhook(_))).cloned().map(Arc::new).collect()
    }

    /// The handlers of a served resource.
    pub(crate) fn for_resource(&self, resource: &Resource) -> ResourceHandlers {
        let mut out = ResourceHandlers::default();
        for handler in
            self.handlers.iter().filter(|h| h.selector.as_ref().is_some_and(|s| s.matches(resource)))
        {
            let handler = Arc::new(handler.clone());
            match handler.kind {
                Kind::Changing(_) => out.changing.push(handler),
                Kind::Watching => out.watching.push(handler),
                Kind::Timer(_) | Kind::Daemon(_) => out.spawning.push(handler),
                Kind::Indexing => out.indexing.push(handler),
                Kind::Activity(_) | Kind::Webhook(_) => {}
            }
        }
        out
    }
}
