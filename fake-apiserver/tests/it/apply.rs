//! R12 and R21: `metadata.managedFields` on every write, and server-side apply — conflicts with
//! their causes, `force`, removal of fields a manager stops applying, shared ownership of equal
//! values, and the schema's granularity (list maps by key, sets, atomic maps) for built-ins and for
//! custom resources.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::{Value, json};

use crate::common::*;

/// A CRD whose schema uses every granularity marker: a list map keyed by `name`, a set, an atomic
/// map, preserved unknown fields, defaults, an enum and bounds.
pub(crate) fn gadget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.ssa.kopf.dev"},
        "spec": {
            "group": "ssa.kopf.dev",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "string", "enum": ["small", "large"]},
                        "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                        "mode": {"type": "string", "default": "fast", "maxLength": 8},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "required": ["name"], "properties": {
                                      "name": {"type": "string"}, "port": {"type": "integer"}}}},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                                     "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    }},
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                }}},
            }],
        },
    }))
    .expect("a valid CRD")
}

/// Installs the Gadget CRD and returns the API for gadgets in `default`.
pub(crate) async fn gadgets(client: &Client) -> Api<DynamicObject> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &gadget_crd()).await.expect("the CRD is accepted");
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("ssa.kopf.dev", "v1", "Gadget"), "gadgets");
    Api::namespaced_with(client.clone(), "default", &resource)
}

/// A Gadget apply configuration with this spec.
pub(crate) fn gadget(name: &str, spec: Value) -> Value {
    let mut gadget = json!({"apiVersion": "ssa.kopf.dev/v1", "kind": "Gadget", "metadata": {"name": name}});
    gadget["spec"] = spec;
    gadget
}

/// The managed fields of an object as JSON.
pub(crate) fn managed<K: Resource>(object: &K) -> Vec<Value> {
    let entries = object.meta().managed_fields.clone().unwrap_or_default();
    serde_json::from_value(serde_json::to_value(entries).unwrap()).unwrap()
}

/// `(manager, operation, fieldsV1)` of each managed-fields entry, in the server's order.
fn entries<K: Resource>(object: &K) -> Vec<(String, String, Value)> {
    managed(object)
        .into_iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().to_owned(),
                e["operation"].as_str().unwrap_or_default().to_owned(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

/// [`entries`] sorted by manager (the server orders by time, which may tick between writes).
fn owners<K: Resource>(object: &K) -> Vec<(String, String, Value)> {
    let mut entries = entries(object);
    entries.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    entries
}

fn data_cm(name: &str, data: Value) -> Value {
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    cm["data"] = data;
    cm
}

fn apply(manager: &str) -> PatchParams {
    PatchParams::apply(manager)
}

/// The causes of an API error as `(reason, message, field)`.
fn causes<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
) -> (u16, String, Vec<(String, String, String)>) {
    match result {
        Err(kube::Error::Api(status)) => (
            status.code,
            status.message.clone(),
            status
                .details
                .as_ref()
                .map(|d| {
                    d.causes.iter().map(|c| (c.reason.clone(), c.message.clone(), c.field.clone())).collect()
                })
                .unwrap_or_default(),
        ),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn create_records_an_update_entry_with_the_clock_time_owning_every_field_set() {
    let server = server();
    let Some(client) = clock_bound_client(&server) else { return };
    tokio::time::sleep(std::time::Duration::from_secs(90)).await;
    let params = PostParams { field_manager: Some("creator".into()), ..Default::default() };
    let created = configmaps(&client).create(&params, &labelled("a", &[("app", "x")])).await.unwrap();
    assert_eq!(
        managed(&created),
        vec![json!({
            "manager": "creator",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-01-01T00:01:30Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:key": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
        })]
    );
}

#[tokio::test]
async fn apply_creates_the_object_owned_by_an_apply_entry_of_exactly_its_configuration() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let applied =
        api.patch("a", &apply("mgr-a"), &Patch::Apply(data_cm("a", json!({"k": "v"})))).await.unwrap();
    let entries = managed(&applied);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            &entries[0]["manager"],
            &entries[0]["operation"],
            &entries[0]["apiVersion"],
            &entries[0]["fieldsType"]
        ),
        (&json!("mgr-a"), &json!("Apply"), &json!("v1"), &json!("FieldsV1"))
    );
    assert_eq!(entries[0]["fieldsV1"], json!({"f:data": {"f:k": {}}}));
    assert!(entries[0]["time"].is_string());
}

