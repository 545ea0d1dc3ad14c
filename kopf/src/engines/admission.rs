//! Admission webhooks (Kopf's `_core/engines/admission.py`): the review of one `AdmissionReview`
//! by the validating and mutating handlers, the answer the API server expects, and the managed
//! `ValidatingWebhookConfiguration`/`MutatingWebhookConfiguration` objects that point the API
//! server at the operator's webhook server.
//!
//! The server itself is pluggable ([`AdmissionServer`]): the operator hands it a [`WebhookFn`]
//! (the review), the server answers with the client config to put into the configurations.
//! [`crate::WebhookServer`] serves HTTPS on a socket; kopf-testing serves in process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures::FutureExt as _;
use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use serde_json::{Map, Value, json};

use crate::client::{self, BoxFuture, PatchBody};
use crate::context::{Context, Inner};
use crate::engines::stopping::Stopped;
use crate::error::HandlerError;
use crate::execution::Runtime;
use crate::memo::Memo;
use crate::registry::{DecodeCache, Handler, Kind, Match, MetaFilter, WebhookKind, WebhookSpec};
use crate::settings::Level;
use crate::structs::diff;
use crate::structs::patch::Patch;
use crate::structs::references::Resource;

/// An operation under admission review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `CREATE`.
    Create,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `CONNECT` (exec, attach, port-forward, proxy).
    Connect,
}

impl Operation {
    /// Every operation, in Kubernetes' order.
    pub const ALL: [Self; 4] = [Self::Create, Self::Update, Self::Delete, Self::Connect];

    /// The name Kubernetes uses: `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }

    /// The operation of a Kubernetes name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of operations; empty means every operation (`['*']` in a configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Operations(u8);

impl Operations {
    pub(crate) fn insert(&mut self, op: Operation) {
        self.0 |= op.bit();
    }

    /// Whether the set admits the operation (an empty set admits all).
    pub(crate) fn admits(self, op: Operation) -> bool {
        self.0 == 0 || self.0 & op.bit() != 0
    }

    /// Whether the set is exactly this one operation.
    pub(crate) fn is_only(self, op: Operation) -> bool {
        self.0 == op.bit()
    }

    /// The names for a configuration's rule.
    pub(crate) fn names(self) -> Vec<&'static str> {
        if self.0 == 0 {
            return vec!["*"];
        }
        Operation::ALL.into_iter().filter(|op| self.0 & op.bit() != 0).map(Operation::as_str).collect()
    }
}

/// What an admission handler sees of the request under review (besides old/new/diff/patch).
#[derive(Debug)]
pub(crate) struct Review {
    pub(crate) operation: Operation,
    pub(crate) subresource: Option<String>,
    pub(crate) dryrun: bool,
    pub(crate) userinfo: Value,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) sslpeer: Value,
    pub(crate) warnings: Mutex<Vec<String>>,
}

/// One request to a webhook endpoint, as a server hands it to the [`WebhookFn`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookRequest {
    /// The decoded `AdmissionReview`.
    pub body: Value,
    /// The handler id from the URL path (`<path>/<id>`), if any: only that handler runs;
    /// without it, every matching handler runs (as in Kopf).
    pub webhook: Option<String>,
    /// The HTTP headers of the request.
    pub headers: BTreeMap<String, String>,
    /// The client certificate of the caller, if it presented one.
    pub sslpeer: Option<Value>,
}

impl WebhookRequest {
    /// A request for `body` that came to `path` below the server's root path: its first
    /// segment, percent-decoded, is the handler id (none for an empty path).
    ///
    /// ```
    /// let request = kopf::WebhookRequest::for_path(serde_json::json!({}), "/validate%2Fspec.field");
    /// assert_eq!(request.webhook.as_deref(), Some("validate/spec.field"));
    /// ```
    pub fn for_path(body: Value, path: &str) -> Self {
        let id = path.split('?').next().unwrap_or_default().trim_start_matches('/');
        let webhook = unquote(id).filter(|id| !id.is_empty());
        Self { body, webhook, headers: BTreeMap::new(), sslpeer: None }
    }
}

/// Why a webhook request could not be reviewed at all: the webhook request is bad, not the
/// object under review (that one gets `allowed: false` in a normal answer). Servers answer these
/// with [`WebhookError::status`] (Kopf's `WebhookError` family).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The request is malformed or misses data (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request is for a resource that no admission handler serves (404).
    #[error("{0}")]
    UnknownResource(String),
    /// The request's resource matches several served ones (409).
    #[error("{0}")]
    AmbiguousResource(String),
}

impl WebhookError {
    /// The HTTP status a server answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::UnknownResource(_) => 404,
            Self::AmbiguousResource(_) => 409,
        }
    }
}

