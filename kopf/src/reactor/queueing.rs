//! Per-object workers (Kopf's `queueing`): events are multiplexed by object uid to one worker per
//! object, which processes them one at a time, in order. A worker waits for the watch echo of its
//! own patch before running changing handlers again (consistency tracking, up to
//! `persistence.consistency_timeout`, after which it reads the object back rather than trust an
//! event older than its own patch), sleeps handler delays (interrupted by new events) and then
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
use crate::execution::application::NEVER_ARRIVES;
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
    /// Workers whose objects vanished unseen: their queues are closed, they are finishing.
    retired: Vec<OwnedTask<()>>,
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
pub(crate) fn object_key(body: &Value) -> String {
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
        Self { rt, scope, operator_memo, limit, workers: BTreeMap::new(), retired: Vec::new() }
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
        self.retired.retain(|task| !task.is_finished());
    }

    /// After a listing: the workers of objects not listed (deleted while the stream was not
    /// watching) get their queues closed and finish gracefully.
    pub(crate) fn retain(&mut self, listed: &std::collections::BTreeSet<String>) {
        self.reap();
        let gone: Vec<String> = self.workers.keys().filter(|k| !listed.contains(*k)).cloned().collect();
        for key in gone {
            if let Some((tx, task)) = self.workers.remove(&key) {
                drop(tx);
                self.retired.push(task);
            }
        }
    }

    /// Stops every worker gracefully: their queues close, they finish the event at hand and stop
    /// their daemons and timers (which have 5 s for it).
    pub(crate) async fn shutdown(&mut self) {
        let workers = std::mem::take(&mut self.workers);
        let mut tasks: Vec<OwnedTask<()>> = workers.into_values().map(|(_, task)| task).collect();
        tasks.append(&mut self.retired);
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

/// How a pause ended for a worker.
enum Paused {
    Resumed,
    Ended,
}

/// What reading an object back gave.
enum Refetched {
    Current(Value),
    Gone,
    Failed,
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
        // The resourceVersion of the last event from the watch (`last` may be a body read back).
        let mut last_event: Option<String> = None;
        let mut expected: Option<(String, Instant)> = None;
        let mut wake_at: Option<Instant> = None;
        let mut throttled_until: Option<Instant> = None;
        let mut error_step = 0usize;
        // The object was read back as gone: only its DELETED event is still of interest.
        let mut gone = false;
        loop {
            // Whether this cycle's body was read from the server (current, whatever echo is awaited).
            let mut refetched = false;
            // Whether this cycle's deletion was learnt by reading the object back.
            let mut vanished = false;
            if self.rt.paused.is_on() {
                // Kopf's pause: nothing is processed; daemons and timers stop (OPERATOR_PAUSING);
                // awaited echoes, delays and retries are dropped — the listing after the pause
                // brings the object's fresh state, and its processing sets them anew.
                if expected.take().is_some() {
                    activity.leave(Counter::AwaitingEcho);
                }
                (wake_at, throttled_until) = (None, None);
                if let Some(spawned) = self.memory.spawned.as_mut() {
                    spawned.stop_all(&self.rt, StopReason::OperatorPausing, None).await;
                }
                match self.while_paused(&mut rx).await {
                    Paused::Resumed => continue,
                    Paused::Ended => break,
                }
            }
            let deadline =
                [expected.as_ref().map(|e| e.1), wake_at, throttled_until].into_iter().flatten().min();
            let mut paused = self.rt.paused.subscribe();
            let woke = activity
                .wait(deadline, async {
                    tokio::select! {
                        biased;
                        _ = paused.wait_for(|p| *p) => None,
                        event = rx.recv() => Some(event),
                    }
                })
                .await;
            let wake = match woke {
                Some(None) => continue, // paused: see above
                Some(Some(Some(event))) => Wake::Event(event),
                Some(Some(None)) => Wake::Closed,
                None => Wake::Deadline,
            };
            let now = Instant::now();
            let (kind, body) = match wake {
                Wake::Closed => break,
                Wake::Event(event) => {
                    activity.leave(Counter::QueuedEvents);
                    if gone {
                        if event.kind == EventKind::Deleted {
                            break;
                        }
                        continue; // stale: older than the deletion already handled
                    }
                    last_event = event.body["metadata"]["resourceVersion"].as_str().map(str::to_owned);
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
                        // The echo did not come in time (a stalled watch, or a re-list past it). The
                        // last event is older than our own patch, so it is not taken for current
                        // (Kopf does, and re-runs handlers whose success that patch stored): the
                        // object is read instead.
                        let timeout = settings.persistence.consistency_timeout;
                        match self.refetch(&body).await {
                            Refetched::Current(fresh) => {
                                let version =
                                    fresh["metadata"]["resourceVersion"].as_str().map(str::to_owned);
                                if version.is_some() && version == last_event {
                                    expected = None; // the watch has caught up with it
                                    activity.leave(Counter::AwaitingEcho);
                                } else {
                                    // Events older than this version may still come: they are
                                    // stale until its own event arrives.
                                    let echo = version.unwrap_or_else(|| NEVER_ARRIVES.to_owned());
                                    expected = Some((echo, Instant::now() + timeout));
                                }
                                refetched = true;
                                (EventKind::Retry, Arc::new(fresh))
                            }
                            Refetched::Gone => {
                                expected = None;
                                activity.leave(Counter::AwaitingEcho);
                                vanished = true;
                                (EventKind::Deleted, body)
                            }
                            Refetched::Failed => {
                                if let Some(e) = expected.as_mut() {
                                    e.1 = Instant::now() + timeout;
                                }
                                continue;
                            }
                        }
                    } else if throttled_until.is_some_and(|t| t <= now) {
                        throttled_until = None;
                        (EventKind::Retry, body)
                    } else if wake_at.is_some_and(|t| t <= now) {
                        wake_at = None;
                        if self.touch(&body).await {
                            continue;
                        }
                        // No event will come of it: the delayed handlers run on the last body.
                        (EventKind::Retry, body)
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
            let consistent = expected.is_none() || refetched;
            let processed =
                processing::process(&self.rt, &self.scope, &mut self.memory, kind, body.clone(), consistent)
                    .await;
            // The next event brings a new body: its typed decoding would not be reused.
            self.memory.decoded.clear();
            match processed {
                Ok(result) => {
                    error_step = 0;
                    if kind == EventKind::Deleted {
                        if expected.take().is_some() {
                            activity.leave(Counter::AwaitingEcho);
                        }
                        if let Some(spawned) = self.memory.spawned.as_mut() {
                            spawned.abort();
                        }
                        if !vanished {
                            tracing::debug!("Deleted, really deleted, and we are notified.");
                            break;
                        }
                        // Read back as gone, but its DELETED event is still to come, maybe after
                        // stale ones: the worker stays to swallow them (a new worker would take
                        // them for news and handle the deletion again).
                        tracing::debug!("Deleted (read back as gone); waiting for the DELETED event.");
                        gone = true;
                        wake_at = None;
                        throttled_until = None;
                        continue;
                    }
                    if let Some(echo) = result.expected_rv
                        && !settings.persistence.consistency_timeout.is_zero()
                    {
                        if expected.is_none() {
                            activity.enter(Counter::AwaitingEcho);
                        }
                        expected = Some((echo, Instant::now() + settings.persistence.consistency_timeout));
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
            // The body is kept only for a wake-up that needs it (a retry after a pause or a missed
            // echo, a touch after a delay); an idle object does not hold a copy of itself.
            let pending = expected.is_some() || wake_at.is_some() || throttled_until.is_some();
            last = pending.then_some(body);
        }
        if expected.is_some() {
            activity.leave(Counter::AwaitingEcho);
        }
        if let Some(spawned) = self.memory.spawned.as_mut() {
            // Kopf's daemon killer: a graceful stop, but hung daemons are dropped after 5 s.
            spawned.stop_all(&self.rt, StopReason::OperatorExiting, Some(Duration::from_secs(5))).await;
        }
    }

    /// Waits out a pause: events meanwhile are dropped (the listing after the pause repeats them),
    /// except that a deletion or a closed queue ends the worker.
    async fn while_paused(&self, rx: &mut mpsc::UnboundedReceiver<ObjectEvent>) -> Paused {
        let activity = &self.rt.activity;
        let mut paused = self.rt.paused.subscribe();
        loop {
            let woke = activity
                .wait(None, async {
                    // A resume first: the events of the listing after it must not be dropped.
                    tokio::select! {
                        biased;
                        _ = paused.wait_for(|p| !*p) => None,
                        event = rx.recv() => Some(event),
                    }
                })
                .await
                .flatten();
            match woke {
                None => return Paused::Resumed,
                Some(None) => return Paused::Ended,
                Some(Some(event)) => {
                    activity.leave(Counter::QueuedEvents);
                    if event.kind == EventKind::Deleted {
                        return Paused::Ended;
                    }
                }
            }
        }
    }

    /// Reads the object from the server: the current version, or gone (absent, or replaced by a
    /// namesake with another uid), or failed (after the request retries).
    async fn refetch(&self, body: &Value) -> Refetched {
        let resource = &self.scope.resource;
        let namespace = body["metadata"]["namespace"].as_str();
        let Some(name) = body["metadata"]["name"].as_str() else { return Refetched::Failed };
        let got = crate::client::retrying::retrying(&self.rt.settings.networking, || {
            self.rt.client.get(resource, namespace, name)
        })
        .await;
        match got {
            Ok(fresh) if fresh["metadata"]["uid"] == body["metadata"]["uid"] => Refetched::Current(fresh),
            Ok(_) | Err(crate::client::Error::NotFound(_)) => Refetched::Gone,
            Err(e) => {
                tracing::warn!(error = %e, "reading the object after a missing echo failed; waiting again");
                Refetched::Failed
            }
        }
    }

    /// Patches the touch annotation so a fresh watch event wakes the object (after a full delay);
    /// whether that event (or the object's deletion) is coming.
    async fn touch(&self, body: &Value) -> bool {
        let patch = Patch::default();
        let now = format_iso(self.rt.clock.now());
        self.rt.settings.persistence.progress_storage.touch(body, &patch, Some(&now));
        if patch.is_empty() {
            return false; // already touched at this very instant: the patch would change nothing
        }
        let data = patch.snapshot();
        // Not through `application::apply`, which would clear the touch it is sending.
        let resource = &self.scope.resource;
        let namespace = body["metadata"]["namespace"].as_str();
        let Some(name) = body["metadata"]["name"].as_str() else { return false };
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
                true
            }
            Err(crate::client::Error::NotFound(_)) => true,
            Err(e) => {
                tracing::warn!(error = %e, "touching the object failed; handling it without a fresh event");
                false
            }
        }
    }
}
