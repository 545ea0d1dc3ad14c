//! URL → what is asked: a discovery document, or a resource request (group, version, plural,
//! namespace, name, subresource) with its query parameters. Kubernetes paths are irregular (core vs
//! named groups, the optional namespace segment, namespaces' own subresources), so this is a small
//! hand-written segment parser.

use crate::error::{ApiError, Result};
use crate::request::{FieldValidation, Params};

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/version`
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/metrics`: the request counters.
    Metrics,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    ResourceList { group: String, version: String },
    /// A resource, a collection, or a subresource.
    Resource(Target),
    /// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/{api/v1 | apis/<group>/<version>}`.
    OpenApi(crate::openapi::Document),
}

/// The resource part of a path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Target {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
}

/// Parses a request path.
pub(crate) fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Some(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => Some(Route::Health),
        ["metrics"] => Some(Route::Metrics),
        ["openapi", "v2"] => Some(Route::OpenApi(crate::openapi::Document::V2)),
        ["openapi", "v3"] => Some(Route::OpenApi(crate::openapi::Document::V3Index)),
        ["openapi", "v3", rest @ ..] => Some(Route::OpenApi(crate::openapi::Document::V3(rest.join("/")))),
        ["api"] => Some(Route::CoreVersions),
        ["apis"] => Some(Route::Groups),
        ["apis", group] => Some(Route::Group((*group).to_owned())),
        ["api", version] => {
            Some(Route::ResourceList { group: String::new(), version: (*version).to_owned() })
        }
        ["apis", group, version] => {
            Some(Route::ResourceList { group: (*group).to_owned(), version: (*version).to_owned() })
        }
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => None,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let target = |namespace: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(Target {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        })
    };
    match rest {
        // The namespace object itself and its subresources.
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            Some(target(None, "namespaces", Some(name), Some(sub)))
        }
        ["namespaces", ns, plural] => Some(target(Some(ns), plural, None, None)),
        ["namespaces", ns, plural, name] => Some(target(Some(ns), plural, Some(name), None)),
        ["namespaces", ns, plural, name, sub] => Some(target(Some(ns), plural, Some(name), Some(sub))),
        [plural] => Some(target(None, plural, None, None)),
        [plural, name] => Some(target(None, plural, Some(name), None)),
        [plural, name, sub] => Some(target(None, plural, Some(name), Some(sub))),
        _ => None,
    }
}

/// Query parameters, parsed leniently (kube sends a stray leading `&`), percent-decoded.
pub(crate) fn params(query: Option<&str>) -> Result<(Params, bool)> {
    let mut p = Params::default();
    let mut watch = false;
    let bad = |key: &str, value: &str| {
        ApiError::BadRequest(format!("invalid value {value:?} for query parameter {key:?}"))
    };
    let flag = |key: &str, value: &str| match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(key, value)),
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "watch" => watch = flag("watch", &value)?,
            "labelSelector" => p.label_selector = Some(value),
            "fieldSelector" => p.field_selector = Some(value),
            "limit" => p.limit = Some(value.parse().map_err(|_| bad("limit", &value))?),
            "continue" => p.continue_token = Some(value),
            "resourceVersion" => p.resource_version = Some(value),
            "resourceVersionMatch" => p.resource_version_match = Some(value),
            "timeoutSeconds" => {
                p.timeout_seconds = Some(value.parse().map_err(|_| bad("timeoutSeconds", &value))?)
            }
            "allowWatchBookmarks" => p.allow_watch_bookmarks = flag("allowWatchBookmarks", &value)?,
            "sendInitialEvents" => p.send_initial_events = Some(flag("sendInitialEvents", &value)?),
            "dryRun" => {
                if value != "All" {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid dryRun parameter value {value:?}: supported values: \"All\""
                    )));
                }
                p.dry_run = true;
            }
            "fieldManager" => p.field_manager = Some(value),
            "force" => p.force = flag("force", &value)?,
            "fieldValidation" => {
                p.field_validation = match value.as_str() {
                    "Ignore" => FieldValidation::Ignore,
                    "" | "Warn" => FieldValidation::Warn,
                    "Strict" => FieldValidation::Strict,
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "fieldValidation: Unsupported value: {value:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                        )));
                    }
                };
            }
            "propagationPolicy" => p.propagation_policy = Some(value),
            "gracePeriodSeconds" => {
                p.grace_period_seconds = Some(value.parse().map_err(|_| bad("gracePeriodSeconds", &value))?);
            }
            "orphanDependents" if flag("orphanDependents", &value)? => {
                p.propagation_policy.get_or_insert_with(|| "Orphan".to_owned());
            }
            "shardSelector" => p.shard_selector = Some(value),
            // Parameters the server accepts and that change nothing here.
            _ => {}
        }
    }
    Ok((p, watch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(route: Option<Route>) -> Target {
        match route {
            Some(Route::Resource(t)) => t,
            other => panic!("not a resource route: {other:?}"),
        }
    }

    #[test]
    fn core_and_group_paths_with_and_without_namespaces_are_told_apart() {
        let t = target(route("/api/v1/namespaces/default/configmaps/cm"));
        assert_eq!(
            (t.group.as_str(), t.plural.as_str(), t.namespace.as_deref(), t.name.as_deref()),
            ("", "configmaps", Some("default"), Some("cm"))
        );
        let t = target(route("/apis/apps/v1/deployments"));
        assert_eq!(
            (t.group.as_str(), t.version.as_str(), t.plural.as_str(), t.namespace),
            ("apps", "v1", "deployments", None)
        );
        let t = target(route("/apis/kopf.dev/v1/namespaces/ns1/kopfexamples/ex1/status"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn a_namespace_and_its_finalize_subresource_are_not_namespaced_requests() {
        let t = target(route("/api/v1/namespaces/ns1"));
        assert_eq!((t.plural.as_str(), t.name.as_deref(), t.namespace), ("namespaces", Some("ns1"), None));
        let t = target(route("/api/v1/namespaces/ns1/finalize"));
        assert_eq!((t.plural.as_str(), t.subresource.as_deref()), ("namespaces", Some("finalize")));
        let t = target(route("/api/v1/namespaces/ns1/pods"));
        assert_eq!((t.plural.as_str(), t.namespace.as_deref()), ("pods", Some("ns1")));
    }

    #[test]
    fn discovery_paths_route_to_documents() {
        assert_eq!(route("/api"), Some(Route::CoreVersions));
        assert_eq!(route("/apis/"), Some(Route::Groups));
        assert_eq!(route("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            route("/api/v1"),
            Some(Route::ResourceList { group: String::new(), version: "v1".into() })
        );
        assert_eq!(route("/version"), Some(Route::Version));
        assert_eq!(route("/nonsense/path"), None);
    }

    #[test]
    fn query_parameters_are_decoded_leniently_and_bad_numbers_are_rejected() {
        let (p, watch) = params(Some(
            "&watch=true&labelSelector=a%3Db%2Cc+in+%28x%29&timeoutSeconds=290&allowWatchBookmarks=true",
        ))
        .unwrap();
        assert!(watch && p.allow_watch_bookmarks);
        assert_eq!(p.label_selector.as_deref(), Some("a=b,c in (x)"));
        assert_eq!(p.timeout_seconds, Some(290));
        assert!(params(Some("limit=abc")).is_err());
        assert!(params(Some("dryRun=Some")).is_err());
    }
}
