//! Typed access to the core for tests: create, get, list, patch and delete any `kube::Resource`
//! (k8s-openapi built-ins and `#[derive(CustomResource)]` types) without HTTP or a client, through
//! the same door as every other request ([`Cluster::handle`]), so faults and the journal apply.

use std::marker::PhantomData;

use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::{ApiError, Result};
use crate::request::{PatchType, Request, Response, Verb};

/// A typed handle on one resource, optionally scoped to a namespace.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fake_apiserver::ApiError> {
/// use k8s_openapi::api::core::v1::ConfigMap;
/// let server = fake_apiserver::FakeApiServer::new();
/// let configmaps = server.cluster().api::<ConfigMap>(Some("default"));
/// let mut cm = ConfigMap::default();
/// cm.metadata.name = Some("settings".into());
/// configmaps.create(&cm).await?;
/// assert_eq!(configmaps.list().await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TypedApi<K> {
    cluster: Cluster,
    namespace: Option<String>,
    actor: String,
    _kind: PhantomData<fn() -> K>,
}

impl Cluster {
    /// A typed handle for `K` in `namespace` (`None`: cluster-scoped, or all namespaces for lists).
    pub fn api<K>(&self, namespace: Option<&str>) -> TypedApi<K>
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        TypedApi {
            cluster: self.clone(),
            namespace: namespace.map(str::to_owned),
            actor: "test".to_owned(),
            _kind: PhantomData,
        }
    }
}

impl<K> TypedApi<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
{
    /// Names the requests' actor in the journal (default `test`).
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    fn request(&self, verb: Verb, name: Option<&str>) -> Request {
        let mut req = Request::new(verb, &K::group(&()), &K::version(&()), &K::plural(&()));
        req.namespace = self.namespace.clone();
        req.name = name.map(str::to_owned);
        req.actor = self.actor.clone();
        req
    }

    async fn object(&self, req: Request) -> Result<K> {
        match self.cluster.handle(req).await? {
            Response::Object(o) => decode(&o.value()),
            other => Err(ApiError::Internal(format!("expected an object, got {other:?}"))),
        }
    }

    /// Creates an object.
    ///
    /// # Errors
    /// The server's error, e.g. 409 AlreadyExists or 422 Invalid.
    pub async fn create(&self, object: &K) -> Result<K> {
        let body = serde_json::to_value(object).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        self.object(self.request(Verb::Create, None).body(body)).await
    }

    /// Reads an object.
    ///
    /// # Errors
    /// 404 NotFound if it does not exist.
    pub async fn get(&self, name: &str) -> Result<K> {
        self.object(self.request(Verb::Get, Some(name))).await
    }

    /// Reads an object, or `None` if it does not exist.
    ///
    /// # Errors
    /// Any error but 404.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists the objects (of the namespace, or all).
    ///
    /// # Errors
    /// The server's error.
    pub async fn list(&self) -> Result<Vec<K>> {
        match self.cluster.handle(self.request(Verb::List, None)).await? {
            Response::List(list) => list.items.iter().map(|o| decode(&o.value())).collect(),
            other => Err(ApiError::Internal(format!("expected a list, got {other:?}"))),
        }
    }

    /// Applies a patch of the given flavour (to `subresource`, e.g. `status`, if given).
    ///
    /// # Errors
    /// The server's error, e.g. 404, 409, 422.
    pub async fn patch(
        &self,
        name: &str,
        patch_type: PatchType,
        patch: Value,
        subresource: Option<&str>,
    ) -> Result<K> {
        let mut req = self.request(Verb::Patch, Some(name)).patch_type(patch_type).body(patch);
        req.subresource = subresource.map(str::to_owned);
        if patch_type == PatchType::Apply {
            req.params.field_manager = Some(self.actor.clone());
        }
        self.object(req).await
    }

    /// A JSON merge patch of the main resource.
    ///
    /// # Errors
    /// The server's error.
    pub async fn merge(&self, name: &str, patch: Value) -> Result<K> {
        self.patch(name, PatchType::Merge, patch, None).await
    }

    /// Deletes an object; returns it while it is still there (finalizers, grace), `None` once gone.
    ///
    /// # Errors
    /// The server's error, e.g. 404.
    pub async fn delete(&self, name: &str) -> Result<Option<K>> {
        match self.cluster.handle(self.request(Verb::Delete, Some(name))).await? {
            Response::Object(o) if o.is_deleting() => decode(&o.value()).map(Some),
            _ => Ok(None),
        }
    }
}

fn decode<K: DeserializeOwned>(value: &Value) -> Result<K> {
    K::deserialize(value).map_err(|e| ApiError::Internal(format!("the stored object does not decode: {e}")))
}
