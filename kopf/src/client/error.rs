//! API errors, split as Kopf splits them (`APINotFoundError`, `APIConflictError`, …) so callers
//! branch on meaning, not on codes.

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 404: the object or resource does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: a conflict (stale resourceVersion, already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 410: the resourceVersion is too old.
    #[error("gone: {0}")]
    Gone(String),
    /// 422: the request was invalid (e.g. a failed JSON-patch `test`).
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// 401: credentials rejected.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: forbidden.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 429: too many requests, with the seconds to wait if the server said.
    #[error("too many requests (retry after {retry_after:?} s): {message}")]
    TooManyRequests {
        /// The server's message.
        message: String,
        /// `Retry-After`, in seconds.
        retry_after: Option<u32>,
    },
    /// Another 4xx.
    #[error("client error {code}: {message}")]
    Client {
        /// The HTTP code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// A 5xx.
    #[error("server error {code}: {message}")]
    Server {
        /// The HTTP code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// The connection failed or the response could not be read.
    #[error("transport: {0}")]
    Transport(String),
    /// The response did not decode.
    #[error("undecodable response: {0}")]
    Decode(String),
}

impl Error {
    /// The error for an HTTP status code and message.
    pub fn from_status(code: u16, message: String, retry_after: Option<u32>) -> Self {
        match code {
            401 => Self::Unauthorized(message),
            403 => Self::Forbidden(message),
            404 => Self::NotFound(message),
            409 => Self::Conflict(message),
            410 => Self::Gone(message),
            422 => Self::Unprocessable(message),
            429 => Self::TooManyRequests { message, retry_after },
            400..=499 => Self::Client { code, message },
            _ => Self::Server { code, message },
        }
    }

    /// Whether Kopf retries it with `networking.error_backoffs`: connection errors, 5xx, 403 and 429.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transport(_) | Self::Server { .. } | Self::Forbidden(_) | Self::TooManyRequests { .. }
        )
    }

    /// `Retry-After` of a 429.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::TooManyRequests { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