/// The review function a webhook server calls for every request: an `AdmissionReview` in, the
/// `AdmissionReview` answer out (or why the request itself is bad).
pub type WebhookFn =
    Arc<dyn Fn(WebhookRequest) -> BoxFuture<'static, Result<Value, WebhookError>> + Send + Sync>;

/// A webhook server that is serving: how the API server reaches it, and a guard that stops it
/// when dropped.
pub struct ServingWebhook {
    /// The `clientConfig` of the webhooks (a URL or a service, and the CA bundle); the operator
    /// appends `/<handler id>` to the URL or the service path for each webhook.
    pub client_config: WebhookClientConfig,
    _guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for ServingWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingWebhook").field("client_config", &self.client_config).finish_non_exhaustive()
    }
}

impl ServingWebhook {
    /// A serving server: its client config, and what stops it when dropped.
    pub fn new(client_config: WebhookClientConfig, guard: impl Send + Sync + 'static) -> Self {
        Self { client_config, _guard: Box::new(guard) }
    }
}

/// A webhook server or tunnel (Kopf's `settings.admission.server`): it serves the review
/// function somewhere the API server can reach and says how to reach it.
pub trait AdmissionServer: Send + Sync + std::fmt::Debug {
    /// Starts serving `webhook`.
    ///
    /// # Errors
    /// Why it could not serve (a port in use, unreadable certificates, …).
    fn start(&self, webhook: WebhookFn) -> BoxFuture<'static, Result<ServingWebhook, String>>;
}

/// The review of admission requests by the operator's admission handlers.
pub(crate) struct Processor {
    pub(crate) rt: Runtime,
    pub(crate) memo: Memo,
    pub(crate) handlers: Vec<Arc<Handler>>,
    /// The served resources the handlers are for (Kopf's `insights.webhook_resources`).
    pub(crate) resources: Vec<Resource>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor").field("handlers", &self.handlers.len()).finish_non_exhaustive()
    }
}

/// The failure of one handler, ranked as Kopf ranks them for the answer.
struct Failure {
    rank: u8,
    message: String,
    code: u16,
}

impl Processor {
    /// The review as a [`WebhookFn`].
    pub(crate) fn into_fn(self: Arc<Self>) -> WebhookFn {
        Arc::new(move |request: WebhookRequest| {
            let this = self.clone();
            Box::pin(async move { this.review(request).await })
        })
    }

    /// Reviews one `AdmissionReview`: runs the matching handlers once each (no retries: errors
    /// are permanent) and builds the answer.
    ///
    /// # Errors
    /// When the webhook request itself is bad: not an `AdmissionReview` with a request, a resource,
    /// an operation, user info and an object; or for a resource no handler serves.
    pub(crate) async fn review(&self, request: WebhookRequest) -> Result<Value, WebhookError> {
        let WebhookRequest { body: review_body, webhook, headers, sslpeer } = request;
        let payload = review_body
            .get("request")
            .and_then(Value::as_object)
            .ok_or_else(|| WebhookError::BadRequest("The admission request is missing.".into()))?;
        let resource = self.find_resource(payload)?;
        let subresource = optional_string(payload, "subResource")?.filter(|s| !s.is_empty());
        let operation = match payload.get("operation") {
            Some(Value::String(op)) => Operation::parse(op)
                .ok_or_else(|| WebhookError::BadRequest(format!("Unknown admission operation: {op:?}.")))?,
            _ => {
                return Err(WebhookError::BadRequest(
                    "The operation is missing from the admission request.".into(),
                ));
            }
        };
        let userinfo = match payload.get("userInfo") {
            Some(info) if !info.is_null() => info.clone(),
            _ => {
                return Err(WebhookError::BadRequest(
                    "User info is missing from the admission request.".into(),
                ));
            }
        };
        let new = payload.get("object").filter(|o| !o.is_null()).cloned();
        let old = payload.get("oldObject").filter(|o| !o.is_null()).cloned();
        let Some(raw) = new.clone().or_else(|| old.clone()) else {
            return Err(WebhookError::BadRequest(
                "Either old or new object is missing from the admission request.".into(),
            ));
        };
        if !raw.is_object() {
            return Err(WebhookError::BadRequest("The object under review is not a JSON object.".into()));
        }
        let dryrun = match payload.get("dryRun") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(WebhookError::BadRequest("dryRun must be a boolean.".into())),
        };
        let uid = optional_string(payload, "uid")?.unwrap_or_default();

