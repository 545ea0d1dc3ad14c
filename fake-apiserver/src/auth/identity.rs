//! Who is asking: a user name and its groups, as the real server's authenticators leave them in
//! `user.Info` — a service account is the user `system:serviceaccount:<namespace>:<name>` in the
//! groups `system:serviceaccounts`, `system:serviceaccounts:<namespace>` and `system:authenticated`.

/// The group every authenticated user is in.
pub(crate) const AUTHENTICATED: &str = "system:authenticated";
/// The group of requests without credentials.
pub(crate) const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group the authorizer lets do anything (the real server's `system:masters`).
pub(crate) const MASTERS: &str = "system:masters";
/// The group of all service accounts.
pub(crate) const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// An authenticated (or anonymous) user: the subject RBAC decides about.
///
/// ```
/// use fake_apiserver::Identity;
/// let sa = Identity::service_account("ops", "kopf");
/// assert_eq!(sa.name(), "system:serviceaccount:ops:kopf");
/// assert_eq!(sa.groups(), ["system:serviceaccounts", "system:serviceaccounts:ops", "system:authenticated"]);
/// assert_eq!(sa.as_service_account(), Some(("ops", "kopf")));
/// assert!(Identity::admin().is_privileged());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    name: String,
    uid: String,
    groups: Vec<String>,
}

impl Identity {
    /// A user with these groups, plus `system:authenticated` (as every authenticator adds it).
    pub fn user<I, S>(name: impl Into<String>, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        Self { name: name.into(), uid: String::new(), groups }
    }

    /// The service account `name` in `namespace`, as its token authenticates it.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"),
            uid: String::new(),
            groups: vec![
                SERVICE_ACCOUNTS.to_owned(),
                format!("{SERVICE_ACCOUNTS}:{namespace}"),
                AUTHENTICATED.to_owned(),
            ],
        }
    }

    /// A request without credentials (`system:anonymous` in `system:unauthenticated`).
    pub fn anonymous() -> Self {
        Self {
            name: "system:anonymous".to_owned(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED.to_owned()],
        }
    }

    /// The cluster administrator of a kubeadm cluster's kubeconfig (`kubernetes-admin` in
    /// `system:masters`): allowed everything.
    pub fn admin() -> Self {
        Self::user("kubernetes-admin", [MASTERS])
    }

    /// The API server's own loopback identity (`system:apiserver` in `system:masters`), which
    /// in-process callers without an identity — the tests' typed API, the built-in and live
    /// controllers — act as.
    pub fn loopback() -> Self {
        Self::user("system:apiserver", [MASTERS])
    }

    /// Exactly this user, uid and groups (a `SubjectAccessReview`'s subject).
    pub(crate) fn exact(name: String, uid: String, groups: Vec<String>) -> Self {
        Self { name, uid, groups }
    }

    /// Sets the uid (reported by `SelfSubjectReview`).
    #[must_use]
    pub fn with_uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = uid.into();
        self
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The uid, empty when unknown.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The groups.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Whether the user is in `system:masters`, which authorization never refuses.
    pub fn is_privileged(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    /// The namespace and name, if this is a service account.
    pub fn as_service_account(&self) -> Option<(&str, &str)> {
        self.name.strip_prefix(SERVICE_ACCOUNT_PREFIX)?.split_once(':')
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_authenticated_once_and_anonymous_is_not() {
        let u = Identity::user("jane", ["devs", AUTHENTICATED]);
        assert_eq!(u.groups(), ["devs", AUTHENTICATED]);
        assert!(!Identity::anonymous().groups().iter().any(|g| g == AUTHENTICATED));
        assert_eq!(Identity::user("jane", Vec::<String>::new()).as_service_account(), None);
    }
}
