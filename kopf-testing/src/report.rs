//! What the handlers did, counted per handler id and object — kept even when the timeline is off,
//! so long runs and end-to-end checks can ask "did each handler succeed exactly once?".

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// The runs of one handler for one object, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Runs {
    /// Runs that succeeded.
    pub successes: u32,
    /// Runs that failed and will be retried (`HandlerError::Temporary` or any other error).
    pub temporary: u32,
    /// Runs that failed for good (`HandlerError::Permanent`, or out of retries or time).
    pub permanent: u32,
}

impl Runs {
    /// Every run, whatever its outcome.
    pub fn total(&self) -> u32 {
        self.successes + self.temporary + self.permanent
    }

    /// Whether any run failed.
    pub fn failed(&self) -> bool {
        self.temporary + self.permanent > 0
    }
}

/// Handler runs per `(handler id, "namespace/name")`, in a stable order.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kopf::{Context, HandlerError, Operator};
/// use kopf_testing::KopfRunner;
///
/// let operator = Operator::new()
///     .on_create(|_cm: Arc<ConfigMap>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
///     .id("create_fn");
/// let runner = KopfRunner::new(operator).start().await;
/// let mut cm = ConfigMap::default();
/// cm.metadata.name = Some("settings".into());
/// runner.cluster().create(cm).await;
/// runner.settle().await;
/// let report = runner.report();
/// assert_eq!(report.runs("create_fn", "default/settings").successes, 1);
/// assert!(report.failures().is_empty());
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    runs: BTreeMap<(String, String), Runs>,
}

impl Report {
    /// The runs of `handler` for `object` (`namespace/name`, or `name` when cluster-scoped).
    pub fn runs(&self, handler: &str, object: &str) -> Runs {
        self.runs.get(&(handler.to_owned(), object.to_owned())).copied().unwrap_or_default()
    }

    /// Every `(handler, object)` pair that ran, with its runs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, Runs)> {
        self.runs.iter().map(|((h, o), r)| (h.as_str(), o.as_str(), *r))
    }

    /// The pairs with at least one failed run.
    pub fn failures(&self) -> Vec<(String, String, Runs)> {
        self.iter().filter(|(_, _, r)| r.failed()).map(|(h, o, r)| (h.to_owned(), o.to_owned(), r)).collect()
    }

    /// The successes of every handler for `object`, by handler id.
    pub fn successes_of(&self, object: &str) -> BTreeMap<String, u32> {
        self.iter()
            .filter(|(_, o, r)| *o == object && r.successes > 0)
            .map(|(h, _, r)| (h.to_owned(), r.successes))
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ((handler, object), r) in &self.runs {
            writeln!(
                f,
                "{handler} {object}: {} succeeded, {} temporary, {} permanent",
                r.successes, r.temporary, r.permanent
            )?;
        }
        Ok(())
    }
}

/// The live counters behind [`Report`]; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    report: Arc<Mutex<Report>>,
}

impl Recorder {
    pub(crate) fn record(&self, handler: &str, object: String, outcome: &str) {
        let mut report = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        let runs = report.runs.entry((handler.to_owned(), object)).or_default();
        if outcome == "success" {
            runs.successes += 1;
        } else if outcome.starts_with("permanent") {
            runs.permanent += 1;
        } else {
            runs.temporary += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> Report {
        self.report.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}