        let review = Arc::new(Review {
            operation,
            subresource: subresource.clone(),
            dryrun,
            userinfo,
            headers,
            sslpeer: sslpeer.unwrap_or_else(|| json!({})),
            warnings: Mutex::new(Vec::new()),
        });
        let body = Arc::new(raw);
        let diff = diff::diff(old.as_ref(), new.as_ref());
        let patch = Patch::default();
        // Kopf gives CREATE requests a throwaway memo (the object has no memory yet); kopf-rs
        // gives every request a copy of the operator's memo.
        let memo = self.memo.deep_copy();
        let m = Match { body: &body, old: old.as_ref(), new: new.as_ref(), diff: &diff, reason: None };
        let selected = self.select(&resource, webhook.as_deref(), operation, subresource.as_deref(), &m);

        let decoded = DecodeCache::default();
        let mut failures: Vec<Failure> = Vec::new();
        for handler in selected {
            let ctx = Context::from_inner(Inner {
                resource: resource.clone(),
                body: body.clone(),
                reason: None,
                event_type: None,
                old: old.clone(),
                new: new.clone(),
                diff: diff.clone(),
                id: handler.id.clone(),
                retry: 0,
                started: self.rt.clock.now(),
                runtime: std::time::Duration::ZERO,
                patch: patch.clone(),
                memo: memo.clone(),
                rt: self.rt.clone(),
                stopped: Stopped::never(),
                live_body: None,
                daemon: false,
                children: None,
                settings_slot: None,
                admission: Some(review.clone()),
            });
            if let Some(failure) = run_handler(&handler, body.clone(), &decoded, ctx, &self.rt).await {
                failures.push(failure);
            }
        }
        let warnings = review.warnings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Ok(build_response(&review_body, &uid, failures, &warnings, &json_patch(&body, &patch)))
    }

    fn find_resource(&self, payload: &Map<String, Value>) -> Result<Resource, WebhookError> {
        let missing =
            || WebhookError::BadRequest("The resource is missing from the admission request.".into());
        let requested = payload.get("resource").and_then(Value::as_object).ok_or_else(missing)?;
        let field = |name: &str| requested.get(name).and_then(Value::as_str).ok_or_else(missing);
        let (group, version, plural) = (field("group")?, field("version")?, field("resource")?);
        let found: Vec<&Resource> = self
            .resources
            .iter()
            .filter(|r| r.group == group && r.version == version && r.plural == plural)
            .collect();
        let shown = Value::Object(requested.clone());
        match found.as_slice() {
            [] => {
                Err(WebhookError::UnknownResource(format!("The specified resource has no handlers: {shown}")))
            }
            [one] => Ok((*one).clone()),
            _ => {
                Err(WebhookError::AmbiguousResource(format!("The specified resource is ambiguous: {shown}")))
            }
        }
    }

    /// The handlers for this request, in registration order, one per id.
    fn select(
        &self,
        resource: &Resource,
        webhook: Option<&str>,
        operation: Operation,
        subresource: Option<&str>,
        m: &Match<'_>,
    ) -> Vec<Arc<Handler>> {
        let mut out: Vec<Arc<Handler>> = Vec::new();
        for handler in &self.handlers {
            let Kind::Webhook(spec) = handler.kind else { continue };
            let hinted = webhook.is_none_or(|id| id == handler.id.as_str());
            // Mutating handlers are not for deletions unless registered for DELETE alone.
            let for_deletion = spec.reason != WebhookKind::Mutating
                || operation != Operation::Delete
                || spec.operations.is_only(Operation::Delete);
            let sub_ok = match handler.filters.subresource.as_deref() {
                Some("*") => true,
                wanted => wanted == subresource,
            };
            if hinted
                && for_deletion
                && spec.operations.admits(operation)
                && sub_ok
                && handler.selector.as_ref().is_some_and(|s| s.matches(resource))
                && handler.prematches(m)
                && !out.iter().any(|h| h.id == handler.id)
            {
                out.push(handler.clone());
            }
        }
        out
    }
}

fn optional_string(payload: &Map<String, Value>, key: &str) -> Result<Option<String>, WebhookError> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(WebhookError::BadRequest(format!("{key} must be a string."))),
    }
}

/// Runs one admission handler once; its failure, if it failed.
async fn run_handler(
    handler: &Handler,
    body: Arc<Value>,
    decoded: &DecodeCache,
    ctx: Context,
    rt: &Runtime,
) -> Option<Failure> {
    let id = handler.id.as_str().to_owned();
    let logger = ctx.clone();
    let resource = ctx.resource().name();
    let started = tokio::time::Instant::now();
    let result = {
        let _running = rt.activity.guard(crate::primitives::activity::Counter::RunningHandlers);
        let future = (handler.invoker)(body, decoded, ctx);
        match std::panic::AssertUnwindSafe(future).catch_unwind().await {
            Ok(result) => result,
            Err(payload) => Err(HandlerError::Other(crate::operator::panic_message(payload).into())),
        }
    };
    let label = if result.is_ok() { "success" } else { "permanent" };
    rt.metrics.handler_run(&id, &resource, label, started.elapsed());
    let (rank, code) = match &result {
        Ok(_) => {
            logger.log(Level::Info, format!("Handler '{id}' succeeded."));
            return None;
        }
        Err(HandlerError::Admission { code, .. }) => (0, *code),
        Err(HandlerError::Permanent { .. }) => (1, 500),
        Err(HandlerError::Temporary { .. }) => (2, 500),
        Err(_) => (9, 500),
    };
    let error = result.err().map(|e| e.message()).unwrap_or_default();
    logger.log(Level::Error, format!("Handler '{id}' failed permanently: {error}"));
    let message = if error.is_empty() { "the admission handler failed".to_owned() } else { error };
    Some(Failure { rank, message, code })
}

