//! Calling a webhook over the network: one HTTP/1.1 POST over TLS (rustls on ring, trusting only
//! the configuration's `caBundle`, checking the host name) or plain HTTP for `http://` URLs.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// The largest answer read (the real server's limit for webhook answers is of this order).
const ANSWER_LIMIT: usize = 3 * 1024 * 1024;

/// POSTs `body` to `url` (or to `address` with `url`'s path, for services) and returns the answer's
/// body; errors read like Go's HTTP client errors (`dial tcp …: connect: connection refused`,
/// `tls: …`), as the real server quotes them.
pub(super) async fn post(
    url: &str,
    address: Option<(String, u16)>,
    ca_bundle: Option<&[u8]>,
    body: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("parse \"{url}\": {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => return Err(format!("unsupported protocol scheme \"{}\"", other.unwrap_or_default())),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("parse \"{url}\": missing host"))?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let (connect_host, connect_port) = address.unwrap_or((host.clone(), port));
    let tcp = TcpStream::connect((connect_host.as_str(), connect_port))
        .await
        .map_err(|e| format!("dial tcp {connect_host}:{connect_port}: connect: {e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or(host.clone());
    let request = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = if https {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_bundle.unwrap_or_default()) {
            let cert = cert.map_err(|e| format!("unable to load root certificates: {e}"))?;
            roots.add(cert).map_err(|e| format!("unable to load root certificates: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.clone()).map_err(|e| format!("invalid host {host}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        send(TokioIo::new(tls), request).await?
    } else {
        send(TokioIo::new(tcp), request).await?
    };
    Ok(response)
}

async fn send<I>(io: I, request: http::Request<Full<Bytes>>) -> Result<Vec<u8>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = async {
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(format!(
                "the server responded with the status code {} but did not return more information ({})",
                status.as_u16(),
                text.trim()
            ));
        }
        Ok(body.to_vec())
    }
    .await;
    driver.abort();
    result
}
