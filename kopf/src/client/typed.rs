//! [`Api`]: the operator's own connection, typed, for handlers that read or write other objects
//! (children, config, peers). It goes through the same [`ApiClient`] as the reactor — the login
//! handlers' credentials, the fake under KopfRunner — so a handler never needs a client of its own.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ApiClient, Error, PatchBody, Result};
use crate::structs::references::Resource;

/// A typed view of the operator's [`ApiClient`], handed to handlers by
/// [`Context::api`](crate::Context::api). Cheap to clone.
///
/// The type decides the resource (any `kube::Resource` with static type information: k8s-openapi
/// built-ins and `#[derive(CustomResource)]` types); the namespace argument decides the scope
/// (`None` for cluster-scoped objects or cluster-wide lists).
///
/// ```
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kopf::{Context, HandlerError, Operator};
///
/// let operator = Operator::new().on_create(|cm: Arc<ConfigMap>, ctx: Context| async move {
///     let mut copy = ConfigMap::default();
///     copy.metadata.name = Some(format!("{}-copy", ctx.name().unwrap_or_default()));
///     copy.data = cm.data.clone();
///     ctx.api().create(ctx.namespace(), &copy).await?;
///     Ok::<_, HandlerError>(())
/// });
/// # let _ = operator;
/// ```
#[derive(Clone, Debug)]
pub struct Api {
    client: Arc<dyn ApiClient>,
}

impl Api {
    /// A typed view of `client`.
    pub fn new(client: Arc<dyn ApiClient>) -> Self {
        Self { client }
    }

    /// The untyped client underneath.
    pub fn raw(&self) -> &dyn ApiClient {
        self.client.as_ref()
    }

    /// Creates `object` in `namespace`; the stored object.
    ///
    /// # Errors
    /// The API's error (e.g. [`Error::Conflict`] if it exists), or [`Error::Decode`].
    pub async fn create<K: Typed>(&self, namespace: Option<&str>, object: &K) -> Result<K> {
        let mut body = serde_json::to_value(object).map_err(|e| Error::Decode(e.to_string()))?;
        body["apiVersion"] = Value::String(K::api_version(&()).into_owned());
        body["kind"] = Value::String(K::kind(&()).into_owned());
        decode(self.client.create(&resource::<K>(namespace), namespace, &body).await?)
    }

    /// Reads an object; `None` if it does not exist.
    ///
    /// # Errors
    /// The API's error other than 404, or [`Error::Decode`].
    pub async fn get<K: Typed>(&self, namespace: Option<&str>, name: &str) -> Result<Option<K>> {
        match self.client.get(&resource::<K>(namespace), namespace, name).await {
            Ok(body) => decode(body).map(Some),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists the objects in `namespace` (or everywhere with `None`).
    ///
    /// # Errors
    /// The API's error, or [`Error::Decode`].
    pub async fn list<K: Typed>(&self, namespace: Option<&str>) -> Result<Vec<K>> {
        let list =
            self.client.list(&resource::<K>(namespace), namespace, &super::Selectors::default()).await?;
        list.items.into_iter().map(decode).collect()
    }

    /// Applies an RFC 7386 merge patch to an object (or its `status` with `subresource`).
    ///
    /// # Errors
    /// The API's error, or [`Error::Decode`].
    pub async fn patch<K: Typed>(
        &self,
        namespace: Option<&str>,
        name: &str,
        merge: Value,
        subresource: Option<&str>,
    ) -> Result<K> {
        let body = PatchBody::Merge(merge);
        decode(self.client.patch(&resource::<K>(namespace), namespace, name, &body, subresource).await?)
    }

    /// Deletes an object; `Ok` also when it is already gone.
    ///
    /// # Errors
    /// The API's error other than 404.
    pub async fn delete<K: Typed>(&self, namespace: Option<&str>, name: &str) -> Result<()> {
        match self.client.delete(&resource::<K>(namespace), namespace, name).await {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What [`Api`] works with: a Kubernetes type with static type information.
pub trait Typed: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync {}

impl<K> Typed for K where K: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync {}

fn resource<K: Typed>(namespace: Option<&str>) -> Resource {
    let plural = K::plural(&()).into_owned();
    Resource {
        group: K::group(&()).into_owned(),
        version: K::version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        singular: K::kind(&()).to_lowercase(),
        short_names: Vec::new(),
        namespaced: namespace.is_some(),
        status_subresource: false,
        preferred: true,
        plural,
    }
}

fn decode<K: DeserializeOwned>(body: Value) -> Result<K> {
    serde_json::from_value(body).map_err(|e| Error::Decode(e.to_string()))
}
