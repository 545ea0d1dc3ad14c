//! The tower `Service` over the core: HTTP requests in, Kubernetes responses out, never an `Err`
//! (every failure is a status code with a `meta/v1 Status` body). `kube::Client::new(service, ns)`
//! works with it unchanged, including kube-runtime's watcher, reflector, Controller, finalizer helper
//! and events Recorder; the HTTP(S) front serves the same service over TCP.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::UnsyncBoxBody};
use serde_json::{Value, json};

use crate::accept::Accept;
use crate::auth::Identity;
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::request::{ListResult, PatchType, Request, Response, Verb};
use crate::routing::{self, Route, Target};
use crate::store::objects::StoredObject;
use crate::table::{Printer, TableOptions};
use crate::watch::{WatchEvent, present_version};
use crate::{discovery, openapi};

/// The response body of the service: whole for unary calls, streaming for watches.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The in-process API server as a tower `Service`. Cheap to clone.
///
/// Requests are made as the service's identity ([`FakeService::for_identity`]), or as the
/// [`Identity`] in the request's extensions (the HTTP front puts the one its bearer token
/// authenticates there); with neither, as the loopback identity.
#[derive(Debug, Clone)]
pub struct FakeService {
    cluster: Cluster,
    identity: Option<Identity>,
}

impl FakeService {
    /// A service over a cluster.
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster, identity: None }
    }

    /// The same service, making requests as `identity`.
    #[must_use]
    pub fn for_identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }
}

impl<B> tower::Service<http::Request<B>> for FakeService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let cluster = self.cluster.clone();
        let identity = req.extensions().get::<Identity>().cloned().or_else(|| self.identity.clone());
        Box::pin(async move { Ok(serve(cluster, identity, req).await) })
    }
}

/// How the client wants objects: whole, as `PartialObjectMetadata`, or as a `Table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Full,
    Metadata,
    Table(TableOptions),
}

async fn serve<B>(cluster: Cluster, identity: Option<Identity>, req: http::Request<B>) -> http::Response<Body>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error(&ApiError::BadRequest(format!("unable to read the request body: {e}")));
        }
    };
    let Some(route) = routing::route(parts.uri.path()) else {
        return error(&ApiError::NoSuchResource);
    };
    if !matches!(route, Route::Resource(_))
        && let Err(e) = cluster.authorize_path(
            identity.as_ref(),
            &parts.method.as_str().to_ascii_lowercase(),
            parts.uri.path(),
        )
    {
        return error(&e);
    }
    if let Route::OpenApi(document) = &route {
        return match openapi::serve(&cluster.resources(), document, &Accept::of(&parts.headers)) {
            Ok(bytes) => bytes_response(StatusCode::OK, bytes),
            Err(e) => error(&e),
        };
    }
    if matches!(route, Route::CoreVersions | Route::Groups)
        && let Some(version) = discovery::aggregated_version(&Accept::of(&parts.headers))
    {
        let core = route == Route::CoreVersions;
        let doc = cluster.with_registry(|r| discovery::aggregated(r, core, version));
        let mut response = json_response(StatusCode::OK, &doc);
        let content_type = HeaderValue::from_static(discovery::aggregated_content_type(version));
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
        return response;
    }
    let discovery_doc = match &route {
        Route::Version => Some(discovery::version()),
        Route::Health => return plain(StatusCode::OK, "ok"),
        Route::Metrics => return metrics(&cluster),
        Route::CoreVersions => Some(discovery::core_versions()),
        Route::Groups => Some(cluster.with_registry(discovery::groups)),
        Route::Group(g) => cluster.with_registry(|r| discovery::group(r, g)),
        Route::ResourceList { group, version } => {
            cluster.with_registry(|r| discovery::resource_list(r, group, version))
        }
        Route::Resource(_) | Route::OpenApi(_) => None,
    };
    let Route::Resource(target) = route else {
        return match discovery_doc {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => error(&ApiError::NoSuchResource),
        };
    };
    let mut request = match build_request(&parts, &target, &body) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    request.user = identity;
    let shape = match shape(&parts.headers, parts.uri.query()) {
        Ok(shape) => shape,
        Err(e) => return error(&e),
    };
    let verb = request.verb;
    let (result, warnings) = cluster.handle_warned(request).await;
    let mut response = match result {
        Ok(response) => respond(&cluster, &target, verb, response, shape),
        Err(e) => error(&e),
    };
    add_warnings(&mut response, &warnings);
    response
}

