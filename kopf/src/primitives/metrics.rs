//! The operator's metrics, rendered in Prometheus' text exposition format (version 0.0.4): handler
//! runs by outcome, failures, durations (a histogram), watch restarts, and the gauges of work in
//! progress read from the [`Activity`] counters (queued events, objects processing, handlers
//! running, watches disconnected) and the pause. Hand-written: a few counters do not need a
//! metrics crate with its derive macros.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::activity::{Activity, Counter};

/// Upper bounds of the duration histogram's buckets, in seconds (Prometheus' defaults).
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The counters of one operator. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// (handler, resource, outcome) → runs.
    runs: BTreeMap<(String, String, &'static str), u64>,
    /// (handler, resource) → durations.
    durations: BTreeMap<(String, String), Histogram>,
    /// resource → watch requests after the first one of a stream.
    watch_restarts: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One handler run: `success`, `temporary` (will be retried) or `permanent` (failed for good).
    pub(crate) fn handler_run(&self, handler: &str, resource: &str, outcome: &'static str, took: Duration) {
        let mut state = self.lock();
        *state.runs.entry((handler.to_owned(), resource.to_owned(), outcome)).or_default() += 1;
        let histogram = state.durations.entry((handler.to_owned(), resource.to_owned())).or_default();
        let seconds = took.as_secs_f64();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// A watch stream of `resource` watched (or listed) again after its first watch.
    pub(crate) fn watch_restart(&self, resource: &str) {
        *self.lock().watch_restarts.entry(resource.to_owned()).or_default() += 1;
    }

    /// The text exposition of everything, with the gauges read now.
    pub(crate) fn render(&self, activity: &Activity, paused: bool) -> String {
        let state = self.lock();
        let mut out = Rendered(String::new());
        out.family("kopf_handler_runs_total", "counter", "Handler runs by outcome.");
        for ((handler, resource, outcome), n) in &state.runs {
            out.line(
                "kopf_handler_runs_total",
                &[("handler", handler), ("resource", resource), ("outcome", outcome)],
                n,
            );
        }
        out.family(
            "kopf_handler_failures_total",
            "counter",
            "Handler runs that failed (temporarily or for good).",
        );
        let mut failures: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for ((handler, resource, outcome), n) in &state.runs {
            let entry = failures.entry((handler, resource)).or_default();
            if *outcome != "success" {
                *entry += n;
            }
        }
        for ((handler, resource), n) in failures {
            out.line("kopf_handler_failures_total", &[("handler", handler), ("resource", resource)], n);
        }
        out.family("kopf_handler_duration_seconds", "histogram", "How long handler runs took.");
        for ((handler, resource), h) in &state.durations {
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                let le = bound.to_string();
                let pairs = [("handler", handler.as_str()), ("resource", resource.as_str()), ("le", &le)];
                out.line("kopf_handler_duration_seconds_bucket", &pairs, n);
            }
            let pairs = [("handler", handler.as_str()), ("resource", resource.as_str()), ("le", "+Inf")];
            out.line("kopf_handler_duration_seconds_bucket", &pairs, h.count);
            let pairs = [("handler", handler.as_str()), ("resource", resource.as_str())];
            out.line("kopf_handler_duration_seconds_sum", &pairs, h.sum);
            out.line("kopf_handler_duration_seconds_count", &pairs, h.count);
        }
        out.family(
            "kopf_watch_restarts_total",
            "counter",
            "Watch streams started again (re-watch or re-list).",
        );
        for (resource, n) in &state.watch_restarts {
            out.line("kopf_watch_restarts_total", &[("resource", resource)], n);
        }
        let gauges = [
            ("kopf_queued_events", "Watch events queued for per-object workers.", Counter::QueuedEvents),
            ("kopf_objects_processing", "Objects being processed.", Counter::Processing),
            ("kopf_handlers_running", "Handlers running.", Counter::RunningHandlers),
            ("kopf_watches_disconnected", "Watch streams listing or reconnecting.", Counter::Disconnected),
        ];
        for (name, help, counter) in gauges {
            out.family(name, "gauge", help);
            out.line(name, &[], activity.get(counter).max(0));
        }
        out.family("kopf_paused", "gauge", "1 while the operator is paused by peering.");
        out.line("kopf_paused", &[], u8::from(paused));
        out.0
    }
}

struct Rendered(String);

impl Rendered {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn line(&mut self, name: &str, pairs: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{name}{} {value}", labels(pairs));
    }
}

/// `{k="v",…}` with the text format's escapes (backslash, quote, newline); empty without pairs.
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let escaped = v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_failures_durations_and_gauges_render_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.handler_run("create_fn", "kopfexamples.kopf.dev", "success", Duration::from_millis(20));
        metrics.handler_run("create_fn", "kopfexamples.kopf.dev", "temporary", Duration::from_secs(3));
        metrics.handler_run("odd\"id", "pods", "permanent", Duration::ZERO);
        metrics.watch_restart("pods");
        let activity = Activity::default();
        activity.enter(Counter::QueuedEvents);
        let text = metrics.render(&activity, true);
        for line in [
            r#"kopf_handler_runs_total{handler="create_fn",resource="kopfexamples.kopf.dev",outcome="success"} 1"#,
            r#"kopf_handler_failures_total{handler="create_fn",resource="kopfexamples.kopf.dev"} 1"#,
            r#"kopf_handler_failures_total{handler="odd\"id",resource="pods"} 1"#,
            r#"kopf_handler_duration_seconds_bucket{handler="create_fn",resource="kopfexamples.kopf.dev",le="0.025"} 1"#,
            r#"kopf_handler_duration_seconds_bucket{handler="create_fn",resource="kopfexamples.kopf.dev",le="5"} 2"#,
            r#"kopf_handler_duration_seconds_bucket{handler="create_fn",resource="kopfexamples.kopf.dev",le="+Inf"} 2"#,
            r#"kopf_handler_duration_seconds_sum{handler="create_fn",resource="kopfexamples.kopf.dev"} 3.02"#,
            r#"kopf_watch_restarts_total{resource="pods"} 1"#,
            "# TYPE kopf_handler_duration_seconds histogram",
            "kopf_queued_events 1",
            "kopf_paused 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} is missing from:\n{text}");
        }
    }
}