#[tokio::test]
async fn an_update_takes_the_fields_it_changes_from_other_managers() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let mut cm: ConfigMap = serde_json::from_value(data_cm("a", json!({"a": "1", "b": "1"}))).unwrap();
    let params = PostParams { field_manager: Some("creator".into()), ..Default::default() };
    cm = api.create(&params, &cm).await.unwrap();
    cm.data.as_mut().unwrap().insert("a".into(), "2".into());
    let params = PostParams { field_manager: Some("editor".into()), ..Default::default() };
    let updated = api.replace("a", &params, &cm).await.unwrap();
    assert_eq!(
        owners(&updated),
        vec![
            ("creator".into(), "Update".into(), json!({"f:data": {".": {}, "f:b": {}}})),
            ("editor".into(), "Update".into(), json!({"f:data": {"f:a": {}}})),
        ]
    );
}

#[tokio::test]
async fn the_manager_defaults_to_the_user_agent_up_to_its_first_slash() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let server = server();
    let request = http::Request::post("/api/v1/namespaces/default/configmaps")
        .header("user-agent", "kubectl/v1.32.0 (linux/amd64) kubernetes/abcdef")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(data_cm("ua", json!({"k": "v"})).to_string())))
        .unwrap();
    let response = server.service().oneshot(request).await.unwrap();
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["metadata"]["managedFields"][0]["manager"], "kubectl");
}

#[tokio::test]
async fn apply_conflicts_with_another_applier_with_one_cause_per_field() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.patch("a", &apply("mgr-a"), &Patch::Apply(data_cm("a", json!({"a": "1", "b": "1"})))).await.unwrap();
    let (code, message, causes) = causes(
        api.patch("a", &apply("mgr-b"), &Patch::Apply(data_cm("a", json!({"a": "2", "b": "2"})))).await,
    );
    assert_eq!(code, 409);
    assert_eq!(message, "Apply failed with 2 conflicts: conflicts with \"mgr-a\":\n- .data.a\n- .data.b");
    assert_eq!(
        causes,
        vec![
            ("FieldManagerConflict".into(), "conflict with \"mgr-a\"".into(), ".data.a".into()),
            ("FieldManagerConflict".into(), "conflict with \"mgr-a\"".into(), ".data.b".into()),
        ]
    );
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["a"], "1", "a conflict changes nothing");
}

#[tokio::test]
async fn apply_conflicts_with_an_update_manager_naming_its_version() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let params = PostParams { field_manager: Some("creator".into()), ..Default::default() };
    api.create(&params, &cm("a")).await.unwrap();
    let (code, message, causes) =
        causes(api.patch("a", &apply("mgr"), &Patch::Apply(data_cm("a", json!({"key": "other"})))).await);
    assert_eq!(code, 409);
    assert_eq!(message, "Apply failed with 1 conflict: conflict with \"creator\" using v1: .data.key");
    assert_eq!(
        causes,
        vec![(
            "FieldManagerConflict".into(),
            "conflict with \"creator\" using v1".into(),
            ".data.key".into()
        )]
    );
}

#[tokio::test]
async fn force_apply_takes_the_conflicting_fields_over() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.patch("a", &apply("mgr-a"), &Patch::Apply(data_cm("a", json!({"a": "1", "b": "1"})))).await.unwrap();
    let forced = api
        .patch("a", &apply("mgr-b").force(), &Patch::Apply(data_cm("a", json!({"a": "2"}))))
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["a"], "2");
    assert_eq!(
        owners(&forced),
        vec![
            ("mgr-a".into(), "Apply".into(), json!({"f:data": {"f:b": {}}})),
            ("mgr-b".into(), "Apply".into(), json!({"f:data": {"f:a": {}}})),
        ]
    );
}

#[tokio::test]
async fn a_field_its_only_manager_stops_applying_is_removed() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.patch("a", &apply("mgr-a"), &Patch::Apply(data_cm("a", json!({"a": "1", "b": "1"})))).await.unwrap();
    let applied =
        api.patch("a", &apply("mgr-a"), &Patch::Apply(data_cm("a", json!({"a": "1"})))).await.unwrap();
    assert_eq!(serde_json::to_value(applied.data).unwrap(), json!({"a": "1"}));
}

