//! Admission webhooks: the stored `MutatingWebhookConfiguration`s and
//! `ValidatingWebhookConfiguration`s are honoured on writes as the real server honours them.
//!
//! A create, update, patch (also of `status`) or delete that a webhook intercepts is reviewed
//! before it is stored: the mutating webhooks first, in the order of their configurations' names
//! and then of the list, each seeing the object as the ones before it left it (with
//! `reinvocationPolicy: IfNeeded` webhooks called once more when a later one changed it); then the
//! object is defaulted and validated again, and the validating webhooks see the result, all at
//! once. A rejection is answered as the real server answers it (`<resource> "<name>" is forbidden:
//! admission webhook "<webhook>" denied the request: <message>`, with the webhook's code and
//! reason); a webhook that cannot be called (no endpoint, a timeout after `timeoutSeconds`, an
//! invalid answer) fails the request with a 500 under `failurePolicy: Fail` and is skipped under
//! `Ignore`; a dry run meets only webhooks whose `sideEffects` are `None` or `NoneOnDryRun`.
//!
//! Webhooks are called in process when an endpoint is registered for their URL
//! ([`crate::Cluster::serve_webhook`]), which is how tests on virtual time reach an operator's
//! webhook without sockets; otherwise, when the server is served over HTTP(S)
//! ([`crate::FakeApiServer::serve`]), over HTTPS with the configuration's `caBundle`.
//!
//! Not reviewed: `deletecollection`, the `scale`, `finalize` and `binding` subresources, and the
//! internal writes of the built-in controllers.

pub(crate) mod hooks;
mod transport;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use self::hooks::{Hook, Invocation, SideEffects, Target};
use crate::cluster::Cluster;
use crate::error::ApiError;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A call of an in-process webhook endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookCall {
    /// The URL the webhook is configured with (a service's as `https://<name>.<namespace>.svc:<port><path>`).
    pub url: String,
    /// The part of the URL's path after the endpoint's base URL (e.g. `/<handler id>`).
    pub path: String,
    /// The `AdmissionReview` request.
    pub review: Value,
}

/// An in-process webhook endpoint: an `AdmissionReview` in, the answer out, or why the call
/// failed (as a transport error: the failure policy applies).
pub type WebhookEndpoint =
    Arc<dyn Fn(WebhookCall) -> BoxFuture<'static, Result<Value, String>> + Send + Sync>;

/// In-process endpoints by base URL, and whether other URLs are called over the network.
#[derive(Default)]
pub(crate) struct Endpoints {
    endpoints: Mutex<BTreeMap<String, WebhookEndpoint>>,
    pub(crate) network: AtomicBool,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.lock().keys().cloned().collect();
        f.debug_struct("Endpoints").field("urls", &urls).field("network", &self.network).finish()
    }
}

impl Endpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, WebhookEndpoint>> {
        self.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, base_url: &str, endpoint: WebhookEndpoint) {
        self.lock().insert(base_url.trim_end_matches('/').to_owned(), endpoint);
    }

    pub(crate) fn remove(&self, base_url: &str) {
        self.lock().remove(base_url.trim_end_matches('/'));
    }

    pub(crate) fn set_network(&self, enabled: bool) {
        self.network.store(enabled, Ordering::SeqCst);
    }

    /// The endpoint whose base URL is the longest prefix of `url` at a path boundary, and the rest.
    pub(crate) fn find(&self, url: &str) -> Option<(WebhookEndpoint, String)> {
        let endpoints = self.lock();
        endpoints
            .iter()
            .filter_map(|(base, endpoint)| {
                let rest = url.strip_prefix(base.as_str())?;
                (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
                    .then(|| (base.len(), endpoint.clone(), rest.to_owned()))
            })
            .max_by_key(|(len, ..)| *len)
            .map(|(_, endpoint, rest)| (endpoint, rest))
    }
}

/// A write under review: what its webhooks are told, and the webhooks that may intercept it.
#[derive(Debug, Clone)]
pub(crate) struct Review {
    pub(crate) hooks: Arc<Vec<Hook>>,
    pub(crate) operation: &'static str,
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) kind: String,
    pub(crate) plural: String,
    pub(crate) subresource: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The object to be stored (none for a delete).
    pub(crate) object: Option<Value>,
    /// The stored object (none for a create).
    pub(crate) old_object: Option<Value>,
    pub(crate) dry_run: bool,
    pub(crate) options: Value,
    pub(crate) namespace_labels: Option<BTreeMap<String, String>>,
    pub(crate) equivalents: Vec<(String, String)>,
    /// `userInfo`: who sent the request.
    pub(crate) user_info: Value,
}

