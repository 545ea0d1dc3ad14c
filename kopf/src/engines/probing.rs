//! The liveness endpoint (Kopf's `probing`): an HTTP server on `settings.liveness.endpoint`
//! (`http://host:port/path`, Kopf's `--liveness`) answering `GET path` with the probe handlers'
//! results as a JSON object (run at most every 10 s), and `GET /metrics` with the operator's
//! metrics in Prometheus' text format. Any other path is a 404.
//!
//! It listens on a real socket, so it is for production and real-time tests only: under a paused
//! clock a socket's peer does not hold virtual time (reference/virtual-time.md, rule 5).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::activities::Probes;
use crate::primitives::activity::Activity;
use crate::primitives::metrics::Metrics;
use crate::primitives::tasks::OwnedTask;
use crate::primitives::toggles::ToggleSet;

/// What the endpoint serves.
#[derive(Clone)]
pub(crate) struct Health {
    pub(crate) probes: Probes,
    pub(crate) metrics: Metrics,
    pub(crate) activity: Activity,
    pub(crate) paused: ToggleSet,
}

/// Where to listen and the probe path, from `http://host:port/path` (Kopf: only `http`; the host
/// defaults to `localhost`, the port to 80).
///
/// # Errors
/// Another scheme, or an address that does not resolve.
pub(crate) async fn parse(endpoint: &str) -> Result<(SocketAddr, String), String> {
    let uri: http::Uri = endpoint.parse().map_err(|e| format!("the liveness endpoint {endpoint:?}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("unsupported scheme of the liveness endpoint: {endpoint}"));
    }
    let host = uri.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("the liveness endpoint's host {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("the liveness endpoint's host {host:?} has no address"))?;
    let path = if uri.path().is_empty() { "/".to_owned() } else { uri.path().to_owned() };
    Ok((addr, path))
}

/// Binds the endpoint and serves it until the task is dropped; the bound address.
///
/// # Errors
/// A bad endpoint, or the address cannot be bound.
pub(crate) async fn serve(endpoint: &str, health: Health) -> Result<(SocketAddr, OwnedTask<()>), String> {
    let (addr, path) = parse(endpoint).await?;
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::debug!("Serving health status at http://{bound}{path}");
    let (health, path) = (Arc::new(health), Arc::new(path));
    let task = OwnedTask::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (health, path) = (health.clone(), path.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (health, path) = (health.clone(), path.clone());
                    async move { Ok::<_, std::convert::Infallible>(answer(&health, &path, &request).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "A liveness connection failed.");
                }
            });
        }
    });
    Ok((bound, task))
}

async fn answer(health: &Health, path: &str, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert(http::header::CONTENT_TYPE, value);
        }
        response
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "405: Method Not Allowed".into());
    }
    match request.uri().path() {
        p if p == path => {
            let results = health.probes.run().await;
            let body = serde_json::to_string(&results).unwrap_or_else(|_| "{}".into());
            respond(StatusCode::OK, "application/json; charset=utf-8", body)
        }
        "/metrics" => {
            let text = health.metrics.render(&health.activity, health.paused.is_on());
            respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text)
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "404: Not Found".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_parse_like_kopfs() {
        let (addr, path) = parse("http://127.0.0.1:8080/healthz").await.unwrap();
        assert_eq!((addr.to_string().as_str(), path.as_str()), ("127.0.0.1:8080", "/healthz"));
        let (addr, path) = parse("http://127.0.0.1").await.unwrap();
        assert_eq!((addr.port(), path.as_str()), (80, "/"));
        assert!(parse("https://127.0.0.1:8080/healthz").await.unwrap_err().contains("unsupported scheme"));
        assert!(parse("not a url").await.is_err());
    }
}
