//! The stop flag of daemons and timers (Kopf's `stopped` kwarg, `kopf.DaemonStopped`): set once with a
//! reason, observable without waiting, awaitable with a timeout on the operator's (virtual) clock.
//!
//! For exact settling, a stop request counts its task awake until the task observes it (or ends):
//! between the request and the task's next poll, nothing else says there is work to do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::primitives::activity::{Activity, Counter};

/// Why a daemon or timer is asked to stop (Kopf's `kopf.DaemonStoppingReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The object no longer matches the handler's filters.
    FiltersMismatch,
    /// The object is being deleted.
    ResourceDeleted,
    /// The operator is pausing in favour of a peer (peering).
    OperatorPausing,
    /// The operator is stopping.
    OperatorExiting,
}

impl StopReason {
    /// Kopf's name of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FiltersMismatch => "FILTERS_MISMATCH",
            Self::ResourceDeleted => "RESOURCE_DELETED",
            Self::OperatorPausing => "OPERATOR_PAUSING",
            Self::OperatorExiting => "OPERATOR_EXITING",
        }
    }
}

const RUNNING: u8 = 0;
const PENDING: u8 = 1;
const ENDED: u8 = 2;

/// Whether a stop request is pending (counted) for a task, shared by both ends.
#[derive(Debug)]
struct Ticket {
    state: AtomicU8,
    activity: Activity,
}

impl Ticket {
    fn observed(&self) {
        if self.state.compare_exchange(PENDING, RUNNING, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.activity.leave(Counter::Awake);
        }
    }
}

/// The requesting end, kept by the object's engine.
#[derive(Debug)]
pub(crate) struct StopSignal {
    tx: watch::Sender<Option<StopReason>>,
    ticket: Arc<Ticket>,
}

/// Marks the task ended when dropped (at its end, or when it is aborted), settling a pending request.
#[derive(Debug)]
pub(crate) struct EndGuard(Arc<Ticket>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        if self.0.state.swap(ENDED, Ordering::SeqCst) == PENDING {
            self.0.activity.leave(Counter::Awake);
        }
    }
}

impl StopSignal {
    /// A signal, the receiving flag, and the guard the task keeps until its end.
    pub(crate) fn new(activity: &Activity) -> (Self, Stopped, EndGuard) {
        let (tx, rx) = watch::channel(None);
        let ticket = Arc::new(Ticket { state: AtomicU8::new(RUNNING), activity: activity.clone() });
        let stopped = Stopped { rx, ticket: Some(ticket.clone()), _never: None, bridge: Arc::default() };
        (Self { tx, ticket: ticket.clone() }, stopped, EndGuard(ticket))
    }

    /// Requests a stop (the first reason wins).
    pub(crate) fn stop(&self, reason: StopReason) {
        if self.tx.borrow().is_some() {
            return;
        }
        if self.ticket.state.compare_exchange(RUNNING, PENDING, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.ticket.activity.enter(Counter::Awake);
        }
        self.tx.send_replace(Some(reason));
    }

    /// Whether a stop was requested.
    pub(crate) fn is_requested(&self) -> bool {
        self.tx.borrow().is_some()
    }
}

/// A daemon's or timer's stop flag. Other handlers get one that is never set.
///
/// Inside a daemon, wait through this flag (or [`crate::Context::sleep`]) rather than
/// `tokio::time::sleep`: these waits tell KopfRunner that the daemon is idle, so `settle()` can
/// return while the daemon sleeps.
///
/// ```
/// # async fn daemon(ctx: kopf::Context) {
/// while !ctx.stopped().is_set() {
///     // … check something …
///     ctx.stopped().wait(std::time::Duration::from_secs(10)).await;
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Stopped {
    rx: watch::Receiver<Option<StopReason>>,
    ticket: Option<Arc<Ticket>>,
    /// Keeps a never-set flag's channel open.
    _never: Option<Arc<watch::Sender<Option<StopReason>>>>,
    pub(crate) bridge: Arc<std::sync::Mutex<Option<crate::engines::bridge::BridgeClient>>>,
}

impl std::fmt::Debug for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopped").field("reason", &self.reason()).finish()
    }
}

impl Stopped {
    /// A flag that is never set (for handlers that are not daemons or timers).
    pub(crate) fn never() -> Self {
        let (tx, rx) = watch::channel(None);
        Self { rx, ticket: None, _never: Some(Arc::new(tx)), bridge: Arc::default() }
    }

    fn activity(&self) -> Option<&Activity> {
        self.ticket.as_ref().map(|t| &t.activity)
    }

    /// Whether a stop was requested.
    pub fn is_set(&self) -> bool {
        self.reason().is_some()
    }

    /// Why, if a stop was requested.
    pub fn reason(&self) -> Option<StopReason> {
        let reason = *self.rx.borrow();
        if reason.is_some()
            && let Some(ticket) = &self.ticket
        {
            ticket.observed();
        }
        reason
    }

    /// Waits until a stop is requested or `timeout` passes, on the operator's clock; whether it is
    /// set.
    pub async fn wait(&self, timeout: Duration) -> bool {
        self.wait_until(Instant::now() + timeout).await
    }

    /// Waits until a stop is requested.
    pub async fn until_set(&self) {
        self.wait_until_opt(None).await;
    }

    /// Waits for the flag without counting the task idle (for a task racing its own work).
    pub(crate) async fn until_set_awake(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(Option::is_some).await;
        let _ = self.reason();
    }

    pub(crate) async fn wait_until(&self, deadline: Instant) -> bool {
        self.wait_until_opt(Some(deadline)).await
    }

    async fn wait_until_opt(&self, deadline: Option<Instant>) -> bool {
        let mut rx = self.rx.clone();
        let stop = async move {
            let _ = rx.wait_for(Option::is_some).await;
        };
        match (self.activity(), deadline) {
            (Some(activity), deadline) => {
                activity.wait(deadline, stop).await;
            }
            (None, Some(deadline)) => {
                let _ = tokio::time::timeout_at(deadline, stop).await;
            }
            (None, None) => stop.await,
        }
        self.is_set()
    }

    /// [`Stopped::wait`] for blocking daemons ([`crate::blocking`]), on the operator's clock;
    /// whether it is set. Outside a daemon it waits on the wall clock.
    pub fn wait_blocking(&self, timeout: Duration) -> bool {
        match self.bridge() {
            Some(bridge) => bridge.wait(timeout, true, self),
            None => crate::engines::bridge::wall_wait(timeout, self),
        }
    }

    /// Sleeps on the operator's clock in a blocking daemon, whether or not a stop is requested.
    pub(crate) fn sleep_blocking(&self, duration: Duration) {
        match self.bridge() {
            Some(bridge) => {
                bridge.wait(duration, false, self);
            }
            None => crate::engines::bridge::wall_sleep(duration),
        }
    }

    fn bridge(&self) -> Option<crate::engines::bridge::BridgeClient> {
        self.bridge.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The same flag, with a fresh bridge slot for another attempt.
    pub(crate) fn for_attempt(&self) -> Self {
        Self { bridge: Arc::default(), ..self.clone() }
    }

    /// Whether a blocking daemon's bridge is serving this flag.
    pub(crate) fn is_bridged(&self) -> bool {
        self.bridge().is_some()
    }
}
