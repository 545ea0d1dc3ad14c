//! R26: OpenAPI v2 and v3, generated from k8s-openapi's schemas and the CRDs' `openAPIV3Schema`,
//! shaped as kubectl reads them (`explain`, client-side apply, the `fieldValidation` check).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use crate::common::*;
use crate::raw;

/// Every `$ref` in the document names a definition it has.
fn assert_refs_resolve(doc: &Value, prefix: &str, definitions: &Value) {
    fn walk(v: &Value, prefix: &str, definitions: &Value, missing: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    match target.strip_prefix(prefix) {
                        Some(name) if definitions.get(name).is_some() => {}
                        _ => missing.push(target.clone()),
                    }
                }
                map.values().for_each(|v| walk(v, prefix, definitions, missing));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, prefix, definitions, missing)),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    walk(doc, prefix, definitions, &mut missing);
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "unresolved references: {missing:?}");
}

/// Checks that a schema has the shapes a Go OpenAPI client (kube-openapi's `spec.Schema`) decodes:
/// `$ref` a string, `type` a string, `properties` a map of schemas, `items` and `not` schemas,
/// `additionalProperties` a schema or a boolean, `allOf`/`oneOf`/`anyOf` lists of schemas,
/// `required` a list of strings. kubectl gives up on a whole document that breaks one of them.
fn check_schema(schema: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        errors.push(format!("{path}: not an object"));
        return;
    };
    for (key, value) in map {
        let at = format!("{path}/{key}");
        match key.as_str() {
            "$ref" | "type" | "format" | "description" if !value.is_string() => {
                errors.push(format!("{at}: not a string"))
            }
            "properties" => match value.as_object() {
                Some(props) => props.iter().for_each(|(k, v)| check_schema(v, &format!("{at}/{k}"), errors)),
                None => errors.push(format!("{at}: not a map")),
            },
            "items" | "not" => check_schema(value, &at, errors),
            "additionalProperties" if !value.is_boolean() => check_schema(value, &at, errors),
            "allOf" | "oneOf" | "anyOf" => match value.as_array() {
                Some(items) => {
                    items.iter().enumerate().for_each(|(i, v)| check_schema(v, &format!("{at}/{i}"), errors))
                }
                None => errors.push(format!("{at}: not a list")),
            },
            "required" if !value.as_array().is_some_and(|r| r.iter().all(Value::is_string)) => {
                errors.push(format!("{at}: not a list of strings"));
            }
            _ => {}
        }
    }
}

fn check_schemas(schemas: &Value) {
    let mut errors = Vec::new();
    for (name, schema) in schemas.as_object().unwrap() {
        check_schema(schema, name, &mut errors);
    }
    assert!(errors.is_empty(), "malformed schemas: {errors:?}");
}

