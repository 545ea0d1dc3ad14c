//! 17 — admission: validating and mutating webhooks served by the operator. The API server calls
//! them before it stores a write: a validating handler rejects with its message (and an HTTP code
//! of its choice); a mutating handler patches the object on its way in. With
//! `settings.admission.managed`, the operator creates and keeps the
//! `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration` named `auto.kopf.dev`
//! pointing at its webhook server (TLS with a CA it generates at start). Under KopfRunner, the
//! handlers are served to the fake cluster in process, on virtual time.

use std::sync::Arc;

use kopf::{Context, HandlerError, Operator, ValueFilter, WebhookServer};
use serde_json::json;

use crate::kopfexample::KopfExample;

/// The name of the managed webhook configurations.
pub const MANAGED: &str = "auto.kopf.dev";

/// The operator: two validating handlers, a mutating one, and an ordinary creation handler that
/// sees what the mutation stored.
pub fn operator() -> Operator {
    Operator::new()
        .settings(|s| {
            // Listens on 0.0.0.0:9443 with a self-signed CA; behind a Service, set `.host(..)`.
            s.admission.server = Some(Arc::new(WebhookServer::new()));
            s.admission.managed = Some(MANAGED.into());
        })
        .on_validate(|ex: Arc<KopfExample>, ctx: Context| async move {
            // A dry run reaches the webhooks too; this handler lets it through whatever it holds.
            if !ctx.dryrun() && ex.spec.field == "wrong" {
                return Err(HandlerError::admission("Meh! I don't like it. Change the field."));
            }
            Ok(())
        })
        .id("validate_field")
        .on_validate(|_ex: Arc<KopfExample>, _ctx: Context| async move {
            Err::<(), _>(HandlerError::admission("This value is not allowed here.").with_code(422))
        })
        .id("forbid_value")
        .field("spec.field")
        .value(ValueFilter::Equals(json!("not-allowed")))
        .on_mutate(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.patch().set("metadata.labels.injected", json!("by-the-webhook"));
            ctx.add_warning("labelled by the mutating webhook");
            Ok::<_, HandlerError>(())
        })
        .id("inject_label")
        .labels("somelabel", "somevalue")
        .on_create(|ex: Arc<KopfExample>, _ctx: Context| async move {
            let labels = ex.metadata.labels.clone().unwrap_or_default();
            Ok::<_, HandlerError>(
                json!({"injected": labels.get("injected").map_or("nothing", String::as_str)}),
            )
        })
        .id("create_fn")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    use kopf_testing::KopfRunner;

    use super::*;
    use crate::e2e::{Expect, lifecycle};
    use crate::kopfexample::example;

    fn labelled(name: &str, field: &str) -> KopfExample {
        let mut ex = example(name, field);
        ex.metadata.labels = Some([("somelabel".to_owned(), "somevalue".to_owned())].into());
        ex
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrong_field_is_rejected_with_the_handlers_message_and_not_stored() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        let error = runner.cluster().try_create(example("ex1", "wrong")).await.unwrap_err();
        assert_eq!(error.code(), 500, "an admission error's code unless it says otherwise, as in Kopf");
        assert!(
            error.to_string().ends_with(
                "admission webhook \"validate-field.auto.kopf.dev\" denied the request: \
                 Meh! I don't like it. Change the field."
            ),
            "{error}"
        );
        assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_field_filtered_handler_rejects_only_its_value_with_its_own_code() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        let error = runner.cluster().try_create(example("ex1", "not-allowed")).await.unwrap_err();
        assert_eq!(error.code(), 422);
        assert!(error.to_string().ends_with("This value is not allowed here."), "{error}");
        runner.cluster().create(example("ex2", "allowed")).await;
        assert!(runner.cluster().get_opt::<KopfExample>("ex2").await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_mutation_is_stored_for_selected_objects_only_and_the_handlers_see_it() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        let created = runner.cluster().create(labelled("ex1", "x")).await;
        assert_eq!(created.metadata.labels.unwrap_or_default()["injected"], "by-the-webhook");
        runner.cluster().create(example("ex2", "x")).await;
        runner.settle().await;
        let ex1: KopfExample = runner.cluster().get("ex1").await;
        assert_eq!(ex1.status.unwrap().0["create_fn"], json!({"injected": "by-the-webhook"}));
        let ex2: KopfExample = runner.cluster().get("ex2").await;
        assert!(!ex2.metadata.labels.unwrap_or_default().contains_key("injected"), "not selected");
        assert_eq!(ex2.status.unwrap().0["create_fn"], json!({"injected": "nothing"}));
    }

    #[tokio::test(start_paused = true)]
    async fn the_managed_configurations_name_every_webhook() {
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>().start().await;
        let validating: ValidatingWebhookConfiguration = runner.cluster().get(MANAGED).await;
        let names: Vec<String> =
            validating.webhooks.unwrap_or_default().into_iter().map(|w| w.name).collect();
        // A field handler's id has its field: `forbid_value/spec.field`.
        assert_eq!(names, ["validate-field.auto.kopf.dev", "forbid-value.spec.field.auto.kopf.dev"]);
        let mutating: MutatingWebhookConfiguration = runner.cluster().get(MANAGED).await;
        let names: Vec<String> = mutating.webhooks.unwrap_or_default().into_iter().map(|w| w.name).collect();
        assert_eq!(names, ["inject-label.auto.kopf.dev"]);
    }

    #[tokio::test(start_paused = true)]
    async fn end_to_end_the_creation_handler_runs_once() {
        let expect = Expect { once: vec!["create_fn"], ..Expect::default() };
        let runner = KopfRunner::new(operator()).with_crd::<KopfExample>();
        lifecycle(runner, labelled("e2e", "x"), &expect).await;
    }
}
