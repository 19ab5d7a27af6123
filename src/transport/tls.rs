//! TLS for TCP listeners (feature `tls`), with rustls and its `ring` crypto provider,
//! named explicitly: a plugin whose other dependencies enable a second provider (rustls
//! then has no process-wide default) or install one of their own must not panic at
//! start, nor serve with someone else's choice of algorithms.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ConfigBuilder, ServerConfig, WantsVerifier};

use crate::error::ServeError;

/// The server side of TLS: a certificate chain and key, and optionally the CA that
/// client certificates must be signed by (mutual TLS, as dockerd's `TLSConfig.CertFile`
/// provides).
///
/// ```no_run
/// use docker_plugin_sdk::transport::{Listener, TlsConfig};
/// let tls = TlsConfig::from_pem_files("server.pem", "server-key.pem")?
///     .require_client_ca("ca.pem")?;
/// let listener = Listener::tls("127.0.0.1:8443", tls)?;
/// # Ok::<(), docker_plugin_sdk::ServeError>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

impl TlsConfig {
    /// The server side of the handshake on `io`, bounded by [`HANDSHAKE_TIMEOUT`].
    pub(crate) fn handshake(
        &self,
        io: TcpStream,
    ) -> impl Future<Output = io::Result<TlsStream<TcpStream>>> + Send + 'static {
        let accept = self.acceptor.accept(io);
        async move {
            tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
        }
    }

    /// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, ServeError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                ServeError::Tls(format!("reading certificates from {}: {e}", cert.display()))
            })?;
        if chain.is_empty() {
            return Err(ServeError::Tls(format!(
                "{} holds no PEM certificate",
                cert.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            ServeError::Tls(format!("reading private key from {}: {e}", key.display()))
        })?;
        let key = Arc::new(key);
        let config = builder()?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| ServeError::Tls(e.to_string()))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            chain,
            key,
        })
    }

    /// Requires clients to present a certificate signed by the CA in this PEM file.
    pub fn require_client_ca(self, ca: impl AsRef<Path>) -> Result<Self, ServeError> {
        let ca = ca.as_ref();
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca)
            .map_err(|e| ServeError::Tls(format!("reading CA from {}: {e}", ca.display())))?
        {
            let cert = cert
                .map_err(|e| ServeError::Tls(format!("reading CA from {}: {e}", ca.display())))?;
            roots
                .add(cert)
                .map_err(|e| ServeError::Tls(format!("CA in {}: {e}", ca.display())))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| ServeError::Tls(e.to_string()))?;
        let config = builder()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| ServeError::Tls(e.to_string()))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ..self
        })
    }
}

/// The crypto provider every config is built with: `ring`, whatever the process default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A server config builder on [`provider`], with rustls's safe default TLS versions.
fn builder() -> Result<ConfigBuilder<ServerConfig, WantsVerifier>, ServeError> {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))
}
