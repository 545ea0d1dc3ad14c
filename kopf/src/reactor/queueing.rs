//! Per-object workers (Kopf's `queueing`): events are multiplexed by object uid to one worker per
//! object, which processes them one at a time, in order. A worker waits for the watch echo of its
//! own patch before running changing handlers again (consistency tracking, up to
//! `persistence.consistency_timeout`), sleeps handler delays (interrupted by new events) and then
//! touches the object to provoke a fresh event, and throttles itself after failed cycles
//! (`queueing.error_delays`).
//!
//! Unlike Kopf, a worker lives as long as its object (it does not exit after `idle_timeout`): a
//! parked task costs little, and the object's memory then needs no hand-over between workers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::inventory::ObjectMemory;
use super::processing::{self, EventKind, Scope};
use crate::engines::stopping::StopReason;
use crate::execution::Runtime;
use crate::memo::Memo;
use crate::observe::Observation;
use crate::primitives::activity::Counter;
use crate::primitives::clock::format_iso;
use crate::primitives::tasks::OwnedTask;
use crate::structs::patch::Patch;

/// One event for a worker.
#[derive(Debug)]
pub(crate) struct ObjectEvent {
    pub(crate) kind: EventKind,
    pub(crate) body: Arc<Value>,
}

/// The multiplexer of one watch stream: object key → worker.
pub(crate) struct Dispatcher {
    rt: Runtime,
    scope: Arc<Scope>,
    operator_memo: Memo,
    limit: Option<Arc<tokio::sync::Semaphore>>,
    workers: BTreeMap<String, (mpsc::UnboundedSender<ObjectEvent>, OwnedTask<()>)>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("resource", &self.scope.resource.name())
            .field("workers", &self.workers.len())
            .finish()
    }
}

/// Kopf's key: the uid, or `kind//apiVersion//name//namespace//creationTimestamp` without one.
fn object_key(body: &Value) -> String {
    let meta = &body["metadata"];
    match meta["uid"].as_str() {
        Some(uid) => uid.to_owned(),
        None => format!(
            "{}//{}//{}//{}//{}",
            body["kind"].as_str().unwrap_or_default(),
            body["apiVersion"].as_str().unwrap_or_default(),
            meta["name"].as_str().unwrap_or_default(),
            meta["namespace"].as_str().unwrap_or_default(),
            meta["creationTimestamp"].as_str().unwrap_or_default()
        ),
    }
}

impl Dispatcher {
    pub(crate) fn new(rt: Runtime, scope: Arc<Scope>, operator_memo: Memo) -> Self {
        let limit =
            rt.settings.queueing.worker_limit.map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        Self { rt, scope, operator_memo, limit, workers: BTreeMap::new() }
    }

