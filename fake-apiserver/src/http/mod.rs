//! The HTTP(S) front: the same [`FakeService`] the in-process client uses, served on a TCP listener
//! with hyper-util (HTTP/1.1 with keep-alive, and HTTP/2 by prior knowledge or ALPN), so kubectl,
//! client-go, the Python `kubernetes` client and Python Kopf can talk to the fake.
//!
//! What the front adds on the wire, and nothing more (the API semantics stay in the service):
//! - optional TLS with a throwaway CA (`tls`), and a kubeconfig to reach the server (`kubeconfig`);
//! - an optional bearer token: without `Authorization: Bearer <token>` a request gets 401 with a
//!   `Status`, except the health checks `/healthz`, `/livez` and `/readyz`; that token is the
//!   cluster administrator (`system:masters`), and other tokens the cluster knows
//!   ([`Cluster::register_token`], [`Cluster::issue_token`]) authenticate as their identity, which
//!   RBAC then authorizes when the cluster enforces it ([`crate::Builder::rbac`]);
//! - a request body limit (3 MiB by default, like the real server): a larger body gets 413
//!   `RequestEntityTooLarge`;
//! - a journal record per request ([`HttpRequest`]: method, path and query, status, wall-clock
//!   latency, peer);
//! - a graceful stop: no new connections, open watches end cleanly, in-flight requests finish
//!   within a grace period.
//!
//! Watch responses stream: one chunk per event, written as the event comes.
//!
//! ```
//! use fake_apiserver::{FakeApiServer, ServeOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = FakeApiServer::builder().seed(1).build();
//! let handle = server.serve(ServeOptions::default().tls(true).token("secret")).await?;
//! assert!(handle.url().starts_with("https://127.0.0.1:"));
//! let kubeconfig = handle.kubeconfig(); // YAML for kubectl or kube::Config::from_custom_kubeconfig
//! assert!(kubeconfig.contains("certificate-authority-data"));
//! handle.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Caveat: real sockets do not follow tokio's paused clock (reference/virtual-time.md rule 5), so
//! virtual-time tests use the in-process client, not this front.

mod kubeconfig;
mod tls;

use std::convert::Infallible;
use std::future::Future as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower::ServiceExt as _;

use crate::FakeApiServer;
use crate::auth::Identity;
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::journal::HttpRequest;
use crate::service::{self, Body, FakeService};

