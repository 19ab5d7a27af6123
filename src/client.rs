//! A client that talks to a plugin the way `dockerd` does (feature `client`).
//!
//! It sends what dockerd's `pkg/plugins` client sends: `POST /Method`, the header
//! `Accept: application/vnd.docker.plugins.v1.2+json`, no `Content-Type`, and the body
//! Go's `json.Encoder` writes (the JSON followed by `\n`). It reads replies the way
//! dockerd does: a non-200 status is an error whose message is the body's `Err` (or the
//! whole body when it has none), and a 200 reply with a non-empty `Err` is an error too.
//!
//! Tests, the demo, the harness and the CLI use it; plugin authors can use it to script
//! their own plugin.
//!
//! Typed calls name the declared method ([`Method`]), so the client sends what the
//! server decodes and decodes what it answers:
//!
//! ```no_run
//! use docker_plugin_sdk::client::Client;
//! use docker_plugin_sdk::volume::{self, CreateRequest};
//!
//! # async fn run() -> Result<(), docker_plugin_sdk::client::ClientError> {
//! let client = Client::unix("/run/docker/plugins/myplugin.sock");
//! let activated = client.activate().await?;
//! assert!(activated.implements.iter().any(|s| s == "VolumeDriver"));
//! client
//!     .call::<volume::Create>(&CreateRequest { name: "v1".into(), opts: Default::default() })
//!     .await?;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpStream, UnixStream};

use crate::protocol::{
    Activate, ActivateResponse, Empty, ErrorKey, ErrorResponse, MEDIA_TYPE_V1_2, Method,
    RequestBody,
};

/// What a call through [`Client`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is neither `unix://PATH` nor `tcp://HOST:PORT`.
    #[error("invalid plugin address {0:?}: expected unix:///path/to.sock or tcp://host:port")]
    BadAddress(String),
    /// The plugin's socket could not be reached.
    #[error("connecting to the plugin at {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The HTTP exchange failed (connection closed, malformed reply).
    #[error("calling {method} on {addr}: {source}")]
    Http {
        /// The plugin method.
        method: String,
        /// The plugin address.
        addr: String,
        /// The HTTP error.
        source: hyper::Error,
    },
    /// The plugin did not answer within the client's timeout.
    #[error("calling {method}: no reply within {timeout:?}")]
    Timeout {
        /// The plugin method.
        method: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The request could not be encoded as JSON.
    #[error("encoding the {method} request: {source}")]
    Encode {
        /// The plugin method.
        method: String,
        /// The encoding error.
        source: serde_json::Error,
    },
    /// The plugin answered with an error (`{"Err": "..."}` or a non-200 status).
    #[error("{method}: {message} (HTTP {status})")]
    Plugin {
        /// The plugin method.
        method: String,
        /// The HTTP status code.
        status: u16,
        /// The `Err` message, or the raw body when there was none.
        message: String,
    },
    /// The plugin answered 200 with a body that is not the expected JSON.
    #[error("{method}: the reply is not the expected JSON ({source}): {body}")]
    Decode {
        /// The plugin method.
        method: String,
        /// The decoding error.
        source: serde_json::Error,
        /// The body received (lossily decoded).
        body: String,
    },
}

impl ClientError {
    /// The HTTP status of a [`ClientError::Plugin`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Plugin { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the call failed before the plugin answered (connection refused or reset,
    /// no socket, timeout): the errors dockerd retries, unlike any HTTP answer.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::Http { .. } | ClientError::Timeout { .. }
        )
    }

    /// Whether the plugin said it does not implement the method (HTTP 404), which
    /// dockerd treats as "use the default" for optional methods.
    pub fn is_not_implemented(&self) -> bool {
        self.status() == Some(404)
    }
}

