//! Failures of the API server, as data: every [`ApiError`] turns into a `meta/v1 Status` with the real
//! server's code, reason, message and details (reference: apimachinery's `api/errors`).
//!
//! The variants follow the split that clients branch on (Kopf's `APINotFoundError`,
//! `APIConflictError`, …; kube's `ErrorResponse.reason`), so a client takes the same path against the
//! fake as against a real cluster.

use serde_json::{Value, json};

/// Which resource an error is about: the group and the plural, as the real server names them in
/// `details.group` and `details.kind` ("configmaps", "kopfexamples.kopf.dev").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name, e.g. `configmaps`.
    pub resource: String,
}

impl GroupResource {
    /// A group-resource pair.
    pub fn new(group: impl Into<String>, resource: impl Into<String>) -> Self {
        Self { group: group.into(), resource: resource.into() }
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// One field-level cause of a 422 Invalid (or of an apply conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    /// Machine-readable reason, e.g. `FieldValueInvalid`.
    pub reason: String,
    /// Human-readable message for this field.
    pub message: String,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
}

/// An API failure with the real server's status code and reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 404 NotFound: the object (or the resource) does not exist.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// Resource of the missing object.
        resource: GroupResource,
        /// Name of the missing object.
        name: String,
    },
    /// 404 NotFound for a URL that maps to no resource at all.
    #[error("the server could not find the requested resource")]
    NoSuchResource,
    /// 409 AlreadyExists: a create of a name that is taken.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// Resource of the existing object.
        resource: GroupResource,
        /// The taken name.
        name: String,
    },
    /// 409 Conflict: a stale resourceVersion or a failed precondition.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        /// Resource of the object.
        resource: GroupResource,
        /// Name of the object.
        name: String,
        /// Why, e.g. "the object has been modified; please apply your changes to the latest version and try again".
        message: String,
    },
    /// 409 Conflict from server-side apply: fields owned by other managers.
    #[error("{}", apply_conflict_message(causes))]
    ApplyConflict {
        /// Resource of the object.
        resource: GroupResource,
        /// Name of the object.
        name: String,
        /// One cause per conflicting field.
        causes: Vec<StatusCause>,
    },
    /// 422 Invalid: validation failed, with one cause per field.
    #[error("{message}")]
    Invalid {
        /// The kind, e.g. `ConfigMap`.
        kind: String,
        /// The group of the kind.
        group: String,
        /// Name of the object.
        name: String,
        /// The full message, e.g. `ConfigMap "x" is invalid: metadata.name: Invalid value: …`.
        message: String,
        /// Field causes.
        causes: Vec<StatusCause>,
    },
    /// 400 BadRequest: malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// 401 Unauthorized.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403 Forbidden.
    #[error("{message}")]
    Forbidden {
        /// Resource the request was about.
        resource: GroupResource,
        /// Name of the object, may be empty.
        name: String,
        /// The full message.
        message: String,
    },
    /// 405 MethodNotAllowed: the verb is not supported on this resource.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406 NotAcceptable: no supported media type in `Accept`.
    #[error("{0}")]
    NotAcceptable(String),
    /// 410 Gone (reason Expired): a resourceVersion or continue token too old.
    #[error("{0}")]
    Expired(String),
    /// 415 UnsupportedMediaType: a patch or body type the resource does not accept.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 TooManyRequests, with the seconds to wait.
    #[error("{message}")]
    TooManyRequests {
        /// The message.
        message: String,
        /// Seconds the client should wait (`Retry-After`).
        retry_after_seconds: u32,
    },
    /// 500 InternalError.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 503 ServiceUnavailable.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 504 Timeout.
    #[error("{0}")]
    Timeout(String),
    /// A rejection by an admission webhook: the webhook's code (403 when it gave none), its
    /// reason (`Forbidden` or `InternalError` when it gave none) and details, and the message
    /// the real server builds around the webhook's.
    #[error("{message}")]
    Rejected {
        /// The HTTP code.
        code: u16,
        /// The reason.
        reason: String,
        /// The full message.
        message: String,
        /// `details`, if any.
        details: Option<Value>,
    },
}

