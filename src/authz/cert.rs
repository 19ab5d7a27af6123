//! The client's TLS certificates, parsed without ever panicking.
//!
//! dockerd sends each certificate of the API client (when it connects over TLS with a
//! client certificate) as the base64 of its PEM text (moby v20.10.24
//! `pkg/authorization/api.go`, `PeerCertificate.MarshalJSON`). moby's own decoder,
//! which go-plugins-helpers uses, dereferences the PEM block without checking it and
//! panics on anything that is not PEM; here a malformed certificate is a
//! [`CertificateError`], which the authz endpoints answer with a deny naming it.
//!
//! What a policy needs is parsed: subject and issuer (RFC 4514 text and common name),
//! the serial number, the validity window and the subject alternative names. The
//! certificate's DER is kept for anything else. Signatures are not verified here:
//! dockerd has verified the chain against its `--tlscacert` before the call.

use std::net::IpAddr;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::{DirectoryString, GeneralName};
use x509_cert::name::Name;

/// A certificate the API client presented, parsed.
///
/// ```
/// # fn check(cert: &docker_plugin_sdk::authz::PeerCertificate) {
/// if cert.common_name.as_deref() == Some("admin") && cert.is_valid_at(std::time::SystemTime::now()) {
///     // …
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject as RFC 4514 text (`CN=alice,O=example`).
    pub subject: String,
    /// The subject's common name: what dockerd sends as `User`.
    pub common_name: Option<String>,
    /// The issuer as RFC 4514 text.
    pub issuer: String,
    /// The issuer's common name.
    pub issuer_common_name: Option<String>,
    /// The serial number, lower-case hexadecimal without separators.
    pub serial: String,
    /// The start of the validity window.
    pub not_before: SystemTime,
    /// The end of the validity window.
    pub not_after: SystemTime,
    /// DNS names of the subject alternative names.
    pub dns_names: Vec<String>,
    /// E-mail addresses of the subject alternative names.
    pub email_addresses: Vec<String>,
    /// IP addresses of the subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// URIs of the subject alternative names (SPIFFE IDs, for instance).
    pub uris: Vec<String>,
    /// The certificate's DER encoding, for what is not parsed here.
    pub der: Vec<u8>,
}

/// Why a peer certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The text is not a PEM `CERTIFICATE` block.
    #[error("not a PEM CERTIFICATE block (dockerd sends the base64 of the PEM text)")]
    NotPem,
    /// The PEM block's content is not base64.
    #[error("the PEM block is not base64: {0}")]
    Base64(String),
    /// The DER is not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    Der(String),
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

impl PeerCertificate {
    /// Parses a PEM `CERTIFICATE` block, as dockerd sends it (the first block, as Go's
    /// `pem.Decode` reads it).
    pub fn from_pem(pem: &[u8]) -> Result<Self, CertificateError> {
        let text = std::str::from_utf8(pem).map_err(|_| CertificateError::NotPem)?;
        let start = text.find(BEGIN).ok_or(CertificateError::NotPem)? + BEGIN.len();
        let len = text[start..].find(END).ok_or(CertificateError::NotPem)?;
        let base64: String = text[start..start + len].split_ascii_whitespace().collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|err| CertificateError::Base64(err.to_string()))?;
        Self::from_der(der)
    }

    /// Parses a DER-encoded certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, CertificateError> {
        let invalid = |err: x509_cert::der::Error| CertificateError::Der(err.to_string());
        let cert = Certificate::from_der(&der).map_err(invalid)?;
        let tbs = cert.tbs_certificate();
        let mut parsed = Self {
            subject: tbs.subject().to_string(),
            common_name: common_name(tbs.subject()).map_err(invalid)?,
            issuer: tbs.issuer().to_string(),
            issuer_common_name: common_name(tbs.issuer()).map_err(invalid)?,
            serial: tbs
                .serial_number()
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            not_before: tbs.validity().not_before.to_system_time(),
            not_after: tbs.validity().not_after.to_system_time(),
            dns_names: Vec::new(),
            email_addresses: Vec::new(),
            ip_addresses: Vec::new(),
            uris: Vec::new(),
            der: Vec::new(),
        };
        if let Some((_, SubjectAltName(names))) =
            tbs.get_extension::<SubjectAltName>().map_err(invalid)?
        {
            for name in names {
                parsed.add_alt_name(name)?;
            }
        }
        parsed.der = der;
        Ok(parsed)
    }

    fn add_alt_name(&mut self, name: GeneralName) -> Result<(), CertificateError> {
        match name {
            GeneralName::DnsName(dns) => self.dns_names.push(dns.to_string()),
            GeneralName::Rfc822Name(email) => self.email_addresses.push(email.to_string()),
            GeneralName::UniformResourceIdentifier(uri) => self.uris.push(uri.to_string()),
            GeneralName::IpAddress(octets) => {
                let ip = match octets.as_bytes() {
                    &[a, b, c, d] => IpAddr::from([a, b, c, d]),
                    bytes => <[u8; 16]>::try_from(bytes).map(IpAddr::from).map_err(|_| {
                        CertificateError::Der(format!(
                            "an IP address of {} bytes in the subject alternative names",
                            bytes.len()
                        ))
                    })?,
                };
                self.ip_addresses.push(ip);
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether `time` is inside the validity window.
    pub fn is_valid_at(&self, time: SystemTime) -> bool {
        self.not_before <= time && time <= self.not_after
    }
}

/// The name's common name as Go reads it (`crypto/x509/pkix` `FillFromRDNSequence`):
/// the *last* CN attribute when there are several. dockerd sends it as `User`
/// (recorded: `tests/fixtures/dockerd-sequences/authz_tls.json`, `CN=team,O=example,
/// CN=alice` → `alice`).
fn common_name(name: &Name) -> x509_cert::der::Result<Option<String>> {
    let mut last = None;
    for rdn in name.iter_rdn() {
        for attribute in rdn.iter() {
            if attribute.oid == x509_cert::der::oid::db::rfc4519::COMMON_NAME {
                let value: DirectoryString = attribute.value.decode_as()?;
                last = Some(value.value().into_owned());
            }
        }
    }
    Ok(last)
}
