//! TLS for the HTTP front: a throwaway certificate authority and a serving certificate it signs,
//! made with rcgen at start, served with rustls on the ring provider. Clients trust the CA (the
//! kubeconfig carries it as `certificate-authority-data`); nothing is written to disk.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ServeError;

/// A CA and the serving certificate it signed.
#[derive(Debug)]
pub(super) struct Certificates {
    /// The CA certificate, PEM.
    pub(super) ca_pem: String,
    ca_der: CertificateDer<'static>,
    serving_der: CertificateDer<'static>,
    serving_key: Vec<u8>,
}

impl Certificates {
    /// A new CA and a serving certificate for 127.0.0.1, localhost, ::1 and `bind` (when it is a
    /// specific address).
    pub(super) fn generate(bind: IpAddr) -> Result<Self, ServeError> {
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CommonName, "fake-apiserver-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate().map_err(ServeError::Certificate)?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(ServeError::Certificate)?;

        let mut names = vec!["127.0.0.1".to_owned(), "localhost".to_owned(), "::1".to_owned()];
        if !bind.is_unspecified() && !bind.is_loopback() {
            names.push(bind.to_string());
        }
        let mut params = CertificateParams::new(names).map_err(ServeError::Certificate)?;
        params.distinguished_name.push(DnType::CommonName, "fake-apiserver");
        params
            .subject_alt_names
            .push(SanType::DnsName("kubernetes.default.svc".try_into().map_err(ServeError::Certificate)?));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(ServeError::Certificate)?;
        let serving = params.signed_by(&key, &ca).map_err(ServeError::Certificate)?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            serving_der: serving.der().clone(),
            serving_key: key.serialize_der(),
        })
    }

    /// A rustls acceptor serving the certificate chain, offering HTTP/2 and HTTP/1.1 by ALPN.
    pub(super) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.serving_key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ServeError::Tls)?
            .with_no_client_auth()
            .with_single_cert(vec![self.serving_der.clone(), self.ca_der.clone()], key)
            .map_err(ServeError::Tls)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_a_pem_certificate_and_the_acceptor_builds() {
        let certs = Certificates::generate(IpAddr::from([127, 0, 0, 1])).unwrap();
        assert!(certs.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"), "{}", certs.ca_pem);
        assert!(certs.acceptor().is_ok());
    }
}
