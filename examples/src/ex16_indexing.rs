//! 16 — indexes: in-memory indexes over other objects, kept exact by the operator as those
//! objects come, change and go, and handed to every handler. Here Pods are indexed by their `app`
//! label, and each example reports how many Pods carry the app named in its `spec.field`.
//! Handlers wait until every indexed resource has been listed once, so the counts are never
//! taken from a half-built index.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kopf::{Context, HandlerError, Operator};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The operator.
pub fn operator() -> Operator {
    Operator::new()
        .index(|pod: Arc<Pod>, _ctx: Context| {
            let app = pod.metadata.labels.as_ref().and_then(|l| l.get("app")).cloned();
            let name = pod.metadata.name.clone();
            // One entry per Pod under its app; an empty object removes the Pod's entries.
            async move { Ok::<_, HandlerError>(app.map_or_else(|| json!({}), |app| json!({app: name}))) }
        })
        .id("pods_by_app")
        .on_create(|ex: Arc<KopfExample>, ctx: Context| async move {
            let index = ctx.index("pods_by_app").ok_or_else(|| HandlerError::permanent("no index"))?;
            let pods = index.get(&ex.spec.field).len();
            Ok::<_, HandlerError>(json!({"pods": pods}))
        })
        .id("count_pods")
}

#[cfg(test)]
mod tests {
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::ex10_builtins::pod;
    use crate::kopfexample::example;

    fn app_pod(name: &str, app: &str) -> Pod {
        let mut pod = pod(name);
        pod.metadata.labels = Some([("app".to_owned(), app.to_owned())].into());
        pod
    }

    #[tokio::test(start_paused = true)]
    async fn examples_count_the_pods_of_their_app_as_the_index_follows_pods() {
        let pods = [app_pod("web-1", "web"), app_pod("web-2", "web"), app_pod("db-1", "db")];
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().with_objects(pods).start().await;
        runner.cluster().create(example("web", "web")).await;
        runner.settle().await;
        runner.cluster().patch::<Pod>("db-1", json!({"metadata": {"labels": {"app": "web"}}})).await;
        runner.cluster().delete::<Pod>("web-1").await;
        runner.cluster().create(app_pod("web-3", "web")).await;
        runner.settle().await;
        runner.cluster().create(example("later", "web")).await;
        runner.cluster().create(example("db", "db")).await;
        runner.settle().await;
        let pods = |ex: KopfExample| ex.status.unwrap().0["count_pods"]["pods"].clone();
        assert_eq!(pods(runner.cluster().get("web").await), 2, "web-1 and web-2 at first");
        assert_eq!(pods(runner.cluster().get("later").await), 3, "web-2, web-3 and the relabelled db-1");
        assert_eq!(pods(runner.cluster().get("db").await), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_the_counting_handler_runs_once() {
        let expect = Expect { once: vec!["count_pods"], ..Expect::default() };
        lifecycle(KopfRunner::new(operator()).with_crd::<KopfExample>(), example("e2e", "x"), &expect).await;
    }
}
