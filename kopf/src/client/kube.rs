//! [`KubeApiClient`]: the production [`ApiClient`] over any `kube::Client` — a real cluster, or the
//! fake API server's tower Service in tests.

use futures::StreamExt as _;
use kube::api::{DeleteParams, ListParams, PatchParams, PostParams, WatchParams};
use kube::core::{Request, WatchEvent};
use serde_json::Value;

use super::{ApiClient, BoxFuture, Error, ObjectList, PatchBody, RawEvent, Result, Selectors};
use crate::structs::references::Resource;

/// An [`ApiClient`] over a `kube::Client`.
///
/// At most [`KubeApiClient::DEFAULT_MAX_IN_FLIGHT`] requests are in flight at once (watches aside);
/// the others wait their turn. `kube::Client` speaks HTTP/1.1, one request per connection at a
/// time, so without a bound a backlog of thousands of objects opens thousands of connections (each
/// with its buffers, in the operator and in the API server) and spends its time connecting.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// let client = kube::Client::try_default().await?;
/// let api = kopf::KubeApiClient::new(client.clone());
/// let wider = kopf::KubeApiClient::new(client).max_in_flight(256);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KubeApiClient {
    client: kube::Client,
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for KubeApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApiClient").finish_non_exhaustive()
    }
}

impl KubeApiClient {
    /// How many requests (watches aside) are in flight at most, unless told otherwise.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

    /// Wraps a `kube::Client`.
    pub fn new(client: kube::Client) -> Self {
        let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(Self::DEFAULT_MAX_IN_FLIGHT));
        Self { client, in_flight }
    }

    /// The same client with at most `requests` requests in flight at once (at least one; watches
    /// are not counted).
    #[must_use]
    pub fn max_in_flight(self, requests: usize) -> Self {
        Self { in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(requests.max(1))), ..self }
    }

    /// Sends a request when a slot is free and decodes its response.
    async fn send<T: serde::de::DeserializeOwned>(&self, req: http::Request<Vec<u8>>) -> Result<T> {
        // The semaphore is never closed, so the permit always comes.
        let _permit = self.in_flight.acquire().await.ok();
        self.client.request(req).await.map_err(convert)
    }

    /// The wrapped client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }
}

fn convert(e: kube::Error) -> Error {
    match e {
        kube::Error::Api(status) => {
            let retry_after = status.details.as_ref().map(|d| d.retry_after_seconds).filter(|s| *s > 0);
            Error::from_status(status.code, status.message.clone(), retry_after)
        }
        kube::Error::SerdeError(e) => Error::Decode(e.to_string()),
        other => Error::Transport(other.to_string()),
    }
}

