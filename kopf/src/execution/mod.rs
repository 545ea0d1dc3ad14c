//! Running handlers: one attempt of one handler, with Kopf's limits (`retries`, `timeout`, checked
//! before the call and looked ahead after it), its error semantics (temporary, permanent, arbitrary
//! errors by [`ErrorsMode`], panics caught and treated as arbitrary errors), and the [`Outcome`]
//! that progress records and results are made of. `progression` keeps handler states across
//! cycles; `application` applies the cycle's patch.

pub(crate) mod application;
pub(crate) mod posting;
pub(crate) mod progression;
pub(crate) mod subhandlers;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use serde_json::Value;

use crate::context::Context;
use crate::error::{ErrorsMode, HandlerError};
use crate::primitives::activity::{Activity, Counter};
use crate::registry::{DecodeCache, Handler};
use crate::settings::{Level, Settings};

/// What every task of a running operator shares.
#[derive(Clone)]
pub(crate) struct Runtime {
    pub(crate) client: Arc<dyn crate::client::ApiClient>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) clock: crate::primitives::clock::Clock,
    pub(crate) activity: Activity,
    pub(crate) poster: posting::Poster,
    pub(crate) observer: Option<Arc<dyn crate::observe::Observer>>,
    pub(crate) blocking: Option<Arc<tokio::sync::Semaphore>>,
    pub(crate) indexes: crate::engines::indexing::Indexes,
    /// The operator's pause (peering): on while any of its toggles is on.
    pub(crate) paused: crate::primitives::toggles::ToggleSet,
    /// Handler runs and watch restarts, for `/metrics`.
    pub(crate) metrics: crate::primitives::metrics::Metrics,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("client", &self.client).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Reports an observation, if anyone listens.
    pub(crate) fn observe(&self, observation: impl FnOnce() -> crate::observe::Observation) {
        if let Some(observer) = &self.observer {
            observer.observe(observation());
        }
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// Finished for good (success or permanent failure).
    pub(crate) final_: bool,
    /// The value to store in `status.<id>`.
    pub(crate) result: Option<Value>,
    /// The failure's message, if it failed (temporarily or for good).
    pub(crate) error: Option<String>,
    /// When to retry, if not final.
    pub(crate) delay: Option<Duration>,
}

impl Outcome {
    /// A short label for logs and timelines: `success`, `temporary(10s): msg`, `permanent: msg`.
    pub(crate) fn label(&self) -> String {
        match (&self.error, self.final_, self.delay) {
            (None, _, _) => "success".to_owned(),
            (Some(e), true, _) => format!("permanent: {e}"),
            (Some(e), false, Some(d)) => format!("temporary({}s): {e}", d.as_secs_f64()),
            (Some(e), false, None) => format!("temporary: {e}"),
        }
    }
}

/// What the attempt knows about the handler's history.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    /// Attempts before this one.
    pub(crate) retries: u32,
    /// Time since the first attempt.
    pub(crate) runtime: Duration,
}

/// Runs one attempt of a handler and turns what it did into an [`Outcome`]; counted in the metrics.
pub(crate) async fn execute(
    handler: &Handler,
    body: Arc<Value>,
    decoded: &DecodeCache,
    ctx: Context,
    attempt: Attempt,
    rt: &Runtime,
    default_errors: ErrorsMode,
) -> Outcome {
    let resource = ctx.resource().name();
    let started = tokio::time::Instant::now();
    let outcome = execute_once(handler, body, decoded, ctx, attempt, rt, default_errors).await;
    let label = match (&outcome.error, outcome.final_) {
        (None, _) => "success",
        (Some(_), true) => "permanent",
        (Some(_), false) => "temporary",
    };
    rt.metrics.handler_run(handler.id.as_str(), &resource, label, started.elapsed());
    outcome
}