/// `Warning: 299 - "<text>"` headers, one per warning, as the real server sends them.
fn add_warnings(response: &mut http::Response<Body>, warnings: &[String]) {
    for warning in warnings {
        let text = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
}

fn build_request(parts: &http::request::Parts, target: &Target, body: &Bytes) -> Result<Request, ApiError> {
    let (params, watch) = routing::params(parts.uri.query())?;
    let verb = match (&parts.method, target.name.is_some()) {
        (&Method::GET, true) => Verb::Get,
        (&Method::GET, false) if watch => Verb::Watch,
        (&Method::GET, false) => Verb::List,
        (&Method::POST, _) => Verb::Create,
        (&Method::PUT, _) => Verb::Update,
        (&Method::PATCH, _) => Verb::Patch,
        (&Method::DELETE, true) => Verb::Delete,
        (&Method::DELETE, false) => Verb::DeleteCollection,
        (method, _) => {
            return Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource: {method}"
            )));
        }
    };
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let patch_type = if verb == Verb::Patch {
        Some(PatchType::from_content_type(content_type).ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
                 application/strategic-merge-patch+json (got {content_type:?})"
            ))
        })?)
    } else {
        None
    };
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let review = target.subresource.is_none()
        && matches!(target.group.as_str(), "authorization.k8s.io" | "authentication.k8s.io");
    let decoded = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if review && verb == Verb::Create && media == crate::auth::protobuf::CONTENT_TYPE {
        Some(crate::auth::protobuf::decode_review(&target.plural, body)?)
    } else {
        let yaml = match patch_type {
            Some(patch_type) => patch_type == PatchType::Apply || content_type.contains("yaml"),
            None => body_is_yaml(content_type)?,
        };
        Some(decode_body(body, yaml)?)
    };
    let actor = params
        .field_manager
        .clone()
        .or_else(|| parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned))
        .unwrap_or_else(|| "client".to_owned());
    Ok(Request {
        verb,
        group: target.group.clone(),
        version: target.version.clone(),
        plural: target.plural.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        subresource: target.subresource.clone(),
        body: decoded,
        patch_type,
        params,
        actor,
        user: None,
    })
}

/// Whether a create, update or delete body is YAML (else JSON), from its `Content-Type`; 415 for
/// any other media type, as the real server answers a type it has no decoder for. An absent type
/// means JSON (the server's first). Protobuf is refused so: the real server decodes it for
/// built-ins, this fake speaks JSON and YAML only (client-go's typed clients, e.g. `kubectl create
/// configmap`, send protobuf and do not fall back on a 415).
fn body_is_yaml(content_type: &str) -> Result<bool, ApiError> {
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "" | "application/json" => Ok(false),
        "application/yaml" => Ok(true),
        _ => Err(ApiError::UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml"
                .to_owned(),
        )),
    }
}

/// JSON, or YAML for apply patches and YAML bodies.
fn decode_body(body: &[u8], yaml: bool) -> Result<Value, ApiError> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) if yaml => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::BadRequest("the request body is not UTF-8".to_owned()))?;
            serde_saphyr::from_str(text)
                .map_err(|y| ApiError::BadRequest(format!("error decoding YAML: {y} (as JSON: {e})")))
        }
        Err(e) => Err(ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))),
    }
}

/// The first shape the `Accept` header names that the server can produce; 406 if there is none.
fn shape(headers: &http::HeaderMap, query: Option<&str>) -> Result<Shape, ApiError> {
    let accept = Accept::of(headers);
    for range in accept.json_ranges() {
        match range.conversion() {
            None => return Ok(Shape::Full),
            Some((
                "PartialObjectMetadata" | "PartialObjectMetadataList",
                "meta.k8s.io",
                "v1" | "v1beta1",
            )) => {
                return Ok(Shape::Metadata);
            }
            Some(("Table", "meta.k8s.io", v @ ("v1" | "v1beta1"))) => {
                return Ok(Shape::Table(TableOptions::parse(query, v)?));
            }
            Some(_) => {}
        }
    }
    if accept.allows_json() {
        return Ok(Shape::Full);
    }
    Err(ApiError::NotAcceptable(
        "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io, \
         application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
            .to_owned(),
    ))
}

fn api_version_of(target: &Target) -> String {
    if target.group.is_empty() {
        target.version.clone()
    } else {
        format!("{}/{}", target.group, target.version)
    }
}