/// Follows a v3 property schema to the definition it names (`$ref`, or `allOf: [{$ref}]`).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let target = schema["$ref"].as_str().or_else(|| schema["allOf"][0]["$ref"].as_str());
    match target.and_then(|t| t.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

async fn v3(server: &fake_apiserver::FakeApiServer, gv: &str) -> Value {
    let index = raw::get(server, "/openapi/v3", "application/json").await;
    let url =
        index.body["paths"][gv]["serverRelativeURL"].as_str().unwrap_or_else(|| panic!("{gv} is indexed"));
    let answer = raw::get(server, url, "application/json").await;
    assert_eq!(answer.code, 200, "{url}");
    answer.body
}

#[tokio::test]
async fn the_v3_index_lists_every_group_version_with_a_hashed_url() {
    let server = server();
    let index = raw::get(&server, "/openapi/v3", "application/json").await;
    assert_eq!(index.code, 200);
    let paths = index.body["paths"].as_object().unwrap();
    for gv in ["api/v1", "apis/apps/v1", "apis/batch/v1", "apis/apiextensions.k8s.io/v1"] {
        let url = paths[gv]["serverRelativeURL"].as_str().unwrap();
        assert!(url.starts_with(&format!("/openapi/v3/{gv}?hash=")), "{url}");
    }
    assert_eq!(raw::get(&server, "/openapi/v3/apis/nope.example.com/v1", "application/json").await.code, 404);
}

#[tokio::test]
async fn every_v3_document_has_well_formed_schemas_whose_references_resolve() {
    let server = server();
    install_crd(&server.client()).await;
    let index = raw::get(&server, "/openapi/v3", "application/json").await;
    for (gv, entry) in index.body["paths"].as_object().unwrap() {
        let doc =
            raw::get(&server, entry["serverRelativeURL"].as_str().unwrap(), "application/json").await.body;
        assert_eq!(doc["openapi"], "3.0.0", "{gv}");
        check_schemas(&doc["components"]["schemas"]);
        assert_refs_resolve(&doc, "#/components/schemas/", &doc["components"]["schemas"]);
    }
}

#[tokio::test]
async fn the_core_v3_document_describes_pods_with_their_kind_and_patch_extensions() {
    let server = server();
    let doc = v3(&server, "api/v1").await;
    assert_eq!(doc["openapi"], "3.0.0");
    let schemas = &doc["components"]["schemas"];
    let pod = &schemas["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(
        schemas["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "PodList"
    );
    let pod_spec = resolve(&doc, &pod["properties"]["spec"]);
    let containers = &pod_spec["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(pod_spec["properties"]["nodeSelector"]["x-kubernetes-map-type"], "atomic");
    let container = resolve(&doc, &containers["items"]);
    assert_eq!(
        container["properties"]["image"]["type"], "string",
        "explain can walk pod.spec.containers.image"
    );
    assert!(schemas.get("io.k8s.api.apps.v1.Deployment").is_none(), "only the group-version's kinds");
    assert_refs_resolve(&doc, "#/components/schemas/", schemas);
}

#[tokio::test]
async fn patch_operations_take_field_validation_and_strategic_merge_patches_for_built_ins() {
    let server = server();
    let doc = v3(&server, "apis/apps/v1").await;
    let path = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    let patch = &path["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    assert_eq!(patch["x-kubernetes-action"], "patch");
    let params: Vec<&str> =
        patch["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(params.contains(&"fieldValidation"), "{params:?}");
    assert!(patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_some());
    assert_eq!(path["get"]["x-kubernetes-action"], "get");
    let list = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"];
    assert_eq!(list["x-kubernetes-action"], "list");
    assert!(doc["paths"].get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale").is_some());
    let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    let template = resolve(&doc, &resolve(&doc, &deployment["properties"]["spec"])["properties"]["template"]);
    assert!(resolve(&doc, &template["properties"]["spec"])["properties"].get("containers").is_some());
    assert_refs_resolve(&doc, "#/components/schemas/", &doc["components"]["schemas"]);
}

#[tokio::test]
async fn the_v2_document_is_json_with_definitions_and_refuses_protobuf_only_requests() {
    let server = server();
    let answer = raw::get(&server, "/openapi/v2", "application/json").await;
    assert_eq!(answer.code, 200);
    assert_eq!(answer.content_type, "application/json");
    let doc = answer.body;
    assert_eq!(doc["swagger"], "2.0");
    let definitions = &doc["definitions"];
    let pod = &definitions["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(pod["properties"]["spec"]["$ref"], "#/definitions/io.k8s.api.core.v1.PodSpec");
    let containers = &definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert!(definitions.get("io.k8s.api.apps.v1.Deployment").is_some());
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation"));
    assert_refs_resolve(&doc, "#/definitions/", definitions);
    check_schemas(definitions);
    let protobuf =
        raw::get(&server, "/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf").await;
    assert_eq!(protobuf.code, 406, "the fake speaks no protobuf");
    assert_eq!(protobuf.body["reason"], "NotAcceptable");
}

#[tokio::test]
async fn a_crd_schema_is_served_with_api_version_kind_and_metadata_while_the_crd_exists() {
    let server = server();
    let client = server.client();
    let index = raw::get(&server, "/openapi/v3", "application/json").await;
    assert!(index.body["paths"].get("apis/kopf.dev/v1").is_none());
    install_crd(&client).await;
    let doc = v3(&server, "apis/kopf.dev/v1").await;
    let schemas = &doc["components"]["schemas"];
    let example = &schemas["dev.kopf.v1.KopfExample"];
    assert_eq!(
        example["x-kubernetes-group-version-kind"],
        json!([{"group": "kopf.dev", "kind": "KopfExample", "version": "v1"}])
    );
    assert_eq!(example["properties"]["spec"]["properties"]["field"]["type"], "string");
    assert_eq!(example["properties"]["apiVersion"]["type"], "string");
    assert_eq!(resolve(&doc, &example["properties"]["metadata"])["properties"]["name"]["type"], "string");
    assert!(schemas.get("dev.kopf.v1.KopfExampleList").is_some());
    let patch = &doc["paths"]["/apis/kopf.dev/v1/namespaces/{namespace}/kopfexamples/{name}"]["patch"];
    let content = patch["requestBody"]["content"].as_object().unwrap();
    assert!(content.contains_key("application/merge-patch+json"));
    assert!(!content.contains_key("application/strategic-merge-patch+json"), "no strategic merge for CRs");
    assert_refs_resolve(&doc, "#/components/schemas/", schemas);
    let v2 = raw::get(&server, "/openapi/v2", "application/json").await.body;
    assert!(v2["definitions"].get("dev.kopf.v1.KopfExample").is_some());

    Api::<CustomResourceDefinition>::all(client)
        .delete("kopfexamples.kopf.dev", &DeleteParams::default())
        .await
        .unwrap();
    let index = raw::get(&server, "/openapi/v3", "application/json").await;
    assert!(index.body["paths"].get("apis/kopf.dev/v1").is_none(), "a deleted CRD leaves the index");
    assert_eq!(raw::get(&server, "/openapi/v3/apis/kopf.dev/v1", "application/json").await.code, 404);
}

#[tokio::test]
async fn a_changed_crd_schema_changes_the_hash_and_the_document() {
    let server = server();
    let client = server.client();
    install_crd(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let mut crd = crds.get("kopfexamples.kopf.dev").await.unwrap();
    let url =
        |index: &Value| index["paths"]["apis/kopf.dev/v1"]["serverRelativeURL"].as_str().unwrap().to_owned();
    let before = url(&raw::get(&server, "/openapi/v3", "application/json").await.body);
    let schema = crd.spec.versions[0].schema.as_mut().unwrap().open_api_v3_schema.as_mut().unwrap();
    let spec = schema.properties.as_mut().unwrap().get_mut("spec").unwrap();
    spec.properties.as_mut().unwrap().insert(
        "added".into(),
        serde_json::from_value(json!({"type": "integer", "description": "a new field"})).unwrap(),
    );
    crds.replace("kopfexamples.kopf.dev", &Default::default(), &crd).await.unwrap();
    let after = url(&raw::get(&server, "/openapi/v3", "application/json").await.body);
    assert_ne!(before, after, "the hash follows the content");
    let doc = raw::get(&server, &after, "application/json").await.body;
    let spec = &doc["components"]["schemas"]["dev.kopf.v1.KopfExample"]["properties"]["spec"];
    assert_eq!(spec["properties"]["added"]["type"], "integer");
}
