//! Blocking daemons on the operator's clock.
//!
//! A blocking daemon lives for as long as its object, mostly waiting on its stop flag. On tokio's
//! blocking pool it would hold a paused clock for all that time (a running `spawn_blocking` task
//! inhibits auto-advance), so it runs on a thread of its own instead, and its waits are served by the
//! daemon's task on the operator's clock: while the thread works, a parked blocking task holds the
//! clock and the daemon counts as a running handler; while it waits, neither, and virtual time moves.
//! A thread that outlives its daemon (abandoned after `cancellation_timeout`) waits on the wall clock.

use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc as async_mpsc;

use crate::context::Context;
use crate::engines::stopping::Stopped;
use crate::error::HandlerError;
use crate::primitives::activity::Counter;

/// Holds tokio's paused clock while alive: a blocking task parked on a channel that closes on drop.
struct ClockHold(#[allow(dead_code, reason = "held for its drop")] mpsc::Sender<()>);

impl ClockHold {
    fn new() -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        drop(tokio::task::spawn_blocking(move || {
            let _ = rx.recv();
        }));
        Self(tx)
    }
}

/// A wait asked for by the daemon's thread.
struct Request {
    timeout: Duration,
    stop_sensitive: bool,
    reply: mpsc::SyncSender<bool>,
}

/// The daemon thread's end of the bridge.
#[derive(Clone)]
pub(crate) struct BridgeClient {
    requests: async_mpsc::UnboundedSender<Request>,
}

impl BridgeClient {
    /// Waits `timeout` on the operator's clock (until a stop if `stop_sensitive`); whether stopped.
    pub(crate) fn wait(&self, timeout: Duration, stop_sensitive: bool, stopped: &Stopped) -> bool {
        if stop_sensitive && stopped.is_set() {
            return true;
        }
        let (reply, answer) = mpsc::sync_channel(1);
        if self.requests.send(Request { timeout, stop_sensitive, reply }).is_err() {
            return fallback(timeout, stop_sensitive, stopped);
        }
        match answer.recv() {
            Ok(stopped) => stopped,
            Err(_) => fallback(timeout, stop_sensitive, stopped),
        }
    }
}

fn fallback(timeout: Duration, stop_sensitive: bool, stopped: &Stopped) -> bool {
    if stop_sensitive {
        wall_wait(timeout, stopped)
    } else {
        wall_sleep(timeout);
        stopped.is_set()
    }
}

/// Waits on the wall clock for a stop or the timeout (outside a daemon's bridge); whether stopped.
pub(crate) fn wall_wait(timeout: Duration, stopped: &Stopped) -> bool {
    let until = std::time::Instant::now() + timeout;
    loop {
        if stopped.is_set() {
            return true;
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        wall_sleep(left.min(Duration::from_millis(20)));
    }
}

#[allow(clippy::disallowed_methods, reason = "a thread outside any daemon's bridge waits on the wall clock")]
pub(crate) fn wall_sleep(duration: Duration) {
    std::thread::sleep(duration);
}

/// Runs a blocking daemon's body on its own thread, serving its waits on the operator's clock.
pub(crate) async fn run(
    ctx: Context,
    body: impl FnOnce(Context) -> Result<Option<Value>, HandlerError> + Send + 'static,
) -> Result<Option<Value>, HandlerError> {
    let activity = ctx.rt().activity.clone();
    let stopped = ctx.stopped().clone();
    let (requests, mut incoming) = async_mpsc::unbounded_channel();
    *stopped.bridge.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some(BridgeClient { requests });
    let (done_tx, mut done) = tokio::sync::oneshot::channel();
    let mut hold = Some(ClockHold::new());
    let mut busy = Some(activity.guard(Counter::RunningHandlers));
    let thread = std::thread::Builder::new().name(format!("kopf-daemon-{}", ctx.id())).spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(ctx)));
        let _ = done_tx.send(outcome);
    });
    if let Err(e) = thread {
        return Err(HandlerError::Other(format!("cannot start the daemon's thread: {e}").into()));
    }
    loop {
        tokio::select! {
            biased;
            outcome = &mut done => {
                drop((hold, busy));
                return match outcome {
                    Ok(Ok(result)) => result,
                    Ok(Err(payload)) => Err(HandlerError::Other(crate::operator::panic_message(payload).into())),
                    Err(_) => Err(HandlerError::Other("the daemon's thread vanished".into())),
                };
            }
            Some(request) = incoming.recv() => {
                drop((hold.take(), busy.take()));
                let deadline = tokio::time::Instant::now() + request.timeout;
                let was_stopped = if request.stop_sensitive {
                    stopped.wait_until(deadline).await
                } else {
                    activity.sleep_until(deadline).await;
                    false
                };
                hold = Some(ClockHold::new());
                busy = Some(activity.guard(Counter::RunningHandlers));
                let _ = request.reply.send(was_stopped);
            }
        }
    }
}
