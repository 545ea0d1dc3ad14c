//! The generated RBAC of every example is exactly sufficient: each example's life (created, left
//! for a while, deleted) runs as its ServiceAccount under the RBAC it generates with no 403
//! ([`crate::e2e::lifecycle`] runs under it too), and with any one permission taken away — one
//! verb on one resource — the same life meets a 403 for exactly that verb and resource.

use std::time::Duration;

use kopf_testing::{KopfRunner, Runner, TestObject};

/// Starts `runner`, creates `object`, lets it live for `linger`, deletes it: the runner after.
/// With `strict`, the creation must be admitted; otherwise a refused one ends the life early (an
/// operator stopped by a 403 at startup no longer answers its admission webhooks, and the API
/// server refuses writes under their `Fail` policy, as a real one would).
async fn live_once<K: TestObject>(runner: KopfRunner, object: K, linger: Duration, strict: bool) -> Runner {
    let name = object.meta().name.clone().unwrap_or_default();
    let runner = runner.start().await;
    match runner.cluster().try_create(object).await {
        Ok(_) => {}
        Err(_refused) if !strict => {
            runner.settle().await;
            return runner;
        }
        Err(refused) => panic!("creating {name} failed: {refused}"),
    }
    runner.settle().await;
    runner.advance(linger).await;
    runner.cluster().delete::<K>(&name).await;
    runner.settle().await;
    runner
}