/// The answer to a review: allowed only if every handler succeeded; the first failure of the
/// best rank (admission, permanent, temporary, other) as the status; the warnings; the patch.
fn build_response(
    request: &Value,
    uid: &str,
    mut failures: Vec<Failure>,
    warnings: &[String],
    patch: &[Value],
) -> Value {
    let mut response = Map::new();
    response.insert("uid".into(), json!(uid));
    response.insert("allowed".into(), json!(failures.is_empty()));
    if !warnings.is_empty() {
        response.insert("warnings".into(), json!(warnings));
    }
    if !patch.is_empty() {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(Value::from(patch.to_vec()).to_string());
        response.insert("patch".into(), json!(encoded));
        response.insert("patchType".into(), json!("JSONPatch"));
    }
    failures.sort_by_key(|f| f.rank); // stable: the first of the best rank
    if let Some(failure) = failures.first() {
        response.insert("status".into(), json!({"message": failure.message, "code": failure.code}));
    }
    // The answer speaks the request's version of AdmissionReview (v1, or v1beta1 from old servers).
    let api_version = request.get("apiVersion").and_then(Value::as_str).unwrap_or("admission.k8s.io/v1");
    let kind = request.get("kind").and_then(Value::as_str).unwrap_or("AdmissionReview");
    json!({"apiVersion": api_version, "kind": kind, "response": response})
}

/// The handlers' patch as RFC 6902 operations on the object under review: a removal for each
/// `null` (of a field that exists), an `add` for a field (or a whole subtree) the object lacks,
/// a `replace` for one it has; transforms become the diff of what they do.
pub(crate) fn json_patch(body: &Value, patch: &Patch) -> Vec<Value> {
    let data = patch.take();
    let mut ops = Vec::new();
    for (key, value) in &data.merge {
        merge_ops(body.get(key), &mut vec![key.clone()], value, &mut ops);
    }
    if !data.fns.is_empty() {
        let mut before = body.clone();
        if let Ok(parsed) = serde_json::from_value::<json_patch::Patch>(Value::Array(ops.clone())) {
            let _ = json_patch::patch(&mut before, &parsed);
        }
        let mut after = before.clone();
        for f in &data.fns {
            f(&mut after);
        }
        if let Ok(Value::Array(more)) = serde_json::to_value(json_patch::diff(&before, &after)) {
            ops.extend(more);
        }
    }
    ops
}

fn merge_ops(existing: Option<&Value>, path: &mut Vec<String>, value: &Value, ops: &mut Vec<Value>) {
    let pointer =
        || path.iter().map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1"))).collect::<String>();
    match (existing, value) {
        (None, Value::Null) => {}
        (Some(_), Value::Null) => ops.push(json!({"op": "remove", "path": pointer()})),
        (None, value) => ops.push(json!({"op": "add", "path": pointer(), "value": strip_nulls(value)})),
        (Some(Value::Object(old)), Value::Object(new)) if !new.is_empty() => {
            for (key, value) in new {
                path.push(key.clone());
                merge_ops(old.get(key), path, value, ops);
                path.pop();
            }
        }
        (Some(_), value) => {
            ops.push(json!({"op": "replace", "path": pointer(), "value": strip_nulls(value)}))
        }
    }
}

/// A merge-patch value as a plain value: `null`s (deletions) inside a new subtree mean nothing.
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect(),
        ),
        other => other.clone(),
    }
}

