//! The TLS action's certificates: a CA, dockerd's server certificate (`127.0.0.1`) and
//! a client certificate whose subject has two common names (`CN=team,O=example,
//! CN=alice`: Go's `pkix.Name` keeps the last one as `CommonName`, which dockerd sends
//! as `User`). All made from fixed Ed25519 keys, serials and dates, so that they (and
//! the fixture that holds the client's PEM) are the same from run to run: Ed25519
//! signatures are deterministic.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, KeyPair,
    PKCS_ED25519, SanType, SerialNumber, date_time_ymd,
};

/// What dockerd and the CLI are given.
pub(crate) struct Tls {
    /// `--tlsverify`, the CA, dockerd's certificate and key, `--host=tcp://127.0.0.1:PORT`.
    pub(crate) daemon_args: Vec<String>,
    /// The CLI flags of the same: `--tlsverify`, CA, client certificate and key, `-H`.
    pub(crate) client_args: Vec<String>,
}

/// An Ed25519 key from a fixed 32-byte seed (PKCS#8 v1 around it).
fn key(seed: u8) -> Result<KeyPair, String> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend([seed; 32]);
    KeyPair::from_pkcs8_der_and_sign_algo(&der.as_slice().into(), &PKCS_ED25519)
        .map_err(|e| format!("test key: {e}"))
}

fn params(serial: u8, subject: &[(DnType, &str)]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2045, 1, 1);
    params.serial_number = Some(SerialNumber::from(vec![serial]));
    let mut name = DistinguishedName::new();
    for (kind, value) in subject {
        name.push(kind.clone(), DnValue::Utf8String((*value).to_owned()));
    }
    params.distinguished_name = name;
    params
}

/// Writes the certificates into `dir` and picks a free loopback port for dockerd.
pub(crate) fn write(dir: &Path) -> Result<Tls, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let err = |e: rcgen::Error| format!("making the TLS certificates: {e}");
    let ca_key = key(1)?;
    let mut ca = params(1, &[(DnType::CommonName, "rec-authz test CA")]);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).map_err(err)?;

    let server_key = key(2)?;
    let mut server = params(2, &[(DnType::CommonName, "dockerd")]);
    server.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let server = server.signed_by(&server_key, &ca, &ca_key).map_err(err)?;

    // The same OID as CommonName, as another DnType: a second CN before O and the
    // real one.
    let client_key = key(3)?;
    let client = params(
        3,
        &[
            (DnType::CustomDnType(vec![2, 5, 4, 3]), "team"),
            (DnType::OrganizationName, "example"),
            (DnType::CommonName, "alice"),
        ],
    )
    .signed_by(&client_key, &ca, &ca_key)
    .map_err(err)?;

    let write = |name: &str, text: String| -> Result<String, String> {
        let path: PathBuf = dir.join(name);
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path.display().to_string())
    };
    let ca = write("ca.pem", ca.pem())?;
    let server_cert = write("server.pem", server.pem())?;
    let server_key = write("server-key.pem", server_key.serialize_pem())?;
    let client_cert = write("client.pem", client.pem())?;
    let client_key = write("client-key.pem", client_key.serialize_pem())?;

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("a free port: {e}"))?
        .port();
    let addr = format!("tcp://127.0.0.1:{port}");
    Ok(Tls {
        daemon_args: vec![
            "--tlsverify".into(),
            format!("--tlscacert={ca}"),
            format!("--tlscert={server_cert}"),
            format!("--tlskey={server_key}"),
            format!("--host={addr}"),
        ],
        client_args: vec![
            "--tlsverify".into(),
            format!("--tlscacert={ca}"),
            format!("--tlscert={client_cert}"),
            format!("--tlskey={client_key}"),
            format!("--host={addr}"),
        ],
    })
}
