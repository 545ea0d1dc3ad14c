//! Running the operator as its service account under RBAC: the fake enforces RBAC, the RBAC the
//! operator generates for itself ([`kopf::rbac`], against the fake's discovery) or one the test
//! gives is installed with its ServiceAccount, and the operator's client acts as that account.
//! Every 403 the operator meets is recorded (`forbidden` in the timeline) and, unless the test
//! expects some, fails the test at the next `settle()`.

use std::sync::{Arc, Mutex, PoisonError};

use fake_apiserver::{FakeApiServer, Identity};
use kopf::{ApiClient, Namespaces, Operator, Rbac, RbacOptions};

use crate::adapter::DirectApiClient;

/// Which RBAC the operator runs under.
#[derive(Debug, Clone)]
pub(crate) enum RbacMode {
    /// What the operator generates for itself.
    Generated,
    /// This one.
    Given(Rbac),
}

/// The 403s the operator met, in order. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Forbidden(Arc<Mutex<Vec<String>>>);

impl Forbidden {
    pub(crate) fn push(&self, what: String) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(what);
    }

    pub(crate) fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn first(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).first().cloned()
    }
}

/// Installs the RBAC (and its ServiceAccount) and turns enforcement on; the identity to act as.
pub(crate) async fn install(
    server: &FakeApiServer,
    operator: &Operator,
    mode: RbacMode,
    namespaces: &Namespaces,
) -> (Rbac, Identity) {
    let rbac = match mode {
        RbacMode::Given(rbac) => rbac,
        RbacMode::Generated => {
            let served = DirectApiClient::new(server.cluster().clone())
                .discover()
                .await
                .unwrap_or_else(|e| panic!("discovery failed: {e}"));
            let options = RbacOptions { namespaces: namespaces.clone(), ..RbacOptions::default() };
            kopf::rbac(operator, &served, &options)
        }
    };
    server.cluster().enforce_rbac(true);
    crate::runner::create_raw(server, rbac.service_account()).await;
    for object in rbac.objects() {
        crate::runner::create_raw(server, object).await;
    }
    let identity = Identity::service_account(&rbac.namespace, &rbac.name);
    (rbac, identity)
}