#[tokio::test]
async fn a_field_dropped_by_one_applier_but_applied_with_the_same_value_by_another_is_kept() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    api.patch("a", &apply("mgr-a"), &Patch::Apply(data_cm("a", json!({"a": "1", "b": "1"})))).await.unwrap();
    let shared =
        api.patch("a", &apply("mgr-b"), &Patch::Apply(data_cm("a", json!({"b": "1"})))).await.unwrap();
    assert_eq!(owners(&shared).len(), 2, "an equal value is shared, not a conflict");
    let applied =
        api.patch("a", &apply("mgr-a"), &Patch::Apply(data_cm("a", json!({"a": "1"})))).await.unwrap();
    assert_eq!(serde_json::to_value(&applied.data).unwrap(), json!({"a": "1", "b": "1"}));
    assert_eq!(
        owners(&applied),
        vec![
            ("mgr-a".into(), "Apply".into(), json!({"f:data": {"f:a": {}}})),
            ("mgr-b".into(), "Apply".into(), json!({"f:data": {"f:b": {}}})),
        ]
    );
}

#[tokio::test]
async fn reapplying_the_same_configuration_stores_nothing() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let first = api.patch("a", &apply("mgr"), &Patch::Apply(data_cm("a", json!({"a": "1"})))).await.unwrap();
    let again = api.patch("a", &apply("mgr"), &Patch::Apply(data_cm("a", json!({"a": "1"})))).await.unwrap();
    assert_eq!(rv(&first), rv(&again));
}

fn deployment(containers: Value) -> Value {
    let mut deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}}});
    deployment["spec"]["template"]["spec"]["containers"] = containers;
    deployment
}

#[tokio::test]
async fn deployment_containers_applied_by_two_managers_merge_by_name() {
    let server = server();
    let api: Api<Deployment> = Api::namespaced(client_for(&server).await, "default");
    let app = json!([{"name": "app", "image": "nginx:1"}]);
    api.patch("web", &apply("mgr-a"), &Patch::Apply(deployment(app))).await.unwrap();
    let sidecar = json!([{"name": "sidecar", "image": "busybox"}]);
    let merged = api.patch("web", &apply("mgr-b"), &Patch::Apply(deployment(sidecar))).await.unwrap();
    let containers = merged.spec.template.spec.unwrap().containers;
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "sidecar"]);
    let mine = &owners(&api.get("web").await.unwrap())[1];
    assert_eq!(mine.0, "mgr-b");
    assert_eq!(
        mine.2,
        json!({"f:spec": {"f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"sidecar\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}),
        "the atomic selector is owned whole, each container by its name"
    );
    // Each manager changes its own container freely; the other's is a conflict.
    let app2 = json!([{"name": "app", "image": "nginx:2"}]);
    api.patch("web", &apply("mgr-a"), &Patch::Apply(deployment(app2))).await.unwrap();
    let stolen = json!([{"name": "sidecar", "image": "alpine"}]);
    let (code, _, causes) =
        causes(api.patch("web", &apply("mgr-a"), &Patch::Apply(deployment(stolen))).await);
    assert_eq!(code, 409);
    assert_eq!(causes[0].2, ".spec.template.spec.containers[name=\"sidecar\"].image");
}

#[tokio::test]
async fn crd_list_map_items_merge_by_key_and_sets_merge_by_value() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    let spec_a = json!({"size": "small", "ports": [{"name": "http", "port": 80}], "tags": ["a"]});
    api.patch("g", &apply("mgr-a"), &Patch::Apply(gadget("g", spec_a))).await.unwrap();
    let spec_b = json!({"size": "small", "ports": [{"name": "metrics", "port": 9090}], "tags": ["b"]});
    let merged = api.patch("g", &apply("mgr-b"), &Patch::Apply(gadget("g", spec_b))).await.unwrap();
    assert_eq!(
        merged.data["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}])
    );
    assert_eq!(merged.data["spec"]["tags"], json!(["a", "b"]));
    let mine = &owners(&merged)[1];
    assert_eq!(
        mine.2,
        json!({"f:spec": {"f:ports": {"k:{\"name\":\"metrics\"}": {".": {}, "f:name": {}, "f:port": {}}},
               "f:size": {}, "f:tags": {"v:\"b\"": {}}}})
    );
    let spec_c = json!({"size": "small", "ports": [{"name": "http", "port": 81}]});
    let (code, _, causes) = causes(api.patch("g", &apply("mgr-b"), &Patch::Apply(gadget("g", spec_c))).await);
    assert_eq!(code, 409);
    assert_eq!(causes[0].2, ".spec.ports[name=\"http\"].port");
}