/// A reply as received, for tests that look at status, headers and bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The reply's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl RawResponse {
    /// The body as text (lossily decoded).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
    }

    /// Interprets the reply to `method` the way dockerd does: a non-200 status or a
    /// non-empty `Err` is an error, anything else is decoded as `T`.
    pub fn decode<T: DeserializeOwned>(self, method: &str) -> Result<T, ClientError> {
        decode_reply(method, ErrorKey::Err, self)
    }

    /// Interprets the reply to method `M` the way dockerd does: a non-200 status is an
    /// error (its `Err`, or the body), and so is a 200 whose error key (`Err`, or
    /// `Error` for IPAM) is not empty; anything else is decoded as `M::Response`.
    pub fn decode_as<M: Method>(self) -> Result<M::Response, ClientError> {
        decode_reply(M::NAME, M::ERROR_KEY, self)
    }
}

#[derive(Debug, Clone)]
enum Target {
    Unix(PathBuf),
    Tcp(String),
}

/// A dockerd-like plugin client; cheap to clone. Each call opens a connection.
#[derive(Debug, Clone)]
pub struct Client {
    target: Target,
    timeout: Option<Duration>,
}

impl Client {
    /// A client for the plugin listening on the unix socket `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self {
            target: Target::Unix(path.into()),
            timeout: None,
        }
    }

    /// A client for the plugin listening on TCP `addr`.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            target: Target::Tcp(addr.to_string()),
            timeout: None,
        }
    }

    /// A client for `unix:///path` or `tcp://host:port`, the forms of a `.spec` file.
    ///
    /// ```
    /// use docker_plugin_sdk::client::Client;
    /// assert!(Client::from_url("unix:///run/docker/plugins/p.sock").is_ok());
    /// assert!(Client::from_url("tcp://127.0.0.1:8080").is_ok());
    /// assert!(Client::from_url("http://example").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, ClientError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(ClientError::BadAddress(url.to_string()));
            }
            return Ok(Self::unix(path));
        }
        if let Some(addr) = url.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() || !addr.contains(':') {
                return Err(ClientError::BadAddress(url.to_string()));
            }
            return Ok(Self {
                target: Target::Tcp(addr.to_string()),
                timeout: None,
            });
        }
        Err(ClientError::BadAddress(url.to_string()))
    }

    /// A client for a plugin named the way a person names it: a URL (`unix://…`,
    /// `tcp://…`), a socket path (anything with a `/`), or a plugin name, whose
    /// socket is `/run/docker/plugins/NAME.sock` (where dockerd looks first).
    ///
    /// ```
    /// use docker_plugin_sdk::client::Client;
    /// use std::path::Path;
    /// let by_name = Client::locate("localvol").unwrap();
    /// assert_eq!(by_name.socket_path(), Some(Path::new("/run/docker/plugins/localvol.sock")));
    /// let by_path = Client::locate("./p.sock").unwrap();
    /// assert_eq!(by_path.socket_path(), Some(Path::new("./p.sock")));
    /// assert!(Client::locate("tcp://127.0.0.1:8080").unwrap().socket_path().is_none());
    /// ```
    pub fn locate(target: &str) -> Result<Self, ClientError> {
        if target.contains("://") {
            return Self::from_url(target);
        }
        if target.contains('/') {
            return Ok(Self::unix(target));
        }
        if target.is_empty() {
            return Err(ClientError::BadAddress(target.to_string()));
        }
        Ok(Self::unix(
            Path::new(crate::transport::DEFAULT_SOCKET_DIR).join(format!("{target}.sock")),
        ))
    }

    /// Gives up on a call that takes longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The unix socket path, for a unix client.
    pub fn socket_path(&self) -> Option<&Path> {
        match &self.target {
            Target::Unix(path) => Some(path),
            Target::Tcp(_) => None,
        }
    }

    fn addr(&self) -> String {
        match &self.target {
            Target::Unix(path) => format!("unix://{}", path.display()),
            Target::Tcp(addr) => format!("tcp://{addr}"),
        }
    }

    /// `/Plugin.Activate`, with an empty body as dockerd sends it.
    pub async fn activate(&self) -> Result<ActivateResponse, ClientError> {
        self.call::<Activate>(&Empty {}).await
    }

    /// Calls the declared method `M` with `request` as dockerd does (its body form,
    /// JSON and `\n` or nothing) and decodes the reply as dockerd does (see
    /// [`RawResponse::decode_as`]).
    pub async fn call<M: Method>(&self, request: &M::Request) -> Result<M::Response, ClientError> {
        let body = encode_method_request::<M>(request)?;
        self.call_raw(M::NAME, body).await?.decode_as::<M>()
    }

    /// Calls `method` by name (for tools that take it from a user) with `request`
    /// encoded as JSON, and decodes the reply as `Resp`, failing like dockerd on a
    /// non-200 status or a non-empty `Err`.
    pub async fn call_json<Req, Resp>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Resp, ClientError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = encode_request(method, request)?;
        self.call_raw(method, body).await?.decode(method)
    }

    /// Sends `body` as-is to `POST /method` with dockerd's headers; no interpretation.
    pub async fn call_raw(
        &self,
        method: &str,
        body: impl Into<Bytes>,
    ) -> Result<RawResponse, ClientError> {
        let path = if method.starts_with('/') {
            method.to_string()
        } else {
            format!("/{method}")
        };
        let request = Request::builder()
            .method(http::Method::POST)
            .uri(path)
            .header(HOST, "plugin")
            .header(ACCEPT, HeaderValue::from_static(MEDIA_TYPE_V1_2))
            .body(Full::new(body.into()))
            .map_err(|e| ClientError::BadAddress(format!("{method}: {e}")))?;
        self.send(request).await
    }

    /// Sends any HTTP request (any method, headers and body) and returns the raw reply:
    /// for tests of the server's handling of what dockerd never sends.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<RawResponse, ClientError> {
        let method = request.uri().path().trim_start_matches('/').to_string();
        let exchange = self.exchange(&method, request);
        match self.timeout {
            None => exchange.await,
            Some(timeout) => tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or(Err(ClientError::Timeout { method, timeout })),
        }
    }

    async fn exchange(
        &self,
        method: &str,
        mut request: Request<Full<Bytes>>,
    ) -> Result<RawResponse, ClientError> {
        if !request.headers().contains_key(HOST) {
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_static("plugin"));
        }
        let http_error = |source| ClientError::Http {
            method: method.to_string(),
            addr: self.addr(),
            source,
        };
        let connect_error = |source| ClientError::Connect {
            addr: self.addr(),
            source,
        };
        let mut sender = match &self.target {
            Target::Unix(path) => {
                let stream = UnixStream::connect(path).await.map_err(connect_error)?;
                handshake(stream).await.map_err(http_error)?
            }
            Target::Tcp(addr) => {
                let stream = TcpStream::connect(addr.as_str())
                    .await
                    .map_err(connect_error)?;
                let _ = stream.set_nodelay(true);
                handshake(stream).await.map_err(http_error)?
            }
        };
        let response = sender.send_request(request).await.map_err(http_error)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(http_error)?
            .to_bytes();
        Ok(RawResponse {
            status,
            content_type,
            body,
        })
    }
}

