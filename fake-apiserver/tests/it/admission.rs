//! Admission webhooks: the stored Mutating/ValidatingWebhookConfigurations are honoured on writes
//! as the real server honours them — rules and selectors, order and reinvocation, the answer's
//! patch and warnings, rejections and failed calls with the real server's Status, dry runs and
//! side effects. The webhooks here are in-process endpoints (closures), so the tests run over
//! every transport.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use fake_apiserver::{FakeApiServer, Request, Verb, WebhookCall};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::*;

/// What an endpoint saw: the review requests, in call order.
type Calls = Arc<Mutex<Vec<Value>>>;

/// Serves `answer(request) -> response` at `url`, recording each review's request.
fn endpoint(
    server: &FakeApiServer,
    url: &str,
    answer: impl Fn(&Value) -> Value + Send + Sync + 'static,
) -> Calls {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let answer = Arc::new(answer);
    server.cluster().serve_webhook(
        url,
        Arc::new(move |call: WebhookCall| {
            let request = call.review["request"].clone();
            seen.lock().unwrap().push(request.clone());
            let response = answer(&request);
            Box::pin(async move {
                let mut response = response;
                response["uid"] = request["uid"].clone();
                Ok(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
            })
        }),
    );
    calls
}

fn allow(_: &Value) -> Value {
    json!({"allowed": true})
}

fn patch(ops: &Value) -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(ops.to_string());
    json!({"allowed": true, "patchType": "JSONPatch", "patch": encoded})
}

/// A webhook for ConfigMaps at `url`, with these extra fields.
fn webhook(name: &str, url: &str, extra: Value) -> Value {
    let mut hook = json!({
        "name": name,
        "clientConfig": {"url": url},
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            hook[k] = v;
        }
    }
    hook
}

/// Stores a webhook configuration (`validating` or `mutating`).
async fn configure(server: &FakeApiServer, kind: &str, name: &str, webhooks: Vec<Value>) {
    let (plural, kind_name) = match kind {
        "mutating" => ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
        _ => ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
    };
    let body = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind_name,
                      "metadata": {"name": name}, "webhooks": webhooks});
    let req = Request::new(Verb::Create, "admissionregistration.k8s.io", "v1", plural).body(body);
    server.cluster().handle(req).await.expect("the configuration is stored");
}

fn stored(server: &FakeApiServer, name: &str) -> Option<Value> {
    server.cluster().object("", "configmaps", "default", name).map(|o| o.value())
}

#[tokio::test]
async fn a_denial_is_a_403_forbidden_naming_the_object_and_the_webhook_and_nothing_is_stored() {
    let server = server();
    let calls = endpoint(
        &server,
        "https://hooks.test",
        |_| json!({"allowed": false, "status": {"message": "not today"}}),
    );
    configure(
        &server,
        "validating",
        "cfg",
        vec![webhook("deny.hooks.test", "https://hooks.test/deny", json!({}))],
    )
    .await;
    let api = configmaps(&client_for(&server).await);
    let (code, reason, message) = api_error(api.create(&PostParams::default(), &cm("a")).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "configmaps \"a\" is forbidden: admission webhook \"deny.hooks.test\" denied the request: not today"
    );
    assert!(stored(&server, "a").is_none());
    let request = &calls.lock().unwrap()[0];
    assert_eq!(request["operation"], "CREATE");
    assert_eq!(request["resource"], json!({"group": "", "version": "v1", "resource": "configmaps"}));
    assert_eq!(request["kind"], json!({"group": "", "version": "v1", "kind": "ConfigMap"}));
    assert_eq!((request["namespace"].as_str(), request["name"].as_str()), (Some("default"), Some("a")));
    assert_eq!(request["object"]["data"], json!({"key": "value"}));
    assert!(request["oldObject"].is_null());
    assert_eq!(request["options"]["kind"], "CreateOptions");
}

