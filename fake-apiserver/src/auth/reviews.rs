//! The review resources, answered from the policy and never stored: `SelfSubjectAccessReview`
//! (`kubectl auth can-i`), `SubjectAccessReview` and `LocalSubjectAccessReview` (another user's
//! access), `SelfSubjectRulesReview` (`kubectl auth can-i --list`), `SelfSubjectReview`
//! (`kubectl auth whoami`) and `TokenReview`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::identity::Identity;
use super::rbac::AccessAttributes;
use crate::cluster::State;
use crate::error::{ApiError, Result, StatusCause};
use crate::request::{Request, Response};
use crate::resources::ResourceInfo;
use crate::store::objects::StoredObject;

/// Whether creating this resource is a review (answered, not stored).
pub(crate) fn is_review(info: &ResourceInfo) -> bool {
    matches!(
        (info.group.as_str(), info.plural.as_str()),
        (
            "authorization.k8s.io",
            "selfsubjectaccessreviews"
                | "subjectaccessreviews"
                | "localsubjectaccessreviews"
                | "selfsubjectrulesreviews"
        ) | ("authentication.k8s.io", "selfsubjectreviews" | "tokenreviews")
    )
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn invalid(info: &ResourceInfo, field: &str, message: &str) -> ApiError {
    ApiError::invalid(
        &info.kind,
        &info.group,
        "",
        vec![StatusCause {
            reason: "FieldValueInvalid".into(),
            message: message.into(),
            field: field.into(),
        }],
    )
}

/// The attributes a review's spec asks about.
fn spec_attributes(info: &ResourceInfo, spec: &Value) -> Result<AccessAttributes> {
    let resource = &spec["resourceAttributes"];
    let non_resource = &spec["nonResourceAttributes"];
    match (resource.is_object(), non_resource.is_object()) {
        (true, true) => Err(invalid(
            info,
            "spec.nonResourceAttributes",
            "Invalid value: \"object\": cannot be specified in combination with resourceAttributes",
        )),
        (false, false) => Err(invalid(
            info,
            "spec.resourceAttributes",
            "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        (true, false) => Ok(AccessAttributes::Resource {
            verb: text(&resource["verb"]),
            group: text(&resource["group"]),
            resource: text(&resource["resource"]),
            subresource: text(&resource["subresource"]),
            namespace: text(&resource["namespace"]),
            name: text(&resource["name"]),
        }),
        (false, true) => Ok(AccessAttributes::NonResource {
            verb: text(&non_resource["verb"]),
            path: text(&non_resource["path"]),
        }),
    }
}

fn user_info(user: &Identity) -> Value {
    let mut info = json!({"username": user.name(), "groups": user.groups()});
    if !user.uid().is_empty() {
        info["uid"] = json!(user.uid());
    }
    info
}

impl State {
    /// Answers a review: the request's body with its `status` filled in (201, as a create).
    pub(crate) fn review(&mut self, info: &Arc<ResourceInfo>, req: &Request) -> Result<Response> {
        let mut body = req.body.clone().unwrap_or(Value::Null);
        if !body.is_object() {
            return Err(ApiError::BadRequest(format!("the body of a {} must be an object", info.kind)));
        }
        let requester = req.user.clone().unwrap_or_else(Identity::loopback);
        let spec = body["spec"].clone();
        let status = match info.plural.as_str() {
            "selfsubjectaccessreviews" => {
                let attributes = spec_attributes(info, &spec)?;
                self.access_status(&requester, &attributes)
            }
            "subjectaccessreviews" | "localsubjectaccessreviews" => {
                let attributes = spec_attributes(info, &spec)?;
                if info.plural == "localsubjectaccessreviews" {
                    let namespace = req.namespace.clone().unwrap_or_default();
                    if attributes_namespace(&attributes) != namespace {
                        return Err(ApiError::BadRequest(format!(
                            "spec.resourceAttributes.namespace must match namespace: {namespace}"
                        )));
                    }
                }
                let groups: Vec<String> = spec["groups"]
                    .as_array()
                    .map(|g| g.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                let name = text(&spec["user"]);
                if name.is_empty() && groups.is_empty() {
                    return Err(invalid(
                        info,
                        "spec.user",
                        "Invalid value: \"\": at least one of user or group must be specified",
                    ));
                }
                // The subject is exactly who the spec says, with no group added.
                let subject = Identity::exact(name, text(&spec["uid"]), groups);
                self.access_status(&subject, &attributes)
            }
            "selfsubjectrulesreviews" => {
                let namespace = text(&spec["namespace"]);
                let (rules, errors) = self.policy().rules_for(&requester, &namespace);
                let (non_resource, resource): (Vec<_>, Vec<_>) =
                    rules.iter().partition(|r| !r.non_resource_urls.is_empty());
                let mut status = json!({
                    "resourceRules": resource.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
                    "nonResourceRules": non_resource.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
                    "incomplete": !errors.is_empty(),
                });
                if !errors.is_empty() {
                    status["evaluationError"] = json!(match errors.as_slice() {
                        [one] => one.clone(),
                        many => format!("[{}]", many.join(", ")),
                    });
                }
                status
            }
            "selfsubjectreviews" => json!({"userInfo": user_info(&requester)}),
            "tokenreviews" => match self.auth.authenticate(&text(&spec["token"])) {
                Some(user) => json!({"authenticated": true, "user": user_info(&user)}),
                None => json!({"authenticated": false, "user": {}}),
            },
            _ => return Err(ApiError::NoSuchResource),
        };
        let object = body.as_object_mut().expect("checked to be an object above");
        object.insert("apiVersion".into(), json!(info.api_version()));
        object.insert("kind".into(), json!(info.kind));
        let metadata = object.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.entry("creationTimestamp").or_insert(Value::Null);
        }
        object.insert("status".into(), status);
        Ok(Response::Object(Arc::new(StoredObject::new(&body, &[]))))
    }

    fn access_status(&mut self, subject: &Identity, attributes: &AccessAttributes) -> Value {
        let decision = self.decide(subject, attributes);
        let mut status = json!({"allowed": decision.allowed});
        if !decision.reason.is_empty() {
            status["reason"] = json!(decision.reason);
        }
        status
    }
}

fn attributes_namespace(attributes: &AccessAttributes) -> &str {
    match attributes {
        AccessAttributes::Resource { namespace, .. } => namespace,
        AccessAttributes::NonResource { .. } => "",
    }
}
