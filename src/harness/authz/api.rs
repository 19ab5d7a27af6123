//! One Engine API call as dockerd's authz middleware sees it: the request as the client
//! sent it, the reply as dockerd's handler wrote it, and the rules that turn them into
//! the AuthZReq/AuthZRes body (moby v20.10.24 `pkg/authorization/authz.go`,
//! `middleware.go`, `response.go`):
//!
//! - the user is the common name of the client's first TLS certificate, its method
//!   `TLS`; without TLS, both empty;
//! - headers are flattened to their last value, without `Authorization`,
//!   `X-Registry-Auth` and `X-Registry-Config` (any case); Go's server keeps `Host`
//!   and `Transfer-Encoding` out of them and `Content-Length` in (recorded:
//!   `tests/fixtures/dockerd-sequences/authz_calls.json`);
//! - a body goes along only for a `Content-Type` whose media type is
//!   `application/json`, a URI not ending in `/auth`, and a declared length `0 < n <
//!   1 MiB`, or a chunked body under 1 MiB (Debian's 20.10.24+dfsg1 carries the
//!   CVE-2024-41110 fix, upstream in moby v23.0.15 `authz.go`: `isChunked`, then
//!   `drainBody` peeks 1 MiB and leaves out a body that fills it; recorded); a larger
//!   body is silently left out;
//! - the reply's status, headers and body are what is still buffered: dockerd's
//!   response writer flushes whenever a write would take its buffer past 64 KiB, and
//!   a flush empties status, headers and body; the body goes along only when the
//!   buffered headers say `application/json`.

use crate::authz::{AuthZRequest, PeerCertificate};

/// dockerd 20.10's cap on an authz request body (`maxBodySize`): a body of this length
/// or more is left out.
pub const MAX_AUTHZ_BODY: u64 = 1 << 20;

/// What dockerd's response writer buffers before flushing (`maxBufferSize`).
pub const RESPONSE_BUFFER: usize = 64 * 1024;

/// An Engine API request, as the client sent it.
///
/// ```
/// use docker_plugin_sdk::harness::ApiRequest;
/// let req = ApiRequest::new("POST", "/v1.41/volumes/create")
///     .json(&serde_json::json!({"Name": "v1"}));
/// assert_eq!(req.content_length, Some(14)); // {"Name":"v1"} and \n
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// The HTTP method.
    pub method: String,
    /// The request URI as sent: path and query.
    pub uri: String,
    /// The headers, in the order sent (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The `Content-Length` header the client sent, which dockerd passes on in
    /// `RequestHeaders`; `None` when it sent none (no body, or a chunked one).
    pub content_length: Option<u64>,
    /// Whether the body is sent chunked (`Transfer-Encoding: chunked`).
    pub chunked: bool,
    /// The client's TLS certificates (DER), its own first; empty without TLS.
    pub peer_certificates: Vec<Vec<u8>>,
}

impl ApiRequest {
    /// A request without headers or body.
    pub fn new(method: &str, uri: &str) -> Self {
        Self {
            method: method.to_owned(),
            uri: uri.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            content_length: None,
            peer_certificates: Vec::new(),
            chunked: false,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body and its `Content-Length` (Go's client sends one for any body it
    /// knows the length of, `0` for an empty POST).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.content_length = Some(self.body.len() as u64);
        self.chunked = false;
        self
    }

    /// A JSON body as the docker CLI sends it (`Content-Type: application/json`, Go's
    /// JSON and `\n`).
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(format!("{value}\n"))
    }

    /// Sends the body chunked: no declared length.
    pub fn chunked(mut self) -> Self {
        self.content_length = None;
        self.chunked = true;
        self
    }

    /// The client presents these TLS certificates (DER, its own first).
    pub fn tls(mut self, certificates: Vec<Vec<u8>>) -> Self {
        self.peer_certificates = certificates;
        self
    }

    /// The value of header `name` (the last one, any case).
    fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The AuthZReq body dockerd sends for this request (`authz.go` `AuthZRequest`).
    pub fn to_authz(&self) -> AuthZRequest {
        let (user, user_authn_method) = match self.peer_certificates.first() {
            Some(der) => (
                PeerCertificate::from_der(der.clone())
                    .ok()
                    .and_then(|c| c.common_name)
                    .unwrap_or_default(),
                "TLS".to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        let size_fits = match self.content_length {
            Some(n) => n > 0 && n < MAX_AUTHZ_BODY,
            None => self.chunked && (self.body.len() as u64) < MAX_AUTHZ_BODY,
        };
        let with_body = send_body(&self.uri, self.header_value("Content-Type")) && size_fits;
        // Go's server: `Host` and `Transfer-Encoding` leave the header map, the
        // `Content-Length` the client sent stays.
        let framing = ["Host", "Transfer-Encoding", "Content-Length"];
        let length = self
            .content_length
            .map(|n| ("Content-Length".to_owned(), n.to_string()));
        AuthZRequest {
            user,
            user_authn_method,
            request_method: self.method.clone(),
            request_uri: self.uri.clone(),
            request_body: if with_body {
                self.body.clone()
            } else {
                Vec::new()
            },
            request_headers: flatten(
                self.headers
                    .iter()
                    .filter(|(k, _)| !framing.iter().any(|f| k.eq_ignore_ascii_case(f)))
                    .chain(&length),
            ),
            request_peer_certificates: self.peer_certificates.iter().map(|der| pem(der)).collect(),
            ..Default::default()
        }
    }
}

/// dockerd's reply to an API call, as its handler wrote it.
///
/// ```
/// use docker_plugin_sdk::harness::ApiResponse;
/// let reply = ApiResponse::json(200, &serde_json::json!({"Volumes": []}));
/// assert_eq!(reply.body(), b"{\"Volumes\":[]}\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiResponse {
    /// The status the handler set (`WriteHeader`); 0 when it set none.
    pub status: u16,
    /// The headers it set.
    pub headers: Vec<(String, String)>,
    /// Its writes, in order: each one may flush what was buffered.
    pub writes: Vec<Vec<u8>>,
    /// The error the handler returned instead of a reply (status and message), which
    /// dockerd's router writes after the middleware.
    pub error: Option<(u16, String)>,
}

impl ApiResponse {
    /// A reply the way dockerd's `httputils.WriteJSON` writes one: `Content-Type:
    /// application/json`, the status, then the JSON and `\n` in one write.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            writes: vec![format!("{value}\n").into_bytes()],
            error: None,
        }
    }

