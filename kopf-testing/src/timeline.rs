//! The timeline: an ordered record of what the operator saw and did — watch events, causes, handler
//! runs with outcomes, patches, API errors — stamped with virtual time. Printed when a test fails,
//! snapshot-able, and byte-identical for the same seed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use kopf::{
    ApiClient, ApiResult, BoxFuture, ObjectList, Observation, Observer, PatchBody, RawEvent, Resource,
    Selectors,
};
use serde_json::Value;
use tokio::time::Instant;

use crate::report::{Recorder, Report};

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Virtual time since the runner started.
    pub at: Duration,
    /// `watch`, `cause`, `handler`, `patch`, `daemon`, `api-error`, `warning`, `runner`.
    pub kind: &'static str,
    /// What happened.
    pub text: String,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>10.3}s  {:<9} {}", self.at.as_secs_f64(), self.kind, self.text)
    }
}

/// The shared record. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Timeline {
    entries: Arc<Mutex<Vec<Entry>>>,
    start: Instant,
    enabled: bool,
    report: Recorder,
}

impl Timeline {
    pub(crate) fn new(start: Instant, enabled: bool) -> Self {
        Self { entries: Arc::new(Mutex::new(Vec::new())), start, enabled, report: Recorder::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a line now.
    pub fn record(&self, kind: &'static str, text: impl Into<String>) {
        if !self.enabled {
            return;
        }
        let at = self.start.elapsed();
        self.lock().push(Entry { at, kind, text: text.into() });
    }

    /// The handler runs so far, counted per handler and object (kept with the timeline off too).
    pub fn report(&self) -> Report {
        self.report.snapshot()
    }

    /// All lines so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    /// The lines of one kind.
    pub fn of_kind(&self, kind: &str) -> Vec<Entry> {
        self.lock().iter().filter(|e| e.kind == kind).cloned().collect()
    }
}

impl std::fmt::Display for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for entry in self.lock().iter() {
            writeln!(f, "{entry}")?;
        }
        Ok(())
    }
}

fn object(namespace: &str, name: &str) -> String {
    if namespace.is_empty() { name.to_owned() } else { format!("{namespace}/{name}") }
}

impl Timeline {
    /// An observer that records into this timeline with `[label] ` before each line (one per
    /// operator when several run on one cluster).
    pub(crate) fn labelled(&self, label: &str) -> Labelled {
        Labelled { timeline: self.clone(), prefix: format!("[{label}] ") }
    }

    fn observed(&self, prefix: &str, observation: Observation) {
        if let Observation::Handler { id, namespace, name, outcome, .. } = &observation {
            self.report.record(id, object(namespace, name), outcome);
        }
        if !self.enabled {
            return;
        }
        let (kind, text) = describe(observation);
        self.record(kind, format!("{prefix}{text}"));
    }
}

/// The timeline line of an observation.
fn describe(observation: Observation) -> (&'static str, String) {
    match observation {
        Observation::WatchEvent { resource, event, namespace, name, resource_version } => {
            ("watch", format!("{event} {resource} {} rv={resource_version}", object(&namespace, &name)))
        }
        Observation::Cause { resource, namespace, name, reason } => {
            ("cause", format!("{reason} {resource} {}", object(&namespace, &name)))
        }
        Observation::Handler { id, namespace, name, retry, outcome } => (
            "handler",
            format!("{id} {} attempt={} {outcome}", object(&namespace, &name), retry.saturating_add(1)),
        ),
        Observation::Patch { resource, namespace, name, subresource, body } => {
            let target = match subresource {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource,
            };
            ("patch", format!("{target} {} {}", object(&namespace, &name), kopf_json(&body)))
        }
        Observation::Daemon { id, namespace, name, what } => {
            ("daemon", format!("{id} {} {what}", object(&namespace, &name)))
        }
        Observation::Unsharded { resource, namespace, selector } => {
            let scope = if namespace.is_empty() { "cluster-wide".to_owned() } else { namespace };
            ("warning", format!("unsharded list of {resource} {scope} for {selector}"))
        }
        Observation::Peering { peering, paused, message } => {
            let what = if paused { "paused" } else { "resumed" };
            ("peering", format!("{what} by {peering}: {message}"))
        }
        other => ("other", format!("{other:?}")),
    }
}