#[tokio::test]
async fn a_webhooks_code_and_reason_are_passed_on_and_a_500_is_an_internal_error() {
    let server = server();
    endpoint(
        &server,
        "https://teapot.test",
        |_| json!({"allowed": false, "status": {"code": 418, "reason": "Teapot", "message": "short and stout"}}),
    );
    endpoint(
        &server,
        "https://broken.test",
        |_| json!({"allowed": false, "status": {"code": 500, "message": "oops"}}),
    );
    configure(&server, "validating", "a", vec![webhook("teapot.test", "https://teapot.test", json!({}))])
        .await;
    let api = configmaps(&client_for(&server).await);
    let (code, reason, message) = api_error(api.create(&PostParams::default(), &cm("a")).await);
    assert_eq!((code, reason.as_str()), (418, "Teapot"));
    assert!(message.ends_with("denied the request: short and stout"), "{message}");
    configure(&server, "validating", "b", vec![webhook("broken.test", "https://broken.test", json!({}))])
        .await;
    server.cluster().stop_serving_webhook("https://teapot.test");
    endpoint(&server, "https://teapot.test", allow);
    let (code, reason, message) = api_error(api.create(&PostParams::default(), &cm("a")).await);
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    assert_eq!(
        message,
        "Internal error occurred: admission webhook \"broken.test\" denied the request: oops"
    );
}

#[tokio::test]
async fn mutations_apply_in_configuration_order_and_validating_webhooks_see_the_result() {
    let server = server();
    let first = endpoint(&server, "https://first.test", |_| {
        patch(&json!([{"op": "add", "path": "/metadata/labels", "value": {"order": "first"}}]))
    });
    let second = endpoint(&server, "https://second.test", |request| {
        assert_eq!(request["object"]["metadata"]["labels"]["order"], "first", "sees the first one's patch");
        patch(&json!([{"op": "replace", "path": "/metadata/labels/order", "value": "second"}]))
    });
    let validating = endpoint(&server, "https://check.test", allow);
    // Configurations go by name: "a-…" before "b-…" whatever the creation order.
    configure(
        &server,
        "mutating",
        "b-second",
        vec![webhook("second.test", "https://second.test", json!({}))],
    )
    .await;
    configure(&server, "mutating", "a-first", vec![webhook("first.test", "https://first.test", json!({}))])
        .await;
    configure(&server, "validating", "check", vec![webhook("check.test", "https://check.test", json!({}))])
        .await;
    let api = configmaps(&client_for(&server).await);
    let created = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    assert_eq!(created.metadata.labels.unwrap()["order"], "second");
    assert_eq!(stored(&server, "a").unwrap()["metadata"]["labels"]["order"], "second");
    assert_eq!((first.lock().unwrap().len(), second.lock().unwrap().len()), (1, 1));
    assert_eq!(validating.lock().unwrap()[0]["object"]["metadata"]["labels"]["order"], "second");
}

#[tokio::test]
async fn a_reinvocable_webhook_is_called_again_once_a_later_one_changed_the_object() {
    for (policy, calls) in [("IfNeeded", 2), ("Never", 1)] {
        let server = server();
        let early = endpoint(&server, "https://early.test", allow);
        endpoint(&server, "https://late.test", |_| {
            patch(&json!([{"op": "add", "path": "/metadata/labels", "value": {"late": "yes"}}]))
        });
        configure(
            &server,
            "mutating",
            "cfg",
            vec![
                webhook("early.test", "https://early.test", json!({"reinvocationPolicy": policy})),
                webhook("late.test", "https://late.test", json!({})),
            ],
        )
        .await;
        let api = configmaps(&client_for(&server).await);
        api.create(&PostParams::default(), &cm("a")).await.unwrap();
        let early = early.lock().unwrap();
        assert_eq!(early.len(), calls, "{policy}");
        if calls == 2 {
            assert_eq!(
                early[1]["object"]["metadata"]["labels"]["late"], "yes",
                "the second call sees the change"
            );
        }
    }
}