    /// A handler that wrote `status` and no body (`w.WriteHeader(204)`).
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    /// A handler that failed: the router answers `{"message": …}` with `status`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self {
            error: Some((status, message.into())),
            ..Self::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The whole body the client gets.
    pub fn body(&self) -> Vec<u8> {
        self.writes.concat()
    }

    /// What dockerd's response writer still holds when the handler returns: status,
    /// headers and body since the last flush (`response.go` `Write`, `FlushAll`).
    fn buffered(&self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut status = self.status;
        let mut headers = self.headers.clone();
        let mut body: Vec<u8> = Vec::new();
        for write in &self.writes {
            if body.len() + write.len() > RESPONSE_BUFFER {
                status = 0;
                headers.clear();
                body.clear();
            }
            body.extend_from_slice(write);
        }
        (status, headers, body)
    }

    /// Fills the `Response*` keys of `authz` as dockerd's AuthZResponse does.
    pub fn fill_authz(&self, authz: &mut AuthZRequest) {
        let (status, headers, body) = self.buffered();
        let content_type = headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
            .map(|(_, v)| v.as_str());
        authz.response_status_code = status;
        authz.response_body = if send_body(&authz.request_uri, content_type) {
            body
        } else {
            Vec::new()
        };
        authz.response_headers = flatten(headers.iter());
    }
}

/// Whether a body goes to the plugins (`authz.go` `sendBody`): not for a URI ending in
/// `/auth`, and only for the media type `application/json`.
fn send_body(uri: &str, content_type: Option<&str>) -> bool {
    if uri.ends_with("/auth") {
        return false;
    }
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    media.eq_ignore_ascii_case("application/json")
}

/// Headers flattened to their last value, credentials left out (`authz.go` `headers`),
/// names in Go's canonical form.
fn flatten<'a>(
    headers: impl Iterator<Item = &'a (String, String)>,
) -> std::collections::BTreeMap<String, String> {
    headers
        .filter(|(k, _)| {
            !["Authorization", "X-Registry-Config", "X-Registry-Auth"]
                .iter()
                .any(|skip| k.eq_ignore_ascii_case(skip))
        })
        .map(|(k, v)| (canonical(k), v.clone()))
        .collect()
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// A certificate as Go's `pem.EncodeToMemory` writes it.
fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical_as_go_makes_them() {
        assert_eq!(canonical("content-type"), "Content-Type");
        assert_eq!(canonical("X-REGISTRY-AUTH"), "X-Registry-Auth");
    }

    #[test]
    fn a_write_past_64_kib_flushes_status_headers_and_body() {
        let reply = ApiResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            writes: vec![vec![b'a'; 40_000], vec![b'b'; 40_000], vec![b'c'; 10]],
            error: None,
        };
        let (status, headers, body) = reply.buffered();
        assert_eq!((status, headers.len()), (0, 0));
        assert_eq!(body.len(), 40_010);
    }
}
