//! The direct [`ApiClient`] over the fake API server's core: no HTTP, no JSON encoding of requests,
//! the same fault plan and journal as every other client path, and — made for an identity — the
//! same RBAC.

use futures::StreamExt as _;
use kopf::{ApiClient, ApiError, ApiResult, BoxFuture, ObjectList, PatchBody, RawEvent, Resource, Selectors};
use serde_json::Value;

use fake_apiserver::{Cluster, Identity, PatchType, Request, Response, Verb, WatchEvent};

/// An [`ApiClient`] calling [`Cluster::handle`] directly.
#[derive(Debug, Clone)]
pub struct DirectApiClient {
    cluster: Cluster,
    user: Option<Identity>,
}

impl DirectApiClient {
    /// A client of this cluster, acting as the loopback identity (allowed everything).
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster, user: None }
    }

    /// The same client, making its requests as `identity` (authorized when the cluster enforces
    /// RBAC).
    #[must_use]
    pub fn as_user(mut self, identity: Identity) -> Self {
        self.user = Some(identity);
        self
    }

    async fn send(&self, mut req: Request) -> fake_apiserver::Result<Response> {
        req.user.clone_from(&self.user);
        self.cluster.handle(req).await
    }
}

fn convert(e: &fake_apiserver::ApiError) -> ApiError {
    ApiError::from_status(e.code(), e.to_string(), e.retry_after_seconds())
}

fn request(verb: Verb, resource: &Resource, namespace: Option<&str>, name: Option<&str>) -> Request {
    let mut req = Request::new(verb, &resource.group, &resource.version, &resource.plural);
    req.namespace = namespace.filter(|_| resource.namespaced).map(str::to_owned);
    req.name = name.map(str::to_owned);
    req.actor = "kopf".to_owned();
    req
}

impl DirectApiClient {
    async fn object(&self, req: Request) -> ApiResult<Value> {
        match self.send(req).await {
            Ok(Response::Object(o)) => Ok(o.value()),
            Ok(Response::Status(v)) => Ok(v),
            Ok(other) => Err(ApiError::Decode(format!("unexpected response: {other:?}"))),
            Err(e) => Err(convert(&e)),
        }
    }
}

impl ApiClient for DirectApiClient {
    fn discover(&self) -> BoxFuture<'_, ApiResult<Vec<Resource>>> {
        Box::pin(async move {
            let infos = self.cluster.resources();
            let mut preferred: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
            for info in &infos {
                let entry = preferred.entry(info.group.clone()).or_insert_with(|| info.version.clone());
                if fake_apiserver::version_priority(&info.version, entry).is_lt() {
                    *entry = info.version.clone();
                }
            }
            Ok(infos
                .iter()
                .filter(|i| i.listable)
                .map(|i| Resource {
                    group: i.group.clone(),
                    version: i.version.clone(),
                    plural: i.plural.clone(),
                    kind: i.kind.clone(),
                    singular: i.singular.clone(),
                    short_names: i.short_names.clone(),
                    namespaced: i.namespaced,
                    status_subresource: i.status,
                    preferred: preferred.get(&i.group) == Some(&i.version),
                })
                .collect())
        })
    }

    fn list<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        selectors: &'a Selectors,
    ) -> BoxFuture<'a, ApiResult<ObjectList>> {
        Box::pin(async move {
            let mut req = request(Verb::List, resource, namespace, None);
            req.params.shard_selector = selectors.shard.clone();
            match self.send(req).await {
                Ok(Response::List(list)) => Ok(ObjectList {
                    items: list.items.iter().map(|o| o.value()).collect(),
                    resource_version: list.resource_version.to_string(),
                    shard_info: list.shard_selector.clone(),
                }),
                Ok(other) => Err(ApiError::Decode(format!("unexpected response: {other:?}"))),
                Err(e) => Err(convert(&e)),
            }
        })
    }

    fn watch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        resource_version: &'a str,
        timeout_seconds: Option<u64>,
        selectors: &'a Selectors,
    ) -> BoxFuture<'a, ApiResult<futures::stream::BoxStream<'static, ApiResult<RawEvent>>>> {
        Box::pin(async move {
            let mut req = request(Verb::Watch, resource, namespace, None);
            req.params.shard_selector = selectors.shard.clone();
            req.params.resource_version = Some(resource_version.to_owned());
            req.params.allow_watch_bookmarks = true;
            req.params.timeout_seconds = timeout_seconds;
            match self.send(req).await {
                Ok(Response::Watch(stream)) => Ok(stream
                    .map(|event| {
                        Ok(match event {
                            WatchEvent::Added(o) => RawEvent::Added(o.value()),
                            WatchEvent::Modified(o) => RawEvent::Modified(o.value()),
                            WatchEvent::Deleted(o) => RawEvent::Deleted(o.value()),
                            WatchEvent::Bookmark { resource_version, .. } => {
                                RawEvent::Bookmark { resource_version: resource_version.to_string() }
                            }
                            WatchEvent::Error(e) => {
                                RawEvent::Error { code: e.code(), message: e.to_string() }
                            }
                        })
                    })
                    .boxed()),
                Ok(other) => Err(ApiError::Decode(format!("unexpected response: {other:?}"))),
                Err(e) => Err(convert(&e)),
            }
        })
    }

    fn get<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(self.object(request(Verb::Get, resource, namespace, Some(name))))
    }

    fn create<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        body: &'a Value,
    ) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(self.object(request(Verb::Create, resource, namespace, None).body(body.clone())))
    }

    fn patch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: &'a PatchBody,
        subresource: Option<&'a str>,
    ) -> BoxFuture<'a, ApiResult<Value>> {
        let (patch_type, body) = match patch {
            PatchBody::Merge(v) => (PatchType::Merge, v.clone()),
            PatchBody::Json(v) => (PatchType::Json, v.clone()),
        };
        let mut req = request(Verb::Patch, resource, namespace, Some(name)).patch_type(patch_type).body(body);
        req.subresource = subresource.map(str::to_owned);
        Box::pin(self.object(req))
    }

    fn delete<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<()>> {
        Box::pin(async move {
            self.object(request(Verb::Delete, resource, namespace, Some(name))).await.map(|_| ())
        })
    }
}
