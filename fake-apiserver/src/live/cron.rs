//! Cron schedules as CronJobs read them (robfig/cron's standard parser): five fields — minute,
//! hour, day of month, month, day of week — with `*`, `?`, lists, ranges, steps and names (`JAN`,
//! `MON`), the descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
//! `@hourly` and `@every <duration>`, and cron's rule that when both day fields are restricted a
//! day matching either one fires. Times are computed in a time zone (UTC unless `timeZone` says).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Five fields, as bit sets; `star` marks a day field that was `*` or `?`.
    Fields {
        /// Minutes 0–59.
        minute: u64,
        /// Hours 0–23.
        hour: u64,
        /// Days of the month 1–31.
        dom: u64,
        /// Months 1–12.
        month: u64,
        /// Days of the week 0–6 (Sunday is 0).
        dow: u64,
        /// Whether the day-of-month field was unrestricted.
        dom_star: bool,
        /// Whether the day-of-week field was unrestricted.
        dow_star: bool,
    },
    /// `@every <duration>`, whole seconds.
    Every(u64),
}

/// A schedule that does not parse, with the real controller's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(pub String);

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(expr: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<(u64, bool), CronError> {
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                (r, Some(s.parse::<u32>().map_err(|_| CronError(format!("failed to parse int from {s}")))?))
            }
            None => (part, None),
        };
        let value = |s: &str| -> Result<u32, CronError> {
            let lower = s.to_ascii_lowercase();
            if let Some(i) = names.iter().position(|n| *n == lower) {
                return Ok(i as u32 + name_base);
            }
            s.parse::<u32>().map_err(|_| CronError(format!("failed to parse int from {s}")))
        };
        let (start, end) = if range == "*" || range == "?" {
            if step.is_none_or(|s| s == 1) {
                star = true;
            }
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if step.is_some() { max } else { v })
        };
        let step = step.unwrap_or(1);
        if start < min {
            return Err(CronError(format!("beginning of range ({start}) below minimum ({min}): {part}")));
        }
        if end > max {
            return Err(CronError(format!("end of range ({end}) above maximum ({max}): {part}")));
        }
        if start > end {
            return Err(CronError(format!(
                "beginning of range ({start}) beyond end of range ({end}): {part}"
            )));
        }
        if step == 0 {
            return Err(CronError(format!("step of range should be a positive number: {part}")));
        }
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

impl std::str::FromStr for Schedule {
    type Err = CronError;

    fn from_str(spec: &str) -> Result<Self, CronError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(CronError("empty spec string".into()));
        }
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            return Err(CronError("the time zone goes in spec.timeZone, not in the schedule".into()));
        }
        let standard = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => spec,
        };
        if let Some(every) = standard.strip_prefix("@every ") {
            let d = super::behaviour::parse_duration(every)
                .map_err(|e| CronError(format!("failed to parse duration {spec}: {e}")))?;
            return Ok(Schedule::Every(d.as_secs().max(1)));
        }
        if standard.starts_with('@') {
            return Err(CronError(format!("unrecognized descriptor: {spec}")));
        }
        let fields: Vec<&str> = standard.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            )));
        }
        let (minute, _) = field(fields[0], 0, 59, &[], 0)?;
        let (hour, _) = field(fields[1], 0, 23, &[], 0)?;
        let (dom, dom_star) = field(fields[2], 1, 31, &[], 0)?;
        let (month, _) = field(fields[3], 1, 12, &MONTHS, 1)?;
        let (dow, dow_star) = field(fields[4], 0, 6, &DAYS, 0)?;
        Ok(Schedule::Fields { minute, hour, dom, month, dow, dom_star, dow_star })
    }
}

