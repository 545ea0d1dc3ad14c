//! Counters of work in progress inside an operator, for exact settling in tests (kopf-testing's
//! `settle()`): events queued for objects, tasks awake, handlers running, own patches awaiting their
//! watch echo, Events waiting to be posted, watches not connected.
//!
//! The discipline that makes it exact: every operator task counts itself [`Counter::Awake`] from
//! the moment it is spawned, and every wait that may take (virtual) time goes through
//! [`Activity::wait`], which stops counting the task while it waits and registers the wait's
//! deadline. A deadline that has come but whose task has not run yet keeps the operator unsettled;
//! the task counts itself awake again before the deadline is unregistered. So "idle" means: no task
//! has anything to do at the current instant.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Watch events queued for per-object workers.
    QueuedEvents,
    /// Objects being processed.
    Processing,
    /// Handlers running (async or blocking).
    RunningHandlers,
    /// Own patches whose watch echo has not arrived (nor timed out).
    AwaitingEcho,
    /// Kubernetes Events queued for posting.
    PendingPosts,
    /// Watch streams that are not connected (listing, or waiting to reconnect).
    Disconnected,
    /// Operator tasks running (not waiting).
    Awake,
}

const COUNTERS: usize = 7;

/// Shared counters of an operator's work in progress. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    counters: [AtomicI64; COUNTERS],
    changed: Notify,
    /// Deadlines of pending waits, by wait id.
    deadlines: std::sync::Mutex<std::collections::BTreeMap<u64, tokio::time::Instant>>,
    next_wait: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn slot(&self, counter: Counter) -> &AtomicI64 {
        &self.inner.counters[counter as usize]
    }

    /// Counts one more.
    pub fn enter(&self, counter: Counter) {
        self.slot(counter).fetch_add(1, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }

    /// Counts one less.
    pub fn leave(&self, counter: Counter) {
        self.slot(counter).fetch_sub(1, Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }

    /// A guard that counts one while it lives.
    pub fn guard(&self, counter: Counter) -> ActivityGuard {
        self.enter(counter);
        ActivityGuard { activity: self.clone(), counter }
    }

    /// The current value of a counter.
    pub fn get(&self, counter: Counter) -> i64 {
        self.slot(counter).load(Ordering::SeqCst)
    }

    /// Whether every counter is zero and no wait's deadline has come.
    pub fn is_idle(&self) -> bool {
        self.inner.counters.iter().all(|c| c.load(Ordering::SeqCst) <= 0) && !self.deadline_due()
    }

    /// Whether some wait's deadline has come but its task has not run yet.
    pub fn deadline_due(&self) -> bool {
        let now = tokio::time::Instant::now();
        self.lock_deadlines().values().any(|d| *d <= now)
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<tokio::time::Instant> {
        self.lock_deadlines().values().min().copied()
    }

    fn lock_deadlines(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, tokio::time::Instant>> {
        self.inner.deadlines.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A guard counting a task awake; take it before spawning the task, move it in.
    pub fn awake(&self) -> ActivityGuard {
        self.guard(Counter::Awake)
    }

    /// Waits for `future` or until `deadline`, not counting the calling (awake) task meanwhile;
    /// `None` if the deadline came first.
    pub async fn wait<F: std::future::Future>(
        &self,
        deadline: Option<tokio::time::Instant>,
        future: F,
    ) -> Option<F::Output> {
        let _waiting = Waiting::new(self, deadline);
        match deadline {
            Some(deadline) => tokio::select! {
                biased;
                out = future => Some(out),
                () = tokio::time::sleep_until(deadline) => None,
            },
            None => Some(future.await),
        }
    }

    /// Registers a deadline without counting the task idle (for a task racing its own work
    /// against a timer): once due, the operator is unsettled until the guard is dropped.
    pub(crate) fn deadline(&self, deadline: tokio::time::Instant) -> DeadlineGuard {
        let id = self.inner.next_wait.fetch_add(1, Ordering::SeqCst);
        self.lock_deadlines().insert(id, deadline);
        DeadlineGuard { activity: self.clone(), id }
    }

    /// Sleeps until `deadline` (see [`Activity::wait`]).
    pub async fn sleep_until(&self, deadline: tokio::time::Instant) {
        self.wait(Some(deadline), std::future::pending::<()>()).await;
    }

    /// A snapshot of all counters, for diagnostics.
    pub fn snapshot(&self) -> [(Counter, i64); COUNTERS] {
        use Counter::*;
        [QueuedEvents, Processing, RunningHandlers, AwaitingEcho, PendingPosts, Disconnected, Awake]
            .map(|c| (c, self.get(c)))
    }

    /// Resolves at the next change of any counter. Create it before checking the counters, so a
    /// change between the check and the wait is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.changed.notified()
    }
}

/// A wait in progress: the task is not counted awake and its deadline is registered, until the
/// wait ends — or its future is dropped (an aborted task), which balances the counters too.
struct Waiting<'a> {
    activity: &'a Activity,
    id: u64,
}

impl<'a> Waiting<'a> {
    fn new(activity: &'a Activity, deadline: Option<tokio::time::Instant>) -> Self {
        let id = activity.inner.next_wait.fetch_add(1, Ordering::SeqCst);
        if let Some(deadline) = deadline {
            activity.lock_deadlines().insert(id, deadline);
        }
        activity.leave(Counter::Awake);
        Self { activity, id }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // Awake first, then the deadline goes: no instant where neither is counted.
        self.activity.enter(Counter::Awake);
        self.activity.lock_deadlines().remove(&self.id);
        self.activity.inner.changed.notify_waiters();
    }
}

/// A registered deadline (see `Activity::deadline`).
#[derive(Debug)]
pub(crate) struct DeadlineGuard {
    activity: Activity,
    id: u64,
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        self.activity.lock_deadlines().remove(&self.id);
        self.activity.inner.changed.notify_waiters();
    }
}

/// Counts one while alive (see [`Activity::guard`]).
#[derive(Debug)]
pub struct ActivityGuard {
    activity: Activity,
    counter: Counter,
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.activity.leave(self.counter);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_due_deadline_keeps_the_operator_unsettled_until_its_task_runs() {
        let activity = Activity::default();
        let awake = activity.awake();
        let a = activity.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let task = tokio::spawn(async move {
            let _awake = awake;
            a.sleep_until(deadline).await;
        });
        tokio::task::yield_now().await;
        assert!(activity.is_idle(), "a task sleeping on a future deadline is idle");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!activity.is_idle(), "its deadline has come but it has not run yet");
        task.await.unwrap();
        assert!(activity.is_idle());
    }
}