impl ApiError {
    /// The HTTP status code the real server answers with.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } | Self::NoSuchResource => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } | Self::ApplyConflict { .. } => 409,
            Self::Invalid { .. } => 422,
            Self::BadRequest(_) => 400,
            Self::Unauthorized => 401,
            Self::Forbidden { .. } => 403,
            Self::MethodNotAllowed(_) => 405,
            Self::NotAcceptable(_) => 406,
            Self::Expired(_) => 410,
            Self::UnsupportedMediaType(_) => 415,
            Self::TooManyRequests { .. } => 429,
            Self::Internal(_) => 500,
            Self::ServiceUnavailable(_) => 503,
            Self::Timeout(_) => 504,
            Self::Rejected { code, .. } => *code,
        }
    }

    /// The machine-readable reason (`NotFound`, `Conflict`, `Invalid`, …).
    pub fn reason(&self) -> &str {
        match self {
            Self::NotFound { .. } | Self::NoSuchResource => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } | Self::ApplyConflict { .. } => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::Expired(_) => "Expired",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::TooManyRequests { .. } => "TooManyRequests",
            Self::Internal(_) => "InternalError",
            Self::ServiceUnavailable(_) => "ServiceUnavailable",
            Self::Timeout(_) => "Timeout",
            Self::Rejected { reason, .. } => reason,
        }
    }

    /// Seconds to wait before retrying, where the error carries them.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            Self::TooManyRequests { retry_after_seconds, .. } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// The `meta/v1 Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name, .. } => Some(details(resource, name, &[])),
            // `NewForbidden` leaves out what it does not know (a list names no object; a path
            // outside the API names no resource).
            Self::Forbidden { resource, name, .. } => {
                let mut d = serde_json::Map::new();
                for (key, value) in [("name", name), ("group", &resource.group), ("kind", &resource.resource)]
                {
                    if !value.is_empty() {
                        d.insert(key.to_owned(), json!(value));
                    }
                }
                Some(Value::Object(d))
            }
            // The real server names neither the object nor its kind here, only the fields.
            Self::ApplyConflict { causes, .. } => Some(json!({"causes": causes_json(causes)})),
            Self::Invalid { kind, group, name, causes, .. } => {
                let mut d = json!({"name": name, "kind": kind, "causes": causes_json(causes)});
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            Self::TooManyRequests { retry_after_seconds, .. } => {
                Some(json!({"retryAfterSeconds": retry_after_seconds}))
            }
            Self::Internal(message) => Some(json!({"causes": [{"message": message}]})),
            Self::Rejected { details, .. } => details.clone(),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }

    /// A 404 for an object.
    pub fn not_found(resource: &GroupResource, name: &str) -> Self {
        Self::NotFound { resource: resource.clone(), name: name.to_owned() }
    }

    /// The 409 that a stale resourceVersion gets.
    pub fn stale(resource: &GroupResource, name: &str) -> Self {
        Self::Conflict {
            resource: resource.clone(),
            name: name.to_owned(),
            message:
                "the object has been modified; please apply your changes to the latest version and try again"
                    .to_owned(),
        }
    }

    /// A 422 with causes; the message is built as the real server builds it.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let qualified = if group.is_empty() { kind.to_owned() } else { format!("{kind}.{group}") };
        let message = invalid_message(&qualified, name, &causes);
        Self::Invalid {
            kind: kind.to_owned(),
            group: group.to_owned(),
            name: name.to_owned(),
            message,
            causes,
        }
    }
}

fn details(resource: &GroupResource, name: &str, causes: &[StatusCause]) -> Value {
    let mut d = json!({"name": name, "kind": resource.resource});
    if !resource.group.is_empty() {
        d["group"] = json!(resource.group);
    }
    if !causes.is_empty() {
        d["causes"] = causes_json(causes);
    }
    d
}

fn causes_json(causes: &[StatusCause]) -> Value {
    Value::Array(
        causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect(),
    )
}

/// The real server's message for apply conflicts: the one conflict in full, or the conflicts grouped
/// by manager (`conflicts with "m" using v1:` then `- .spec.a` lines).
fn apply_conflict_message(causes: &[StatusCause]) -> String {
    if let [only] = causes {
        return format!("Apply failed with 1 conflict: {}: {}", only.message, only.field);
    }
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for cause in causes {
        match groups.iter_mut().find(|(manager, _)| *manager == cause.message) {
            Some((_, fields)) => fields.push(&cause.field),
            None => groups.push((&cause.message, vec![&cause.field])),
        }
    }
    let mut lines = Vec::new();
    for (manager, fields) in groups {
        let manager = manager.strip_prefix("conflict with ").unwrap_or(manager);
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(fields.into_iter().map(|f| format!("- {f}")));
    }
    format!("Apply failed with {} conflicts: {}", causes.len(), lines.join("\n"))
}

fn invalid_message(kind: &str, name: &str, causes: &[StatusCause]) -> String {
    crate::validation::invalid_message_of(
        kind,
        name,
        causes.iter().map(|c| (c.field.as_str(), c.message.as_str())),
    )
}

/// The result of any operation on the fake API server.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_names_the_plural_and_group_like_the_real_server() {
        let err = ApiError::not_found(&GroupResource::new("kopf.dev", "kopfexamples"), "ex1");
        let status = err.to_status();
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "kopfexamples.kopf.dev \"ex1\" not found");
        assert_eq!(status["details"], json!({"name": "ex1", "kind": "kopfexamples", "group": "kopf.dev"}));
    }

    #[test]
    fn stale_writes_get_the_real_conflict_message() {
        let err = ApiError::stale(&GroupResource::new("", "configmaps"), "cm");
        assert_eq!(
            err.to_string(),
            "Operation cannot be fulfilled on configmaps \"cm\": the object has been modified; \
             please apply your changes to the latest version and try again"
        );
        assert_eq!(err.code(), 409);
    }

    #[test]
    fn invalid_with_several_causes_joins_them_in_brackets() {
        let cause = |f: &str| StatusCause {
            reason: "FieldValueInvalid".into(),
            message: "bad".into(),
            field: f.into(),
        };
        let err = ApiError::invalid("ConfigMap", "", "x", vec![cause("a"), cause("b")]);
        assert_eq!(err.to_string(), "ConfigMap \"x\" is invalid: [a: bad, b: bad]");
        assert_eq!(err.to_status()["details"]["causes"][1]["field"], "b");
    }

    #[test]
    fn too_many_requests_carries_retry_after_in_details() {
        let err = ApiError::TooManyRequests { message: "slow down".into(), retry_after_seconds: 3 };
        assert_eq!(err.to_status()["details"]["retryAfterSeconds"], 3);
        assert_eq!(err.retry_after_seconds(), Some(3));
    }
}
