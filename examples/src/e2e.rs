//! The end-to-end check every example passes, in the spirit of Kopf's e2e harness: run the
//! operator on a fresh fake cluster, apply an object, let it be handled, delete it, and compare
//! the handler outcomes with what the example promises — each expected handler succeeded exactly
//! once for the object, and nothing failed that was not expected to.

use std::collections::BTreeMap;
use std::time::Duration;

use kopf_testing::{KopfRunner, Report, TestObject};

/// What an example promises for one object's life (created, left alone for `linger`, deleted).
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Handlers that succeed exactly once for the object.
    pub once: Vec<&'static str>,
    /// Handlers that run any number of times (timers, daemons, event handlers), failures allowed
    /// only where listed in `failing`.
    pub repeated: Vec<&'static str>,
    /// Handlers whose runs may end in a temporary outcome without failing the example (e.g. a
    /// parent waiting for its sub-handlers).
    pub retried: Vec<&'static str>,
    /// Handlers expected to fail at least once (they may also be in `once`: failed, then succeeded).
    pub failing: Vec<&'static str>,
    /// How long the object lives before it is deleted (virtual time).
    pub linger: Duration,
}

/// Runs the lifecycle as the operator's ServiceAccount, under the RBAC the operator generates for
/// itself and nothing else; the report of handler runs, after checking it against `expect`.
///
/// # Panics
/// When the outcomes differ from `expect` (with the report and the timeline), the object is
/// still there after its deletion settled (a finalizer left behind), or the operator met a 403.
pub async fn lifecycle<K: TestObject>(runner: KopfRunner, object: K, expect: &Expect) -> Report {
    let runner = runner.with_generated_rbac().start().await;
    let name = object.meta().name.clone().unwrap_or_default();
    let namespace = object.meta().namespace.clone();
    let key = match &namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.clone(),
    };
    runner.cluster().create(object).await;
    runner.settle().await;
    runner.advance(expect.linger).await;
    runner.cluster().delete::<K>(&name).await;
    runner.settle().await;
    let report = runner.report();
    let explain = || format!("report:\n{report}\ntimeline:\n{}", runner.timeline());
    assert!(
        runner.cluster().get_opt_in::<K>(namespace.as_deref(), &name).await.is_none(),
        "{key} is still there after its deletion: {}",
        explain()
    );
    let succeeded: BTreeMap<String, u32> = report.successes_of(&key);
    for id in &expect.once {
        assert_eq!(
            succeeded.get(*id),
            Some(&1),
            "{id} did not succeed exactly once for {key}: {}",
            explain()
        );
    }
    for id in succeeded.keys() {
        assert!(
            expect.once.contains(&id.as_str())
                || expect.repeated.contains(&id.as_str())
                || expect.failing.contains(&id.as_str()),
            "unexpected handler {id} ran for {key}: {}",
            explain()
        );
    }
    for (id, object, runs) in report.failures() {
        assert!(
            expect.failing.contains(&id.as_str())
                || (runs.permanent == 0 && expect.retried.contains(&id.as_str())),
            "{id} failed unexpectedly for {object} ({runs:?}): {}",
            explain()
        );
    }
    for id in &expect.failing {
        assert!(report.runs(id, &key).failed(), "{id} was expected to fail for {key}: {}", explain());
    }
    runner.stop().await;
    report
}
