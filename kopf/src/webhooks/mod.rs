//! Webhook servers (Kopf's `_kits/webhooks.py`): [`WebhookServer`] serves the admission
//! handlers over HTTPS on a local socket, with a certificate authority and a serving certificate
//! generated at start (or the certificate files given), and tells the operator the URL and CA
//! bundle for the webhook configurations.

mod certs;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use tokio::net::TcpListener;

use crate::client::BoxFuture;
use crate::engines::admission::{AdmissionServer, ServingWebhook, WebhookFn, WebhookRequest};
use crate::primitives::tasks::OwnedTask;

/// The largest review accepted (the API server's own request limit).
const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// A local HTTPS endpoint for the admission handlers (Kopf's `WebhookServer`): it listens on
/// `addr:port` (default: every interface, a free port), routes `POST <path>/<handler id>` to
/// the handlers, and reports `https://<host>:<port><path>` with the CA bundle.
///
/// Without a certificate, it generates a certificate authority and a serving certificate signed
/// by it for `host`, the address and [`WebhookServer::extra_sans`]; the CA is the bundle the API
/// server trusts ([`WebhookServer::cadump`] writes it out, e.g. for `curl --cacert`).
///
/// ```
/// use std::net::Ipv4Addr;
/// use std::sync::Arc;
/// let server = kopf::WebhookServer::new().addr(Ipv4Addr::LOCALHOST.into()).port(9443).host("127.0.0.1");
/// let operator = kopf::Operator::new().settings(|s| {
///     s.admission.server = Some(Arc::new(server));
///     s.admission.managed = Some("auto.kopf.dev".into());
/// });
/// # let _ = operator;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct WebhookServer {
    addr: Option<IpAddr>,
    port: Option<u16>,
    path: Option<String>,
    host: Option<String>,
    cadata: Option<Vec<u8>>,
    cafile: Option<PathBuf>,
    cadump: Option<PathBuf>,
    insecure: bool,
    certfile: Option<PathBuf>,
    pkeyfile: Option<PathBuf>,
    extra_sans: Vec<String>,
}

impl WebhookServer {
    /// A server on every interface and a free port, HTTPS with a generated certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address to listen on (default: every IPv4 interface).
    pub fn addr(mut self, addr: IpAddr) -> Self {
        self.addr = Some(addr);
        self
    }

    /// The port to listen on (default: a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The root path of the webhooks' URLs (default: none).
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// The host name in the URLs the API server calls (default: the address, or `localhost`
    /// when listening on every interface).
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    /// The CA bundle (PEM) for the configurations, when the certificate given is signed by it.
    pub fn cadata(mut self, pem: Vec<u8>) -> Self {
        self.cadata = Some(pem);
        self
    }

    /// A file with the CA bundle (PEM) for the configurations.
    pub fn cafile(mut self, path: impl Into<PathBuf>) -> Self {
        self.cafile = Some(path.into());
        self
    }

    /// Writes the CA bundle in use (generated or given) to this file.
    pub fn cadump(mut self, path: impl Into<PathBuf>) -> Self {
        self.cadump = Some(path.into());
        self
    }

    /// Serves plain HTTP (for tunnels that terminate TLS; the API server itself needs HTTPS).
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// The serving certificate (PEM, the chain) and its private key (PEM, unencrypted), instead
    /// of generated ones.
    pub fn certificate(mut self, certfile: impl Into<PathBuf>, pkeyfile: impl Into<PathBuf>) -> Self {
        self.certfile = Some(certfile.into());
        self.pkeyfile = Some(pkeyfile.into());
        self
    }