impl Review {
    fn target(&self) -> Target<'_> {
        Target {
            operation: self.operation,
            group: &self.group,
            version: &self.version,
            plural: &self.plural,
            subresource: &self.subresource,
            namespace: &self.namespace,
            equivalents: &self.equivalents,
            namespace_labels: self.namespace_labels.as_ref(),
        }
    }

    /// Whether any webhook intercepts the request as it stands.
    pub(crate) fn intercepted(&self) -> bool {
        let target = self.target();
        self.hooks
            .iter()
            .any(|h| h.intercepts(&target, self.object.as_ref(), self.old_object.as_ref()).is_some())
    }

    /// `<resource> "<name>"` as the real server names the object in a webhook's rejection.
    fn forbidden_prefix(&self) -> String {
        let resource = if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        };
        let name = if self.name.is_empty() { "Unknown" } else { &self.name };
        format!("{resource} \"{name}\" is forbidden")
    }

    /// The `AdmissionReview` for one webhook call.
    fn request(&self, hook: &Hook, invocation: &Invocation, uid: &str) -> Value {
        let convert = |object: &Option<Value>| -> Value {
            match (object, &invocation.kind) {
                (Some(object), Some(kind)) => {
                    let mut converted = object.clone();
                    converted["apiVersion"] = json!(api_version(&self.group, &invocation.version));
                    converted["kind"] = json!(kind);
                    converted
                }
                (Some(object), None) => object.clone(),
                (None, _) => Value::Null,
            }
        };
        let kind = invocation.kind.clone().unwrap_or_else(|| self.kind.clone());
        let mut request = json!({
            "uid": uid,
            "kind": {"group": self.group, "version": invocation.version, "kind": kind},
            "resource": {"group": self.group, "version": invocation.version, "resource": self.plural},
            "requestKind": {"group": self.group, "version": self.version, "kind": self.kind},
            "requestResource": {"group": self.group, "version": self.version, "resource": self.plural},
            "name": self.name,
            "operation": self.operation,
            "userInfo": self.user_info,
            "object": convert(&self.object),
            "oldObject": convert(&self.old_object),
            "dryRun": self.dry_run,
            "options": self.options,
        });
        if !self.namespace.is_empty() {
            request["namespace"] = json!(self.namespace);
        }
        if !self.subresource.is_empty() {
            request["subResource"] = json!(self.subresource);
            request["requestSubResource"] = json!(self.subresource);
        }
        json!({"apiVersion": format!("admission.k8s.io/{}", hook.review_version), "kind": "AdmissionReview", "request": request})
    }
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") }
}

/// What a webhook answered, checked as the real server checks it.
struct Answer {
    allowed: bool,
    status: Value,
    patch: Option<Vec<Value>>,
    warnings: Vec<String>,
}

/// Why a call failed: the failure policy applies.
struct CallError(String);

/// What the webhooks did to a write: the object to store and the warnings for the client.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) warnings: Vec<String>,
    pub(crate) changed: bool,
}

/// Runs the mutating webhooks that intercept the request, changing `review.object`.
///
/// # Errors
/// A rejection, a failed call under `failurePolicy: Fail`, a dry run a webhook does not support,
/// or a patch that does not apply.
pub(crate) async fn mutate(
    cluster: &Cluster,
    review: &mut Review,
    outcome: &mut Outcome,
) -> Result<(), ApiError> {
    let hooks = review.hooks.clone();
    let mutating: Vec<&Hook> = hooks.iter().filter(|h| h.mutating).collect();
    let mut invoked: Vec<usize> = Vec::new(); // reinvocable webhooks called so far
    let mut reinvoke: Vec<usize> = Vec::new();
    for round in 0..2 {
        for (i, hook) in mutating.iter().enumerate() {
            if round == 1 && !reinvoke.contains(&i) {
                continue;
            }
            let Some(invocation) =
                hook.intercepts(&review.target(), review.object.as_ref(), review.old_object.as_ref())
            else {
                continue;
            };
            let changed = call_mutating(cluster, hook, &invocation, review, outcome).await?;
            if changed {
                outcome.changed = true;
                if round == 0 {
                    // Every reinvocable webhook called before this change sees the object again.
                    for j in invoked.iter().copied() {
                        if !reinvoke.contains(&j) {
                            reinvoke.push(j);
                        }
                    }
                }
            }
            if hook.reinvoke && round == 0 {
                invoked.push(i);
            }
        }
        if reinvoke.is_empty() {
            break;
        }
    }
    Ok(())
}