/// The request body limit of the real API server (3 MiB), and the default here.
pub const DEFAULT_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of [`serve`]. The defaults: 127.0.0.1, any free port, plain HTTP, no token, a 3 MiB
/// body limit, 5 s for in-flight requests to finish at shutdown.
#[derive(Debug, Clone)]
#[must_use]
pub struct ServeOptions {
    bind: IpAddr,
    port: u16,
    tls: bool,
    token: Option<String>,
    body_limit: usize,
    shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tls: false,
            token: None,
            body_limit: DEFAULT_BODY_LIMIT,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl ServeOptions {
    /// The address to listen on (default 127.0.0.1; `0.0.0.0` or `::` for every interface).
    pub fn bind(mut self, address: IpAddr) -> Self {
        self.bind = address;
        self
    }

    /// The port to listen on; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Serves HTTPS with a self-signed CA made at start ([`ServeHandle::ca_pem`]).
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request but the health checks.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The largest request body accepted, in bytes; larger ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long [`ServeHandle::shutdown`] lets in-flight requests finish before closing their
    /// connections.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
}

/// Why the front could not start, or could not write its kubeconfig.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener could not bind.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA or the serving certificate could not be made.
    #[error("cannot make the TLS certificates")]
    Certificate(#[source] rcgen::Error),
    /// rustls refused the configuration.
    #[error("cannot configure TLS")]
    Tls(#[source] rustls::Error),
    /// The kubeconfig could not be written.
    #[error("cannot write the kubeconfig to {path}")]
    WriteKubeconfig {
        /// Where it was to go.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Serves `server` over TCP until the returned handle is shut down or dropped.
///
/// Call it inside a tokio runtime; the listener and its connections are tasks of that runtime.
///
/// # Errors
/// [`ServeError::Bind`] when the address is taken or not local; [`ServeError::Certificate`] or
/// [`ServeError::Tls`] when TLS cannot be set up.
pub async fn serve(server: &FakeApiServer, options: ServeOptions) -> Result<ServeHandle, ServeError> {
    let address = SocketAddr::new(options.bind, options.port);
    let listener = TcpListener::bind(address).await.map_err(|source| ServeError::Bind { address, source })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind { address, source })?;
    let certificates = options.tls.then(|| tls::Certificates::generate(options.bind)).transpose()?;
    let acceptor = certificates.as_ref().map(tls::Certificates::acceptor).transpose()?;
    let url = base_url(local_addr, options.tls);
    // A served cluster calls admission webhooks over the network, as a real one does.
    server.cluster().set_webhook_network(true);
    let stop = CancellationToken::new();
    let front = Arc::new(Front {
        service: server.service(),
        cluster: server.cluster().clone(),
        token: options.token.as_deref().map(|t| format!("Bearer {t}")),
        body_limit: options.body_limit,
        stop: stop.clone(),
    });
    let task = tokio::spawn(accept_loop(listener, acceptor, front, options.shutdown_grace));
    Ok(ServeHandle {
        url,
        local_addr,
        ca_pem: certificates.map(|c| c.ca_pem),
        token: options.token,
        stop,
        task: Some(task),
    })
}

/// The URL clients use: a wildcard bind is reached over loopback.
fn base_url(local: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    // SocketAddr's Display puts IPv6 addresses in brackets.
    format!("{scheme}://{}", SocketAddr::new(ip, local.port()))
}

/// A running front. Dropping it stops the server as [`ServeHandle::shutdown`] does, without
/// waiting.
#[derive(Debug)]
pub struct ServeHandle {
    url: String,
    local_addr: SocketAddr,
    ca_pem: Option<String>,
    token: Option<String>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ServeHandle {
    /// The base URL, e.g. `http://127.0.0.1:38211`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The CA certificate (PEM) that signed the serving certificate, when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A kubeconfig (YAML) whose current context reaches this server: the URL, the CA when serving
    /// TLS, the bearer token when one is required, namespace `default`.
    pub fn kubeconfig(&self) -> String {
        kubeconfig::render(&self.url, self.ca_pem.as_deref(), self.token.as_deref())
    }

    /// Writes [`ServeHandle::kubeconfig`] to a file, readable by its owner only (it may hold the
    /// token).
    ///
    /// # Errors
    /// [`ServeError::WriteKubeconfig`] when the file cannot be written.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), ServeError> {
        use std::io::Write as _;
        let path = path.as_ref();
        let fail = |source| ServeError::WriteKubeconfig { path: path.to_owned(), source };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        file.write_all(self.kubeconfig().as_bytes()).map_err(fail)
    }

    /// Stops the server: no new connections; open watches end; in-flight requests get the grace
    /// period to finish, then their connections close. Returns when everything is closed.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
            && e.is_panic()
        {
            tracing::error!(error = %e, "the HTTP front's task panicked");
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What every connection shares.
#[derive(Debug)]
struct Front {
    service: FakeService,
    cluster: Cluster,
    /// The whole expected `Authorization` value, `Bearer <token>`.
    token: Option<String>,
    body_limit: usize,
    stop: CancellationToken,
}

fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Half-closed connections still get their answer (a client that shuts down its write side
    // after a truncated body is told 400, not dropped).
    builder.http1().timer(TokioTimer::new()).keep_alive(true).half_close(true);
    builder.http2().timer(TokioTimer::new());
    builder
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    front: Arc<Front>,
    grace: Duration,
) {
    let builder = Arc::new(connection_builder());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = front.stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, acceptor.clone(), front.clone(), builder.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(left = connections.len(), "closing connections still busy after the grace period");
    }
    connections.shutdown().await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    front: Arc<Front>,
    builder: Arc<auto::Builder<TokioExecutor>>,
) {
    // Watch events are small and must go out as they come.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    match acceptor {
        None => serve_connection(TokioIo::new(stream), peer, front, &builder).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => serve_connection(TokioIo::new(tls), peer, front, &builder).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
    }
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    front: Arc<Front>,
    builder: &auto::Builder<TokioExecutor>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let stop = front.stop.clone();
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let front = front.clone();
        async move { Ok::<_, Infallible>(front.handle(req, peer).await) }
    });
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        () = stop.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(e) = connection.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error during shutdown");
    }
}

impl Front {
    /// Answers one request and records it in the journal.
    async fn handle(&self, req: http::Request<Incoming>, peer: SocketAddr) -> http::Response<Body> {
        let started = Instant::now();
        let method = req.method().to_string();
        let path = req.uri().path_and_query().map_or_else(|| req.uri().path(), |pq| pq.as_str()).to_owned();
        let response = self.respond(req).await;
        self.cluster.journal_http(HttpRequest {
            seq: 0,
            at: Duration::ZERO,
            method,
            path,
            code: response.status().as_u16(),
            latency: started.elapsed(),
            peer,
        });
        if response.body().size_hint().exact().is_some() {
            response
        } else {
            // A stream (a watch): end it cleanly when the server stops.
            response.map(|body| {
                UntilStopped { inner: body, stop: Box::pin(self.stop.clone().cancelled_owned()) }
                    .boxed_unsync()
            })
        }
    }

