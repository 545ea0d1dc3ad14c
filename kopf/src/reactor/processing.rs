//! One processing cycle of one object (Kopf's `process_resource_event`): diff-base and essence,
//! raw-event handlers, timers, the changing cause and its handlers (one per cycle, Kopf's `asap`
//! lifecycle), the finalizer, and the patch — all in Kopf's order and by its rules.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::inventory::ObjectMemory;
use crate::causation::{Reason, detect_reason};
use crate::client;
use crate::context::{Context, Inner};
use crate::engines::spawning::Spawned;
use crate::engines::stopping::StopReason;
use crate::error::ErrorsMode;
use crate::execution::{self, Attempt, Runtime, application, progression};
use crate::observe::Observation;
use crate::registry::{Match, ResourceHandlers};
use crate::structs::diff::{self, Diff};
use crate::structs::finalizers;
use crate::structs::patch::Patch;
use crate::structs::references::Resource;

/// The kind of event a cycle reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// Found by a listing (Kopf's `type: None`).
    Listed,
    /// `ADDED`.
    Added,
    /// `MODIFIED`.
    Modified,
    /// `DELETED`.
    Deleted,
    /// No new event: a delay or the consistency wait ran out, or the touch is due.
    Retry,
}

impl EventKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Listed => "LISTED",
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
            Self::Retry => "RETRY",
        }
    }
}

/// What a cycle leaves for the worker.
#[derive(Debug, Default)]
pub(crate) struct CycleResult {
    /// Our patch's resourceVersion, whose echo to wait for.
    pub(crate) expected_rv: Option<String>,
    /// Handlers waiting (retry delays); the worker sleeps the shortest unless a patch was sent.
    pub(crate) delays: Vec<Duration>,
    /// Whether a patch was sent.
    pub(crate) patched: bool,
}

/// The resource a worker serves.
#[derive(Debug)]
pub(crate) struct Scope {
    pub(crate) resource: Resource,
    pub(crate) handlers: ResourceHandlers,
    pub(crate) extra_fields: Vec<Vec<String>>,
}

fn context(
    rt: &Runtime,
    scope: &Scope,
    memory: &ObjectMemory,
    body: &Arc<Value>,
    patch: &Patch,
    part: ContextPart<'_>,
) -> Context {
    Context::from_inner(Inner {
        resource: scope.resource.clone(),
        body: body.clone(),
        reason: part.reason,
        event_type: part.event_type,
        old: part.old,
        new: part.new,
        diff: part.diff,
        id: part.id.clone(),
        retry: part.retry,
        started: part.started,
        runtime: part.runtime,
        patch: patch.clone(),
        memo: memory.memo.clone(),
        rt: rt.clone(),
        stopped: crate::engines::stopping::Stopped::never(),
        live_body: None,
        daemon: false,
        children: part.children,
        settings_slot: None,
        admission: None,
    })
}

struct ContextPart<'a> {
    id: &'a crate::structs::ids::HandlerId,
    reason: Option<Reason>,
    event_type: Option<&'static str>,
    old: Option<Value>,
    new: Option<Value>,
    diff: Diff,
    retry: u32,
    started: jiff::Timestamp,
    runtime: Duration,
    children: Option<Arc<crate::execution::subhandlers::Children>>,
}