fn build(
    result: std::result::Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<http::Request<Vec<u8>>> {
    result.map_err(|e| Error::Transport(format!("cannot build the request: {e}")))
}

fn item_path(resource: &Resource, namespace: Option<&str>) -> Request {
    Request::new(resource.url_path(namespace))
}

/// Adds what kube's `ListParams`/`WatchParams` have no field for (`shardSelector`) to the query
/// of a request kube built.
fn select(mut req: http::Request<Vec<u8>>, selectors: &Selectors) -> Result<http::Request<Vec<u8>>> {
    let Some(shard) = &selectors.shard else { return Ok(req) };
    let mut query = form_urlencoded::Serializer::new(req.uri().query().unwrap_or_default().to_owned());
    query.append_pair("shardSelector", shard);
    let uri = format!("{}?{}", req.uri().path(), query.finish());
    *req.uri_mut() = uri.parse().map_err(|e| Error::Transport(format!("cannot build the request: {e}")))?;
    Ok(req)
}

impl KubeApiClient {
    async fn get_json(&self, path: &str) -> Result<Value> {
        let req = http::Request::get(path).body(Vec::new()).map_err(|e| Error::Transport(e.to_string()))?;
        self.send(req).await
    }
}

/// The resources of one `APIResourceList`, with their status subresource noted.
pub(crate) fn resources_of(list: &Value, group: &str, version: &str, preferred: bool) -> Vec<Resource> {
    let entries = list["resources"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = entries.iter().filter_map(|r| r["name"].as_str()).collect();
    entries
        .iter()
        .filter_map(|r| {
            let plural = r["name"].as_str()?;
            if plural.contains('/') {
                return None;
            }
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default()
            };
            let kind = r["kind"].as_str().unwrap_or_default().to_owned();
            let singular = r["singularName"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map_or_else(|| kind.to_lowercase(), str::to_owned);
            Some(Resource {
                group: group.to_owned(),
                version: version.to_owned(),
                plural: plural.to_owned(),
                kind,
                singular,
                short_names: strings(&r["shortNames"]),
                namespaced: r["namespaced"].as_bool().unwrap_or(false),
                status_subresource: names.contains(&format!("{plural}/status").as_str()),
                preferred,
            })
        })
        .collect()
}

impl ApiClient for KubeApiClient {
    fn discover(&self) -> BoxFuture<'_, Result<Vec<Resource>>> {
        Box::pin(async move {
            // The legacy discovery documents, read directly: they carry short names, which
            // `kube::discovery` drops.
            let mut groups: Vec<(String, String, bool)> = vec![(String::new(), "v1".to_owned(), true)];
            let apis: Value = self.get_json("/apis").await?;
            for group in apis["groups"].as_array().into_iter().flatten() {
                let name = group["name"].as_str().unwrap_or_default();
                let preferred = group["preferredVersion"]["version"].as_str().unwrap_or_default();
                for version in group["versions"].as_array().into_iter().flatten() {
                    let v = version["version"].as_str().unwrap_or_default();
                    groups.push((name.to_owned(), v.to_owned(), v == preferred));
                }
            }
            let mut out = Vec::new();
            for (group, version, preferred) in groups {
                let path = if group.is_empty() {
                    format!("/api/{version}")
                } else {
                    format!("/apis/{group}/{version}")
                };
                let list: Value = match self.get_json(&path).await {
                    Ok(list) => list,
                    Err(Error::NotFound(_)) => continue, // removed while we looked
                    Err(e) => return Err(e),
                };
                out.extend(resources_of(&list, &group, &version, preferred));
            }
            out.sort();
            Ok(out)
        })
    }

    fn list<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        selectors: &'a Selectors,
    ) -> BoxFuture<'a, Result<ObjectList>> {
        Box::pin(async move {
            let req = select(build(item_path(resource, namespace).list(&ListParams::default()))?, selectors)?;
            let mut list: Value = self.send(req).await?;
            let shard_info = list["metadata"]["shardInfo"]["selector"].as_str().map(str::to_owned);
            // Moved out, not cloned: a large listing is the operator's peak of memory.
            let items = match list["items"].take() {
                Value::Array(items) => items,
                _ => Vec::new(),
            };
            let resource_version =
                list["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_owned();
            // Items of a list carry no apiVersion/kind on a real server; the reactor needs them.
            let items = items
                .into_iter()
                .map(|mut item| {
                    item["apiVersion"] = Value::String(resource.api_version());
                    item["kind"] = Value::String(resource.kind.clone());
                    item
                })
                .collect();
            Ok(ObjectList { items, resource_version, shard_info })
        })
    }

    fn watch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        resource_version: &'a str,
        timeout_seconds: Option<u64>,
        selectors: &'a Selectors,
    ) -> BoxFuture<'a, Result<futures::stream::BoxStream<'static, Result<RawEvent>>>> {
        Box::pin(async move {
            let mut params = WatchParams::default();
            if let Some(t) = timeout_seconds {
                params = params.timeout(u32::try_from(t).unwrap_or(u32::MAX));
            }
            let req =
                select(build(item_path(resource, namespace).watch(&params, resource_version))?, selectors)?;
            let stream = self.client.request_events::<Value>(req).await.map_err(convert)?;
            let events = stream.map(|item: std::result::Result<WatchEvent<Value>, kube::Error>| {
                item.map_err(convert).map(|event| match event {
                    WatchEvent::Added(o) => RawEvent::Added(o),
                    WatchEvent::Modified(o) => RawEvent::Modified(o),
                    WatchEvent::Deleted(o) => RawEvent::Deleted(o),
                    WatchEvent::Bookmark(b) => {
                        RawEvent::Bookmark { resource_version: b.metadata.resource_version }
                    }
                    WatchEvent::Error(s) => RawEvent::Error { code: s.code, message: s.message.clone() },
                })
            });
            Ok(events.boxed())
        })
    }

    fn get<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            let req = build(item_path(resource, namespace).get(name, &Default::default()))?;
            self.send(req).await
        })
    }

    fn create<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            let data = serde_json::to_vec(body).map_err(|e| Error::Decode(e.to_string()))?;
            let req = build(item_path(resource, namespace).create(&PostParams::default(), data))?;
            self.send(req).await
        })
    }

    fn patch<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: &'a PatchBody,
        subresource: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            let patch = match patch {
                PatchBody::Merge(v) => kube::api::Patch::Merge(v.clone()),
                PatchBody::Json(v) => {
                    let ops: json_patch::Patch =
                        serde_json::from_value(v.clone()).map_err(|e| Error::Decode(e.to_string()))?;
                    kube::api::Patch::Json(ops)
                }
            };
            let request = item_path(resource, namespace);
            let params = PatchParams::default();
            let req = match subresource {
                Some(sub) => build(request.patch_subresource(sub, name, &params, &patch))?,
                None => build(request.patch(name, &params, &patch))?,
            };
            self.send(req).await
        })
    }

    fn delete<'a>(
        &'a self,
        resource: &'a Resource,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let req = build(item_path(resource, namespace).delete(name, &DeleteParams::default()))?;
            let _permit = self.in_flight.acquire().await.ok();
            self.client.request_text(req).await.map(|_| ()).map_err(convert)
        })
    }
}