async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "plugin client connection ended with an error");
        }
    });
    Ok(sender)
}

/// The body dockerd sends for method `M`: nothing for methods without arguments,
/// else Go's `json.Encoder` output.
pub(crate) fn encode_method_request<M: Method>(request: &M::Request) -> Result<Bytes, ClientError> {
    match M::REQUEST_BODY {
        RequestBody::Empty => Ok(Bytes::new()),
        RequestBody::Json => encode_request(M::NAME, request),
    }
}

/// Encodes a request body as dockerd does: Go's `json.Encoder`, so the JSON and `\n`.
pub(crate) fn encode_request<Req: Serialize + ?Sized>(
    method: &str,
    request: &Req,
) -> Result<Bytes, ClientError> {
    let mut body = serde_json::to_vec(request).map_err(|source| ClientError::Encode {
        method: method.to_string(),
        source,
    })?;
    body.push(b'\n');
    Ok(Bytes::from(body))
}

/// Interprets a reply the way dockerd's `pkg/plugins` client and the subsystem's proxy
/// do: `error_key` is where a 200 reply carries an error.
fn decode_reply<Resp: DeserializeOwned>(
    method: &str,
    error_key: ErrorKey,
    reply: RawResponse,
) -> Result<Resp, ClientError> {
    let body = reply.body.trim_ascii();
    if reply.status != StatusCode::OK {
        let message = match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(err) if !err.err.is_empty() => err.err,
            _ => String::from_utf8_lossy(body).into_owned(),
        };
        return Err(ClientError::Plugin {
            method: method.to_string(),
            status: reply.status.as_u16(),
            message,
        });
    }
    if let Some(message) = error_key.key().and_then(|key| error_in(body, key)) {
        return Err(ClientError::Plugin {
            method: method.to_string(),
            status: reply.status.as_u16(),
            message,
        });
    }
    crate::protocol::decode_body(body).map_err(|source| ClientError::Decode {
        method: method.to_string(),
        source,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

/// The non-empty string under `key` of a JSON object body.
fn error_in(body: &[u8], key: &str) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(key)?
    {
        serde_json::Value::String(message) if !message.is_empty() => Some(message.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            content_type: None,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn error_status_uses_err_field_or_raw_body() {
        let err =
            decode_reply::<Empty>("M", ErrorKey::Err, reply(500, r#"{"Err":"boom"}"#)).unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert!(err.to_string().contains("boom"));
        let err = decode_reply::<Empty>("M", ErrorKey::Err, reply(404, "404 page not found\n"))
            .unwrap_err();
        assert!(err.is_not_implemented());
        assert!(err.to_string().contains("404 page not found"));
    }

    #[test]
    fn ok_status_with_err_is_an_error() {
        let err =
            decode_reply::<Empty>("M", ErrorKey::Err, reply(200, r#"{"Err":"no"}"#)).unwrap_err();
        assert!(matches!(err, ClientError::Plugin { status: 200, .. }));
        decode_reply::<Empty>("M", ErrorKey::Err, reply(200, r#"{"Err":""}"#)).unwrap();
        decode_reply::<Empty>("M", ErrorKey::Err, reply(200, "")).unwrap();
    }

    #[test]
    fn the_error_key_is_the_methods() {
        // IPAM: a 200 `Error` is an error, a 200 `Err` is not.
        let err = decode_reply::<Empty>("M", ErrorKey::Error, reply(200, r#"{"Error":"no"}"#));
        assert!(matches!(err, Err(ClientError::Plugin { status: 200, .. })));
        decode_reply::<Empty>("M", ErrorKey::Error, reply(200, r#"{"Err":"no"}"#)).unwrap();
        // authz: neither.
        decode_reply::<Empty>("M", ErrorKey::Ignored, reply(200, r#"{"Err":"no"}"#)).unwrap();
        // A non-200 reply is an error whatever the key, read from `Err`.
        let err = decode_reply::<Empty>("M", ErrorKey::Error, reply(500, r#"{"Err":"boom"}"#));
        assert!(err.unwrap_err().to_string().contains("boom"));
    }

    #[test]
    fn bad_json_reply_is_a_decode_error() {
        let err =
            decode_reply::<ActivateResponse>("M", ErrorKey::Err, reply(200, "{nope")).unwrap_err();
        assert!(matches!(err, ClientError::Decode { .. }));
    }

    #[test]
    fn parses_urls() {
        assert!(Client::from_url("unix://").is_err());
        assert!(Client::from_url("tcp://").is_err());
        let c = Client::from_url("unix:///x.sock").unwrap();
        assert_eq!(c.socket_path(), Some(Path::new("/x.sock")));
    }
}