/// The webhooks of a managed configuration, one per handler (Kopf's `build_webhooks`).
pub(crate) fn build_webhooks(
    handlers: &[Arc<Handler>],
    resources: &[Resource],
    managed: &str,
    client_config: &WebhookClientConfig,
    persistent_only: bool,
) -> Vec<Value> {
    let mut webhooks = Vec::new();
    for handler in handlers {
        let Kind::Webhook(spec) = handler.kind else { continue };
        if persistent_only && !spec.persistent {
            continue;
        }
        let rules: Vec<Value> = resources
            .iter()
            .filter(|r| handler.selector.as_ref().is_some_and(|s| s.matches(r)))
            .map(|r| {
                let plural = match &handler.filters.subresource {
                    None => r.plural.clone(),
                    Some(sub) => format!("{}/{sub}", r.plural),
                };
                json!({
                    "apiGroups": [r.group],
                    "apiVersions": [r.version],
                    "resources": [plural],
                    "operations": spec.operations.names(),
                    "scope": "*",
                })
            })
            .collect();
        let mut webhook = json!({
            "name": webhook_name(handler.id.as_str(), managed),
            "sideEffects": if spec.side_effects { "NoneOnDryRun" } else { "None" },
            "failurePolicy": if spec.ignore_failures { "Ignore" } else { "Fail" },
            "matchPolicy": "Equivalent",
            "rules": rules,
            "clientConfig": client_config_for(client_config, handler.id.as_str()),
            "timeoutSeconds": 30,
            "admissionReviewVersions": ["v1", "v1beta1"],
        });
        if let Some(selector) = object_selector(&handler.filters.labels) {
            webhook["objectSelector"] = selector;
        }
        webhooks.push(webhook);
    }
    webhooks
}

/// A webhook's name: the handler id with `/` → `.` and `_` → `-`, other unusual characters as
/// the hex of their UTF-8 bytes, then `.<managed>`.
pub(crate) fn webhook_name(id: &str, suffix: &str) -> String {
    let mut name = String::new();
    for c in id.chars() {
        match c {
            '/' => name.push('.'),
            '_' => name.push('-'),
            c if c.is_alphanumeric() || c == '.' || c == '-' => name.push(c),
            c => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    name.push_str(&format!("{byte:02x}"));
                }
            }
        }
    }
    if suffix.is_empty() { name } else { format!("{name}.{suffix}") }
}

/// The client config with `/<quoted id>` appended to its URL or service path.
fn client_config_for(config: &WebhookClientConfig, id: &str) -> Value {
    let quoted = quote(id);
    let mut config = config.clone();
    if let Some(url) = &mut config.url {
        *url = format!("{}/{quoted}", url.trim_end_matches('/'));
    }
    if let Some(service) = &mut config.service {
        service.path = Some(format!("{}/{quoted}", service.path.as_deref().unwrap_or_default()));
    }
    serde_json::to_value(config).unwrap_or(Value::Null)
}

/// Percent-encodes all but unreserved characters and `/` (Python's `urllib.parse.quote`).
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (the inverse of [`quote`]); `None` if they are not UTF-8.
pub(crate) fn unquote(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An `objectSelector` from the handler's label filters (callables cannot be expressed).
fn object_selector(labels: &[(String, MetaFilter)]) -> Option<Value> {
    let expressions: Vec<Value> = labels
        .iter()
        .filter_map(|(key, filter)| match filter {
            MetaFilter::Present => Some(json!({"key": key, "operator": "Exists"})),
            MetaFilter::Absent => Some(json!({"key": key, "operator": "DoesNotExist"})),
            MetaFilter::Value(v) => Some(json!({"key": key, "operator": "In", "values": [v]})),
            MetaFilter::Predicate(_) => None,
        })
        .collect();
    (!expressions.is_empty()).then(|| json!({"matchExpressions": expressions}))
}

/// The configuration resource of a kind of webhook.
pub(crate) fn configuration_resource(kind: WebhookKind) -> Resource {
    let (plural, singular, kind) = match kind {
        WebhookKind::Validating => (
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            "ValidatingWebhookConfiguration",
        ),
        WebhookKind::Mutating => {
            ("mutatingwebhookconfigurations", "mutatingwebhookconfiguration", "MutatingWebhookConfiguration")
        }
    };
    Resource {
        group: "admissionregistration.k8s.io".into(),
        version: "v1".into(),
        plural: plural.into(),
        kind: kind.into(),
        singular: singular.into(),
        short_names: Vec::new(),
        namespaced: false,
        status_subresource: false,
        preferred: true,
    }
}

/// The admission side of a running operator: its webhook server, and the managed
/// configurations it keeps pointing at it.
pub(crate) struct Admission {
    handlers: Vec<Arc<Handler>>,
    resources: Vec<Resource>,
    serving: ServingWebhook,
    managed: Option<String>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("serving", &self.serving).field("managed", &self.managed).finish()
    }
}

