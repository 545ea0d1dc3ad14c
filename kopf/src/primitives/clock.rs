//! The one clock of an operator: a base wall time plus tokio's elapsed time (Kopf's
//! `basetime + loop.time()`), so that under a paused tokio clock every timestamp kopf writes —
//! `started`, `delayed`, event times — follows virtual time and repeats from run to run.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// The operator's clock. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Timestamp,
    start: Instant,
}

impl Clock {
    /// A clock reading `base` now, advancing with tokio time.
    pub fn new(base: Timestamp) -> Self {
        Self { base, start: Instant::now() }
    }

    /// A clock reading the real wall time now (production).
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read: the base
    pub fn wall() -> Self {
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| Timestamp::from_nanosecond(d.as_nanos() as i128).ok())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        Self::new(base)
    }

    /// The current wall time.
    pub fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.base.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    /// The tokio instant corresponding to a wall time (past times map to now).
    pub fn instant_of(&self, at: Timestamp) -> Instant {
        let now = self.now();
        let ahead = at.duration_since(now);
        let ahead = Duration::try_from(ahead).unwrap_or(Duration::ZERO);
        Instant::now() + ahead
    }
}

/// Kopf's progress timestamps: ISO 8601 with microseconds and a `+00:00` offset, as Python's
/// `datetime.isoformat(timespec='microseconds')` writes a UTC time.
pub(crate) fn format_micros(t: Timestamp) -> String {
    let secs = t.as_second();
    let micros = t.subsec_microsecond();
    let whole = Timestamp::from_second(secs).unwrap_or(t);
    format!("{}.{micros:06}+00:00", whole.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// Python's `isoformat()` with no timespec: microseconds only when non-zero (touch-dummy, peering).
pub(crate) fn format_iso(t: Timestamp) -> String {
    if t.subsec_microsecond() == 0 {
        let whole = Timestamp::from_second(t.as_second()).unwrap_or(t);
        format!("{}+00:00", whole.strftime("%Y-%m-%dT%H:%M:%S"))
    } else {
        format_micros(t)
    }
}

/// Parses Kopf's timestamps, also the naive ones older Kopf versions wrote (taken as UTC).
pub(crate) fn parse_iso(text: &str) -> Option<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_timestamps_have_microseconds_and_an_offset_like_python() {
        let t: Timestamp = "2026-01-01T00:00:05.25Z".parse().unwrap();
        assert_eq!(format_micros(t), "2026-01-01T00:00:05.250000+00:00");
        let whole: Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        assert_eq!(format_micros(whole), "2026-01-01T00:00:05.000000+00:00");
        assert_eq!(format_iso(whole), "2026-01-01T00:00:05+00:00");
    }

    #[test]
    fn naive_and_offset_timestamps_both_parse() {
        assert_eq!(
            parse_iso("2020-02-14T16:58:25.396364").unwrap().to_string(),
            "2020-02-14T16:58:25.396364Z"
        );
        assert_eq!(
            parse_iso("2020-02-14T16:58:25.396364+00:00").unwrap().to_string(),
            "2020-02-14T16:58:25.396364Z"
        );
        assert!(parse_iso("garbage").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_virtual_time() {
        let clock = Clock::new("2026-01-01T00:00:00Z".parse().unwrap());
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(format_micros(clock.now()), "2026-01-01T00:01:30.000000+00:00");
    }
}