#[tokio::test]
async fn namespace_and_object_selectors_choose_the_requests_a_webhook_sees() {
    let server = server();
    let calls = endpoint(&server, "https://sel.test", allow);
    configure(
        &server,
        "validating",
        "cfg",
        vec![webhook(
            "sel.test",
            "https://sel.test",
            json!({
                "namespaceSelector": {"matchLabels": {"team": "a"}},
                "objectSelector": {"matchExpressions": [{"key": "watched", "operator": "Exists"}]},
            }),
        )],
    )
    .await;
    let client = client_for(&server).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (name, team) in [("team-a", "a"), ("team-b", "b")] {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        ns.metadata.labels = Some([("team".to_owned(), team.to_owned())].into());
        namespaces.create(&PostParams::default(), &ns).await.unwrap();
    }
    let in_ns = |ns: &str| Api::<ConfigMap>::namespaced(client.clone(), ns);
    in_ns("team-a").create(&PostParams::default(), &labelled("w", &[("watched", "")])).await.unwrap();
    in_ns("team-a").create(&PostParams::default(), &cm("u")).await.unwrap();
    in_ns("team-b").create(&PostParams::default(), &labelled("w", &[("watched", "")])).await.unwrap();
    assert_eq!(calls.lock().unwrap().len(), 1, "only the watched object in team a's namespace");
    // The old object counts too: removing the label is still seen.
    let unlabel = json!({"metadata": {"labels": {"watched": null}}});
    in_ns("team-a").patch("w", &PatchParams::default(), &Patch::Merge(unlabel)).await.unwrap();
    assert_eq!(calls.lock().unwrap().len(), 2);
    assert_eq!(calls.lock().unwrap()[1]["operation"], "UPDATE");
}

#[tokio::test]
async fn an_uncallable_webhook_fails_the_write_under_fail_and_is_skipped_under_ignore() {
    let server = server();
    configure(
        &server,
        "validating",
        "cfg",
        vec![webhook("gone.test", "https://127.0.0.1:1/gone", json!({}))],
    )
    .await;
    let api = configmaps(&client_for(&server).await);
    let (code, reason, message) = api_error(api.create(&PostParams::default(), &cm("a")).await);
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    let prefix = "Internal error occurred: failed calling webhook \"gone.test\": failed to call webhook: \
                  Post \"https://127.0.0.1:1/gone?timeout=10s\": ";
    assert!(message.starts_with(prefix), "{message}");
    let mut config: Value = server
        .cluster()
        .object("admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "cfg")
        .unwrap()
        .value();
    config["webhooks"][0]["failurePolicy"] = json!("Ignore");
    let mut update =
        Request::new(Verb::Update, "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
            .body(config);
    update.name = Some("cfg".into());
    server.cluster().handle(update).await.unwrap();
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    assert!(stored(&server, "a").is_some());
}

#[tokio::test]
async fn an_answer_with_another_uid_is_a_failed_call() {
    let server = server();
    server.cluster().serve_webhook(
        "https://liar.test",
        Arc::new(|_call: WebhookCall| {
            Box::pin(async {
                Ok(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                          "response": {"uid": "someone-else", "allowed": true}}))
            })
        }),
    );
    configure(&server, "validating", "cfg", vec![webhook("liar.test", "https://liar.test", json!({}))]).await;
    let api = configmaps(&client_for(&server).await);
    let (code, _, message) = api_error(api.create(&PostParams::default(), &cm("a")).await);
    assert_eq!(code, 500);
    assert!(
        message.contains("received invalid webhook response: expected response.uid=")
            && message.contains("got \"someone-else\""),
        "{message}"
    );
}

