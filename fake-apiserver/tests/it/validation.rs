//! R28: a custom resource's structural schema on writes — unknown fields pruned under
//! `fieldValidation` (`Warn` by default with a `Warning` header, `Strict` failing with 400, `Ignore`
//! silent), `x-kubernetes-preserve-unknown-fields` keeping them, defaults filled in, and the schema's
//! types, required fields, enums and bounds enforced with the real server's 422 causes.

use fake_apiserver::{FakeApiServer, FieldValidation, Request, Verb};
use kube::api::{DynamicObject, Patch, PatchParams, PostParams, ValidationDirective};
use serde_json::{Value, json};

use crate::apply::{gadget, gadgets};
use crate::common::*;

fn object(spec: Value) -> DynamicObject {
    serde_json::from_value(gadget("g", spec)).unwrap()
}

/// Creates a gadget through the core with a `fieldValidation` directive; returns the stored object
/// (or the error's code) and the warnings.
async fn create_with(
    server: &FakeApiServer,
    spec: Value,
    directive: FieldValidation,
) -> (Result<Value, u16>, Vec<String>) {
    let mut req = Request::new(Verb::Create, "ssa.kopf.dev", "v1", "gadgets")
        .namespace("default")
        .body(gadget("g", spec));
    req.params.field_validation = directive;
    let (result, warnings) = server.cluster().handle_warned(req).await;
    let result = match result {
        Ok(fake_apiserver::Response::Object(o)) => Ok(o.value()),
        Ok(other) => panic!("an object was expected, got {other:?}"),
        Err(e) => Err(e.code()),
    };
    (result, warnings)
}

#[tokio::test]
async fn unknown_fields_are_pruned_with_a_warning_by_default() {
    let server = server();
    gadgets(&client_for(&server).await).await;
    let (created, warnings) = create_with(
        &server,
        json!({"size": "small", "foo": 1, "ports": [{"name": "a", "bar": 2}]}),
        FieldValidation::Warn,
    )
    .await;
    let created = created.unwrap();
    assert_eq!(created["spec"].get("foo"), None);
    assert_eq!(created["spec"]["ports"], json!([{"name": "a"}]));
    assert_eq!(warnings, ["unknown field \"spec.foo\"", "unknown field \"spec.ports[0].bar\""]);
}

#[tokio::test]
async fn the_warning_reaches_the_client_as_a_299_warning_header() {
    use tower::ServiceExt as _;
    let server = server();
    gadgets(&server.client()).await;
    let body = gadget("g", json!({"size": "small", "foo": 1})).to_string();
    let request = http::Request::post("/apis/ssa.kopf.dev/v1/namespaces/default/gadgets")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = server.service().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let warnings: Vec<&str> =
        response.headers().get_all("warning").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(warnings, ["299 - \"unknown field \\\"spec.foo\\\"\""]);
}

#[tokio::test]
async fn ignore_prunes_unknown_fields_silently() {
    let server = server();
    gadgets(&client_for(&server).await).await;
    let (created, warnings) =
        create_with(&server, json!({"size": "small", "foo": 1}), FieldValidation::Ignore).await;
    assert_eq!(created.unwrap()["spec"].get("foo"), None);
    assert!(warnings.is_empty());
}

#[tokio::test]
async fn strict_rejects_unknown_fields_with_400_naming_them() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    let (created, _) =
        create_with(&server, json!({"size": "small", "foo": 1}), FieldValidation::Strict).await;
    assert_eq!(created.unwrap_err(), 400);
    api.create(&PostParams::default(), &object(json!({"size": "small"}))).await.unwrap();
    let strict = PatchParams { field_validation: Some(ValidationDirective::Strict), ..Default::default() };
    let (code, reason, message) =
        api_error(api.patch("g", &strict, &Patch::Merge(json!({"spec": {"foo": 1, "bar": 2}}))).await);
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        message,
        "Gadget in version \"v1\" cannot be handled as a Gadget: strict decoding error: \
         unknown field \"spec.bar\", unknown field \"spec.foo\""
    );
    let lenient = PatchParams::default();
    let patched = api.patch("g", &lenient, &Patch::Merge(json!({"spec": {"foo": 1}}))).await.unwrap();
    assert_eq!(patched.data["spec"].get("foo"), None, "without Strict the field is pruned");
}

#[tokio::test]
async fn preserved_unknown_fields_are_kept() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    let created = api
        .create(&PostParams::default(), &object(json!({"size": "small", "free": {"any": {"thing": [1]}}})))
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["free"], json!({"any": {"thing": [1]}}));
}

#[tokio::test]
async fn defaults_are_applied_on_create_and_update() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    let created = api.create(&PostParams::default(), &object(json!({"size": "small"}))).await.unwrap();
    assert_eq!(
        (&created.data["spec"]["replicas"], &created.data["spec"]["mode"]),
        (&json!(1), &json!("fast"))
    );
    let patch =
        Patch::Json::<()>(serde_json::from_value(json!([{"op": "remove", "path": "/spec/mode"}])).unwrap());
    let patched = api.patch("g", &PatchParams::default(), &patch).await.unwrap();
    assert_eq!(patched.data["spec"]["mode"], "fast", "a removed defaulted field comes back");
}

#[tokio::test]
async fn schema_violations_are_422_with_one_cause_per_field() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    let bad = object(json!({"size": "huge", "replicas": 11, "mode": "much-too-long"}));
    let result = api.create(&PostParams::default(), &bad).await;
    let Err(kube::Error::Api(status)) = result else { panic!("a 422 was expected, got {result:?}") };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let causes: Vec<(String, String, String)> = status
        .details
        .as_ref()
        .unwrap()
        .causes
        .iter()
        .map(|c| (c.reason.clone(), c.field.clone(), c.message.clone()))
        .collect();
    assert_eq!(
        causes,
        vec![
            ("FieldValueTooLong".into(), "spec.mode".into(), "Too long: may not be more than 8 bytes".into()),
            (
                "FieldValueInvalid".into(),
                "spec.replicas".into(),
                "Invalid value: 11: spec.replicas in body should be less than or equal to 10".into()
            ),
            (
                "FieldValueNotSupported".into(),
                "spec.size".into(),
                "Unsupported value: \"huge\": supported values: \"small\", \"large\"".into()
            ),
        ]
    );
    let missing = api.create(&PostParams::default(), &object(json!({"replicas": "two"}))).await;
    let (code, _, message) = api_error(missing);
    assert_eq!(code, 422);
    assert_eq!(
        message,
        "Gadget.ssa.kopf.dev \"g\" is invalid: [spec.size: Required value, spec.replicas: Invalid value: \"string\": \
         spec.replicas in body must be of type integer: \"string\"]"
    );
}

#[tokio::test]
async fn kube_derived_crds_prune_fields_their_struct_does_not_have() {
    let server = server();
    let client = client_for(&server).await;
    install_crd(&client).await;
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client, "default", &kube::api::ApiResource::erase::<KopfExample>(&()));
    let body: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "ex"},
        "spec": {"field": "x", "extra": true},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &body).await.unwrap();
    assert_eq!(
        created.data["spec"],
        json!({"field": "x", "items": [], "replicas": 0}),
        "pruned and defaulted"
    );
}