impl Observer for Timeline {
    fn observe(&self, observation: Observation) {
        self.observed("", observation);
    }
}

/// A [`Timeline`] observer that prefixes its lines with an operator's label.
#[derive(Debug, Clone)]
pub(crate) struct Labelled {
    timeline: Timeline,
    prefix: String,
}

impl Observer for Labelled {
    fn observe(&self, observation: Observation) {
        self.timeline.observed(&self.prefix, observation);
    }
}

fn kopf_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// An [`ApiClient`] that records failed calls and watch errors in the timeline.
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    pub(crate) inner: Arc<dyn ApiClient>,
    pub(crate) timeline: Timeline,
    /// `[label] ` for an extra operator's calls, empty for the runner's own.
    pub(crate) prefix: String,
    /// Where 403s go as well (they are `forbidden` lines in the timeline, not `api-error`).
    pub(crate) forbidden: crate::rbac::Forbidden,
}

impl Recording {
    fn note<T>(
        &self,
        what: &str,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        result: &ApiResult<T>,
    ) {
        if let Err(e) = result {
            let text = format!(
                "{}{what} {} {} → {e}",
                self.prefix,
                resource.name(),
                object(namespace.unwrap_or_default(), name)
            );
            if matches!(e, kopf::ApiError::Forbidden(_)) {
                // Kept even when the timeline is off: a refusal must never pass unseen.
                self.forbidden.push(text.clone());
                self.timeline.record("forbidden", text);
            } else {
                self.timeline.record("api-error", text);
            }
        }
    }
}

impl ApiClient for Recording {
    fn discover(&self) -> BoxFuture<'_, ApiResult<Vec<Resource>>> {
        self.inner.discover()
    }

    fn list<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        selectors: &'a Selectors,
    ) -> BoxFuture<'a, ApiResult<ObjectList>> {
        Box::pin(async move {
            let result = self.inner.list(resource, namespace, selectors).await;
            self.note("list", resource, namespace, "", &result);
            result
        })
    }

    fn watch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        resource_version: &'a str,
        timeout_seconds: Option<u64>,
        selectors: &'a Selectors,
    ) -> BoxFuture<'a, ApiResult<futures::stream::BoxStream<'static, ApiResult<RawEvent>>>> {
        Box::pin(async move {
            let result =
                self.inner.watch(resource, namespace, resource_version, timeout_seconds, selectors).await;
            self.note("watch", resource, namespace, "", &result);
            let timeline = self.timeline.clone();
            let name = resource.name();
            let prefix = self.prefix.clone();
            result.map(move |stream| {
                stream
                    .inspect(move |event| {
                        if let Ok(RawEvent::Error { code, message }) = event {
                            timeline.record(
                                "api-error",
                                format!("{prefix}watch {name} → ERROR {code}: {message}"),
                            );
                        }
                    })
                    .boxed()
            })
        })
    }

    fn get<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let result = self.inner.get(resource, namespace, name).await;
            self.note("get", resource, namespace, name, &result);
            result
        })
    }

    fn create<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        body: &'a Value,
    ) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let result = self.inner.create(resource, namespace, body).await;
            let name = body["metadata"]["name"]
                .as_str()
                .or(body["metadata"]["generateName"].as_str())
                .unwrap_or_default()
                .to_owned();
            self.note("create", resource, namespace, &name, &result);
            result
        })
    }

    fn patch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: &'a PatchBody,
        subresource: Option<&'a str>,
    ) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let result = self.inner.patch(resource, namespace, name, patch, subresource).await;
            self.note("patch", resource, namespace, name, &result);
            result
        })
    }

    fn delete<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<()>> {
        Box::pin(async move {
            let result = self.inner.delete(resource, namespace, name).await;
            self.note("delete", resource, namespace, name, &result);
            result
        })
    }
}