    /// Who the request's bearer token authenticates as: the front's own token is the cluster
    /// administrator, other tokens are looked up in the cluster ([`Cluster::register_token`]).
    /// `Ok(None)` is a request without credentials on a front that requires none (the loopback
    /// identity); `Err` is a 401.
    fn authenticate(&self, req: &http::Request<Incoming>) -> Result<Option<Identity>, ApiError> {
        let given = req.headers().get(header::AUTHORIZATION);
        if let (Some(given), Some(expected)) = (given, &self.token)
            && bearer_matches(given, expected)
        {
            return Ok(Some(Identity::admin()));
        }
        let bearer = given.and_then(|v| v.to_str().ok()).and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        if let Some(identity) = bearer.and_then(|token| self.cluster.authenticate(token)) {
            return Ok(Some(identity));
        }
        let required = self.token.is_some() || (given.is_some() && self.cluster.rbac_enforced());
        if required && !is_health_check(req.uri().path()) {
            return Err(ApiError::Unauthorized);
        }
        Ok(None)
    }

    async fn respond(&self, mut req: http::Request<Incoming>) -> http::Response<Body> {
        match self.authenticate(&req) {
            Ok(Some(identity)) => {
                req.extensions_mut().insert(identity);
            }
            Ok(None) => {}
            Err(e) => return service::error(&e),
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let (parts, body) = req.into_parts();
        if declared.is_some_and(|n| n > self.body_limit as u64) {
            discard(body);
            return too_large(self.body_limit);
        }
        let bytes = match read_body(body, self.body_limit).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => return too_large(self.body_limit),
            Err(BodyError::Read(e)) => {
                return service::error(&ApiError::BadRequest(format!(
                    "unable to read the request body: {e}"
                )));
            }
        };
        let request = http::Request::from_parts(parts, Full::new(bytes));
        // `from_parts` keeps the extensions, so the identity rides along to the service.
        match self.service.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Why a request body was not read.
enum BodyError {
    TooLarge,
    Read(hyper::Error),
}

/// Reads a whole body of at most `limit` bytes. A larger one is left to drain in the background
/// ([`discard`]), so the client reads its 413 instead of a connection reset.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut size = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(BodyError::Read)?.into_data() else { continue };
        size += data.len();
        if size > limit {
            discard(body);
            return Err(BodyError::TooLarge);
        }
        chunks.push(data);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => Bytes::from(chunks.concat()),
    })
}

/// How much of a rejected body is read and thrown away, and for how long, before the connection
/// is closed on it.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;
const DISCARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and drops the rest of a rejected body while the response goes out: closing a connection
/// with unread input resets it, and the client would lose the answer.
fn discard(mut body: Incoming) {
    tokio::spawn(async move {
        let drain = async {
            let mut left = DISCARD_LIMIT;
            while let Some(Ok(frame)) = body.frame().await {
                let n = frame.data_ref().map_or(0, Bytes::len);
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
        };
        // Past the limit or the timeout the body is dropped and hyper closes the connection.
        let _ = tokio::time::timeout(DISCARD_TIMEOUT, drain).await;
    });
}

/// `/healthz`, `/livez`, `/readyz` and their sub-checks answer without a token, as on a real
/// server with anonymous health checks.
fn is_health_check(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    matches!(first, "healthz" | "livez" | "readyz")
}

/// `Bearer <token>`, with the scheme matched case-insensitively.
fn bearer_matches(got: &HeaderValue, expected: &str) -> bool {
    let got = got.as_bytes();
    got.len() == expected.len()
        && got[..7].eq_ignore_ascii_case(&expected.as_bytes()[..7])
        && got[7..] == expected.as_bytes()[7..]
}

/// 413 with the real server's Status.
fn too_large(limit: usize) -> http::Response<Body> {
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("Request entity too large: limit is {limit}"),
        "reason": "RequestEntityTooLarge",
        "code": 413,
    });
    let mut response = http::Response::new(Full::new(Bytes::from(status.to_string())).boxed_unsync());
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A streaming body that ends when the server stops.
struct UntilStopped {
    inner: Body,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl http_body::Body for UntilStopped {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_and_their_sub_checks_are_told_apart_from_api_paths() {
        assert!(is_health_check("/healthz"));
        assert!(is_health_check("/readyz/ping"));
        assert!(is_health_check("/livez"));
        assert!(!is_health_check("/api/v1/namespaces/healthz"));
        assert!(!is_health_check("/healthzz"));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_is_not() {
        let expected = "Bearer s3cret";
        assert!(bearer_matches(&HeaderValue::from_static("Bearer s3cret"), expected));
        assert!(bearer_matches(&HeaderValue::from_static("bearer s3cret"), expected));
        assert!(!bearer_matches(&HeaderValue::from_static("Bearer S3CRET"), expected));
        assert!(!bearer_matches(&HeaderValue::from_static("Basic s3cret"), expected));
        assert!(!bearer_matches(&HeaderValue::from_static("Bearer"), expected));
    }

    #[test]
    fn wildcard_binds_are_reached_over_loopback_and_ipv6_gets_brackets() {
        assert_eq!(base_url("0.0.0.0:80".parse().unwrap(), false), "http://127.0.0.1:80");
        assert_eq!(base_url("[::]:443".parse().unwrap(), true), "https://[::1]:443");
        assert_eq!(base_url("10.1.2.3:8".parse().unwrap(), true), "https://10.1.2.3:8");
    }
}
