//! Admission webhooks end to end on virtual time: the operator's validating and mutating handlers,
//! served in process by KopfRunner, are called by the fake on writes through the managed
//! configurations (Kopf's `on.validate`/`on.mutate`, reference/kopf.md §1.20).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fake_apiserver::{PatchType, Request, Verb};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kopf::{Context, HandlerError, Operation, Operator};
use kopf_testing::KopfRunner;
use serde_json::{Value, json};

use crate::common::*;

const MANAGED: &str = "auto.kopf.dev";

fn managed(operator: Operator) -> Operator {
    operator.settings(|s| s.admission.managed = Some(MANAGED.into()))
}

/// Rejects examples whose `spec.field` is `bad`, with Kopf's `AdmissionError` and code 400.
fn validating() -> Operator {
    managed(
        Operator::new()
            .on_validate(|ex: Arc<KopfExample>, _ctx: Context| async move {
                if ex.spec.field == "bad" {
                    return Err(HandlerError::admission("spec.field must not be bad").with_code(400));
                }
                Ok(())
            })
            .id("check_field"),
    )
}

fn request(verb: Verb, name: Option<&str>, body: Value) -> Request {
    let mut req = Request::new(verb, "kopf.dev", "v1", "kopfexamples").body(body);
    req.namespace = Some("default".into());
    req.name = name.map(str::to_owned);
    req
}

#[tokio::test(start_paused = true)]
async fn a_validating_handler_rejects_a_bad_object_with_its_message_and_code_and_nothing_is_stored() {
    let runner = KopfRunner::new(validating()).with_crd::<KopfExample>().start().await;
    let error = runner.cluster().try_create(example("ex1", "bad")).await.unwrap_err();
    assert_eq!(error.code(), 400);
    assert_eq!(
        error.to_string(),
        "kopfexamples.kopf.dev \"ex1\" is forbidden: admission webhook \"check-field.auto.kopf.dev\" \
         denied the request: spec.field must not be bad"
    );
    assert_eq!(error.to_status()["reason"], "Forbidden");
    assert!(
        runner.cluster().get_opt::<KopfExample>("ex1").await.is_none(),
        "a rejected object is not stored"
    );
    runner.cluster().create(example("ex2", "good")).await;
    assert!(runner.cluster().get_opt::<KopfExample>("ex2").await.is_some(), "a good object is stored");
}

#[tokio::test(start_paused = true)]
async fn an_update_to_a_bad_value_is_rejected_and_the_stored_object_keeps_its_value() {
    let runner = KopfRunner::new(validating()).with_crd::<KopfExample>().start().await;
    runner.cluster().create(example("ex1", "good")).await;
    runner.settle().await;
    let patch = request(Verb::Patch, Some("ex1"), json!({"spec": {"field": "bad"}}));
    let error =
        runner.server().cluster().handle(Request { patch_type: Some(PatchType::Merge), ..patch }).await;
    assert_eq!(error.unwrap_err().code(), 400);
    let ex: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(ex.spec.field, "good");
}

#[tokio::test(start_paused = true)]
async fn the_managed_configurations_have_one_webhook_per_handler_in_kopfs_format() {
    let operator = validating()
        .on_mutate(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("set_defaults")
        .operations([Operation::Create, Operation::Update])
        .side_effects()
        .ignore_failures()
        .labels("app", "demo");
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    let validating: ValidatingWebhookConfiguration = runner.cluster().get(MANAGED).await;
    let webhooks = serde_json::to_value(validating.webhooks.unwrap_or_default()).unwrap();
    assert_eq!(
        webhooks,
        json!([{
            "name": "check-field.auto.kopf.dev",
            "admissionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"url": "https://kopf-testing.webhooks.invalid/check_field"},
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "rules": [{
                "apiGroups": ["kopf.dev"], "apiVersions": ["v1"], "operations": ["*"],
                "resources": ["kopfexamples"], "scope": "*",
            }],
            "sideEffects": "None",
            "timeoutSeconds": 30,
        }])
    );
    let mutating: MutatingWebhookConfiguration = runner.cluster().get(MANAGED).await;
    let webhook = serde_json::to_value(&mutating.webhooks.unwrap_or_default()[0]).unwrap();
    assert_eq!(webhook["name"], "set-defaults.auto.kopf.dev");
    assert_eq!(webhook["sideEffects"], "NoneOnDryRun");
    assert_eq!(webhook["failurePolicy"], "Ignore");
    assert_eq!(webhook["rules"][0]["operations"], json!(["CREATE", "UPDATE"]));
    assert_eq!(
        webhook["objectSelector"],
        json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["demo"]}]})
    );
}