/// Processes one event (or a retry with the last body).
///
/// # Errors
/// API errors that escalated past the request retries; the worker throttles and retries.
pub(crate) async fn process(
    rt: &Runtime,
    scope: &Scope,
    memory: &mut ObjectMemory,
    kind: EventKind,
    body: Arc<Value>,
    consistent: bool,
) -> client::Result<CycleResult> {
    let settings = &rt.settings;
    let finalizer = settings.persistence.finalizer.as_str();
    let (namespace, name) = names(&body);
    let patch = Patch::default();
    for f in std::mem::take(&mut memory.leftover_fns) {
        patch.transform(move |b| f(b));
    }

    let progress = &settings.persistence.progress_storage;
    let diffbase = &settings.persistence.diffbase_storage;
    let mut old = diffbase.fetch(&body);
    if let Some(old) = old.as_mut() {
        progress.clear(old);
    }
    let mut new = diffbase.build(&body, &scope.extra_fields);
    progress.clear(&mut new);
    let diff = diff::diff(old.as_ref(), Some(&new));
    let deleted = kind == EventKind::Deleted;

    // Indexers: every event (a deletion discards the object's entries), errors ignored by default;
    // then everything else waits until all indexed resources are listed and indexed once.
    if !scope.handlers.indexing.is_empty() {
        let object = (
            namespace.clone(),
            name.clone(),
            body["metadata"]["uid"].as_str().unwrap_or_default().to_owned(),
        );
        let m = Match { body: &body, old: old.as_ref(), new: Some(&new), diff: &diff, reason: None };
        for handler in &scope.handlers.indexing {
            let Some(index) = rt.indexes.get(handler.id.as_str()) else { continue };
            if deleted || !handler.matches(&m) {
                index.remove(&object, false);
                continue;
            }
            let part = ContextPart {
                id: &handler.id,
                reason: None,
                event_type: None,
                old: old.clone(),
                new: Some(new.clone()),
                diff: diff.clone(),
                retry: 0,
                started: rt.clock.now(),
                runtime: Duration::ZERO,
                children: None,
            };
            let ctx = context(rt, scope, memory, &body, &patch, part);
            let attempt = Attempt { retries: 0, runtime: Duration::ZERO };
            let outcome = execution::execute(
                handler,
                body.clone(),
                &memory.decoded,
                ctx,
                attempt,
                rt,
                ErrorsMode::Ignored,
            )
            .await;
            match (&outcome.result, &outcome.error, outcome.final_) {
                (Some(result), _, _) => index.replace(&object, result),
                (None, None, _) => {} // nothing returned (or an ignored error): keep what it had
                (None, Some(_), true) => index.remove(&object, true), // permanent: out for good
                (None, Some(_), false) => index.remove(&object, false), // temporary: out until it succeeds
            }
        }
        if memory.noticed_by_listing && !memory.indexed_once {
            memory.indexed_once = true;
            rt.indexes.indexed_once();
        }
    }
    if !rt.indexes.is_ready() && !deleted {
        rt.activity.wait(None, rt.indexes.ready()).await;
    }

    // Raw-event handlers: every event, all at once, errors ignored, results delivered, no progress.
    if !scope.handlers.watching.is_empty() {
        let m = Match { body: &body, old: old.as_ref(), new: Some(&new), diff: &diff, reason: None };
        let event_type = match kind {
            EventKind::Added => Some("ADDED"),
            EventKind::Modified => Some("MODIFIED"),
            EventKind::Deleted => Some("DELETED"),
            EventKind::Listed | EventKind::Retry => None,
        };
        if kind != EventKind::Retry {
            for handler in scope.handlers.watching.iter().filter(|h| h.matches(&m)) {
                let part = ContextPart {
                    id: &handler.id,
                    reason: None,
                    event_type,
                    old: old.clone(),
                    new: Some(new.clone()),
                    diff: diff.clone(),
                    retry: 0,
                    started: rt.clock.now(),
                    runtime: Duration::ZERO,
                    children: None,
                };
                let ctx = context(rt, scope, memory, &body, &patch, part);
                let attempt = Attempt { retries: 0, runtime: Duration::ZERO };
                let outcome = execution::execute(
                    handler,
                    body.clone(),
                    &memory.decoded,
                    ctx,
                    attempt,
                    rt,
                    ErrorsMode::Ignored,
                )
                .await;
                rt.observe(|| Observation::Handler {
                    id: handler.id.to_string(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                    retry: 0,
                    outcome: outcome.label(),
                });
                if let Some(result) = &outcome.result {
                    progression::deliver_result(handler.id.as_str(), result, &patch);
                }
            }
        }
    }

    // Daemons and timers: refreshed with the live body; spawned while matching, stopped otherwise,
    // and on deletion stopped and awaited before the finalizer can go.
    let deletion_ongoing = finalizers::is_deletion_ongoing(&body);
    if !scope.handlers.spawning.is_empty() {
        let spawned = memory.spawned.get_or_insert_with(|| Spawned::new(body.clone()));
        spawned.refresh(body.clone(), !diff.is_empty());
        if deleted {
            spawned.abort();
            memory.spawned = None;
        } else if deletion_ongoing {
            spawned.stop_all(rt, StopReason::ResourceDeleted, None).await;
        } else {
            let m = Match { body: &body, old: old.as_ref(), new: Some(&new), diff: &diff, reason: None };
            let matching: Vec<_> =
                scope.handlers.spawning.iter().filter(|h| h.matches(&m)).cloned().collect();
            spawned.reconcile(rt, &scope.resource, &matching, &memory.memo);
        }
    }

    // The changing cause.
    let initial = memory.noticed_by_listing && !memory.fully_handled_once;
    let mut reason = None;
    if !scope.handlers.changing.is_empty() {
        let r = detect_reason(deleted, &body, finalizer, old.as_ref(), &diff, initial);
        let m = Match { body: &body, old: old.as_ref(), new: Some(&new), diff: &diff, reason: Some(r) };
        if scope.handlers.any_prematch(&m) {
            reason = Some(r);
        }
    }

    let m = Match { body: &body, old: old.as_ref(), new: Some(&new), diff: &diff, reason };
    let blocked = finalizers::is_deletion_blocked(&body, finalizer);
    let must_block = scope.handlers.requires_finalizer(&m);
    if !deleted && must_block && !blocked && !deletion_ongoing {
        tracing::debug!("[{namespace}/{name}] Adding the finalizer, thus preventing the actual deletion.");
        let f = finalizer.to_owned();
        patch.transform(move |b| finalizers::block_deletion(b, &f));
        reason = None;
    }
    if !deleted && !must_block && blocked {
        tracing::debug!(
            "[{namespace}/{name}] Removing the finalizer, as there are no handlers requiring it."
        );
        let f = finalizer.to_owned();
        patch.transform(move |b| finalizers::allow_deletion(b, &f));
        reason = None;
    }

    // Kopf (causes.py): a creation forces `initial` off, so resume handlers never mix with it, even
    // when the object was first seen by listing (an operator restarted mid-creation).
    let initial = initial && reason != Some(Reason::Create);
    let mut delays: Vec<Duration> = Vec::new();
    let skipped = reason.is_some() && !consistent;
    if let Some(reason) = reason {
        if consistent {
            delays = process_changing(
                rt,
                scope,
                memory,
                &body,
                &patch,
                reason,
                initial,
                old.as_ref(),
                &new,
                &diff,
            )
            .await;
        } else {
            tracing::debug!("[{namespace}/{name}] Waiting for the echo of our own patch before handling.");
        }
    }

    if deletion_ongoing && blocked && !deleted && delays.is_empty() && !skipped {
        tracing::debug!("[{namespace}/{name}] Removing the finalizer, thus allowing the actual deletion.");
        let f = finalizer.to_owned();
        patch.transform(move |b| finalizers::allow_deletion(b, &f));
    }

    let mut result = CycleResult { delays, ..Default::default() };
    if !deleted {
        let mut sent = |subresource: Option<&'static str>, patch_body: &Value| {
            rt.observe(|| Observation::Patch {
                resource: scope.resource.name(),
                namespace: namespace.clone(),
                name: name.clone(),
                subresource,
                body: patch_body.clone(),
            });
        };
        let applied =
            application::apply(rt.client.as_ref(), settings, &scope.resource, &body, &patch, &mut sent)
                .await?;
        memory.leftover_fns = applied.leftover;
        result.expected_rv = applied.expected_rv;
        result.patched = applied.sent;
    }
    Ok(result)
}

