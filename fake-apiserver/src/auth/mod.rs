//! Authentication and authorization. An [`Identity`] rides on each [`Request`] (set by the HTTP
//! front from a bearer token, or by an in-process client made for an identity); a request without
//! one comes from inside the process and acts as the loopback identity, as the tests' typed API and
//! the live cluster's controllers do. When the cluster enforces RBAC ([`crate::Builder::rbac`]),
//! [`crate::Cluster::handle`] asks the RBAC authorizer (`rbac`) before anything else and answers
//! a refused request with the real server's 403. The review resources (`SelfSubjectAccessReview`,
//! `SubjectAccessReview`, `LocalSubjectAccessReview`, `SelfSubjectRulesReview`,
//! `SelfSubjectReview`) are answered from the same policy (`reviews`).
//!
//! Off by default: without enforcement every request is allowed, as before.

mod identity;
pub(crate) mod protobuf;
mod rbac;
mod reviews;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use identity::Identity;
pub use rbac::AccessAttributes;
pub(crate) use rbac::{Decision, Policy};
pub(crate) use reviews::is_review;

use crate::cluster::State;
use crate::error::{ApiError, GroupResource, Result};
use crate::request::{Request, Verb};
use crate::resources::StorageKey;

/// The API group of roles and bindings.
pub(crate) const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A cluster's authentication and authorization state.
#[derive(Debug, Default)]
pub(crate) struct Auth {
    /// Whether requests with an identity are authorized.
    pub(crate) enforce: bool,
    /// The compiled roles and bindings; dropped whenever one of them changes.
    policy: Option<Arc<Policy>>,
    /// Bearer tokens the cluster knows.
    tokens: BTreeMap<String, Identity>,
}

impl Auth {
    /// Forgets the compiled policy when a role or binding changed.
    pub(crate) fn changed(&mut self, key: &StorageKey) {
        if key.group == RBAC_GROUP {
            self.policy = None;
        }
    }

    pub(crate) fn register_token(&mut self, token: String, identity: Identity) {
        self.tokens.insert(token, identity);
    }

    pub(crate) fn authenticate(&self, token: &str) -> Option<Identity> {
        self.tokens.get(token).cloned()
    }
}

/// The attributes of a resource request, as the real server's request-info resolver derives them:
/// a namespace's own name is its namespace, and a list or watch with a `metadata.name=` field
/// selector names that object.
pub(crate) fn attributes(req: &Request) -> AccessAttributes {
    let mut namespace = req.namespace.clone().unwrap_or_default();
    let mut name = req.name.clone().unwrap_or_default();
    if req.group.is_empty() && req.plural == "namespaces" && namespace.is_empty() {
        namespace.clone_from(&name);
    }
    if name.is_empty()
        && matches!(req.verb, Verb::List | Verb::Watch)
        && let Some(selector) = &req.params.field_selector
        && let Ok(selector) = crate::selectors::fields::FieldSelector::parse(selector)
        && let Some(exact) = selector.requires_exact_match("metadata.name")
    {
        exact.clone_into(&mut name);
    }
    AccessAttributes::Resource {
        verb: req.verb.as_str().to_owned(),
        group: req.group.clone(),
        resource: req.plural.clone(),
        subresource: req.subresource.clone().unwrap_or_default(),
        namespace,
        name,
    }
}

/// The 403 for a refused request.
pub(crate) fn forbidden(user: &Identity, attributes: &AccessAttributes, reason: &str) -> ApiError {
    let message = rbac::forbidden_message(user, attributes, reason);
    match attributes {
        AccessAttributes::Resource { group, resource, name, .. } => ApiError::Forbidden {
            resource: GroupResource::new(group.clone(), resource.clone()),
            name: name.clone(),
            message,
        },
        AccessAttributes::NonResource { .. } => {
            ApiError::Forbidden { resource: GroupResource::default(), name: String::new(), message }
        }
    }
}

impl State {
    /// The compiled policy, compiled now if a role or binding changed since the last time.
    pub(crate) fn policy(&mut self) -> Arc<Policy> {
        if let Some(policy) = &self.auth.policy {
            return policy.clone();
        }
        let store = |plural: &str| {
            self.stores.get(&StorageKey { group: RBAC_GROUP.to_owned(), plural: plural.to_owned() })
        };
        let policy = Arc::new(Policy::compile(
            store("clusterroles"),
            store("roles"),
            store("clusterrolebindings"),
            store("rolebindings"),
        ));
        self.auth.policy = Some(policy.clone());
        policy
    }

    /// Decides what `user` may do, whether or not the cluster enforces RBAC.
    pub(crate) fn decide(&mut self, user: &Identity, attributes: &AccessAttributes) -> Decision {
        if user.is_privileged() {
            return Decision { allowed: true, reason: String::new() };
        }
        self.policy().authorize(user, attributes)
    }

    /// Authorizes a request when the cluster enforces RBAC and the request carries an identity.
    pub(crate) fn authorize(&mut self, req: &Request) -> Result<()> {
        let Some(user) = req.user.as_ref().filter(|_| self.auth.enforce) else { return Ok(()) };
        let attributes = attributes(req);
        let decision = self.decide(user, &attributes);
        if decision.allowed { Ok(()) } else { Err(forbidden(user, &attributes, &decision.reason)) }
    }

    /// Creates the bootstrap ClusterRoles and ClusterRoleBindings that are missing, as the API
    /// server's `rbac/bootstrap-roles` hook does at every start.
    pub(crate) fn bootstrap_policy(&mut self) {
        for (plural, objects) in [
            ("clusterroles", crate::live::rbac::cluster_roles()),
            ("clusterrolebindings", crate::live::rbac::cluster_role_bindings()),
        ] {
            for object in objects {
                let req = Request::new(Verb::Create, RBAC_GROUP, "v1", plural).body(object);
                match self.create_as("kube-apiserver", req) {
                    Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                    Err(e) => tracing::error!(plural, error = %e, "bootstrap RBAC object rejected"),
                }
            }
        }
    }
}