impl Schedule {
    /// The first activation strictly after `after`, in `tz`; `None` if none comes within five
    /// years (a schedule such as `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow, dom_star, dow_star) = match *self {
            Schedule::Every(seconds) => {
                let next = after.as_second() + i64::try_from(seconds).ok()?;
                return Timestamp::from_second(next).ok();
            }
            Schedule::Fields { minute, hour, dom, month, dow, dom_star, dow_star } => {
                (minute, hour, dom, month, dow, dom_star, dow_star)
            }
        };
        let day_matches = |d: Date| {
            let dom_ok = dom & (1 << d.day()) != 0;
            let dow_ok = dow & (1 << d.weekday().to_sunday_zero_offset()) != 0;
            if dom_star || dow_star { dom_ok && dow_ok } else { dom_ok || dow_ok }
        };
        // Start at the next whole minute after `after`, in wall-clock time.
        let wall = after.to_zoned(tz.clone()).datetime();
        let mut t: DateTime = wall
            .date()
            .to_datetime(Time::new(wall.hour(), wall.minute(), 0, 0).ok()?)
            .checked_add(1.minute())
            .ok()?;
        let limit = t.year() + 5;
        while t.year() <= limit {
            if month & (1 << t.month()) == 0 {
                let first = Date::new(t.year(), t.month(), 1).ok()?;
                t = first.checked_add(1.month()).ok()?.to_datetime(Time::midnight());
                continue;
            }
            if !day_matches(t.date()) {
                t = t.date().checked_add(1.day()).ok()?.to_datetime(Time::midnight());
                continue;
            }
            if hour & (1 << t.hour()) == 0 {
                t = t.date().to_datetime(Time::new(t.hour(), 0, 0, 0).ok()?).checked_add(1.hour()).ok()?;
                continue;
            }
            if minute & (1 << t.minute()) == 0 {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            let candidate = t.to_zoned(tz.clone()).ok()?.timestamp();
            if candidate > after {
                return Some(candidate);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> Option<String> {
        spec.parse::<Schedule>().unwrap().next(ts(after), &TimeZone::UTC).map(|t| t.to_string())
    }

    #[test]
    fn steps_ranges_lists_and_names_fire_where_cron_fires_them() {
        assert_eq!(next("*/15 * * * *", "2026-01-01T00:00:00Z").as_deref(), Some("2026-01-01T00:15:00Z"));
        assert_eq!(next("*/15 * * * *", "2026-01-01T00:14:59Z").as_deref(), Some("2026-01-01T00:15:00Z"));
        assert_eq!(
            next("0 9-17/4 * * MON-FRI", "2026-01-03T00:00:00Z").as_deref(),
            Some("2026-01-05T09:00:00Z")
        );
        assert_eq!(next("30 2 1,15 * *", "2026-01-02T00:00:00Z").as_deref(), Some("2026-01-15T02:30:00Z"));
        assert_eq!(next("@hourly", "2026-01-01T00:30:00Z").as_deref(), Some("2026-01-01T01:00:00Z"));
        assert_eq!(next("0 0 1 jan *", "2026-01-01T00:00:00Z").as_deref(), Some("2027-01-01T00:00:00Z"));
        assert_eq!(next("@every 90s", "2026-01-01T00:00:00Z").as_deref(), Some("2026-01-01T00:01:30Z"));
    }

    #[test]
    fn both_restricted_day_fields_fire_on_either_and_impossible_dates_never() {
        // The 13th or any Friday: Friday 2026-01-02 comes first.
        assert_eq!(next("0 0 13 * 5", "2026-01-01T00:00:00Z").as_deref(), Some("2026-01-02T00:00:00Z"));
        // `*` in the day of month: only Fridays.
        assert_eq!(next("0 0 * * 5", "2026-01-02T00:00:00Z").as_deref(), Some("2026-01-09T00:00:00Z"));
        assert_eq!(next("0 0 30 2 *", "2026-01-01T00:00:00Z"), None);
    }

    #[test]
    fn time_zones_shift_the_wall_clock() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let s: Schedule = "0 9 * * *".parse().unwrap();
        assert_eq!(
            s.next(ts("2026-01-01T00:00:00Z"), &tz).map(|t| t.to_string()).as_deref(),
            Some("2026-01-01T08:00:00Z")
        );
    }

    #[test]
    fn bad_schedules_are_errors_with_a_reason() {
        for bad in [
            "",
            "* * * *",
            "61 * * * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "@fortnightly",
            "TZ=UTC * * * * *",
            "x * * * *",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
        }
    }
}