/// Kopf's `process_changing_cause`: run the selected handlers (one per cycle), store their states and
/// results; when all are done, purge the progress and store the diff-base.
#[allow(clippy::too_many_arguments)]
async fn process_changing(
    rt: &Runtime,
    scope: &Scope,
    memory: &mut ObjectMemory,
    body: &Arc<Value>,
    patch: &Patch,
    reason: Reason,
    initial: bool,
    old: Option<&Value>,
    new: &Value,
    diff: &Diff,
) -> Vec<Duration> {
    let (namespace, name) = names(body);
    let settings = &rt.settings;
    let storage = &settings.persistence.progress_storage;
    let now = rt.clock.now();
    let mut delays = Vec::new();
    let mut done = false;
    if reason.has_handlers() {
        let title = reason.title();
        let m = Match { body, old, new: Some(new), diff, reason: Some(reason) };
        let selected = scope.handlers.select(reason, initial, &m);
        let owned: Vec<&str> = scope.handlers.changing.iter().map(|h| h.id.as_str()).collect();
        let mut state = progression::State::from_storage(body, storage, owned.iter().copied(), now)
            .with_purpose(reason.as_str(), std::iter::empty())
            .with_handlers(selected.iter().map(|h| h.id.as_str()), now);
        let extras = state.extras();
        for (purpose, counts) in &extras {
            let extra_title: &str = match Reason::parse(purpose) {
                Some(r) => r.title(),
                None => purpose,
            };
            tracing::info!(
                "[{namespace}/{name}] {} is superseded by {title}: {} succeeded; {} failed; {} left to the moment.",
                capitalize(extra_title),
                counts.success,
                counts.failure,
                counts.running
            );
            state = state.with_purpose(reason.as_str(), selected.iter().map(|h| h.id.as_str()));
        }
        if !state.extras().is_empty() {
            state.purge(body, patch, storage, owned.iter().copied());
        }
        tracing::debug!("[{namespace}/{name}] {} is in progress.", capitalize(title));
        if !diff.is_empty() && old.is_some() {
            tracing::debug!("[{namespace}/{name}] {} diff: {diff}", capitalize(title));
        }
        if selected.is_empty() {
            done = true;
        } else {
            rt.observe(|| Observation::Cause {
                resource: scope.resource.name(),
                namespace: namespace.clone(),
                name: name.clone(),
                reason,
            });
            // Kopf's default lifecycle (`asap`): the awakened handler with the fewest retries.
            let next = selected
                .iter()
                .filter(|h| state.states.get(h.id.as_str()).is_some_and(|s| s.awakened(now)))
                .min_by_key(|h| state.states.get(h.id.as_str()).map_or(0, |s| s.retries));
            if let Some(handler) = next {
                let handler_state =
                    state.states.get(handler.id.as_str()).cloned().unwrap_or_else(|| {
                        progression::HandlerState::from_scratch(now, Some(reason.as_str()))
                    });
                let (h_old, h_new, h_diff) = match &handler.filters.field {
                    Some(field) => (
                        old.and_then(|o| diff::resolve(o, field)).cloned(),
                        diff::resolve(new, field).cloned(),
                        diff.reduce(field),
                    ),
                    None => (old.cloned(), Some(new.clone()), diff.clone()),
                };
                let runtime = handler_state.runtime(now);
                let family = crate::execution::subhandlers::Children::new(
                    handler.id.clone(),
                    Some(reason.as_str().to_owned()),
                );
                let part = ContextPart {
                    id: &handler.id,
                    reason: Some(reason),
                    event_type: None,
                    old: h_old,
                    new: h_new,
                    diff: h_diff,
                    retry: handler_state.retries,
                    started: handler_state.started,
                    runtime,
                    children: Some(family.clone()),
                };
                let ctx = context(rt, scope, memory, body, patch, part);
                let attempt = Attempt { retries: handler_state.retries, runtime };
                let outcome = execution::execute(
                    handler,
                    body.clone(),
                    &memory.decoded,
                    ctx,
                    attempt,
                    rt,
                    ErrorsMode::Temporary,
                )
                .await;
                rt.observe(|| Observation::Handler {
                    id: handler.id.to_string(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                    retry: handler_state.retries,
                    outcome: outcome.label(),
                });
                let after = rt.clock.now();
                state = state.with_outcome(handler.id.as_str(), &outcome, after);
                let (children, subrefs) = family.take();
                if !subrefs.is_empty()
                    && let Some(parent) = state.states.get_mut(handler.id.as_str())
                {
                    parent.subrefs = subrefs;
                }
                state.states.extend(children);
                if let Some(result) = &outcome.result {
                    progression::deliver_result(handler.id.as_str(), result, patch);
                }
            }
            state.store(body, patch, storage);
            let after = rt.clock.now();
            if state.done() {
                let counts = state.counts();
                let message = format!(
                    "{} is processed: {} succeeded; {} failed.",
                    capitalize(title),
                    counts.success,
                    counts.failure
                );
                tracing::info!("[{namespace}/{name}] {message}");
                crate::execution::post_log(rt, body, crate::settings::Level::Info, &message);
                state.purge(body, patch, storage, owned.iter().copied());
                done = true;
            } else {
                delays = state.delays(after);
            }
        }
    }
    if done {
        let old_essence = old.cloned();
        if old_essence.as_ref() != Some(new) {
            settings.persistence.diffbase_storage.store(body, patch, new);
        }
        memory.fully_handled_once = true;
    }
    delays
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(crate) fn names(body: &Value) -> (String, String) {
    let meta = &body["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_owned(),
        meta["name"].as_str().unwrap_or_default().to_owned(),
    )
}
