//! Activities (Kopf's `@kopf.on.startup/cleanup/login/probe`): handlers of the operator itself, not of
//! objects. Startup handlers run before any watching (and may change the settings), all at once,
//! retried until they succeed — a permanent failure stops the operator from starting; cleanup
//! handlers run at exit; login handlers give the credentials the API client uses, and are called
//! again after a 401; probe handlers give the values of the liveness endpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::RwLock;

use futures::stream::BoxStream;

use crate::client::{self, ApiClient, BoxFuture, ObjectList, PatchBody, RawEvent};
use crate::context::{Context, Inner};
use crate::engines::stopping::Stopped;
use crate::error::ErrorsMode;
use crate::execution::{self, Attempt, Runtime};
use crate::memo::Memo;
use crate::registry::{DecodeCache, Handler};
use crate::settings::Settings;
use crate::structs::diff::Diff;
use crate::structs::patch::Patch;
use crate::structs::references::Resource;

/// The kinds of activities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActivityKind {
    Startup,
    Cleanup,
    Login,
    Probe,
}

/// Credentials a login handler returns (Kopf's `kopf.ConnectionInfo`, the fields kube-rs uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The API server's URL.
    pub server: String,
    /// A bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The CA bundle (PEM) to verify the server with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Skip TLS verification.
    #[serde(default)]
    pub insecure: bool,
    /// The default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_namespace: Option<String>,
}

impl ConnectionInfo {
    /// Credentials for `server` with a bearer token.
    pub fn with_token(server: impl Into<String>, token: impl Into<String>) -> Self {
        Self { server: server.into(), token: Some(token.into()), ..Self::default() }
    }

    /// The same, verifying the server with this CA (PEM).
    #[must_use]
    pub fn ca(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// A kube-rs configuration for these credentials.
    ///
    /// # Errors
    /// An invalid URL or CA.
    pub fn to_kube_config(&self) -> Result<kube::Config, String> {
        let url: http::Uri =
            self.server.parse().map_err(|e| format!("invalid server URL {:?}: {e}", self.server))?;
        let mut config = kube::Config::new(url);
        config.accept_invalid_certs = self.insecure;
        if let Some(ns) = &self.default_namespace {
            config.default_namespace.clone_from(ns);
        }
        if let Some(token) = &self.token {
            config.auth_info.token = Some(token.clone().into());
        }
        if let Some(pem) = &self.ca_pem {
            let der = pem_certificates(pem)?;
            config.root_cert = Some(der);
        }
        Ok(config)
    }
}

/// The DER certificates of a PEM bundle.
fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match line {
            "-----BEGIN CERTIFICATE-----" => current = Some(String::new()),
            "-----END CERTIFICATE-----" => {
                let b64 = current.take().ok_or("an END without a BEGIN in the CA bundle")?;
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("invalid base64 in the CA bundle: {e}"))?;
                out.push(der);
            }
            other => {
                if let Some(b64) = current.as_mut() {
                    b64.push_str(other);
                }
            }
        }
    }
    if out.is_empty() {
        return Err("no certificate in the CA bundle".to_owned());
    }
    Ok(out)
}

/// A context for an activity: no object, the operator's memo and runtime.
pub(crate) fn context(
    rt: &Runtime,
    memo: &Memo,
    handler: &Handler,
    retry: u32,
    settings: Option<Arc<Mutex<Settings>>>,
) -> Context {
    Context::from_inner(Inner {
        resource: Resource::default(),
        body: Arc::new(Value::Null),
        reason: None,
        event_type: None,
        old: None,
        new: None,
        diff: Diff::default(),
        id: handler.id.clone(),
        retry,
        started: rt.clock.now(),
        runtime: Duration::ZERO,
        patch: Patch::default(),
        memo: memo.clone(),
        rt: rt.clone(),
        stopped: Stopped::never(),
        live_body: None,
        daemon: false,
        children: None,
        settings_slot: settings,
        admission: None,
    })
}

