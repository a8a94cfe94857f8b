//! TLS for the public listener: rustls with the certificate chain and key from config files,
//! ALPN offering HTTP/2 and HTTP/1.1 on TCP, HTTP/3 on QUIC (the same certificate).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use sluice_config::TlsSettings;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or held no certificate.
    #[error("TLS certificate {path}: {reason}")]
    Cert {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The key file could not be read or held no private key.
    #[error("TLS key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the pair (for example a key that does not match the certificate).
    #[error("TLS: {0}")]
    Config(String),
}

/// An acceptor for `settings`, with paths resolved by `resolve`: ALPN `h2`, `http/1.1`.
pub fn acceptor(
    settings: &TlsSettings,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
) -> Result<TlsAcceptor, TlsError> {
    let mut config = server_config(settings, resolve)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The QUIC listener's TLS for `settings`: the same certificate, TLS 1.3 (as QUIC requires),
/// ALPN `h3`.
pub fn quic_server_config(
    settings: &TlsSettings,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
) -> Result<ServerConfig, TlsError> {
    let mut config = server_config(settings, resolve)?;
    config.alpn_protocols = vec![b"h3".to_vec()];
    Ok(config)
}

/// The rustls server config for the certificate and key of `settings`, no ALPN.
fn server_config(
    settings: &TlsSettings,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
) -> Result<ServerConfig, TlsError> {
    let cert_path = resolve(&settings.cert);
    let key_path = resolve(&settings.key);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert_path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert_path.display().to_string(),
            reason: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Key {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}