async fn call_mutating(
    cluster: &Cluster,
    hook: &Hook,
    invocation: &Invocation,
    review: &mut Review,
    outcome: &mut Outcome,
) -> Result<bool, ApiError> {
    let answer = match call(cluster, hook, invocation, review).await? {
        Ok(answer) => answer,
        Err(CallError(reason)) => return fail(hook, &reason),
    };
    outcome.warnings.extend(answer.warnings);
    if !answer.allowed {
        return Err(rejection(review, hook, &answer.status));
    }
    let Some(patch) = answer.patch.filter(|p| !p.is_empty()) else { return Ok(false) };
    let Some(object) = &review.object else {
        return Err(ApiError::Internal(format!(
            "admission webhook \"{}\" attempted to modify the object, which is not supported for this operation",
            hook.name
        )));
    };
    let mut patched = object.clone();
    if invocation.kind.is_some() {
        patched["apiVersion"] = json!(api_version(&review.group, &invocation.version));
    }
    let ops: json_patch::Patch = serde_json::from_value(Value::Array(patch))
        .map_err(|e| ApiError::Internal(format!("failed calling webhook \"{}\": {e}", hook.name)))?;
    json_patch::patch(&mut patched, &ops).map_err(|e| ApiError::Internal(e.to_string()))?;
    if invocation.kind.is_some() {
        patched["apiVersion"] = json!(api_version(&review.group, &review.version));
        patched["kind"] = json!(review.kind);
    }
    let changed = patched != *object;
    review.object = Some(patched);
    Ok(changed)
}

