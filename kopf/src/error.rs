//! Errors: what handlers return ([`HandlerError`], with Kopf's temporary/permanent split and
//! [`ErrorsMode`] for everything else), what registration reports ([`RegistrationError`]), and what
//! stops an operator ([`OperatorError`]).

use std::time::Duration;

/// A handler's failure.
///
/// - [`HandlerError::Temporary`]: retried after its delay (Kopf's `TemporaryError`, 60 s by default).
/// - [`HandlerError::Permanent`]: the handler fails for good; the others continue.
/// - [`HandlerError::Admission`]: an admission handler rejects the request under review, with a
///   message and an HTTP code for the API server's answer (Kopf's `AdmissionError`); elsewhere it
///   fails the handler for good, like a permanent error.
/// - [`HandlerError::Other`]: any other error (`?` on `kube::Error`, `serde_json::Error`, …), handled
///   as the handler's [`ErrorsMode`] says (retried after the backoff by default).
///
/// ```
/// use std::time::Duration;
/// use kopf::HandlerError;
/// let not_yet = HandlerError::temporary("the child is not ready").with_delay(Duration::from_secs(10));
/// let never = HandlerError::permanent("the spec is invalid");
/// let parsed: Result<u32, HandlerError> = "x".parse::<u32>().map_err(HandlerError::from);
/// assert!(parsed.is_err());
/// # let _ = (not_yet, never);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum HandlerError {
    /// Retry after `delay` (zero: at once).
    Temporary {
        /// Why.
        message: String,
        /// When to retry.
        delay: Duration,
    },
    /// Fail for good.
    Permanent {
        /// Why.
        message: String,
    },
    /// Reject the admission request under review (fail for good outside admission handlers).
    Admission {
        /// Why; the API server prefixes it with the webhook's name.
        message: String,
        /// The HTTP code of the rejection (Kopf's default: 500).
        code: u16,
    },
    /// Any other error.
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl HandlerError {
    /// A temporary error retried after 60 s (Kopf's default delay).
    pub fn temporary(message: impl Into<String>) -> Self {
        Self::Temporary { message: message.into(), delay: Duration::from_secs(60) }
    }

    /// A permanent error.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent { message: message.into() }
    }

    /// An admission rejection with Kopf's default code, 500 (see [`HandlerError::with_code`]).
    ///
    /// ```
    /// use kopf::HandlerError;
    /// let rejected = HandlerError::admission("spec.field must not be empty").with_code(400);
    /// assert!(matches!(rejected, HandlerError::Admission { code: 400, .. }));
    /// ```
    pub fn admission(message: impl Into<String>) -> Self {
        Self::Admission { message: message.into(), code: 500 }
    }

    /// Sets the HTTP code of an admission rejection (other errors are returned unchanged).
    #[must_use]
    pub fn with_code(self, code: u16) -> Self {
        match self {
            Self::Admission { message, .. } => Self::Admission { message, code },
            other => other,
        }
    }

    /// Sets the retry delay of a temporary error (other errors are returned unchanged).
    #[must_use]
    pub fn with_delay(self, delay: Duration) -> Self {
        match self {
            Self::Temporary { message, .. } => Self::Temporary { message, delay },
            other => other,
        }
    }

    /// Wraps any boxed error.
    pub fn other(error: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::Other(error)
    }

    /// An arbitrary error from an `anyhow::Error`.
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        Self::Other(error.into())
    }

    /// The message stored in the progress record.
    pub fn message(&self) -> String {
        match self {
            Self::Temporary { message, .. }
            | Self::Permanent { message }
            | Self::Admission { message, .. } => message.clone(),
            Self::Other(e) => e.to_string(),
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        Self::Other(Box::new(e))
    }
}

/// How a handler treats errors other than [`HandlerError::Temporary`]/[`HandlerError::Permanent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorsMode {
    /// Retry after the backoff (the default).
    #[default]
    Temporary,
    /// Fail for good.
    Permanent,
    /// Treat as success, with no result.
    Ignored,
}

/// Misconfiguration found when the operator is built, before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// Two handlers of the same resource and reason share an id.
    #[error("duplicate handler id {id:?} for {resource} (registered at {first} and {second})")]
    DuplicateId {
        /// The id.
        id: String,
        /// The resource selector.
        resource: String,
        /// Where the first was registered.
        first: String,
        /// Where the second was registered.
        second: String,
    },
    /// A handler option was given before any handler was registered.
    #[error("option .{option}() at {location} has no handler to apply to; register a handler first")]
    NoHandler {
        /// The option.
        option: &'static str,
        /// Where it was called.
        location: String,
    },
    /// An option that does not apply to this kind of handler.
    #[error("option .{option}() at {location} does not apply to {kind} handlers")]
    NotApplicable {
        /// The option.
        option: &'static str,
        /// The handler kind.
        kind: &'static str,
        /// Where it was called.
        location: String,
    },
    /// A handler on untyped objects has no resource.
    #[error("the handler registered at {location} works on untyped objects and needs .resource(\"...\")")]
    NoResource {
        /// Where it was registered.
        location: String,
    },
    /// A malformed option value.
    #[error("invalid {option} at {location}: {reason}")]
    Invalid {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
        /// Where it was called.
        location: String,
    },
}

/// Why an operator stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// The operator's registration is invalid.
    #[error("the operator is misconfigured: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Registration(Vec<RegistrationError>),
    /// Discovering the resources failed.
    #[error("discovery failed: {0}")]
    Discovery(#[source] crate::client::Error),
    /// Logging in failed.
    #[error("cannot connect to the cluster: {0}")]
    Login(String),
    /// A startup handler failed permanently.
    #[error("a startup handler failed: {0}")]
    Startup(String),
}