async fn execute_once(
    handler: &Handler,
    body: Arc<Value>,
    decoded: &DecodeCache,
    ctx: Context,
    attempt: Attempt,
    rt: &Runtime,
    default_errors: ErrorsMode,
) -> Outcome {
    let (settings, activity) = (&rt.settings, &rt.activity);
    let id = handler.id.as_str();
    // Kopf logs these through the object's logger: with `settings.posting.loggers`, they become
    // `Logging` Events too.
    let logger = ctx.clone();
    if let Some(limit) = handler.options.retries
        && attempt.retries >= limit
    {
        let message = format!("{id} has exceeded {limit} retries.");
        logger.log(Level::Error, format!("Handler '{id}' failed permanently: {message}"));
        return Outcome { final_: true, result: None, error: Some(message), delay: None };
    }
    if let Some(limit) = handler.options.timeout
        && attempt.runtime >= limit
    {
        let message = format!("{id} has timed out after {:?}.", attempt.runtime);
        logger.log(Level::Error, format!("Handler '{id}' failed permanently: {message}"));
        return Outcome { final_: true, result: None, error: Some(message), delay: None };
    }

    let result = {
        // A daemon runs for its object's life: its task's own waits say when it is idle (and a
        // blocking daemon's bridge counts it running while its thread works).
        let _running = (!matches!(handler.kind, crate::registry::Kind::Daemon(_)))
            .then(|| activity.guard(Counter::RunningHandlers));
        let future = (handler.invoker)(body, decoded, ctx);
        match std::panic::AssertUnwindSafe(future).catch_unwind().await {
            Ok(result) => result,
            Err(payload) => Err(HandlerError::Other(crate::operator::panic_message(payload).into())),
        }
    };

    let errors = handler.options.errors.unwrap_or(default_errors);
    let backoff = handler.options.backoff.unwrap_or(settings.execution.default_backoff);
    let mut outcome = match result {
        Ok(result) => {
            logger.log(Level::Info, format!("Handler '{id}' succeeded."));
            return Outcome { final_: true, result, error: None, delay: None };
        }
        Err(HandlerError::Permanent { message } | HandlerError::Admission { message, .. }) => {
            logger.log(Level::Error, format!("Handler '{id}' failed permanently: {message}"));
            return Outcome { final_: true, result: None, error: Some(message), delay: None };
        }
        Err(HandlerError::Temporary { message, delay }) => {
            logger.log(Level::Error, format!("Handler '{id}' failed temporarily: {message}"));
            Outcome { final_: false, result: None, error: Some(message), delay: Some(delay) }
        }
        Err(HandlerError::Other(e)) => match errors {
            ErrorsMode::Ignored => {
                logger
                    .log(Level::Error, format!("Handler '{id}' failed with an exception. Will ignore: {e}"));
                return Outcome { final_: true, result: None, error: None, delay: None };
            }
            ErrorsMode::Permanent => {
                logger.log(Level::Error, format!("Handler '{id}' failed with an exception. Will stop: {e}"));
                return Outcome { final_: true, result: None, error: Some(e.to_string()), delay: None };
            }
            ErrorsMode::Temporary => {
                logger.log(Level::Error, format!("Handler '{id}' failed with an exception. Will retry: {e}"));
                Outcome { final_: false, result: None, error: Some(e.to_string()), delay: Some(backoff) }
            }
        },
    };
    // Kopf's look-ahead: fail now if the next attempt would break a limit anyway.
    if let Some(limit) = handler.options.retries
        && attempt.retries.saturating_add(1) >= limit
    {
        outcome = Outcome { final_: true, delay: None, ..outcome };
        logger.log(
            Level::Error,
            format!("Handler '{id}' failed permanently: {id} has exceeded {limit} retries."),
        );
        outcome.error = Some(format!("{id} has exceeded {limit} retries."));
    } else if let Some(limit) = handler.options.timeout
        && attempt.runtime + outcome.delay.unwrap_or_default() >= limit
    {
        logger.log(Level::Error, format!("Handler '{id}' failed permanently: {id} has timed out."));
        outcome = Outcome {
            final_: true,
            delay: None,
            error: Some(format!("{id} has timed out after {:?}.", attempt.runtime)),
            ..outcome
        };
    }
    outcome
}

/// `namespace/name` of a body, for log lines.
/// Posts a log line about an object as a `Logging` Event, as Kopf's object loggers do when
/// `settings.posting.loggers` is on and the level reaches `settings.posting.level`.
pub(crate) fn post_log(rt: &Runtime, body: &Value, level: Level, message: &str) {
    let posting = &rt.settings.posting;
    if posting.enabled && posting.loggers && level >= posting.level {
        rt.poster.post(body, level.event_type(), "Logging", message);
    }
}
