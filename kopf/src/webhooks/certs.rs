//! Certificates of the webhook server: a throwaway certificate authority and a serving
//! certificate it signs for the server's host names (made with rcgen at start), or the
//! certificate and key the user gives as PEM files.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A serving certificate chain, its key, and the CA bundle clients should trust (PEM).
#[derive(Debug)]
pub(crate) struct ServingCertificate {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub(crate) ca_pem: Vec<u8>,
}

impl ServingCertificate {
    /// A new CA and a certificate it signs for these host names and IP addresses (the first
    /// one is also the common name).
    pub(crate) fn generate(names: &[String]) -> Result<Self, String> {
        let error = |e: rcgen::Error| format!("cannot generate the webhook certificate: {e}");
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CommonName, "kopf-webhook-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(error)?).map_err(error)?;

        let mut unique: Vec<String> = Vec::new();
        for name in names.iter().filter(|n| !n.is_empty()) {
            if !unique.contains(name) {
                unique.push(name.clone());
            }
        }
        let mut params = CertificateParams::new(unique.clone()).map_err(error)?;
        params.distinguished_name.push(DnType::CommonName, unique.first().cloned().unwrap_or_default());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(error)?;
        let serving = params.signed_by(&key, &ca).map_err(error)?;
        Ok(Self {
            chain: vec![serving.der().clone(), ca.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            ca_pem: ca.pem().into_bytes(),
        })
    }

    /// The certificate chain and key of these PEM files; the chain is also the CA bundle
    /// unless one is given.
    pub(crate) fn load(certfile: &std::path::Path, pkeyfile: &std::path::Path) -> Result<Self, String> {
        let pem = std::fs::read(certfile).map_err(|e| format!("cannot read {}: {e}", certfile.display()))?;
        let chain = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot parse {}: {e}", certfile.display()))?;
        if chain.is_empty() {
            return Err(format!("no certificate in {}", certfile.display()));
        }
        let key = PrivateKeyDer::from_pem_file(pkeyfile)
            .map_err(|e| format!("cannot read the private key {}: {e}", pkeyfile.display()))?;
        Ok(Self { chain, key, ca_pem: pem })
    }

    /// A rustls server configuration serving the chain (HTTP/2 and HTTP/1.1 by ALPN).
    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let key = self.key.clone_key();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .map_err(|e| format!("the webhook certificate is unusable: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}
