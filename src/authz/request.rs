//! What a policy sees: the API call dockerd is about to run (or has run), decoded from
//! the wire into its method, path, query, API version, headers, body (parsed when it is
//! JSON) and the client's certificates.
//!
//! Decoding is strict where a policy could be fooled: a method that is not an HTTP
//! method, a percent escape that is not one, text that is not UTF-8 or a malformed
//! certificate is a [`RequestError`], which the endpoints answer with a deny naming it
//! (never a policy called on half a request, never a panic). A body that is not valid
//! JSON is not an error: dockerd sends bodies labelled `application/json` whatever they
//! hold, and the policy sees the bytes ([`Body::Bytes`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::cert::{CertificateError, PeerCertificate};
use super::wire::AuthZRequest;

/// The API call being authorized.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The user dockerd authenticated (the TLS client certificate's common name); `""`
    /// when none.
    pub user: String,
    /// How: `TLS`, or `""` when none (`UserAuthNMethod`).
    pub authn_method: String,
    /// The HTTP method of the API call.
    pub method: http::Method,
    /// The URI exactly as the client sent it, path and query (`RequestUri`).
    pub uri: String,
    /// The path, percent-decoded as Go's `url.URL.Path` (what dockerd's router and
    /// opa-docker-authz's `input.Path` match on), with its `/vX.Y` prefix if it had
    /// one: see [`Request::endpoint`].
    pub path: String,
    /// The query's pairs, decoded (`+` is a space), in order.
    pub query: Vec<(String, String)>,
    /// The API version of a `/vX.Y/…` path (`1.41`); `None` for an unversioned path
    /// (`/_ping`), which dockerd serves at its current version.
    pub api_version: Option<String>,
    /// The API call's headers (`RequestHeaders`), without the credentials dockerd
    /// strips.
    pub headers: Headers,
    /// The API call's body (`RequestBody`): absent unless it was JSON, under 1 MiB and
    /// of a known length (dockerd 20.10).
    pub body: Body,
    /// The client's TLS certificates, the client's own first.
    pub peer_certificates: Vec<PeerCertificate>,
}

impl Request {
    /// The path without its `/vX.Y` prefix: `/containers/create` for
    /// `/v1.41/containers/create`, the path itself when it has none.
    ///
    /// ```
    /// use docker_plugin_sdk::authz::{AuthZRequest, Request};
    /// let wire = AuthZRequest {
    ///     request_method: "DELETE".into(),
    ///     request_uri: "/v1.41/containers/web%201?force=1&v=".into(),
    ///     ..Default::default()
    /// };
    /// let (req, _) = wire.decode().unwrap();
    /// assert_eq!(req.path, "/v1.41/containers/web 1");
    /// assert_eq!(req.endpoint(), "/containers/web 1");
    /// assert_eq!(req.api_version.as_deref(), Some("1.41"));
    /// assert_eq!(req.query_value("force"), Some("1"));
    /// ```
    pub fn endpoint(&self) -> &str {
        split_version(&self.path).1
    }

    /// The first value of query parameter `key`.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// dockerd's reply to the API call (AuthZRes only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    /// The HTTP status; 0 when dockerd's handler set none explicitly, or once part of
    /// the reply was flushed to the client (streams such as `logs -f` or `events`).
    pub status: u16,
    /// The reply's headers (`ResponseHeaders`).
    pub headers: Headers,
    /// The part of a JSON reply not yet flushed (`ResponseBody`).
    pub body: Body,
}

/// A request or reply body, as dockerd passed it on.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Body {
    /// None was sent: the call had none, or dockerd left it out (not JSON, 1 MiB or
    /// more, chunked, a `/auth` call).
    #[default]
    Absent,
    /// JSON, parsed.
    Json {
        /// The bytes as sent.
        raw: Vec<u8>,
        /// The parsed document.
        value: Value,
    },
    /// Bytes that do not parse as JSON.
    Bytes(Vec<u8>),
}

