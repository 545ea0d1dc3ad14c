//! An object's background tasks — its daemons and timers — kept by its worker: spawned while their
//! filters match and the object is not being deleted, stopped (with a reason) otherwise, awaited
//! before the finalizer is released, stopped gracefully when the operator exits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::context::{Context, Inner};
use crate::engines::daemons::DaemonEnv;
use crate::engines::stopping::{StopReason, StopSignal, Stopped};
use crate::engines::timers::TimerEnv;
use crate::execution::{Outcome, Runtime, application, progression};
use crate::memo::Memo;
use crate::observe::Observation;
use crate::primitives::activity::ActivityGuard;
use crate::primitives::tasks::OwnedTask;
use crate::registry::{DecodeCache, Handler, Kind};
use crate::structs::diff::Diff;
use crate::structs::patch::Patch;
use crate::structs::references::Resource;

/// A background task.
#[derive(Debug)]
struct Running {
    signal: StopSignal,
    handoff: Arc<HandOff>,
    task: OwnedTask<()>,
}

/// A task's awake count at its end: dropped, or — when someone is joining the task — left for the
/// joiner to drop once it runs again, so that no instant counts nobody awake.
#[derive(Debug)]
struct HandOff {
    joining: std::sync::atomic::AtomicBool,
    slot: Mutex<Option<ActivityGuard>>,
}

impl HandOff {
    fn end(&self, awake: ActivityGuard) {
        if self.joining.load(std::sync::atomic::Ordering::SeqCst) {
            *self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(awake);
        }
    }

