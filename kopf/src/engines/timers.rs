//! Timers (Kopf's `@kopf.timer`): one task per (object, timer) while the object exists, matches
//! the filters and is not being deleted. Each run patches the object with its result; an error
//! schedules the next run after its delay. Between runs the task waits `interval` after the
//! handler exits, or to the next grid point with `sharp`; with `idle`, until the object's essence has
//! not changed for that long. A timer never overlaps itself; stopping waits for a running handler.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::context::{Context, Inner};
use crate::error::ErrorsMode;
use crate::execution::{self, Attempt, Runtime, application, progression};
use crate::memo::Memo;
use crate::observe::Observation;
use crate::primitives::tasks::OwnedTask;
use crate::registry::{DecodeCache, Handler, Kind};
use crate::structs::diff::Diff;
use crate::structs::patch::Patch;
use crate::structs::references::Resource;

/// The timers of one object.
#[derive(Debug)]
pub(crate) struct Timers {
    body: watch::Sender<Arc<Value>>,
    idle_reset: Arc<Mutex<Instant>>,
    running: BTreeMap<String, Running>,
}

#[derive(Debug)]
struct Running {
    stop: watch::Sender<bool>,
    task: OwnedTask<()>,
}

impl Timers {
    pub(crate) fn new(body: Arc<Value>) -> Self {
        Self {
            body: watch::channel(body).0,
            idle_reset: Arc::new(Mutex::new(Instant::now())),
            running: BTreeMap::new(),
        }
    }

    /// The freshest body, for the next runs.
    pub(crate) fn refresh(&self, body: Arc<Value>, essence_changed: bool) {
        self.body.send_replace(body);
        if essence_changed {
            *self.idle_reset.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        }
    }

    /// Starts the timers that match and are not running; stops those that no longer match.
    pub(crate) fn reconcile(
        &mut self,
        rt: &Runtime,
        resource: &Resource,
        matching: &[Arc<Handler>],
        memo: &Memo,
    ) {
        let wanted: Vec<&str> = matching.iter().map(|h| h.id.as_str()).collect();
        self.running.retain(|id, running| {
            let keep = wanted.contains(&id.as_str()) && !running.task.is_finished();
            if !keep {
                running.stop.send_replace(true);
            }
            keep
        });
        for handler in matching {
            if self.running.contains_key(handler.id.as_str()) {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            let env = TimerEnv {
                rt: rt.clone(),
                resource: resource.clone(),
                handler: handler.clone(),
                body: self.body.subscribe(),
                idle_reset: self.idle_reset.clone(),
                memo: memo.clone(),
                stopped,
                decoded: DecodeCache::default(),
            };
            let awake = rt.activity.awake();
            let task = OwnedTask::spawn(async move {
                let _awake = awake;
                env.run().await;
            });
            self.running.insert(handler.id.as_str().to_owned(), Running { stop, task });
        }
    }

    /// Waits until every stopped timer has exited.
    pub(crate) async fn join(&mut self, rt: &Runtime) {
        for (_, running) in std::mem::take(&mut self.running) {
            running.stop.send_replace(true);
            let _ = rt.activity.wait(None, running.task.join()).await;
        }
    }

    /// Aborts every timer (the object is gone, or the operator exits).
    pub(crate) fn abort(&mut self) {
        for (_, running) in std::mem::take(&mut self.running) {
            running.task.abort();
        }
    }
}

struct TimerEnv {
    rt: Runtime,
    resource: Resource,
    handler: Arc<Handler>,
    body: watch::Receiver<Arc<Value>>,
    idle_reset: Arc<Mutex<Instant>>,
    memo: Memo,
    stopped: watch::Receiver<bool>,
    decoded: DecodeCache,
}

impl TimerEnv {
    /// Sleeps until `deadline` unless stopped first; `false` when stopped.
    async fn sleep_until(&mut self, deadline: Instant) -> bool {
        if *self.stopped.borrow() {
            return false;
        }
        let mut stopped = self.stopped.clone();
        let woke = self.rt.activity.wait(Some(deadline), stopped.wait_for(|s| *s)).await;
        woke.is_none()
    }

