//! TCP with TLS (feature `tls`): the handshake, mutual TLS, and a client that does not
//! trust the server, with certificates made on the fly by rcgen. Every test runs in a
//! process whose default rustls provider is one the SDK cannot use (as when another
//! dependency installs its own): the SDK names its provider, and does not panic.
#![cfg(feature = "tls")]

mod support;

use std::path::Path;
use std::sync::Arc;

use docker_plugin_sdk::transport::{Listener, TlsConfig};
use docker_plugin_sdk::{CancellationToken, Plugin, ServeError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use support::server::{Recorder, Shared};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WantsClientCert;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ConfigBuilder, RootCertStore};

/// Installs, once per process, a default crypto provider the SDK cannot serve with (no
/// cipher suite at all): what `ServerConfig::builder()` would pick up, and panic on.
fn another_default_provider() {
    let unusable = CryptoProvider {
        cipher_suites: Vec::new(),
        ..ring::default_provider()
    };
    // Already installed by another test of this process: the same one.
    let _ = unusable.install_default();
}

/// A client config trusting `roots`, with its provider named (the default is unusable).
fn trusting(roots: RootCertStore) -> ConfigBuilder<ClientConfig, WantsClientCert> {
    ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
}

struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        Self { ca, ca_key }
    }

    /// A certificate for `names` signed by this CA, written as PEM into `dir`.
    fn issue(&self, dir: &Path, stem: &str, names: &[&str]) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{stem}-key.pem")), key.serialize_pem()).unwrap();
        (cert, key)
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }
}

/// Calls `/Plugin.Activate` over TLS with `config` and returns the raw HTTP answer.
async fn activate_over_tls(
    addr: std::net::SocketAddr,
    config: ClientConfig,
) -> std::io::Result<String> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, stream).await?;
    tls.write_all(
        b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn serve(
    listener: Listener,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), ServeError>>,
) {
    let stop = CancellationToken::new();
    let plugin = Plugin::new().volume(Shared(Arc::new(Recorder::default())));
    let task = tokio::spawn(plugin.server(listener).shutdown_on(stop.clone()).run());
    (stop, task)
}

#[tokio::test]
async fn tls_serves_a_client_that_trusts_the_ca() {
    another_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.issue(dir.path(), "server", &["127.0.0.1", "localhost"]);
    let config = TlsConfig::from_pem_files(
        dir.path().join("server.pem"),
        dir.path().join("server-key.pem"),
    )
    .unwrap();
    let listener = Listener::tls("127.0.0.1:0", config).unwrap();
    let addr = listener.tcp_addr().unwrap();
    assert_eq!(listener.url(), format!("https://{addr}"));
    let (stop, task) = serve(listener);

    let client = trusting(pki.roots()).with_no_client_auth();
    let answer = activate_over_tls(addr, client).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(r#"{"Implements":["VolumeDriver"]}"#),
        "{answer}"
    );

    // A client that does not trust the server's CA gets no answer.
    let stranger = Pki::new();
    let client = trusting(stranger.roots()).with_no_client_auth();
    assert!(activate_over_tls(addr, client).await.is_err());

    // Plain HTTP on the TLS port gets nothing useful, and the server keeps serving.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = plain.read_to_end(&mut out).await;
    assert!(!String::from_utf8_lossy(&out).contains("Implements"));
    let client = trusting(pki.roots()).with_no_client_auth();
    assert!(
        activate_over_tls(addr, client)
            .await
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );

    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    another_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.issue(dir.path(), "server", &["127.0.0.1"]);
    std::fs::write(dir.path().join("ca.pem"), pki.ca.pem()).unwrap();
    let config = TlsConfig::from_pem_files(
        dir.path().join("server.pem"),
        dir.path().join("server-key.pem"),
    )
    .unwrap()
    .require_client_ca(dir.path().join("ca.pem"))
    .unwrap();
    let listener = Listener::tls("127.0.0.1:0", config).unwrap();
    let addr = listener.tcp_addr().unwrap();
    let (stop, task) = serve(listener);

    // Without a client certificate: refused.
    let client = trusting(pki.roots()).with_no_client_auth();
    let refused = activate_over_tls(addr, client).await;
    assert!(
        refused.is_err() || !refused.as_ref().unwrap().contains("200"),
        "{refused:?}"
    );

    // With dockerd's certificate (CertFile/KeyFile of the .json spec): served.
    let (cert, key) = pki.issue(dir.path(), "dockerd", &["dockerd"]);
    let client = trusting(pki.roots())
        .with_client_auth_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let answer = activate_over_tls(addr, client).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    stop.cancel();
    task.await.unwrap().unwrap();
}

#[test]
fn bad_pem_files_are_clear_errors() {
    another_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let missing =
        TlsConfig::from_pem_files(dir.path().join("nope.pem"), dir.path().join("nope-key.pem"))
            .unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
    std::fs::write(dir.path().join("empty.pem"), "not a certificate").unwrap();
    let empty =
        TlsConfig::from_pem_files(dir.path().join("empty.pem"), dir.path().join("empty.pem"))
            .unwrap_err();
    assert!(empty.to_string().contains("empty.pem"), "{empty}");
}

#[test]
fn a_default_provider_installed_by_someone_else_does_not_break_tls() {
    another_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.issue(dir.path(), "server", &["127.0.0.1"]);
    std::fs::write(dir.path().join("ca.pem"), pki.ca.pem()).unwrap();
    // Neither the config nor its client verifier asks rustls for the default.
    TlsConfig::from_pem_files(
        dir.path().join("server.pem"),
        dir.path().join("server-key.pem"),
    )
    .unwrap()
    .require_client_ca(dir.path().join("ca.pem"))
    .unwrap();
}
