//! The one clock of the fake cluster: a base wall time plus the tokio time elapsed since the cluster
//! started. Under a paused tokio clock every timestamp (creation, deletion, events, leases) follows
//! virtual time and repeats from run to run (DESIGN.md §3, reference/virtual-time.md rule 6).

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

/// The cluster's clock. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Timestamp,
    start: Instant,
}

/// The wall time a seeded cluster starts at, so that timestamps repeat from run to run.
pub const DEFAULT_BASE_TIME: &str = "2026-01-01T00:00:00Z";

impl Clock {
    /// A clock that reads `base` now and advances with tokio time.
    ///
    /// Must be called inside a tokio runtime when the clock is paused, so `start` is virtual.
    pub fn new(base: Timestamp) -> Self {
        Self { base, start: Instant::now() }
    }

    /// Time elapsed since the cluster started, on tokio's (possibly virtual) clock.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The current wall time: the base plus the elapsed tokio time.
    pub fn now(&self) -> Timestamp {
        let elapsed = jiff::SignedDuration::try_from(self.elapsed()).unwrap_or(jiff::SignedDuration::MAX);
        self.base.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    /// `now()` as Kubernetes writes `metav1.Time`: RFC 3339, whole seconds, UTC (`2026-01-01T00:00:00Z`).
    pub fn now_rfc3339(&self) -> String {
        rfc3339_seconds(self.now())
    }

    /// `now()` as `metav1.MicroTime` (microseconds), used by events and leases.
    pub fn now_micro(&self) -> String {
        let now = self.now();
        let micros = now.subsec_microsecond();
        let whole = rfc3339_seconds(now);
        format!("{}.{micros:06}Z", whole.trim_end_matches('Z'))
    }
}

/// RFC 3339 at whole seconds.
pub(crate) fn rfc3339_seconds(t: Timestamp) -> String {
    let secs = Timestamp::from_second(t.as_second()).unwrap_or(t);
    secs.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timestamps_follow_virtual_time_from_the_base() {
        let clock = Clock::new(DEFAULT_BASE_TIME.parse().unwrap());
        assert_eq!(clock.now_rfc3339(), "2026-01-01T00:00:00Z");
        tokio::time::sleep(Duration::from_millis(61_500)).await;
        assert_eq!(clock.now_rfc3339(), "2026-01-01T00:01:01Z");
        assert_eq!(clock.now_micro(), "2026-01-01T00:01:01.500000Z");
    }
}