/// Runs activities all at once until each has succeeded (retrying temporary failures after their
/// delay); their results by id, or the first permanent failure.
pub(crate) async fn run_all(
    rt: &Runtime,
    memo: &Memo,
    handlers: &[Arc<Handler>],
    settings: Option<Arc<Mutex<Settings>>>,
) -> Result<BTreeMap<String, Value>, String> {
    let mut results = BTreeMap::new();
    let mut pending: Vec<(Arc<Handler>, u32)> = handlers.iter().map(|h| (h.clone(), 0)).collect();
    while !pending.is_empty() {
        let mut next = Vec::new();
        let mut delay = None::<Duration>;
        for (handler, retries) in pending {
            let ctx = context(rt, memo, &handler, retries, settings.clone());
            let attempt = Attempt { retries, runtime: Duration::ZERO };
            let body = Arc::new(Value::Null);
            let outcome = execution::execute(
                &handler,
                body,
                &DecodeCache::default(),
                ctx,
                attempt,
                rt,
                ErrorsMode::Temporary,
            )
            .await;
            match (outcome.final_, &outcome.error) {
                (true, None) => {
                    results.insert(handler.id.as_str().to_owned(), outcome.result.unwrap_or(Value::Null));
                }
                (true, Some(message)) => return Err(format!("{}: {message}", handler.id)),
                (false, _) => {
                    let wait = outcome.delay.unwrap_or(rt.settings.execution.default_backoff);
                    delay = Some(delay.map_or(wait, |d| d.min(wait)));
                    next.push((handler, retries + 1));
                }
            }
        }
        if let Some(delay) = delay {
            rt.activity.sleep_until(tokio::time::Instant::now() + delay).await;
        }
        pending = next;
    }
    Ok(results)
}

/// Builds an API client from credentials.
pub type Connect = Arc<dyn Fn(&ConnectionInfo) -> Result<Arc<dyn ApiClient>, String> + Send + Sync>;

/// The default [`Connect`]: a kube-rs client.
pub(crate) fn kube_connect() -> Connect {
    Arc::new(|info: &ConnectionInfo| {
        let config = info.to_kube_config()?;
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        Ok(Arc::new(client::KubeApiClient::new(client)) as Arc<dyn ApiClient>)
    })
}

/// An API client logged in by the operator's login handlers: it logs in on first use, and again
/// after a 401 (then retries the request once).
pub(crate) struct LoginClient {
    rt: Runtime,
    memo: Memo,
    handlers: Vec<Arc<Handler>>,
    connect: Connect,
    current: RwLock<Option<Arc<dyn ApiClient>>>,
    logins: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for LoginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginClient").field("logins", &self.logins).finish_non_exhaustive()
    }
}

impl LoginClient {
    pub(crate) fn new(rt: Runtime, memo: Memo, handlers: Vec<Arc<Handler>>, connect: Connect) -> Self {
        Self { rt, memo, handlers, connect, current: RwLock::new(None), logins: 0.into() }
    }

    async fn client(&self) -> client::Result<Arc<dyn ApiClient>> {
        if let Some(client) = self.current.read().await.clone() {
            return Ok(client);
        }
        let mut current = self.current.write().await;
        if let Some(client) = current.clone() {
            return Ok(client);
        }
        self.logins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let results = run_all(&self.rt, &self.memo, &self.handlers, None)
            .await
            .map_err(|e| client::Error::Unauthorized(format!("login failed: {e}")))?;
        // The first handler (in registration order) that returned credentials wins.
        let info = self
            .handlers
            .iter()
            .filter_map(|h| results.get(h.id.as_str()))
            .find_map(|v| serde_json::from_value::<ConnectionInfo>(v.clone()).ok())
            .ok_or_else(|| client::Error::Unauthorized("no login handler returned credentials".into()))?;
        let client = (self.connect)(&info).map_err(client::Error::Transport)?;
        *current = Some(client.clone());
        Ok(client)
    }

    async fn invalidate(&self, stale: &Arc<dyn ApiClient>) {
        let mut current = self.current.write().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, stale)) {
            *current = None;
        }
    }
}

/// Runs a request through a [`LoginClient`]; after a 401, logs in again and retries it once.
macro_rules! relogin {
    ($self:ident, |$c:ident| $call:expr) => {{
        let client = $self.client().await?;
        let first = {
            let $c = client.as_ref();
            $call.await
        };
        match first {
            Err(client::Error::Unauthorized(message)) => {
                tracing::warn!(%message, "The credentials were rejected; logging in again.");
                $self.invalidate(&client).await;
                let client = $self.client().await?;
                let $c = client.as_ref();
                $call.await
            }
            other => other,
        }
    }};
}

impl ApiClient for LoginClient {
    fn discover(&self) -> BoxFuture<'_, client::Result<Vec<Resource>>> {
        Box::pin(async move { relogin!(self, |c| c.discover()) })
    }

    fn list<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        selectors: &'a client::Selectors,
    ) -> BoxFuture<'a, client::Result<ObjectList>> {
        Box::pin(async move { relogin!(self, |c| c.list(resource, namespace, selectors)) })
    }

    fn watch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        resource_version: &'a str,
        timeout_seconds: Option<u64>,
        selectors: &'a client::Selectors,
    ) -> BoxFuture<'a, client::Result<BoxStream<'static, client::Result<RawEvent>>>> {
        Box::pin(async move {
            relogin!(self, |c| c.watch(resource, namespace, resource_version, timeout_seconds, selectors))
        })
    }

    fn get<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, client::Result<Value>> {
        Box::pin(async move { relogin!(self, |c| c.get(resource, namespace, name)) })
    }

    fn create<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        body: &'a Value,
    ) -> BoxFuture<'a, client::Result<Value>> {
        Box::pin(async move { relogin!(self, |c| c.create(resource, namespace, body)) })
    }

    fn patch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: &'a PatchBody,
        subresource: Option<&'a str>,
    ) -> BoxFuture<'a, client::Result<Value>> {
        Box::pin(async move { relogin!(self, |c| c.patch(resource, namespace, name, patch, subresource)) })
    }

    fn delete<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, client::Result<()>> {
        Box::pin(async move { relogin!(self, |c| c.delete(resource, namespace, name)) })
    }
}