    async fn run(mut self) {
        let Kind::Timer(spec) = self.handler.kind else { return };
        if let Some(delay) = spec.initial_delay
            && !self.sleep_until(Instant::now() + delay).await
        {
            return;
        }
        let mut retries = 0u32;
        let mut first_attempt = self.rt.clock.now();
        loop {
            if let Some(idle) = spec.idle {
                loop {
                    let reset = *self.idle_reset.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let due = reset + idle;
                    if Instant::now() >= due {
                        break;
                    }
                    if !self.sleep_until(due).await {
                        return;
                    }
                }
            }
            if *self.stopped.borrow() {
                return;
            }
            let started = Instant::now();
            let outcome = self.run_once(retries, first_attempt).await;
            let next = match outcome.delay {
                Some(delay) if !outcome.final_ => {
                    retries += 1;
                    started.max(Instant::now()) + delay
                }
                _ => {
                    retries = 0;
                    first_attempt = self.rt.clock.now();
                    match (spec.interval, spec.sharp) {
                        (Some(interval), true) => {
                            let elapsed = started.elapsed();
                            let nanos = interval.as_nanos().max(1);
                            let rest = interval.as_nanos() - (elapsed.as_nanos() % nanos);
                            Instant::now() + Duration::from_nanos(u64::try_from(rest).unwrap_or(u64::MAX))
                        }
                        (Some(interval), false) => Instant::now() + interval,
                        (None, _) if spec.idle.is_some() => {
                            // Run again after the next essential change and idle period.
                            let before =
                                *self.idle_reset.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            let mut body = self.body.clone();
                            loop {
                                let mut stopped = self.stopped.clone();
                                let changed = self
                                    .rt
                                    .activity
                                    .wait(None, async {
                                        tokio::select! {
                                            biased;
                                            _ = stopped.wait_for(|s| *s) => false,
                                            r = body.changed() => r.is_ok(),
                                        }
                                    })
                                    .await
                                    .unwrap_or(false);
                                if !changed {
                                    return;
                                }
                                if *self.idle_reset.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
                                    != before
                                {
                                    break;
                                }
                            }
                            Instant::now()
                        }
                        (None, _) => return, // neither interval nor idle: runs once
                    }
                }
            };
            if !self.sleep_until(next).await {
                return;
            }
        }
    }

    async fn run_once(&mut self, retries: u32, first_attempt: jiff::Timestamp) -> execution::Outcome {
        let body = self.body.borrow().clone();
        let patch = Patch::default();
        let now = self.rt.clock.now();
        let runtime = Duration::try_from(now.duration_since(first_attempt)).unwrap_or_default();
        let ctx = Context::from_inner(Inner {
            resource: self.resource.clone(),
            body: body.clone(),
            reason: None,
            event_type: None,
            old: None,
            new: None,
            diff: Diff::default(),
            id: self.handler.id.clone(),
            retry: retries,
            started: first_attempt,
            runtime,
            patch: patch.clone(),
            memo: self.memo.clone(),
            poster: self.rt.poster.clone(),
            settings: self.rt.settings.clone(),
            blocking: self.rt.blocking.clone(),
        });
        let attempt = Attempt { retries, runtime };
        let outcome = execution::execute(
            &self.handler,
            body.clone(),
            &self.decoded,
            ctx,
            attempt,
            &self.rt,
            ErrorsMode::Temporary,
        )
        .await;
        let (namespace, name) = names(&body);
        self.rt.observe(|| Observation::Handler {
            id: self.handler.id.to_string(),
            namespace: namespace.clone(),
            name: name.clone(),
            retry: retries,
            outcome: outcome.label(),
        });
        if let Some(result) = &outcome.result {
            progression::deliver_result(self.handler.id.as_str(), result, &patch);
        }
        let rt = &self.rt;
        let resource = &self.resource;
        let mut sent = |subresource: Option<&'static str>, patch_body: &Value| {
            rt.observe(|| Observation::Patch {
                resource: resource.name(),
                namespace: namespace.clone(),
                name: name.clone(),
                subresource,
                body: patch_body.clone(),
            });
        };
        if let Err(e) =
            application::apply(rt.client.as_ref(), &rt.settings, resource, &body, &patch, &mut sent).await
        {
            tracing::error!(timer = %self.handler.id, error = %e, "[{namespace}/{name}] Timer's patch failed.");
        }
        outcome
    }
}

fn names(body: &Value) -> (String, String) {
    let meta = &body["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_owned(),
        meta["name"].as_str().unwrap_or_default().to_owned(),
    )
}
