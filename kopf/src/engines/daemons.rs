//! Daemons (Kopf's `@kopf.daemon`): one long-running task per (object, daemon) while the object
//! exists, matches the filters and is not being deleted.
//!
//! An attempt runs the handler until it returns. A normal return (or a permanent failure) ends the
//! daemon for good in this process; other failures restart it after their delay (`backoff`, or a
//! temporary error's delay), with `retries`/`timeout` limits. Each attempt's result and patch are
//! applied when it ends; [`crate::Context::apply_patch`] applies one earlier.
//!
//! The stop sequence, as Kopf's: the flag is set, and the daemon gets
//! `settings.background.instant_exit_zero_time_cycles` zero-time cycles (or
//! `instant_exit_timeout`) to exit by itself; then `cancellation_backoff`; then an async daemon is
//! cancelled (its future dropped), while a blocking one, which cannot be, is waited for up to
//! `cancellation_timeout` — logged every `cancellation_polling` — and abandoned after it (its thread
//! goes on, detached).

use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use crate::engines::spawning::Shared;
use crate::engines::stopping::Stopped;
use crate::error::ErrorsMode;
use crate::execution::{self, Attempt, Outcome};
use crate::registry::{DaemonSpec, DecodeCache};
use crate::structs::patch::Patch;

pub(crate) struct DaemonEnv {
    pub(crate) shared: Shared,
    pub(crate) spec: DaemonSpec,
    pub(crate) stopped: Stopped,
    pub(crate) decoded: DecodeCache,
}

type AttemptFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

impl DaemonEnv {
    pub(crate) async fn run(self) {
        let rt = &self.shared.rt;
        if let Some(delay) = self.spec.initial_delay
            && self.stopped.wait(delay).await
        {
            return;
        }
        let mut retries = 0u32;
        let first_attempt = rt.clock.now();
        loop {
            if self.stopped.is_set() {
                return;
            }
            let body = self.shared.body.borrow().clone();
            let patch = Patch::default();
            let ctx = self.shared.context(body.clone(), &self.stopped, &patch, retries, first_attempt);
            let attempt_stopped = ctx.stopped().clone();
            let runtime = ctx.runtime();
            let attempt: AttemptFuture<'_> = Box::pin(execution::execute(
                &self.shared.handler,
                body,
                &self.decoded,
                ctx,
                Attempt { retries, runtime },
                rt,
                ErrorsMode::Temporary,
            ));
            let Some(outcome) = self.supervise(attempt, &attempt_stopped).await else {
                return;
            };
            self.shared.conclude(&outcome, &patch, retries).await;
            if outcome.final_ {
                self.shared.observe("exited");
                return;
            }
            retries += 1;
            let delay = outcome
                .delay
                .or(self.shared.handler.options.backoff)
                .unwrap_or(rt.settings.execution.default_backoff);
            if self.stopped.wait(delay).await {
                return;
            }
        }
    }

    /// Runs an attempt until it ends, or through the stop sequence once a stop is requested;
    /// `None` if it was cancelled or abandoned.
    async fn supervise(&self, mut attempt: AttemptFuture<'_>, stopped: &Stopped) -> Option<Outcome> {
        let rt = &self.shared.rt;
        let background = &rt.settings.background;
        tokio::select! {
            biased;
            outcome = &mut attempt => {
                if stopped.is_set() {
                    self.shared.observe("stopping");
                }
                return Some(outcome);
            }
            () = stopped.until_set_awake() => {}
        }
        self.shared.observe("stopping");
        // An instant exit: a few zero-time cycles, or a short timeout.
        match background.instant_exit_timeout {
            Some(timeout) => {
                if let Some(outcome) = self.race(&mut attempt, Instant::now() + timeout).await {
                    return Some(outcome);
                }
            }
            None => {
                for _ in 0..background.instant_exit_zero_time_cycles {
                    if let Some(outcome) = futures::FutureExt::now_or_never(&mut attempt) {
                        return Some(outcome);
                    }
                    tokio::task::yield_now().await;
                }
            }
        }
        if let Some(backoff) = self.spec.cancellation_backoff
            && let Some(outcome) = self.race(&mut attempt, Instant::now() + backoff).await
        {
            return Some(outcome);
        }
        if !stopped.is_bridged() {
            drop(attempt);
            self.shared.observe("cancelled");
            return None;
        }
        // A blocking daemon cannot be cancelled: wait for it, polling, until the timeout.
        let polling = self.spec.cancellation_polling.unwrap_or(background.cancellation_polling);
        let give_up = self.spec.cancellation_timeout.map(|t| Instant::now() + t);
        loop {
            let next_poll = Instant::now() + polling.max(Duration::from_millis(1));
            let until = give_up.map_or(next_poll, |g| g.min(next_poll));
            if let Some(outcome) = rt.activity.wait(Some(until), &mut attempt).await {
                return Some(outcome);
            }
            if give_up.is_some_and(|g| Instant::now() >= g) {
                self.shared.observe("abandoned");
                tracing::warn!(
                    handler = %self.shared.handler.id,
                    "[{}/{}] Daemon {} did not exit in time; abandoned.",
                    self.shared.namespace, self.shared.name, self.shared.handler.id
                );
                return None;
            }
            self.shared.observe("still running");
        }
    }

    /// Lets the attempt run until `deadline` (registered, so settling waits for it).
    async fn race(&self, attempt: &mut AttemptFuture<'_>, deadline: Instant) -> Option<Outcome> {
        let _deadline = self.shared.rt.activity.deadline(deadline);
        tokio::select! {
            biased;
            outcome = attempt => Some(outcome),
            () = tokio::time::sleep_until(deadline) => None,
        }
    }
}