/// The client an operator with login handlers starts with: never used, since the handlers' client
/// replaces it.
#[derive(Debug)]
pub(crate) struct NotLoggedIn;

impl ApiClient for NotLoggedIn {
    fn discover(&self) -> BoxFuture<'_, client::Result<Vec<Resource>>> {
        Box::pin(async { Err(client::Error::Unauthorized("not logged in".into())) })
    }

    fn list<'a>(
        &'a self,
        _: &'a Resource,
        _: Option<&'a str>,
        _: &'a client::Selectors,
    ) -> BoxFuture<'a, client::Result<ObjectList>> {
        Box::pin(async { Err(client::Error::Unauthorized("not logged in".into())) })
    }

    fn watch<'a>(
        &'a self,
        _: &'a Resource,
        _: Option<&'a str>,
        _: &'a str,
        _: Option<u64>,
        _: &'a client::Selectors,
    ) -> BoxFuture<'a, client::Result<BoxStream<'static, client::Result<RawEvent>>>> {
        Box::pin(async { Err(client::Error::Unauthorized("not logged in".into())) })
    }

    fn get<'a>(
        &'a self,
        _: &'a Resource,
        _: Option<&'a str>,
        _: &'a str,
    ) -> BoxFuture<'a, client::Result<Value>> {
        Box::pin(async { Err(client::Error::Unauthorized("not logged in".into())) })
    }

    fn create<'a>(
        &'a self,
        _: &'a Resource,
        _: Option<&'a str>,
        _: &'a Value,
    ) -> BoxFuture<'a, client::Result<Value>> {
        Box::pin(async { Err(client::Error::Unauthorized("not logged in".into())) })
    }

    fn patch<'a>(
        &'a self,
        _: &'a Resource,
        _: Option<&'a str>,
        _: &'a str,
        _: &'a PatchBody,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, client::Result<Value>> {
        Box::pin(async { Err(client::Error::Unauthorized("not logged in".into())) })
    }

    fn delete<'a>(
        &'a self,
        _: &'a Resource,
        _: Option<&'a str>,
        _: &'a str,
    ) -> BoxFuture<'a, client::Result<()>> {
        Box::pin(async { Err(client::Error::Unauthorized("not logged in".into())) })
    }
}

/// The probes of a running operator (Kopf's liveness endpoint values), cached for 10 s.
#[derive(Clone)]
pub(crate) struct Probes {
    pub(crate) rt: Runtime,
    pub(crate) memo: Memo,
    pub(crate) handlers: Vec<Arc<Handler>>,
    pub(crate) cache: Arc<tokio::sync::Mutex<Option<ProbeResults>>>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes").field("handlers", &self.handlers.len()).finish_non_exhaustive()
    }
}

/// Probe results and when they were taken.
pub(crate) type ProbeResults = (tokio::time::Instant, BTreeMap<String, Value>);

/// How long probe results are reused (Kopf: 10 s).
pub(crate) const PROBE_CACHE: Duration = Duration::from_secs(10);

impl Probes {
    /// Runs the probe handlers (at most once per [`PROBE_CACHE`], under a lock): results by id.
    pub(crate) async fn run(&self) -> BTreeMap<String, Value> {
        let mut cache = self.cache.lock().await;
        if let Some((at, results)) = cache.as_ref()
            && at.elapsed() < PROBE_CACHE
        {
            return results.clone();
        }
        let mut results = BTreeMap::new();
        for handler in &self.handlers {
            let ctx = context(&self.rt, &self.memo, handler, 0, None);
            let attempt = Attempt { retries: 0, runtime: Duration::ZERO };
            let outcome = execution::execute(
                handler,
                Arc::new(Value::Null),
                &DecodeCache::default(),
                ctx,
                attempt,
                &self.rt,
                ErrorsMode::Ignored,
            )
            .await;
            if let Some(value) = outcome.result {
                results.insert(handler.id.as_str().to_owned(), value);
            }
        }
        *cache = Some((tokio::time::Instant::now(), results.clone()));
        results
    }
}