#[tokio::test(start_paused = true)]
async fn a_mutating_handlers_patch_is_in_the_stored_object_and_the_answer() {
    let operator = managed(
        Operator::new()
            .on_mutate(|ex: Arc<KopfExample>, ctx: Context| async move {
                ctx.patch().merge(json!({
                    "metadata": {"labels": {"mutated": "yes"}},
                    "spec": {"items": [format!("{}-default", ex.spec.field)]},
                }));
                Ok::<_, HandlerError>(())
            })
            .id("set_defaults"),
    );
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    let created = runner.cluster().create(example("ex1", "v")).await;
    assert_eq!(created.metadata.labels.unwrap_or_default()["mutated"], "yes");
    let stored: KopfExample = runner.cluster().get("ex1").await;
    assert_eq!(stored.metadata.labels.unwrap_or_default()["mutated"], "yes");
    assert_eq!(stored.spec.items, vec!["v-default".to_owned()]);
    assert_eq!(stored.metadata.generation, Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_webhook_that_times_out_fails_the_write_under_the_fail_policy() {
    let operator = managed(
        Operator::new()
            .on_validate(|_ex: Arc<KopfExample>, _ctx: Context| async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, HandlerError>(())
            })
            .id("slow"),
    );
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    let before = runner.elapsed();
    let error = runner.cluster().try_create(example("ex1", "v")).await.unwrap_err();
    assert_eq!(runner.elapsed() - before, Duration::from_secs(30), "Kopf's timeoutSeconds: 30");
    assert_eq!(error.code(), 500);
    assert_eq!(
        error.to_string(),
        "Internal error occurred: failed calling webhook \"slow.auto.kopf.dev\": failed to call webhook: \
         Post \"https://kopf-testing.webhooks.invalid/slow?timeout=30s\": context deadline exceeded"
    );
    assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_webhook_that_times_out_is_skipped_under_the_ignore_policy() {
    let operator = managed(
        Operator::new()
            .on_validate(|_ex: Arc<KopfExample>, _ctx: Context| async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Err::<(), _>(HandlerError::admission("too late to matter"))
            })
            .id("slow")
            .ignore_failures(),
    );
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    let before = runner.elapsed();
    runner.cluster().create(example("ex1", "v")).await;
    assert_eq!(runner.elapsed() - before, Duration::from_secs(30));
    assert!(runner.cluster().get_opt::<KopfExample>("ex1").await.is_some(), "stored despite the webhook");
}

#[tokio::test(start_paused = true)]
async fn handlers_see_the_operation_old_and_new_objects_dry_run_and_user_and_send_warnings() {
    let seen: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let log = seen.clone();
    let operator = managed(
        Operator::new()
            .on_validate(move |_ex: Arc<KopfExample>, ctx: Context| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(json!({
                        "operation": ctx.operation().map(|o| o.as_str()),
                        "old": ctx.old().map(|o| o["spec"]["field"].clone()),
                        "new": ctx.new().map(|o| o["spec"]["field"].clone()),
                        "dryrun": ctx.dryrun(),
                        "user": ctx.userinfo()["username"],
                        "subresource": ctx.subresource(),
                    }));
                    ctx.add_warning(format!("seen by {}", ctx.id()));
                    Ok::<_, HandlerError>(())
                }
            })
            .id("audit"),
    );
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    let cluster = runner.server().cluster();
    let body = serde_json::to_value(example("ex1", "a")).unwrap();
    let (created, warnings) = cluster.handle_warned(request(Verb::Create, None, body)).await;
    created.unwrap();
    assert_eq!(warnings, vec!["seen by audit".to_owned()]);
    let mut dry = request(Verb::Patch, Some("ex1"), json!({"spec": {"field": "b"}}));
    dry.patch_type = Some(PatchType::Merge);
    dry.params.dry_run = true;
    cluster.handle(dry).await.unwrap();
    let mut delete = request(Verb::Delete, Some("ex1"), Value::Null);
    delete.body = None;
    cluster.handle(delete).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            json!({"operation": "CREATE", "old": null, "new": "a", "dryrun": false, "user": "system:apiserver", "subresource": null}),
            json!({"operation": "UPDATE", "old": "a", "new": "b", "dryrun": true, "user": "system:apiserver", "subresource": null}),
            json!({"operation": "DELETE", "old": "a", "new": null, "dryrun": false, "user": "system:apiserver", "subresource": null}),
        ]
    );
    let ex: Option<KopfExample> = runner.cluster().get_opt("ex1").await;
    assert!(ex.is_none(), "the admitted delete went through");
}