/// Runs the validating webhooks that intercept the request, all at once; the first failure in
/// their order wins.
///
/// # Errors
/// As [`mutate`].
pub(crate) async fn validate(
    cluster: &Cluster,
    review: &Review,
    outcome: &mut Outcome,
) -> Result<(), ApiError> {
    let target = review.target();
    let calls = review.hooks.iter().filter(|h| !h.mutating).filter_map(|hook| {
        let invocation = hook.intercepts(&target, review.object.as_ref(), review.old_object.as_ref())?;
        Some(async move { (hook, call(cluster, hook, &invocation, review).await) })
    });
    let results = futures::future::join_all(calls).await;
    let mut first_error = None;
    for (hook, result) in results {
        let verdict = match result {
            Err(e) => Err(e),
            Ok(Err(CallError(reason))) => fail(hook, &reason).map(|_| ()),
            Ok(Ok(answer)) => {
                outcome.warnings.extend(answer.warnings);
                if answer.allowed { Ok(()) } else { Err(rejection(review, hook, &answer.status)) }
            }
        };
        if let Err(e) = verdict {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A call failure under the webhook's failure policy: skipped (fail open) or a 500.
fn fail(hook: &Hook, reason: &str) -> Result<bool, ApiError> {
    let message = format!("failed calling webhook \"{}\": {reason}", hook.name);
    if hook.fail_open {
        tracing::warn!(configuration = %hook.configuration, "Failed calling webhook, failing open {}: {message}", hook.name);
        Ok(false)
    } else {
        tracing::warn!(configuration = %hook.configuration, "Failed calling webhook, failing closed {}: {message}", hook.name);
        Err(ApiError::Internal(message))
    }
}

/// A webhook's `allowed: false` as the real server answers it (apiserver's `ToStatusErr`).
fn rejection(review: &Review, hook: &Hook, status: &Value) -> ApiError {
    let code = status["code"].as_u64().and_then(|c| u16::try_from(c).ok()).filter(|c| *c != 0).unwrap_or(403);
    let reason = status["reason"].as_str().unwrap_or_default();
    let message = status["message"].as_str().unwrap_or_default();
    let denied = format!("admission webhook \"{}\" denied the request", hook.name);
    let denied = if !message.is_empty() {
        format!("{denied}: {message}")
    } else if !reason.is_empty() {
        format!("{denied}: {reason}")
    } else {
        format!("{denied} without explanation")
    };
    let details = match status.get("details") {
        Some(details) if !details.is_null() => details.clone(),
        _ if code == 500 => json!({"causes": [{"message": denied}]}),
        _ => {
            let mut d = json!({"name": if review.name.is_empty() { "Unknown" } else { &review.name }, "kind": review.plural});
            if !review.group.is_empty() {
                d["group"] = json!(review.group);
            }
            d
        }
    };
    let prefix = if code == 500 { "Internal error occurred".to_owned() } else { review.forbidden_prefix() };
    let reason = match (reason, code) {
        ("", 500) => "InternalError".to_owned(),
        ("", _) => "Forbidden".to_owned(),
        (reason, _) => reason.to_owned(),
    };
    ApiError::Rejected { code, reason, message: format!("{prefix}: {denied}"), details: Some(details) }
}

/// Calls one webhook; `Err` for an error of the request itself (a dry run it cannot take), the
/// inner `Err` for a failed call.
async fn call(
    cluster: &Cluster,
    hook: &Hook,
    invocation: &Invocation,
    review: &Review,
) -> Result<Result<Answer, CallError>, ApiError> {
    if review.dry_run && hook.side_effects == SideEffects::Unsafe {
        return Err(ApiError::BadRequest(format!(
            "admission webhook \"{}\" does not support dry run",
            hook.name
        )));
    }
    let uid = cluster.new_uid();
    let body = review.request(hook, invocation, &uid);
    let url = hook.client.url();
    let seconds = hook.timeout.as_secs();
    let timeout_url = format!("{url}{}timeout={seconds}s", if url.contains('?') { '&' } else { '?' });
    let answer = match cluster.webhook_endpoint(&url) {
        Some((endpoint, path)) => {
            let call = endpoint(WebhookCall { url: url.clone(), path, review: body });
            match tokio::time::timeout(hook.timeout, call).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => {
                    return Ok(Err(CallError(format!(
                        "failed to call webhook: Post \"{timeout_url}\": {e}"
                    ))));
                }
                Err(_) => {
                    return Ok(Err(CallError(format!(
                        "failed to call webhook: Post \"{timeout_url}\": context deadline exceeded"
                    ))));
                }
            }
        }
        None if cluster.webhook_network() => {
            let address = match &hook.client {
                hooks::Client::Url(_) => None,
                hooks::Client::Service { namespace, name, port, .. } => {
                    match cluster.service_address(namespace, name, *port) {
                        Ok(address) => Some(address),
                        Err(e) => return Ok(Err(CallError(format!("failed to call webhook: {e}")))),
                    }
                }
            };
            let bytes = body.to_string().into_bytes();
            let posted = transport::post(&timeout_url, address, hook.ca_bundle.as_deref(), bytes);
            let result = match tokio::time::timeout(hook.timeout, posted).await {
                Ok(result) => result,
                Err(_) => Err("context deadline exceeded".to_owned()),
            };
            match result.and_then(|bytes| serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string()))
            {
                Ok(answer) => answer,
                Err(e) => {
                    return Ok(Err(CallError(format!(
                        "failed to call webhook: Post \"{timeout_url}\": {e}"
                    ))));
                }
            }
        }
        None => {
            return Ok(Err(CallError(format!(
                "failed to call webhook: Post \"{timeout_url}\": no webhook endpoint is served at this URL"
            ))));
        }
    };
    Ok(verify(hook, &uid, &answer).map_err(|e| CallError(format!("received invalid webhook response: {e}"))))
}

/// Checks an answer as the real server does (`VerifyAdmissionResponse`).
fn verify(hook: &Hook, uid: &str, answer: &Value) -> Result<Answer, String> {
    let expected = format!("admission.k8s.io/{}", hook.review_version);
    let (api_version, kind) =
        (answer["apiVersion"].as_str().unwrap_or_default(), answer["kind"].as_str().unwrap_or_default());
    let Some(response) = answer.get("response").filter(|r| r.is_object()) else {
        return Err("webhook response was absent".into());
    };
    let got_uid = response["uid"].as_str().unwrap_or_default();
    if got_uid != uid {
        return Err(format!("expected response.uid=\"{uid}\", got \"{got_uid}\""));
    }
    if api_version != expected || kind != "AdmissionReview" {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        return Err(format!(
            "expected webhook response of {expected}, Kind=AdmissionReview, got {group}/{version}, Kind={kind}"
        ));
    }
    let warnings = response["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(|w| w.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let patch = match response["patch"].as_str().filter(|p| !p.is_empty()) {
        Some(encoded) if hook.mutating => {
            let Some(patch_type) = response["patchType"].as_str() else {
                return Err("webhook returned response.patch but not response.patchType".into());
            };
            if patch_type != "JSONPatch" {
                return Err(format!("unsupported patch type \"{patch_type}\""));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("received undecodable patch in webhook response: {e}"))?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Array(ops)) => Some(ops),
                Ok(_) => return Err("received undecodable patch in webhook response: not an array".into()),
                Err(e) => return Err(format!("received undecodable patch in webhook response: {e}")),
            }
        }
        _ => None,
    };
    Ok(Answer {
        allowed: response["allowed"].as_bool().unwrap_or(false),
        status: response.get("status").cloned().unwrap_or(Value::Null),
        patch,
        warnings,
    })
}