impl Admission {
    /// Starts the webhook server and, with `settings.admission.managed`, creates or updates the
    /// configurations — if the operator has admission handlers.
    ///
    /// # Errors
    /// Admission handlers without a server, a server that cannot start, or configurations that
    /// cannot be written.
    pub(crate) async fn start(
        rt: &Runtime,
        memo: &Memo,
        handlers: Vec<Arc<Handler>>,
        resources: Vec<Resource>,
    ) -> Result<Option<Self>, String> {
        if handlers.is_empty() {
            return Ok(None);
        }
        let Some(server) = rt.settings.admission.server.clone() else {
            return Err("Admission handlers exist, but no admission server/tunnel is configured in \
                        `settings.admission.server`."
                .into());
        };
        let processor = Arc::new(Processor {
            rt: rt.clone(),
            memo: memo.clone(),
            handlers: handlers.clone(),
            resources: resources.clone(),
        });
        let serving = server.start(processor.into_fn()).await?;
        let this = Self { handlers, resources, serving, managed: rt.settings.admission.managed.clone() };
        if let Some(managed) = &this.managed {
            for kind in [WebhookKind::Validating, WebhookKind::Mutating] {
                tracing::info!("Reconfiguring the {} webhook {managed}.", kind_name(kind));
                this.configure(rt, kind, managed, false).await.map_err(|e| {
                    format!("cannot configure the {} webhook {managed}: {e}", kind_name(kind))
                })?;
            }
        }
        Ok(Some(this))
    }

    /// Keeps only the persistent webhooks in the managed configurations (at a graceful exit), then
    /// stops the server.
    pub(crate) async fn stop(self, rt: &Runtime) {
        if let Some(managed) = &self.managed {
            tracing::info!("Cleaning up the admission webhook {managed}.");
            for kind in [WebhookKind::Validating, WebhookKind::Mutating] {
                if let Err(e) = self.configure(rt, kind, managed, true).await {
                    tracing::error!(error = %e, "cannot clean up the {} webhook {managed}", kind_name(kind));
                }
            }
        }
    }

    async fn configure(
        &self,
        rt: &Runtime,
        kind: WebhookKind,
        managed: &str,
        persistent_only: bool,
    ) -> Result<(), client::Error> {
        let resource = configuration_resource(kind);
        let handlers: Vec<Arc<Handler>> = self
            .handlers
            .iter()
            .filter(|h| matches!(h.kind, Kind::Webhook(WebhookSpec { reason, .. }) if reason == kind))
            .cloned()
            .collect();
        if !persistent_only {
            // Try-or-fail rather than check-and-do: fewer permissions needed.
            let body = json!({"apiVersion": resource.api_version(), "kind": resource.kind, "metadata": {"name": managed}});
            match client::retrying::retrying(&rt.settings.networking, || {
                rt.client.create(&resource, None, &body)
            })
            .await
            {
                Ok(_) | Err(client::Error::Conflict(_)) => {}
                Err(client::Error::Forbidden(e)) => {
                    tracing::error!("Not enough RBAC permissions to create a {}.", resource.name());
                    return Err(client::Error::Forbidden(e));
                }
                Err(e) => return Err(e),
            }
        }
        let webhooks =
            build_webhooks(&handlers, &self.resources, managed, &self.serving.client_config, persistent_only);
        let patch = PatchBody::Merge(json!({"webhooks": webhooks}));
        client::retrying::retrying(&rt.settings.networking, || {
            rt.client.patch(&resource, None, managed, &patch, None)
        })
        .await
        .map(|_| ())
    }
}