#[tokio::test(start_paused = true)]
async fn operations_and_subresources_limit_what_a_handler_reviews() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let operator = managed(
        Operator::new()
            .on_validate(move |_ex: Arc<KopfExample>, ctx: Context| {
                counted.fetch_add(1, Ordering::SeqCst);
                let deny = ctx.status()["phase"] == "Broken";
                async move {
                    if deny { Err(HandlerError::admission("no broken phase").with_code(422)) } else { Ok(()) }
                }
            })
            .id("status_guard")
            .operations([Operation::Update])
            .subresource("status"),
    );
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    let cluster = runner.server().cluster();
    runner.cluster().create(example("ex1", "v")).await;
    let mut main = request(Verb::Patch, Some("ex1"), json!({"spec": {"field": "w"}}));
    main.patch_type = Some(PatchType::Merge);
    cluster.handle(main).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "neither the create nor a main-body update is reviewed");
    let mut status = request(Verb::Patch, Some("ex1"), json!({"status": {"phase": "Broken"}}));
    status.patch_type = Some(PatchType::Merge);
    status.subresource = Some("status".into());
    let error = cluster.handle(status).await.unwrap_err();
    assert_eq!(error.code(), 422);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_keeps_only_the_persistent_webhooks() {
    let operator = validating()
        .on_validate(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("kept")
        .persistent();
    let runner = KopfRunner::new(operator).with_crd::<KopfExample>().start().await;
    let names = |c: &ValidatingWebhookConfiguration| -> Vec<String> {
        c.webhooks.iter().flatten().map(|w| w.name.clone()).collect()
    };
    let config: ValidatingWebhookConfiguration = runner.cluster().get(MANAGED).await;
    assert_eq!(names(&config), vec!["check-field.auto.kopf.dev", "kept.auto.kopf.dev"]);
    let cluster = runner.cluster().clone();
    runner.stop().await;
    let config: ValidatingWebhookConfiguration = cluster.get(MANAGED).await;
    assert_eq!(names(&config), vec!["kept.auto.kopf.dev"]);
    // The operator is gone: the persistent webhook now fails the writes it intercepts.
    let error = cluster.try_create(example("ex1", "v")).await.unwrap_err();
    assert_eq!(error.code(), 500, "{error}");
}

#[tokio::test(start_paused = true)]
async fn admission_handlers_without_a_server_stop_the_operator_at_startup() {
    let operator = validating();
    let server = fake_apiserver::FakeApiServer::new();
    let client: Arc<dyn kopf::ApiClient> =
        Arc::new(kopf_testing::DirectApiClient::new(server.cluster().clone()));
    let running = operator.spawn(client, kopf::RunOptions::default()).unwrap();
    let error = running.join().await.unwrap_err();
    assert!(error.to_string().contains("no admission server/tunnel is configured"), "{error}");
}

/// Real sockets on real time: every wait has a deadline.
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn over_tls_the_served_fake_calls_the_operators_webhook_server_with_generated_certificates() {
    use kube::api::{Api, PostParams};
    let server = fake_apiserver::FakeApiServer::new();
    let crds = server
        .cluster()
        .api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(
        None,
    );
    crds.create(&<KopfExample as kube::CustomResourceExt>::crd()).await.unwrap();
    let front = server.serve(fake_apiserver::ServeOptions::default().tls(true)).await.unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&front.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();

    let webhooks = kopf::WebhookServer::new().addr([127, 0, 0, 1].into()).host("127.0.0.1");
    let operator = validating()
        .on_mutate(|_ex: Arc<KopfExample>, ctx: Context| async move {
            ctx.patch().set("metadata.labels.mutated", json!("over-tls"));
            Ok::<_, HandlerError>(())
        })
        .id("label")
        .settings(move |s| s.admission.server = Some(Arc::new(webhooks)));
    let mut running = operator
        .spawn(Arc::new(kopf::KubeApiClient::new(client.clone())), kopf::RunOptions::default())
        .expect("a valid operator");
    tokio::time::timeout(WAIT, running.ready()).await.expect("the operator starts in time");
    assert!(!running.is_finished(), "the operator runs (its webhook server started)");

    let config: ValidatingWebhookConfiguration = server.cluster().api(None).get(MANAGED).await.unwrap();
    let client_config = &config.webhooks.unwrap()[0].client_config;
    let url = client_config.url.clone().unwrap();
    assert!(url.starts_with("https://127.0.0.1:") && url.ends_with("/check_field"), "{url}");
    let ca = String::from_utf8(client_config.ca_bundle.clone().unwrap().0).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "the generated CA is the bundle: {ca}");

    let examples: Api<KopfExample> = Api::namespaced(client, "default");
    let rejected =
        tokio::time::timeout(WAIT, examples.create(&PostParams::default(), &example("ex1", "bad")))
            .await
            .expect("an answer in time");
    match rejected {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 400);
            assert_eq!(
                status.message,
                "kopfexamples.kopf.dev \"ex1\" is forbidden: admission webhook \"check-field.auto.kopf.dev\" \
                 denied the request: spec.field must not be bad"
            );
        }
        other => panic!("expected the webhook's rejection, got {other:?}"),
    }
    let created =
        tokio::time::timeout(WAIT, examples.create(&PostParams::default(), &example("ex2", "good")))
            .await
            .expect("an answer in time")
            .expect("a good object is admitted");
    assert_eq!(created.metadata.labels.unwrap_or_default()["mutated"], "over-tls");

    running.stop();
    tokio::time::timeout(WAIT, running.join()).await.expect("a graceful stop in time").unwrap();
    front.shutdown().await;
}