fn present(object: &StoredObject, api_version: &str, shape: Shape) -> Bytes {
    match shape {
        Shape::Full | Shape::Table(_) => present_version(object, api_version),
        Shape::Metadata => {
            let value = object.value();
            let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": value["metadata"]});
            Bytes::from(serde_json::to_vec(&partial).unwrap_or_default())
        }
    }
}

fn respond(
    cluster: &Cluster,
    target: &Target,
    verb: Verb,
    response: Response,
    shape: Shape,
) -> http::Response<Body> {
    let code = StatusCode::from_u16(response.code(verb)).unwrap_or(StatusCode::OK);
    let api_version = api_version_of(target);
    if let Shape::Table(options) = shape {
        return respond_table(cluster, target, code, response, options);
    }
    match response {
        Response::Object(object) => bytes_response(code, present(&object, &api_version, shape)),
        Response::Status(value) => json_response(code, &value),
        Response::List(list) => bytes_response(code, list_bytes(&list, &api_version, shape)),
        Response::Watch(stream) => {
            let info = stream.info().clone();
            let lines = stream.map(move |event| {
                let line = match (&event, shape) {
                    // The real server converts bookmarks like any object: to PartialObjectMetadata.
                    (WatchEvent::Bookmark { .. }, Shape::Metadata) => {
                        let bookmark = crate::table::bookmark_object(&event, &info);
                        let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": bookmark["metadata"]});
                        let line = json!({"type": "BOOKMARK", "object": partial});
                        Bytes::from(format!("{line}\n"))
                    }
                    _ => event.to_json_line(&info, |o| present(o, &api_version, shape)),
                };
                Ok::<_, Infallible>(http_body::Frame::data(line))
            });
            watch_response(StreamBody::new(lines).boxed_unsync())
        }
    }
}

fn watch_response(body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    response
}

/// A response as a `meta.k8s.io` Table (src/table.rs); a Status (deletes) stays a Status.
fn respond_table(
    cluster: &Cluster,
    target: &Target,
    code: StatusCode,
    response: Response,
    options: TableOptions,
) -> http::Response<Body> {
    let now = cluster.clock().now();
    match response {
        Response::Status(value) => json_response(code, &value),
        Response::List(list) => bytes_response(code, Printer::new(&list.info, options, now).list(&list)),
        Response::Object(object) => match cluster.resource(&target.group, &target.version, &target.plural) {
            Some(info) => bytes_response(code, Printer::new(&info, options, now).object(&object)),
            None => error(&ApiError::NoSuchResource),
        },
        Response::Watch(stream) => {
            let info = stream.info().clone();
            let mut printer = Printer::new(&info, options, now);
            let lines = stream.map(move |event| {
                Ok::<_, Infallible>(http_body::Frame::data(printer.watch_line(&event, &info)))
            });
            watch_response(StreamBody::new(lines).boxed_unsync())
        }
    }
}

fn list_bytes(list: &ListResult, api_version: &str, shape: Shape) -> Bytes {
    if shape == Shape::Full && list.items.iter().all(|i| i.api_version() == api_version) {
        return Bytes::from(list.to_json());
    }
    let mut value = list.to_value();
    if shape == Shape::Metadata {
        value["kind"] = json!("PartialObjectMetadataList");
        value["apiVersion"] = json!("meta.k8s.io/v1");
    }
    if let Some(items) = value["items"].as_array_mut() {
        for (item, stored) in items.iter_mut().zip(&list.items) {
            *item = serde_json::from_slice(&present(stored, api_version, shape)).unwrap_or(Value::Null);
        }
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

fn bytes_response(code: StatusCode, bytes: Bytes) -> http::Response<Body> {
    let mut response = http::Response::new(Full::new(bytes).boxed_unsync());
    *response.status_mut() = code;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn json_response(code: StatusCode, value: &Value) -> http::Response<Body> {
    bytes_response(code, Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
}

fn plain(code: StatusCode, text: &'static str) -> http::Response<Body> {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync());
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The request counters in Prometheus' text format.
fn metrics(cluster: &Cluster) -> http::Response<Body> {
    let text = crate::metrics::render(&cluster.request_counts());
    let mut response = http::Response::new(Full::new(Bytes::from(text)).boxed_unsync());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// An error as the real server sends it: its code, a Status body, and `Retry-After` for 429.
pub(crate) fn error(e: &ApiError) -> http::Response<Body> {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(code, &e.to_status());
    if let Some(seconds) = e.retry_after_seconds()
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