impl Body {
    /// The body of `bytes`: absent when empty, JSON when it parses.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        if bytes.is_empty() {
            return Self::Absent;
        }
        match serde_json::from_slice(&bytes) {
            Ok(value) => Self::Json { raw: bytes, value },
            Err(_) => Self::Bytes(bytes),
        }
    }

    /// The bytes as sent; empty when absent.
    pub fn raw(&self) -> &[u8] {
        match self {
            Self::Absent => &[],
            Self::Json { raw, .. } => raw,
            Self::Bytes(bytes) => bytes,
        }
    }

    /// The parsed JSON, if the body is JSON.
    ///
    /// ```
    /// use docker_plugin_sdk::authz::Body;
    /// let body = Body::from_bytes(br#"{"HostConfig":{"Privileged":true}}"#.to_vec());
    /// assert_eq!(body.json().unwrap()["HostConfig"]["Privileged"], true);
    /// assert!(Body::from_bytes(b"{".to_vec()).json().is_none());
    /// ```
    pub fn json(&self) -> Option<&Value> {
        match self {
            Self::Json { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether no body was sent.
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }
}

/// Headers as dockerd sends them: one value per name (the last one it got), looked up
/// without regard to case.
///
/// ```
/// use docker_plugin_sdk::authz::Headers;
/// let headers: Headers = [("Content-Type", "application/json")].into_iter().collect();
/// assert_eq!(headers.get("content-type"), Some("application/json"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(BTreeMap<String, String>);

impl Headers {
    /// The value of header `name`, whatever its case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .or_else(|| {
                self.0
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }

    /// Every header as sent, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The headers as the wire map.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl From<BTreeMap<String, String>> for Headers {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Why an authz call could not be decoded into a [`Request`]: the endpoints answer it
/// with a deny whose message is this error's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// `RequestMethod` is not an HTTP method.
    #[error("RequestMethod {0:?} is not an HTTP method")]
    Method(String),
    /// `RequestUri` has a malformed percent escape or is not UTF-8 once decoded.
    #[error("RequestUri {uri:?} is malformed: {reason}")]
    Uri {
        /// The URI as sent.
        uri: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A peer certificate could not be read.
    #[error("peer certificate {index} is malformed: {source}")]
    Certificate {
        /// Its position in `RequestPeerCertificates`, from 0.
        index: usize,
        /// What is wrong.
        source: CertificateError,
    },
}

impl AuthZRequest {
    /// Decodes the call into the API request and, for AuthZRes, dockerd's reply (empty
    /// for AuthZReq).
    pub fn decode(self) -> Result<(Request, Response), RequestError> {
        let method = http::Method::from_bytes(self.request_method.as_bytes())
            .map_err(|_| RequestError::Method(self.request_method.clone()))?;
        let (raw_path, raw_query) = match self.request_uri.split_once('?') {
            Some((path, query)) => (path, query),
            None => (self.request_uri.as_str(), ""),
        };
        let malformed = |reason| RequestError::Uri {
            uri: self.request_uri.clone(),
            reason,
        };
        let path = percent_decode(raw_path, false).map_err(malformed)?;
        let query = raw_query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                Ok((percent_decode(key, true)?, percent_decode(value, true)?))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(malformed)?;
        let peer_certificates = self
            .request_peer_certificates
            .iter()
            .enumerate()
            .map(|(index, pem)| {
                PeerCertificate::from_pem(pem)
                    .map_err(|source| RequestError::Certificate { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let api_version = split_version(&path).0.map(str::to_owned);
        let request = Request {
            user: self.user,
            authn_method: self.user_authn_method,
            method,
            uri: self.request_uri,
            path,
            query,
            api_version,
            headers: self.request_headers.into(),
            body: Body::from_bytes(self.request_body),
            peer_certificates,
        };
        let response = Response {
            status: self.response_status_code,
            headers: self.response_headers.into(),
            body: Body::from_bytes(self.response_body),
        };
        Ok((request, response))
    }
}

/// Splits `/v1.41/rest` into `(Some("1.41"), "/rest")`, as dockerd's router reads the
/// prefix (`/v{version:[0-9.]+}`, moby v20.10.24 `api/server/server.go`).
fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let digits = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (version, endpoint) = rest.split_at(digits);
    if version.is_empty() || !(endpoint.is_empty() || endpoint.starts_with('/')) {
        return (None, path);
    }
    (Some(version), endpoint)
}

/// Decodes `%XX` escapes (and `+` as a space in a query), as Go's `url` package does.
fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, &'static str> {
    if !text.contains(['%', '+']) {
        return Ok(text.to_owned());
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = bytes.get(i + 1).copied().and_then(hex);
                let low = bytes.get(i + 2).copied().and_then(hex);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err("a % not followed by two hexadecimal digits");
                };
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once percent-decoded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_prefix_is_read_as_dockerds_router_reads_it() {
        assert_eq!(split_version("/v1.41/info"), (Some("1.41"), "/info"));
        assert_eq!(split_version("/v1.41"), (Some("1.41"), ""));
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/volumes"), (None, "/volumes"));
        assert_eq!(split_version("/vx/info"), (None, "/vx/info"));
        assert_eq!(split_version("/v1x/info"), (None, "/v1x/info"));
    }

    #[test]
    fn percent_escapes_decode_or_fail_clearly() {
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(percent_decode("a%20b+c", false).unwrap(), "a b+c");
        assert_eq!(
            percent_decode("%zz", true).unwrap_err(),
            "a % not followed by two hexadecimal digits"
        );
        assert_eq!(
            percent_decode("%4", true).unwrap_err(),
            "a % not followed by two hexadecimal digits"
        );
        assert_eq!(
            percent_decode("%ff", true).unwrap_err(),
            "not UTF-8 once percent-decoded"
        );
    }
}
