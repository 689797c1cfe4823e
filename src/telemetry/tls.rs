//! TLS for servers reached over `https://` (remote APIs): the Mozilla roots that
//! `webpki-roots` carries, plus the certificates of `SSL_CERT_FILE` when it names a PEM file
//! (a company's own CA, or a test's). One configuration for fixbench's own calls and the proxy.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The variable naming extra CA certificates (PEM), as OpenSSL and most tools read it.
pub const CA_FILE_VAR: &str = "SSL_CERT_FILE";

/// The client configuration, built once; the error names the variable and the file.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(|| build(std::env::var_os(CA_FILE_VAR).map(std::path::PathBuf::from))).clone()
}

fn build(ca_file: Option<std::path::PathBuf>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file.filter(|p| !p.as_os_str().is_empty()) {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&path).and_then(|it| it.collect::<Result<_, _>>()).map_err(|e| {
                format!(
                    "{CA_FILE_VAR}={}: cannot read PEM certificates ({e}): point it at a PEM file or unset it",
                    path.display()
                )
            })?;
        if certs.is_empty() {
            return Err(format!(
                "{CA_FILE_VAR}={} holds no PEM certificate: point it at a PEM file or unset it",
                path.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{CA_FILE_VAR}={}: a certificate is unusable ({e})", path.display()))?;
        }
    }
    Ok(Arc::new(trusting(roots)?))
}

/// A client configuration (ring, the safe default protocol versions) trusting `roots` only.
pub fn trusting(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_roots_load_and_a_bad_ca_file_is_named() {
        assert!(build(None).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("ca.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let err = build(Some(junk)).unwrap_err();
        assert!(err.contains("SSL_CERT_FILE=") && err.contains("ca.pem") && err.contains("no PEM"), "{err}");
        let err = build(Some(dir.path().join("absent.pem"))).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }
}