/// Runs the life under the generated RBAC (no 403), then once without each of its permissions (a
/// 403 for that very permission). Returns the permissions checked, as text.
///
/// # Panics
/// When a 403 comes under the full RBAC, or taking a permission away goes unnoticed.
pub async fn exactly_sufficient<K: TestObject + Clone>(
    make: impl Fn() -> KopfRunner,
    object: K,
    linger: Duration,
) -> Vec<String> {
    let full = live_once(make().with_generated_rbac(), object.clone(), linger, true).await;
    let rbac = full.rbac().expect("the runner installed an RBAC").clone();
    assert!(full.forbidden().is_empty(), "403s under the full RBAC: {:?}", full.forbidden());
    full.stop().await;
    let permissions: Vec<kopf::Permission> = rbac.permissions().cloned().collect();
    assert!(!permissions.is_empty(), "an operator with handlers needs some permission");
    for permission in &permissions {
        let runner = make().with_rbac(rbac.without(permission)).expect_forbidden();
        let runner = live_once(runner, object.clone(), linger, false).await;
        let expected = format!(
            r#"cannot {} resource "{}" in API group "{}""#,
            permission.verb, permission.resource, permission.group
        );
        let refused = runner.forbidden();
        assert!(
            refused.iter().any(|r| r.contains(&expected)),
            "without `{permission}` the life met no 403 for it; 403s: {refused:?}\ntimeline:\n{}",
            runner.timeline()
        );
    }
    permissions.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::kopfexample::{KopfExample, example};
    use crate::*;

    fn with_crd(operator: kopf::Operator) -> KopfRunner {
        KopfRunner::new(operator).with_crd::<KopfExample>()
    }

    /// Example 06's replica with the peering CRDs and its peering object.
    fn ex06_peering_runner() -> KopfRunner {
        ex06_peering::with_peering(with_crd(ex06_peering::replica("e2e", 0)))
    }

    /// One test per example: the operator, the object, how long it lives, the permissions it
    /// generates.
    macro_rules! exactly_sufficient {
        ($($test:ident: $make:expr, $object:expr, $linger:expr, $permissions:expr;)*) => {$(
            #[tokio::test(start_paused = true)]
            async fn $test() {
                let checked = exactly_sufficient($make, $object, Duration::from_secs($linger)).await;
                assert_eq!(checked, $permissions);
            }
        )*};
    }

    exactly_sufficient! {
        configmap_driven_needs_exactly_its_generated_rbac: || KopfRunner::new(configmap_driven::operator()), configmap_driven::template("e2e", &[("a", "b")]), 0, [
            "create configmaps (core) cluster-wide",
            "get configmaps (core) cluster-wide",
            "list configmaps (core) cluster-wide",
            "patch configmaps (core) cluster-wide",
            "watch configmaps (core) cluster-wide",
        ];
        child_deployment_needs_exactly_its_generated_rbac: || with_crd(child_deployment::operator()).live_cluster(fake_apiserver::live::LiveCluster::new()), example("e2e", "x"), 60, [
            "create deployments (apps) cluster-wide",
            "get deployments (apps) cluster-wide",
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        kopfexample_needs_exactly_its_generated_rbac: || with_crd(kopfexample::operator()), example("e2e", "x"), 120, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex01_minimal_needs_exactly_its_generated_rbac: || with_crd(ex01_minimal::operator()), example("e2e", "x"), 0, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex02_children_needs_exactly_its_generated_rbac: || with_crd(ex02_children::operator()), example("e2e", "x"), 0, [
            "create pods (core) cluster-wide",
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex03_exceptions_needs_exactly_its_generated_rbac: || with_crd(ex03_exceptions::operator()), example("e2e", "x"), 60, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
        ];
        ex04_events_needs_exactly_its_generated_rbac: || with_crd(ex04_events::operator()), example("e2e", "x"), 0, [
            "create events (core) cluster-wide",
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
        ];
        ex05_handlers_needs_exactly_its_generated_rbac: || with_crd(ex05_handlers::operator()), example("e2e", "x"), 0, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex06_peering_needs_exactly_its_generated_rbac: ex06_peering_runner, example("e2e", "x"), 0, [
            "list clusterkopfpeerings (kopf.dev) cluster-wide",
            "patch clusterkopfpeerings (kopf.dev) cluster-wide",
            "watch clusterkopfpeerings (kopf.dev) cluster-wide",
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex07_subhandlers_needs_exactly_its_generated_rbac: || with_crd(ex07_subhandlers::operator()), example("e2e", "x"), 0, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex08_events_needs_exactly_its_generated_rbac: || with_crd(ex08_events::operator(Arc::default())), example("e2e", "x"), 0, [
            "list pods (core) cluster-wide",
            "watch pods (core) cluster-wide",
            "list kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
        ];
        ex09_testing_needs_exactly_its_generated_rbac: || with_crd(ex09_testing::operator()), example("e2e", "x"), 120, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex10_builtins_needs_exactly_its_generated_rbac: || KopfRunner::new(ex10_builtins::operator()), ex10_builtins::pod("e2e"), 0, [
            "list pods (core) cluster-wide",
            "patch pods (core) cluster-wide",
            "watch pods (core) cluster-wide",
        ];
        ex11_filtering_needs_exactly_its_generated_rbac: || with_crd(ex11_filtering::operator()), {
            let mut ex = example("e2e", "x");
            ex.metadata.labels = Some([("somelabel".to_owned(), "somevalue".to_owned())].into());
            ex
        }, 0, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex13_hooks_needs_exactly_its_generated_rbac: || with_crd(ex13_hooks::operator(Arc::default())), example("e2e", "x"), 0, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex14_daemons_needs_exactly_its_generated_rbac: || with_crd(ex14_daemons::operator()), example("e2e", "x"), 25, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex15_timers_needs_exactly_its_generated_rbac: || with_crd(ex15_timers::operator()), example("e2e", "x"), 600, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex16_indexing_needs_exactly_its_generated_rbac: || with_crd(ex16_indexing::operator()), example("e2e", "x"), 0, [
            "list pods (core) cluster-wide",
            "watch pods (core) cluster-wide",
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex17_admission_needs_exactly_its_generated_rbac: || with_crd(ex17_admission::operator()), example("e2e", "x"), 0, [
            "create mutatingwebhookconfigurations (admissionregistration.k8s.io) cluster-wide",
            "patch mutatingwebhookconfigurations (admissionregistration.k8s.io) cluster-wide",
            "create validatingwebhookconfigurations (admissionregistration.k8s.io) cluster-wide",
            "patch validatingwebhookconfigurations (admissionregistration.k8s.io) cluster-wide",
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
        ex99_all_at_once_needs_exactly_its_generated_rbac: || with_crd(ex99_all_at_once::operator()), example("e2e", "x"), 120, [
            "list kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples (kopf.dev) cluster-wide",
            "watch kopfexamples (kopf.dev) cluster-wide",
            "patch kopfexamples/status (kopf.dev) cluster-wide",
        ];
    }
}