    /// Hands an event to its object's worker, starting one if needed.
    pub(crate) fn dispatch(&mut self, kind: EventKind, body: Value) {
        let key = object_key(&body);
        let (namespace, name) = processing::names(&body);
        self.rt.observe(|| Observation::WatchEvent {
            resource: self.scope.resource.name(),
            event: kind.as_str(),
            namespace,
            name,
            resource_version: body["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_owned(),
        });
        let event = ObjectEvent { kind, body: Arc::new(body) };
        self.rt.activity.enter(Counter::QueuedEvents);
        let event = match self.workers.get(&key) {
            Some((tx, _)) => match tx.send(event) {
                Ok(()) => return,
                Err(mpsc::error::SendError(event)) => event,
            },
            None => event,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let noticed_by_listing = event.kind == EventKind::Listed;
        let _ = tx.send(event);
        let memory =
            ObjectMemory { memo: self.operator_memo.deep_copy(), noticed_by_listing, ..Default::default() };
        let worker =
            Worker { rt: self.rt.clone(), scope: self.scope.clone(), memory, limit: self.limit.clone() };
        let awake = self.rt.activity.awake();
        let task = OwnedTask::spawn(async move {
            let _awake = awake;
            worker.run(rx).await;
        });
        self.workers.insert(key, (tx, task));
    }

    /// Whether the resource has index handlers (its first listing gates the readiness barrier).
    pub(crate) fn has_indexers(&self) -> bool {
        !self.scope.handlers.indexing.is_empty()
    }

    /// Forgets workers that have finished (their objects are gone).
    pub(crate) fn reap(&mut self) {
        self.workers.retain(|_, (_, task)| !task.is_finished());
    }

    /// Stops every worker gracefully: their queues close, they finish the event at hand and stop
    /// their daemons and timers (which have 5 s for it).
    pub(crate) async fn shutdown(&mut self) {
        let workers = std::mem::take(&mut self.workers);
        let tasks: Vec<OwnedTask<()>> = workers.into_values().map(|(_, task)| task).collect();
        for task in tasks {
            self.rt.activity.wait(None, task.join()).await;
        }
    }
}

struct Worker {
    rt: Runtime,
    scope: Arc<Scope>,
    memory: ObjectMemory,
    limit: Option<Arc<tokio::sync::Semaphore>>,
}

/// Why a worker woke up.
enum Wake {
    Event(ObjectEvent),
    Closed,
    Deadline,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<ObjectEvent>) {
        let activity = self.rt.activity.clone();
        let settings = self.rt.settings.clone();
        let mut last: Option<Arc<Value>> = None;
        let mut expected: Option<(String, Instant)> = None;
        let mut wake_at: Option<Instant> = None;
        let mut throttled_until: Option<Instant> = None;
        let mut error_step = 0usize;
        loop {
            let deadline =
                [expected.as_ref().map(|e| e.1), wake_at, throttled_until].into_iter().flatten().min();
            let wake = match activity.wait(deadline, rx.recv()).await {
                Some(Some(event)) => Wake::Event(event),
                Some(None) => Wake::Closed,
                None => Wake::Deadline,
            };
            let now = Instant::now();
            let (kind, body) = match wake {
                Wake::Closed => break,
                Wake::Event(event) => {
                    activity.leave(Counter::QueuedEvents);
                    if let Some((rv, _)) = &expected
                        && (event.body["metadata"]["resourceVersion"].as_str() == Some(rv.as_str())
                            || event.kind == EventKind::Deleted)
                    {
                        expected = None;
                        activity.leave(Counter::AwaitingEcho);
                    }
                    wake_at = None; // a new event interrupts a handler delay (Kopf's "pressure")
                    (event.kind, event.body)
                }
                Wake::Deadline => {
                    let Some(body) = last.clone() else { continue };
                    if expected.as_ref().is_some_and(|e| e.1 <= now) {
                        expected = None;
                        activity.leave(Counter::AwaitingEcho);
                        (EventKind::Retry, body)
                    } else if throttled_until.is_some_and(|t| t <= now) {
                        throttled_until = None;
                        (EventKind::Retry, body)
                    } else if wake_at.is_some_and(|t| t <= now) {
                        wake_at = None;
                        self.touch(&body).await;
                        continue;
                    } else {
                        continue;
                    }
                }
            };
            if throttled_until.is_some_and(|t| t > now) && kind != EventKind::Deleted {
                last = Some(body);
                continue; // a failed cycle's pause: the event is kept for the retry
            }
            let _processing = activity.guard(Counter::Processing);
            let _permit = match &self.limit {
                Some(limit) => activity.wait(None, limit.clone().acquire_owned()).await.and_then(Result::ok),
                None => None,
            };
            let consistent = expected.is_none();
            match processing::process(&self.rt, &self.scope, &mut self.memory, kind, body.clone(), consistent)
                .await
            {
                Ok(result) => {
                    error_step = 0;
                    if kind == EventKind::Deleted {
                        if expected.take().is_some() {
                            activity.leave(Counter::AwaitingEcho);
                        }
                        if let Some(spawned) = self.memory.spawned.as_mut() {
                            spawned.abort();
                        }
                        tracing::debug!("Deleted, really deleted, and we are notified.");
                        break;
                    }
                    if let Some(rv) = result.expected_rv
                        && !settings.persistence.consistency_timeout.is_zero()
                    {
                        if expected.is_none() {
                            activity.enter(Counter::AwaitingEcho);
                        }
                        expected = Some((rv, Instant::now() + settings.persistence.consistency_timeout));
                    }
                    wake_at = match (result.patched, result.delays.iter().min()) {
                        (false, Some(delay)) => Some(Instant::now() + (*delay).min(Duration::from_secs(600))),
                        _ => None,
                    };
                }
                Err(e) => {
                    let delays = &settings.queueing.error_delays;
                    let delay =
                        delays.get(error_step).or(delays.last()).copied().unwrap_or(Duration::from_secs(1));
                    error_step += 1;
                    tracing::error!(error = %e, ?delay, "Processing of an object failed; retrying after a pause.");
                    throttled_until = Some(Instant::now() + delay);
                }
            }
            last = Some(body);
        }
        if expected.is_some() {
            activity.leave(Counter::AwaitingEcho);
        }
        if let Some(spawned) = self.memory.spawned.as_mut() {
            // Kopf's daemon killer: a graceful stop, but hung daemons are dropped after 5 s.
            spawned.stop_all(&self.rt, StopReason::OperatorExiting, Some(Duration::from_secs(5))).await;
        }
    }

    /// Patches the touch annotation so a fresh watch event wakes the object (after a full delay).
    async fn touch(&self, body: &Value) {
        let patch = Patch::default();
        let now = format_iso(self.rt.clock.now());
        self.rt.settings.persistence.progress_storage.touch(body, &patch, Some(&now));
        let data = patch.snapshot();
        // Not through `application::apply`, which would clear the touch it is sending.
        let resource = &self.scope.resource;
        let namespace = body["metadata"]["namespace"].as_str();
        let Some(name) = body["metadata"]["name"].as_str() else { return };
        let patch_body = crate::client::PatchBody::Merge(data.clone());
        match crate::client::retrying::retrying(&self.rt.settings.networking, || {
            self.rt.client.patch(resource, namespace, name, &patch_body, None)
        })
        .await
        {
            Ok(_) => {
                let (namespace, name) = processing::names(body);
                self.rt.observe(|| Observation::Patch {
                    resource: resource.name(),
                    namespace,
                    name,
                    subresource: None,
                    body: data,
                });
            }
            Err(crate::client::Error::NotFound(_)) => {}
            Err(e) => tracing::warn!(error = %e, "touching the object failed"),
        }
    }
}
