//! The test's handle on the fake cluster: typed create, get, patch, delete and list of any
//! `kube::Resource`, namespaced objects in `default` unless the object says otherwise. The methods
//! panic with a clear message on API errors (they are test steps); the `try_` ones return them.

use fake_apiserver::{ApiError, Cluster, PatchType};
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Typed access to the fake cluster for tests.
#[derive(Debug, Clone)]
pub struct TestCluster {
    cluster: Cluster,
}

/// What typed test helpers accept: any `kube::Resource` with serde.
pub trait TestObject:
    Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<K> TestObject for K where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl TestCluster {
    pub(crate) fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// The fake's core: journal, faults, direct requests.
    pub fn raw(&self) -> &Cluster {
        &self.cluster
    }

    fn namespaced<K: TestObject>(&self) -> bool {
        self.cluster.resource(&K::group(&()), &K::version(&()), &K::plural(&())).is_some_and(|r| r.namespaced)
    }

    fn api<K: TestObject>(&self, namespace: Option<&str>) -> fake_apiserver::TypedApi<K> {
        let ns = if self.namespaced::<K>() { Some(namespace.unwrap_or("default")) } else { None };
        self.cluster.api::<K>(ns)
    }

    /// Creates an object (in its own namespace, or `default`).
    ///
    /// # Errors
    /// The API error.
    pub async fn try_create<K: TestObject>(&self, object: K) -> Result<K, ApiError> {
        let ns = object.meta().namespace.clone();
        self.api::<K>(ns.as_deref()).create(&object).await
    }

    /// Creates an object; panics on failure.
    pub async fn create<K: TestObject>(&self, object: K) -> K {
        let name = object.meta().name.clone().unwrap_or_default();
        self.try_create(object)
            .await
            .unwrap_or_else(|e| panic!("creating {} {name:?} failed: {e}", K::kind(&())))
    }

    /// Reads an object from `default` (or cluster-scoped); `None` if absent.
    pub async fn get_opt<K: TestObject>(&self, name: &str) -> Option<K> {
        self.get_opt_in(None, name).await
    }

    /// Reads an object from a namespace; `None` if absent.
    pub async fn get_opt_in<K: TestObject>(&self, namespace: Option<&str>, name: &str) -> Option<K> {
        self.api::<K>(namespace)
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("reading {} {name:?} failed: {e}", K::kind(&())))
    }

    /// Reads an object from `default` (or cluster-scoped); panics if absent.
    pub async fn get<K: TestObject>(&self, name: &str) -> K {
        self.get_opt(name).await.unwrap_or_else(|| panic!("{} {name:?} does not exist", K::kind(&())))
    }

    /// Merge-patches an object in `default` (or cluster-scoped); panics on failure.
    pub async fn patch<K: TestObject>(&self, name: &str, patch: Value) -> K {
        self.api::<K>(None)
            .merge(name, patch)
            .await
            .unwrap_or_else(|e| panic!("patching {} {name:?} failed: {e}", K::kind(&())))
    }

    /// Merge-patches an object's status subresource; panics on failure.
    pub async fn patch_status<K: TestObject>(&self, name: &str, patch: Value) -> K {
        self.api::<K>(None)
            .patch(name, PatchType::Merge, patch, Some("status"))
            .await
            .unwrap_or_else(|e| panic!("patching the status of {} {name:?} failed: {e}", K::kind(&())))
    }

    /// Deletes an object in `default` (or cluster-scoped); panics on failure.
    pub async fn delete<K: TestObject>(&self, name: &str) {
        self.api::<K>(None)
            .delete(name)
            .await
            .unwrap_or_else(|e| panic!("deleting {} {name:?} failed: {e}", K::kind(&())));
    }

    /// Lists the objects of a kind in all namespaces.
    pub async fn list<K: TestObject>(&self) -> Vec<K> {
        self.cluster
            .api::<K>(None)
            .list()
            .await
            .unwrap_or_else(|e| panic!("listing {} failed: {e}", K::kind(&())))
    }

    /// The current object, read synchronously (for `wait_for` predicates); `None` if absent.
    pub fn peek<K: TestObject>(&self, name: &str) -> Option<K> {
        let ns = if self.namespaced::<K>() { "default" } else { "" };
        self.cluster.object(&K::group(&()), &K::plural(&()), ns, name).and_then(|o| o.parse().ok())
    }
}