    fn take(&self) -> Option<ActivityGuard> {
        self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

/// What every background task of one object shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) rt: Runtime,
    pub(crate) resource: Resource,
    pub(crate) handler: Arc<Handler>,
    pub(crate) body: watch::Receiver<Arc<Value>>,
    pub(crate) idle_reset: Arc<Mutex<Instant>>,
    pub(crate) memo: Memo,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

/// The daemons and timers of one object.
#[derive(Debug)]
pub(crate) struct Spawned {
    body: watch::Sender<Arc<Value>>,
    idle_reset: Arc<Mutex<Instant>>,
    running: BTreeMap<String, Running>,
    /// Stopped, not yet exited: not respawned until they have.
    stopping: BTreeMap<String, Running>,
    /// Tasks that ended by themselves (a daemon that returned or failed for good, a timer with
    /// neither interval nor idle): never again in this process.
    forever: BTreeSet<String>,
}

impl Spawned {
    pub(crate) fn new(body: Arc<Value>) -> Self {
        Self {
            body: watch::channel(body).0,
            idle_reset: Arc::new(Mutex::new(Instant::now())),
            running: BTreeMap::new(),
            stopping: BTreeMap::new(),
            forever: BTreeSet::new(),
        }
    }

    /// The freshest body, for the next runs (and daemons' `fresh_body()`); an essential change
    /// resets the timers' idle time.
    pub(crate) fn refresh(&self, body: Arc<Value>, essence_changed: bool) {
        self.body.send_replace(body);
        if essence_changed {
            *self.idle_reset.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        }
    }

    fn reap(&mut self) {
        self.stopping.retain(|_, r| !r.task.is_finished());
        let forever = &mut self.forever;
        self.running.retain(|id, r| {
            if r.task.is_finished() {
                // A finished task without a stop request ended by itself.
                if !r.signal.is_requested() {
                    forever.insert(id.clone());
                }
                false
            } else {
                true
            }
        });
    }

    /// Starts the matching daemons and timers that are not running; stops the others.
    pub(crate) fn reconcile(
        &mut self,
        rt: &Runtime,
        resource: &Resource,
        matching: &[Arc<Handler>],
        memo: &Memo,
    ) {
        self.reap();
        let wanted: Vec<&str> = matching.iter().map(|h| h.id.as_str()).collect();
        let unwanted: Vec<String> =
            self.running.keys().filter(|id| !wanted.contains(&id.as_str())).cloned().collect();
        for id in unwanted {
            if let Some(running) = self.running.remove(&id) {
                running.signal.stop(StopReason::FiltersMismatch);
                self.stopping.insert(id, running);
            }
        }
        let body = self.body.borrow().clone();
        let (namespace, name) = crate::reactor::processing::names(&body);
        for handler in matching {
            let id = handler.id.as_str();
            if self.running.contains_key(id) || self.stopping.contains_key(id) || self.forever.contains(id) {
                continue;
            }
            let shared = Shared {
                rt: rt.clone(),
                resource: resource.clone(),
                handler: handler.clone(),
                body: self.body.subscribe(),
                idle_reset: self.idle_reset.clone(),
                memo: memo.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
            };
            let (signal, stopped, end) = StopSignal::new(&rt.activity);
            let awake = rt.activity.awake();
            let handoff = Arc::new(HandOff { joining: false.into(), slot: Mutex::new(None) });
            let ending = handoff.clone();
            let task = match handler.kind {
                Kind::Daemon(spec) => OwnedTask::spawn(async move {
                    DaemonEnv { shared, spec, stopped, decoded: DecodeCache::default() }.run().await;
                    drop(end);
                    ending.end(awake);
                }),
                Kind::Timer(spec) => OwnedTask::spawn(async move {
                    TimerEnv { shared, spec, stopped, decoded: DecodeCache::default() }.run().await;
                    drop(end);
                    ending.end(awake);
                }),
                _ => continue,
            };
            self.running.insert(id.to_owned(), Running { signal, handoff, task });
        }
    }

    /// Stops everything with `reason` and waits until all have exited (each by its own stop
    /// sequence: cancellation backoff, timeout, polling) — or, with a `cap`, until it passes, then
    /// aborts the rest.
    pub(crate) async fn stop_all(&mut self, rt: &Runtime, reason: StopReason, cap: Option<Duration>) {
        let all: Vec<(String, Running)> =
            std::mem::take(&mut self.running).into_iter().chain(std::mem::take(&mut self.stopping)).collect();
        for (_, running) in &all {
            running.signal.stop(reason);
        }
        let give_up = cap.map(|cap| Instant::now() + cap);
        for (_, running) in all {
            // The task's awake count is left to us at its end and dropped here, after this task is
            // counted awake again. A task past the cap is aborted when `running` drops.
            running.handoff.joining.store(true, std::sync::atomic::Ordering::SeqCst);
            rt.activity.wait(give_up, running.task.join()).await;
            drop(running.handoff.take());
        }
    }

    /// Aborts everything at once (the object is gone, or the operator crashed).
    pub(crate) fn abort(&mut self) {
        self.running.clear();
        self.stopping.clear();
    }
}

impl Shared {
    /// The context of one attempt.
    pub(crate) fn context(
        &self,
        body: Arc<Value>,
        stopped: &Stopped,
        patch: &Patch,
        retry: u32,
        started: jiff::Timestamp,
    ) -> Context {
        let runtime =
            std::time::Duration::try_from(self.rt.clock.now().duration_since(started)).unwrap_or_default();
        Context::from_inner(Inner {
            resource: self.resource.clone(),
            body,
            reason: None,
            event_type: None,
            old: None,
            new: None,
            diff: Diff::default(),
            id: self.handler.id.clone(),
            retry,
            started,
            runtime,
            patch: patch.clone(),
            memo: self.memo.clone(),
            rt: self.rt.clone(),
            stopped: stopped.for_attempt(),
            live_body: Some(self.body.clone()),
            daemon: matches!(self.handler.kind, Kind::Daemon(_)),
            children: None,
            settings_slot: None,
            admission: None,
        })
    }

    /// After an attempt: records it, stores its result, applies its patch.
    pub(crate) async fn conclude(&self, outcome: &Outcome, patch: &Patch, retry: u32) {
        let (rt, resource) = (&self.rt, &self.resource);
        rt.observe(|| Observation::Handler {
            id: self.handler.id.to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            retry,
            outcome: outcome.label(),
        });
        if let Some(result) = &outcome.result {
            progression::deliver_result(self.handler.id.as_str(), result, patch);
        }
        let body = self.body.borrow().clone();
        let mut sent = |subresource: Option<&'static str>, patch_body: &Value| {
            rt.observe(|| Observation::Patch {
                resource: resource.name(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                subresource,
                body: patch_body.clone(),
            });
        };
        if let Err(e) =
            application::apply(rt.client.as_ref(), &rt.settings, resource, &body, patch, &mut sent).await
        {
            let (namespace, name, id) = (&self.namespace, &self.name, &self.handler.id);
            tracing::error!(handler = %id, error = %e, "[{namespace}/{name}] The patch of {id} failed.");
        }
    }

    /// Reports a step of the daemon's life.
    pub(crate) fn observe(&self, what: &'static str) {
        self.rt.observe(|| Observation::Daemon {
            id: self.handler.id.to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            what,
        });
    }
}