#[tokio::test]
async fn an_atomic_map_is_owned_and_replaced_as_a_whole() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    let spec = json!({"size": "small", "selector": {"a": "1", "b": "2"}});
    let created = api.patch("g", &apply("mgr-a"), &Patch::Apply(gadget("g", spec))).await.unwrap();
    assert_eq!(owners(&created)[0].2, json!({"f:spec": {"f:selector": {}, "f:size": {}}}));
    let spec = json!({"size": "small", "selector": {"c": "3"}});
    let replaced = api.patch("g", &apply("mgr-a"), &Patch::Apply(gadget("g", spec))).await.unwrap();
    assert_eq!(replaced.data["spec"]["selector"], json!({"c": "3"}));
}

#[tokio::test]
async fn applying_an_undeclared_field_to_a_custom_resource_fails() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    let spec = json!({"size": "small", "bogus": 1});
    let (code, message, _) = causes(api.patch("g", &apply("mgr"), &Patch::Apply(gadget("g", spec))).await);
    assert_eq!(code, 500);
    assert!(message.ends_with("failed to create typed patch object (default/g; ssa.kopf.dev/v1, Kind=Gadget): .spec.bogus: field not declared in schema"), "{message}");
}

#[tokio::test]
async fn managed_fields_follow_create_apply_and_update_with_apply_entries_first() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let params = PostParams { field_manager: Some("creator".into()), ..Default::default() };
    api.create(&params, &cm("a")).await.unwrap();
    api.patch("a", &apply("applier"), &Patch::Apply(data_cm("a", json!({"other": "x"})))).await.unwrap();
    let patch = PatchParams { field_manager: Some("patcher".into()), ..Default::default() };
    let patched =
        api.patch("a", &patch, &Patch::Merge(json!({"metadata": {"labels": {"l": "1"}}}))).await.unwrap();
    assert_eq!(
        entries(&patched),
        vec![
            ("applier".into(), "Apply".into(), json!({"f:data": {"f:other": {}}})),
            ("creator".into(), "Update".into(), json!({"f:data": {".": {}, "f:key": {}}})),
            ("patcher".into(), "Update".into(), json!({"f:metadata": {"f:labels": {".": {}, "f:l": {}}}})),
        ]
    );
}

#[tokio::test]
async fn status_writes_are_recorded_for_the_status_subresource_only() {
    let server = server();
    let api = gadgets(&client_for(&server).await).await;
    api.patch("g", &apply("mgr"), &Patch::Apply(gadget("g", json!({"size": "small"})))).await.unwrap();
    let status = json!({"apiVersion": "ssa.kopf.dev/v1", "kind": "Gadget", "metadata": {"name": "g"},
                        "status": {"phase": "Ready"}});
    let updated = api.patch_status("g", &apply("operator"), &Patch::Apply(status)).await.unwrap();
    assert_eq!(updated.data["status"]["phase"], "Ready");
    let entry = managed(&updated).into_iter().find(|e| e["manager"] == "operator").unwrap();
    assert_eq!(entry["subresource"], "status");
    assert_eq!(entry["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
}

#[tokio::test]
async fn managed_fields_cleared_by_an_update_come_back_as_before_first_apply_on_the_next_apply() {
    let server = server();
    let api = configmaps(&client_for(&server).await);
    let params = PostParams { field_manager: Some("creator".into()), ..Default::default() };
    api.create(&params, &cm("a")).await.unwrap();
    let cleared = api
        .patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"managedFields": [{}]}})))
        .await
        .unwrap();
    assert!(managed(&cleared).is_empty(), "a single empty entry strips them all");
    let (code, message, _) =
        causes(api.patch("a", &apply("mgr"), &Patch::Apply(data_cm("a", json!({"key": "other"})))).await);
    assert_eq!(code, 409);
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.key"
    );
}