fn kind_name(kind: WebhookKind) -> &'static str {
    match kind {
        WebhookKind::Validating => "validating",
        WebhookKind::Mutating => "mutating",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::operator::{Body, Operator};

    fn resource() -> Resource {
        Resource {
            group: "kopf.dev".into(),
            version: "v1".into(),
            plural: "kopfexamples".into(),
            kind: "KopfExample".into(),
            singular: "kopfexample".into(),
            short_names: vec![],
            namespaced: true,
            status_subresource: true,
            preferred: true,
        }
    }

    /// A processor for the operator's admission handlers, on a fake cluster.
    fn processor(operator: Operator) -> (Processor, crate::primitives::tasks::OwnedTask<()>) {
        let (registry, settings, memo) = operator.into_parts().expect("a valid operator");
        let server = fake_apiserver::FakeApiServer::new();
        let client: Arc<dyn client::ApiClient> = Arc::new(client::KubeApiClient::new(server.client()));
        let clock = crate::primitives::clock::Clock::wall();
        let activity = crate::primitives::activity::Activity::default();
        let (poster, task) = crate::execution::posting::spawn(
            client.clone(),
            settings.posting.clone(),
            clock,
            activity.clone(),
            "default".into(),
        );
        let rt = Runtime {
            client,
            settings: Arc::new(settings),
            clock,
            activity,
            poster,
            observer: None,
            blocking: None,
            indexes: crate::engines::indexing::Indexes::new(Vec::<String>::new()),
            paused: crate::primitives::toggles::ToggleSet::default(),
            metrics: crate::primitives::metrics::Metrics::default(),
        };
        let handlers = registry.webhooks();
        (Processor { rt, memo, handlers, resources: vec![resource()] }, task)
    }

    fn review(operation: &str, object: Value, old: Value) -> Value {
        let mut review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "uid-1",
                "kind": {"group": "kopf.dev", "version": "v1", "kind": "KopfExample"},
                "resource": {"group": "kopf.dev", "version": "v1", "resource": "kopfexamples"},
                "operation": operation,
                "userInfo": {"username": "alice"},
                "dryRun": false,
            }
        });
        review["request"]["object"] = object;
        review["request"]["oldObject"] = old;
        review
    }

    fn ex(field: &str) -> Value {
        json!({"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
               "metadata": {"name": "ex1", "namespace": "default"}, "spec": {"field": field}})
    }

    fn request(body: Value) -> WebhookRequest {
        WebhookRequest { body, ..WebhookRequest::default() }
    }

    fn ok() -> Result<(), HandlerError> {
        Ok(())
    }

    #[tokio::test]
    async fn a_review_without_failures_is_allowed_with_the_request_uid() {
        let (p, _t) = processor(
            Operator::new().on_validate(|_: Arc<Body>, _: Context| async { ok() }).resource("kopfexamples"),
        );
        let answer = p.review(request(review("CREATE", ex("a"), Value::Null))).await.unwrap();
        assert_eq!(
            answer,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "uid-1", "allowed": true}})
        );
    }

    #[tokio::test]
    async fn the_answered_error_is_the_first_of_the_best_rank_with_its_code() {
        fn failing(
            error: fn() -> HandlerError,
        ) -> impl Fn(Arc<Body>, Context) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static
        {
            move |_: Arc<Body>, _: Context| std::future::ready(Err(error()))
        }
        let operator = Operator::new()
            .on_validate(failing(|| HandlerError::Other("plain".into())))
            .resource("kopfexamples")
            .id("a")
            .on_validate(failing(|| HandlerError::permanent("permanent")))
            .resource("kopfexamples")
            .id("b")
            .on_validate(failing(|| HandlerError::admission("first admission").with_code(418)))
            .resource("kopfexamples")
            .id("c")
            .on_validate(failing(|| HandlerError::admission("second admission").with_code(400)))
            .resource("kopfexamples")
            .id("d");
        let (p, _t) = processor(operator);
        let answer = p.review(request(review("CREATE", ex("a"), Value::Null))).await.unwrap();
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(answer["response"]["status"], json!({"message": "first admission", "code": 418}));
        // Only the hinted handler runs: the answer is its own error, with Kopf's default code.
        let mut hinted = request(review("CREATE", ex("a"), Value::Null));
        hinted.webhook = Some("b".into());
        let answer = p.review(hinted).await.unwrap();
        assert_eq!(answer["response"]["status"], json!({"message": "permanent", "code": 500}));
    }

    #[tokio::test]
    async fn a_mutation_is_answered_as_a_base64_json_patch_against_the_object() {
        let operator = Operator::new()
            .on_mutate(|_: Arc<Body>, ctx: Context| async move {
                ctx.patch().merge(json!({
                    "metadata": {"labels": {"a": "b"}, "name": null, "absent": null},
                    "spec": {"field": "new", "items": ["x"]},
                }));
                ok()
            })
            .resource("kopfexamples");
        let (p, _t) = processor(operator);
        let answer = p.review(request(review("CREATE", ex("old"), Value::Null))).await.unwrap();
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let encoded = answer["response"]["patch"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        let ops: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
                {"op": "remove", "path": "/metadata/name"},
                {"op": "replace", "path": "/spec/field", "value": "new"},
                {"op": "add", "path": "/spec/items", "value": ["x"]},
            ])
        );
        let mut patched = ex("old");
        let ops: json_patch::Patch = serde_json::from_value(ops).unwrap();
        json_patch::patch(&mut patched, &ops).unwrap();
        assert_eq!(patched["spec"], json!({"field": "new", "items": ["x"]}));
    }

    #[tokio::test]
    async fn mutating_handlers_skip_deletions_unless_registered_for_delete_alone() {
        let operator = Operator::new()
            .on_mutate(|_: Arc<Body>, _: Context| async { Err::<(), _>(HandlerError::admission("general")) })
            .resource("kopfexamples")
            .id("general");
        let (p, _t) = processor(operator);
        let answer = p.review(request(review("DELETE", Value::Null, ex("a")))).await.unwrap();
        assert_eq!(answer["response"]["allowed"], true, "not called for DELETE");
        let operator = Operator::new()
            .on_mutate(|_: Arc<Body>, _: Context| async { Err::<(), _>(HandlerError::admission("deletion")) })
            .resource("kopfexamples")
            .operations([Operation::Delete]);
        let (p, _t) = processor(operator);
        let answer = p.review(request(review("DELETE", Value::Null, ex("a")))).await.unwrap();
        assert_eq!(answer["response"]["status"]["message"], "deletion");
    }

    #[tokio::test]
    async fn bad_webhook_requests_are_errors_not_answers() {
        let (p, _t) = processor(
            Operator::new().on_validate(|_: Arc<Body>, _: Context| async { ok() }).resource("kopfexamples"),
        );
        let mut no_user = review("CREATE", ex("a"), Value::Null);
        no_user["request"].as_object_mut().unwrap().remove("userInfo");
        let error = p.review(request(no_user)).await.unwrap_err();
        assert_eq!(error.status(), 400);
        assert_eq!(error.to_string(), "User info is missing from the admission request.");
        let error = p.review(request(review("CREATE", Value::Null, Value::Null))).await.unwrap_err();
        assert_eq!(error.status(), 400);
        let mut pods = review("CREATE", ex("a"), Value::Null);
        pods["request"]["resource"] = json!({"group": "", "version": "v1", "resource": "pods"});
        assert_eq!(p.review(request(pods)).await.unwrap_err().status(), 404);
        assert_eq!(p.review(request(json!([]))).await.unwrap_err().status(), 400);
    }

    #[test]
    fn webhook_names_and_url_ids_follow_kopfs_conventions() {
        assert_eq!(webhook_name("create_fn", "auto.kopf.dev"), "create-fn.auto.kopf.dev");
        assert_eq!(webhook_name("fn/spec.field", "auto.kopf.dev"), "fn.spec.field.auto.kopf.dev");
        assert_eq!(webhook_name("a b:c", ""), "a20b3ac");
        assert_eq!(quote("fn/spec.field x"), "fn/spec.field%20x");
        assert_eq!(unquote("fn%2Fspec.field%20x").as_deref(), Some("fn/spec.field x"));
    }

    /// Arbitrary JSON, with the words an AdmissionReview uses among its strings.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-zA-Z/_ .*%-]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("CREATE"),
                Just("UPDATE"),
                Just("DELETE"),
                Just("kopf.dev"),
                Just("kopfexamples")
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// AdmissionReviews with arbitrary values (or nothing) in their known places.
    fn shaped_review() -> impl Strategy<Value = Value> {
        let field = || prop::option::of(any_json());
        (field(), field(), field(), field(), field(), field(), field(), any::<bool>()).prop_map(
            |(uid, resource, op, user, object, old, sub, good_resource)| {
                let mut request = serde_json::Map::new();
                let pairs = [
                    ("uid", uid),
                    ("resource", resource),
                    ("operation", op),
                    ("userInfo", user),
                    ("object", object),
                    ("oldObject", old),
                    ("subResource", sub),
                ];
                for (key, value) in pairs {
                    if let Some(value) = value {
                        request.insert(key.into(), value);
                    }
                }
                if good_resource {
                    request.insert(
                        "resource".into(),
                        json!({"group": "kopf.dev", "version": "v1", "resource": "kopfexamples"}),
                    );
                }
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
            },
        )
    }

    proptest! {
        // Bounded here; the long run: `FUZZ_CASES=1000000 cargo test --release -p kopf --lib arbitrary_json`.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
        ))]
        #[test]
        fn arbitrary_json_never_panics_the_review_and_answers_keep_the_uid(
            body in prop_oneof![any_json(), shaped_review()],
            hint in prop::option::of("[a-z_/]{0,6}"),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let operator = Operator::new()
                    .on_validate(|obj: Arc<Body>, ctx: Context| async move {
                        ctx.add_warning(format!("{}", obj["spec"]));
                        if obj["spec"]["field"] == "bad" { Err(HandlerError::admission("bad")) } else { Ok(()) }
                    })
                    .resource("kopfexamples")
                    .id("v")
                    .on_mutate(|_: Arc<Body>, ctx: Context| async move {
                        ctx.patch().set("metadata.labels.seen", json!("yes"));
                        ok()
                    })
                    .resource("kopfexamples")
                    .id("m");
                let (p, _t) = processor(operator);
                let uid = body["request"]["uid"].as_str().map(str::to_owned);
                match p.review(WebhookRequest { body, webhook: hint, ..WebhookRequest::default() }).await {
                    Ok(answer) => {
                        prop_assert_eq!(answer["response"]["uid"].as_str(), Some(uid.as_deref().unwrap_or("")));
                        prop_assert!(answer["response"]["allowed"].is_boolean());
                    }
                    Err(e) => prop_assert!([400, 404, 409].contains(&e.status())),
                }
                Ok(())
            })?;
        }
    }
}
