//! Kopf's request retries: connection errors, 5xx, 403 and 429 are retried after each of
//! `networking.error_backoffs` in turn (429 waits `max(backoff, Retry-After)`, or exactly
//! `Retry-After` with `enforce_retry_after`); other errors escalate at once.

use std::time::Duration;

use super::{BoxFuture, Result};
use crate::settings::NetworkingSettings;

/// Runs `call` until it succeeds, fails with a non-retryable error, or the backoffs run out.
pub(crate) async fn retrying<'a, T>(
    settings: &NetworkingSettings,
    mut call: impl FnMut() -> BoxFuture<'a, Result<T>>,
) -> Result<T> {
    let mut backoffs = settings.error_backoffs.iter();
    loop {
        match call().await {
            Err(e) if e.is_retryable() => {
                let Some(backoff) = backoffs.next() else { return Err(e) };
                let delay = match (e.retry_after(), settings.enforce_retry_after) {
                    (Some(after), true) => Duration::from_secs(u64::from(after)),
                    (Some(after), false) => (*backoff).max(Duration::from_secs(u64::from(after))),
                    (None, _) => *backoff,
                };
                tracing::debug!(error = %e, ?delay, "request failed; retrying");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::client::Error;

    #[tokio::test(start_paused = true)]
    async fn too_many_requests_waits_the_longer_of_backoff_and_retry_after() {
        let settings =
            NetworkingSettings { error_backoffs: vec![Duration::from_secs(1)], ..Default::default() };
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let out = retrying(&settings, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    Err(Error::TooManyRequests { message: "slow".into(), retry_after: Some(7) })
                } else {
                    Ok(n)
                }
            })
        })
        .await;
        assert_eq!(out, Ok(1));
        assert_eq!(start.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_errors_escalate_at_once_and_backoffs_run_out() {
        let settings = NetworkingSettings::default();
        let out: Result<()> =
            retrying(&settings, || Box::pin(async { Err(Error::NotFound("x".into())) })).await;
        assert_eq!(out, Err(Error::NotFound("x".into())));
        let start = tokio::time::Instant::now();
        let out: Result<()> = retrying(&settings, || {
            Box::pin(async { Err(Error::Server { code: 503, message: "down".into() }) })
        })
        .await;
        assert!(out.is_err());
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1 + 1 + 2 + 3 + 5 + 8 + 13 + 21),
            "8 backoffs, then the error"
        );
    }
}
