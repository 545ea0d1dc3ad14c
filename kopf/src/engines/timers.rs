//! Timers (Kopf's `@kopf.timer`): one task per (object, timer) while the object exists, matches
//! the filters and is not being deleted. Each run patches the object with its result; an error
//! schedules the next run after its delay. Between runs the task waits `interval` after the
//! handler exits, or to the next grid point with `sharp`; with `idle`, until the object's essence has
//! not changed for that long. A timer never overlaps itself; stopping waits for a running handler.

use std::time::Duration;

use tokio::time::Instant;

use crate::engines::spawning::Shared;
use crate::engines::stopping::Stopped;
use crate::error::ErrorsMode;
use crate::execution::{self, Attempt};
use crate::registry::{DecodeCache, TimerSpec};
use crate::structs::patch::Patch;

pub(crate) struct TimerEnv {
    pub(crate) shared: Shared,
    pub(crate) spec: TimerSpec,
    pub(crate) stopped: Stopped,
    pub(crate) decoded: DecodeCache,
}

impl TimerEnv {
    /// Sleeps until `deadline` unless stopped first; `false` when stopped.
    async fn sleep_until(&self, deadline: Instant) -> bool {
        !self.stopped.wait_until(deadline).await
    }

    fn idle_reset(&self) -> Instant {
        *self.shared.idle_reset.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) async fn run(self) {
        let spec = self.spec;
        let rt = &self.shared.rt;
        if let Some(delay) = spec.initial_delay
            && !self.sleep_until(Instant::now() + delay).await
        {
            return;
        }
        let mut retries = 0u32;
        let mut first_attempt = rt.clock.now();
        loop {
            if let Some(idle) = spec.idle {
                loop {
                    let due = self.idle_reset() + idle;
                    if Instant::now() >= due {
                        break;
                    }
                    if !self.sleep_until(due).await {
                        return;
                    }
                }
            }
            if self.stopped.is_set() {
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
                    first_attempt = rt.clock.now();
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
                            let before = self.idle_reset();
                            let mut body = self.shared.body.clone();
                            loop {
                                let stopped = self.stopped.clone();
                                let changed = rt
                                    .activity
                                    .wait(None, async {
                                        tokio::select! {
                                            biased;
                                            () = stopped.until_set_awake() => false,
                                            r = body.changed() => r.is_ok(),
                                        }
                                    })
                                    .await
                                    .unwrap_or(false);
                                if !changed {
                                    return;
                                }
                                if self.idle_reset() != before {
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

    async fn run_once(&self, retries: u32, first_attempt: jiff::Timestamp) -> execution::Outcome {
        let body = self.shared.body.borrow().clone();
        let patch = Patch::default();
        let ctx = self.shared.context(body.clone(), &self.stopped, &patch, retries, first_attempt);
        let attempt = Attempt { retries, runtime: ctx.runtime() };
        let outcome = execution::execute(
            &self.shared.handler,
            body,
            &self.decoded,
            ctx,
            attempt,
            &self.shared.rt,
            ErrorsMode::Temporary,
        )
        .await;
        self.shared.conclude(&outcome, &patch, retries).await;
        outcome
    }
}