#[tokio::test]
async fn a_dry_run_meets_only_webhooks_without_side_effects() {
    let server = server();
    let calls = endpoint(&server, "https://dry.test", allow);
    configure(
        &server,
        "validating",
        "cfg",
        vec![webhook("dry.test", "https://dry.test", json!({"sideEffects": "NoneOnDryRun"}))],
    )
    .await;
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams { dry_run: true, ..Default::default() }, &cm("a")).await.unwrap();
    assert_eq!(calls.lock().unwrap()[0]["dryRun"], true);
    assert_eq!(calls.lock().unwrap()[0]["options"]["dryRun"], json!(["All"]));
    assert!(stored(&server, "a").is_none());
    configure(
        &server,
        "validating",
        "effects",
        vec![webhook("effects.test", "https://dry.test", json!({"sideEffects": "Some"}))],
    )
    .await;
    let (code, reason, message) =
        api_error(api.create(&PostParams { dry_run: true, ..Default::default() }, &cm("a")).await);
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    assert_eq!(message, "admission webhook \"effects.test\" does not support dry run");
    api.create(&PostParams::default(), &cm("a")).await.expect("a real write calls it");
}

#[tokio::test]
async fn deletes_are_reviewed_with_the_old_object_and_a_denied_delete_leaves_the_object() {
    let server = server();
    let calls = endpoint(
        &server,
        "https://guard.test",
        |request| json!({"allowed": request["operation"] != "DELETE", "status": {"message": "protected"}}),
    );
    configure(&server, "validating", "cfg", vec![webhook("guard.test", "https://guard.test", json!({}))])
        .await;
    let api = configmaps(&client_for(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let (code, _, message) = api_error(api.delete("a", &DeleteParams::default()).await);
    assert_eq!(code, 403);
    assert!(message.ends_with("denied the request: protected"), "{message}");
    assert!(stored(&server, "a").is_some());
    let request = calls.lock().unwrap()[1].clone();
    assert_eq!(request["operation"], "DELETE");
    assert!(request["object"].is_null());
    assert_eq!(request["oldObject"]["metadata"]["name"], "a");
    assert_eq!(request["options"]["kind"], "DeleteOptions");
}

#[tokio::test]
async fn a_mutation_is_validated_against_the_schema_and_status_writes_are_a_subresource() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    endpoint(&server, "https://mutate.test", |request| {
        if request["object"]["spec"]["field"] == "break" {
            patch(&json!([{"op": "replace", "path": "/spec/field", "value": 42}]))
        } else {
            allow(request)
        }
    });
    let status_calls = endpoint(&server, "https://status.test", allow);
    let rule = |resources: Value| json!({"rules": [{"apiGroups": ["kopf.dev"], "apiVersions": ["*"], "operations": ["*"], "resources": resources}]});
    configure(
        &server,
        "mutating",
        "m",
        vec![webhook("mutate.test", "https://mutate.test", rule(json!(["kopfexamples"])))],
    )
    .await;
    configure(
        &server,
        "validating",
        "v",
        vec![webhook("status.test", "https://status.test", rule(json!(["kopfexamples/status"])))],
    )
    .await;
    let api = examples(&client);
    let (code, reason, message) =
        api_error(api.create(&PostParams::default(), &example("bad", "break")).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"), "{message}");
    assert!(message.contains("spec.field"), "{message}");
    api.create(&PostParams::default(), &example("ok", "fine")).await.unwrap();
    assert!(status_calls.lock().unwrap().is_empty(), "the main resource is not the status subresource");
    let status = json!({"status": {"message": "hello"}});
    api.patch_status("ok", &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
    let calls = status_calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["subResource"], "status");
    assert_eq!(calls[0]["object"]["status"]["message"], "hello");
}

#[tokio::test]
async fn webhook_configurations_themselves_are_never_intercepted() {
    let server = server();
    let everything = json!({"rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*", "*/*"]}]});
    configure(
        &server,
        "validating",
        "broken",
        vec![webhook("broken.test", "https://nowhere.test", everything)],
    )
    .await;
    let client = client_for(&server).await;
    let (code, ..) = api_error(configmaps(&client).create(&PostParams::default(), &cm("a")).await);
    assert_eq!(code, 500, "the broken webhook fails closed");
    let configs: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
        Api::all(client.clone());
    configs.delete("broken", &DeleteParams::default()).await.expect("the way out is never blocked");
    configmaps(&client).create(&PostParams::default(), &cm("a")).await.unwrap();
}