    /// More host names or addresses for the generated certificate.
    pub fn extra_sans<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.extra_sans.extend(names.into_iter().map(Into::into));
        self
    }

    /// The address clients use for a listening address: a specific one as is, `localhost` for
    /// none, loopback for the unspecified ones.
    fn accessible_addr(&self) -> String {
        match self.addr {
            None => "localhost".to_owned(),
            Some(IpAddr::V4(a)) if a.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            Some(IpAddr::V6(a)) if a.is_unspecified() => Ipv6Addr::LOCALHOST.to_string(),
            Some(a) => a.to_string(),
        }
    }

    /// The TLS configuration and the CA bundle to report (none for `insecure`).
    fn tls(&self) -> Result<(Option<rustls::ServerConfig>, Option<Vec<u8>>), String> {
        let mut cadata = self.cadata.clone();
        if cadata.is_none()
            && let Some(cafile) = &self.cafile
        {
            cadata =
                Some(std::fs::read(cafile).map_err(|e| format!("cannot read {}: {e}", cafile.display()))?);
        }
        if self.insecure {
            return Ok((None, cadata));
        }
        let certificate = match (&self.certfile, &self.pkeyfile) {
            (Some(cert), Some(key)) => {
                let loaded = certs::ServingCertificate::load(cert, key)?;
                if cadata.is_none() {
                    cadata = Some(loaded.ca_pem.clone());
                }
                loaded
            }
            _ => {
                let addr = self.accessible_addr();
                let mut names = vec![self.host.clone().unwrap_or_else(|| addr.clone()), addr];
                names.extend(self.extra_sans.iter().cloned());
                let generated = certs::ServingCertificate::generate(&names)?;
                // The generated CA is the only one that can vouch for the generated certificate.
                cadata = Some(generated.ca_pem.clone());
                generated
            }
        };
        Ok((Some(certificate.server_config()?), cadata))
    }
}

impl AdmissionServer for WebhookServer {
    fn start(&self, webhook: WebhookFn) -> BoxFuture<'static, Result<ServingWebhook, String>> {
        let this = self.clone();
        Box::pin(async move {
            let (tls, cadata) = this.tls()?;
            if let (Some(path), Some(pem)) = (&this.cadump, &cadata) {
                std::fs::write(path, pem).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            let bind = SocketAddr::new(
                this.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                this.port.unwrap_or(0),
            );
            let listener = TcpListener::bind(bind)
                .await
                .map_err(|e| format!("cannot listen for webhooks on {bind}: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            let root = this.path.clone().unwrap_or_default().trim_end_matches('/').to_owned();
            let scheme = if tls.is_some() { "https" } else { "http" };
            let host = this.host.clone().unwrap_or_else(|| this.accessible_addr());
            let url = build_url(scheme, &host, port, &root);
            tracing::debug!(
                "Listening for webhooks at {}",
                build_url(scheme, &bind.ip().to_string(), port, &root)
            );
            tracing::debug!("Accessing the webhooks at {url}");
            let acceptor = tls.map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
            let task = OwnedTask::spawn(accept_loop(listener, acceptor, Arc::new(root), webhook));
            let client_config =
                WebhookClientConfig { url: Some(url), ca_bundle: cadata.map(ByteString), service: None };
            Ok(ServingWebhook::new(client_config, task))
        })
    }
}

/// `scheme://host:port/path`, with IPv6 hosts bracketed and default ports omitted.
fn build_url(scheme: &str, host: &str, port: u16, path: &str) -> String {
    let host = match host.parse::<Ipv6Addr>() {
        Ok(ip) => format!("[{ip}]"),
        Err(_) => host.to_owned(),
    };
    let default = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
    if default { format!("{scheme}://{host}{path}") } else { format!("{scheme}://{host}:{port}{path}") }
}

/// Accepts connections until the server is dropped; each connection is served in a task of its
/// own, aborted with the loop.
async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    root: Arc<String>,
    webhook: WebhookFn,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a webhook connection");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (acceptor, root, webhook) = (acceptor.clone(), root.clone(), webhook.clone());
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (root, webhook) = (root.clone(), webhook.clone());
                async move { Ok::<_, Infallible>(serve(request, &root, webhook).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "a TLS handshake with a webhook client failed");
                        return;
                    }
                },
                None => builder.serve_connection(TokioIo::new(stream), service).await,
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "a webhook connection ended with an error");
            }
        });
    }
}

/// Serves one HTTP request: `POST <root>/<id>` with an `AdmissionReview`.
async fn serve(
    request: http::Request<Incoming>,
    root: &str,
    webhook: WebhookFn,
) -> http::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(root).filter(|r| r.is_empty() || r.starts_with('/')) else {
        return text(404, "Not Found");
    };
    if request.method() != http::Method::POST {
        return text(405, "Method Not Allowed");
    }
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let bytes = match Limited::new(request.into_body(), BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return text(400, &format!("cannot read the request: {e}")),
    };
    let body: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(e) => return text(400, &e.to_string()),
    };
    let mut review = WebhookRequest::for_path(body, rest);
    review.headers = headers;
    match webhook(review).await {
        Ok(answer) => {
            let mut response = http::Response::new(Full::new(Bytes::from(answer.to_string())));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            response
        }
        Err(e) => text(e.status(), &e.to_string()),
    }
}

fn text(status: u16, message: &str) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(message.to_owned())));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    response
}
