//! The TLS a registry connection uses, as dockerd sets it up (moby v20.10.24
//! `registry/registry.go`, `newTLSConfig` and `ReadCertsDirectory`):
//!
//! - the system's roots (the bundle Go's `crypto/x509` reads on Linux, e.g. Debian's
//!   `/etc/ssl/certs/ca-certificates.crt`), plus every `*.crt` in
//!   `/etc/docker/certs.d/HOST[:PORT]/`;
//! - a client certificate from `NAME.cert` and `NAME.key` there (a `.cert` without its
//!   `.key`, or the reverse, is dockerd's error);
//! - no verification at all for an insecure registry, or with
//!   `--insecure-skip-tls-verify`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::package::PackageError;

/// Where dockerd (as root) and the docker CLI look for a registry's certificates:
/// `CERTS_DIR/HOST[:PORT]/` (moby v20.10.24 `registry/config_unix.go`).
pub const CERTS_DIR: &str = "/etc/docker/certs.d";

/// The system CA bundles Go reads on Linux, the first present wins (Go's
/// `crypto/x509/root_linux.go`).
pub const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// What a registry's `certs.d` directory holds.
#[derive(Debug, Default)]
pub(super) struct CertsDir {
    /// The `*.crt` files' certificates.
    pub cas: Vec<Certificate<'static>>,
    /// The client certificate (`NAME.cert` + `NAME.key`), if any.
    pub client: Option<ClientCert>,
    /// The files read, for messages.
    pub files: Vec<PathBuf>,
}

fn bad(path: &Path, message: String) -> PackageError {
    PackageError::Registry(format!("{}: {message}", path.display()))
}

fn pem_items(path: &Path) -> Result<Vec<PemItem<'static>>, PackageError> {
    let bytes = std::fs::read(path).map_err(|e| PackageError::io(path, e))?;
    ureq::tls::parse_pem(&bytes)
        .map(|item| item.map_err(|e| bad(path, format!("not PEM: {e}"))))
        .collect()
}

/// Reads `dir` (`certs.d/HOST[:PORT]`); a missing directory holds nothing.
pub(super) fn read_certs_dir(dir: &Path) -> Result<CertsDir, PackageError> {
    let mut out = CertsDir::default();
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(PackageError::io(dir, e)),
    };
    names.sort();
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(".crt") {
            for item in pem_items(&path)? {
                if let PemItem::Certificate(cert) = item {
                    out.cas.push(cert);
                }
            }
            out.files.push(path);
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key_name = format!("{stem}.key");
            if !names.contains(&key_name) {
                return Err(bad(
                    dir,
                    format!(
                        "missing key {key_name} for client certificate {name}. Note that CA certificates should use the extension .crt"
                    ),
                ));
            }
            let chain: Vec<Certificate<'static>> = pem_items(&path)?
                .into_iter()
                .filter_map(|i| match i {
                    PemItem::Certificate(c) => Some(c),
                    _ => None,
                })
                .collect();
            let key_path = dir.join(&key_name);
            let key: PrivateKey<'static> = pem_items(&key_path)?
                .into_iter()
                .find_map(|i| match i {
                    PemItem::PrivateKey(k) => Some(k),
                    _ => None,
                })
                .ok_or_else(|| bad(&key_path, "holds no private key".into()))?;
            out.client = Some(ClientCert::new_with_certs(&chain, key));
            out.files.push(path);
            out.files.push(key_path);
        } else if let Some(stem) = name.strip_suffix(".key") {
            let cert_name = format!("{stem}.cert");
            if !names.contains(&cert_name) {
                return Err(bad(
                    dir,
                    format!("Missing client certificate {cert_name} for key {name}"),
                ));
            }
        }
    }
    Ok(out)
}

/// The system's CA certificates (empty when no bundle is found).
fn system_roots() -> Result<Vec<Certificate<'static>>, PackageError> {
    let Some(path) = SYSTEM_CA_FILES.iter().map(Path::new).find(|p| p.is_file()) else {
        return Ok(Vec::new());
    };
    Ok(pem_items(path)?
        .into_iter()
        .filter_map(|i| match i {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect())
}

/// The TLS configuration for `registry` (`host[:port]`): verified against the
/// system's roots and `certs_dir/registry/*.crt` with its client certificate, or not
/// verified at all when `verify` is false.
pub(super) fn tls_config(
    registry: &str,
    certs_dir: &Path,
    verify: bool,
) -> Result<TlsConfig, PackageError> {
    if !verify {
        return Ok(TlsConfig::builder().disable_verification(true).build());
    }
    let host_dir = certs_dir.join(registry);
    let certs = read_certs_dir(&host_dir)?;
    let mut roots = system_roots()?;
    roots.extend(certs.cas);
    let mut builder = TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(roots)));
    if let Some(client) = certs.client {
        builder = builder.client_cert(Some(client));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_needs_its_key_and_the_reverse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = rcgen::generate_simple_self_signed(vec!["r.example".into()]).expect("cert");
        std::fs::write(dir.path().join("ca.crt"), ca.cert.pem()).expect("write");
        let read = read_certs_dir(dir.path()).expect("a CA alone");
        assert_eq!(read.cas.len(), 1);
        assert!(read.client.is_none());

        std::fs::write(dir.path().join("client.cert"), ca.cert.pem()).expect("write");
        let err = read_certs_dir(dir.path()).expect_err("no key").to_string();
        assert_eq!(
            err,
            format!(
                "registry: {}: missing key client.key for client certificate client.cert. Note that CA certificates should use the extension .crt",
                dir.path().display()
            )
        );
        std::fs::write(dir.path().join("client.key"), ca.key_pair.serialize_pem()).expect("write");
        let read = read_certs_dir(dir.path()).expect("pair");
        assert!(read.client.is_some());
        std::fs::remove_file(dir.path().join("client.cert")).expect("rm");
        let err = read_certs_dir(dir.path()).expect_err("no cert").to_string();
        assert_eq!(
            err,
            format!(
                "registry: {}: Missing client certificate client.cert for key client.key",
                dir.path().display()
            )
        );
        // A registry without a directory has nothing extra.
        let none = read_certs_dir(&dir.path().join("nope")).expect("missing dir");
        assert!(none.cas.is_empty() && none.files.is_empty());
    }
}
