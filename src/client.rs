//! A client that talks to a plugin the way `dockerd` does (feature `client`).
//!
//! It sends what dockerd 20.10's `pkg/plugins` client sends, byte for byte (moby
//! v20.10.24 `pkg/plugins/client.go`, `transport/http.go`, checked against a recording
//! of dockerd and Go 1.19): `POST /Method`, the headers `Host` (empty on a unix socket,
//! Go cuts the socket path at its first `/`), `User-Agent: Go-http-client/1.1`,
//! `Content-Length` and `Accept: application/vnd.docker.plugins.v1.2+json`, no
//! `Content-Type`, and the body Go's `json.Encoder` writes (the JSON and `\n`;
//! nothing for methods without arguments; `"Opts":null` for a Create without
//! options). Connections are kept alive and reused as Go's transport reuses them (see
//! `conn`: a connection the plugin closed is replaced, a request that failed after it
//! was written is not sent again).
//!
//! It reads replies the way dockerd does: a non-200 status is an error whose message
//! is the body's `Err` (or the whole body when it has none); a 200 with an empty body
//! is dockerd's `EOF` error; keys match without regard to case; a 200 reply with a
//! non-empty `Err` is an error too (see [`RawResponse::decode_as`]).
//!
//! Over TCP, dockerd's Go transport also asks for gzip (`Accept-Encoding: gzip`, and
//! unpacks a gzip reply) and goes through `HTTP_PROXY`; this client does neither
//! (the SDK's server never compresses).
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

mod conn;
mod go_json;
mod reply;
mod stream;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpStream, UnixStream};

use crate::protocol::{Activate, ActivateResponse, Empty, MEDIA_TYPE_V1_2, Method, RequestBody};
use conn::{Conn, Pool, SendError};
pub use reply::RawResponse;
pub use stream::ReplyStream;

/// The `User-Agent` of Go's `net/http`, which dockerd sends.
const GO_USER_AGENT: &str = "Go-http-client/1.1";

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
        /// Whether the request had been written, at least partly: Go does not send
        /// such a POST again, and dockerd's retry of it sends an empty body.
        written: bool,
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
    /// The plugin answered 200 with an empty body, which dockerd's JSON decoder fails
    /// with `EOF`.
    #[error(
        "{method}: the plugin answered 200 OK with an empty body, which dockerd fails with \
         EOF: answer JSON, at least {{}}"
    )]
    EmptyReply {
        /// The plugin method.
        method: String,
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

    /// Whether the request may have reached the plugin before the call failed: a
    /// transport error after it was written, or a timeout. dockerd's retry of such a
    /// call sends an empty body (moby v20.10.24 `pkg/plugins/client.go`
    /// `callWithRetry` rebuilds the request from a buffer the first attempt drained).
    pub fn was_written(&self) -> bool {
        matches!(
            self,
            ClientError::Http { written: true, .. } | ClientError::Timeout { .. }
        )
    }

    /// Whether the plugin said it does not implement the method (HTTP 404), which
    /// dockerd treats as "use the default" for optional methods.
    pub fn is_not_implemented(&self) -> bool {
        self.status() == Some(404)
    }
}

#[derive(Debug, Clone)]
enum Target {
    Unix(PathBuf),
    Tcp(String),
}

/// A dockerd-like plugin client; cheap to clone. It keeps its connection alive
/// between calls, as dockerd does, and its clones share it.
#[derive(Debug, Clone)]
pub struct Client {
    target: Target,
    timeout: Option<Duration>,
    pool: Arc<Pool>,
}

impl Client {
    fn new(target: Target) -> Self {
        Self {
            target,
            timeout: None,
            pool: Pool::new(),
        }
    }

    /// A client for the plugin listening on the unix socket `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::new(Target::Unix(path.into()))
    }

    /// A client for the plugin listening on TCP `addr`.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self::new(Target::Tcp(addr.to_string()))
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
            return Ok(Self::new(Target::Tcp(addr.to_string())));
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

    /// Gives up on a call that takes longer than `timeout`, closing its connection as
    /// Go does.
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

    /// The `Host` header Go writes: the URL's host cut at its first `/`, so nothing
    /// for a unix socket's path, and `host:port` over TCP.
    fn host(&self) -> HeaderValue {
        match &self.target {
            Target::Unix(_) => HeaderValue::from_static(""),
            Target::Tcp(addr) => {
                HeaderValue::from_str(addr).unwrap_or_else(|_| HeaderValue::from_static(""))
            }
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

    /// Sends `body` as-is to `POST /method` with dockerd's headers, in Go's order;
    /// no interpretation.
    pub async fn call_raw(
        &self,
        method: &str,
        body: impl Into<Bytes>,
    ) -> Result<RawResponse, ClientError> {
        let request = self.post(method, body.into())?;
        self.send(request).await
    }

    /// `POST /method` with dockerd's headers, in Go's order.
    fn post(&self, method: &str, body: Bytes) -> Result<Request<Full<Bytes>>, ClientError> {
        let path = if method.starts_with('/') {
            method.to_string()
        } else {
            format!("/{method}")
        };
        Request::builder()
            .method(http::Method::POST)
            .uri(path)
            .header(HOST, self.host())
            .header(USER_AGENT, GO_USER_AGENT)
            .header(CONTENT_LENGTH, body.len())
            .header(ACCEPT, HeaderValue::from_static(MEDIA_TYPE_V1_2))
            .body(Full::new(body))
            .map_err(|e| ClientError::BadAddress(format!("{method}: {e}")))
    }

    /// Sends any HTTP request (any method, headers and body) and returns the raw reply:
    /// for tests of the server's handling of what dockerd never sends. `Host` and
    /// `User-Agent` are dockerd's unless the request has its own.
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
        request: Request<Full<Bytes>>,
    ) -> Result<RawResponse, ClientError> {
        let (conn, response) = self.open(method, request).await?;
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
            .map_err(|err| self.http_error(method, true, err))?
            .to_bytes();
        self.pool.put(conn);
        Ok(RawResponse {
            status,
            content_type,
            body,
        })
    }

    /// Calls the streaming method `M` (`LogDriver.ReadLogs`) as dockerd's
    /// `Client.Stream` does: the request as JSON and `\n`; a non-200 reply read whole
    /// and turned into its error; a 200's body handed over as it arrives.
    pub async fn stream<M: Method>(
        &self,
        request: &M::Request,
    ) -> Result<ReplyStream, ClientError> {
        let body = encode_request(M::NAME, request)?;
        self.stream_body::<M>(body).await
    }

    /// [`Client::stream`] with the body as encoded (or as dockerd's retry sends it,
    /// empty).
    pub(crate) async fn stream_body<M: Method>(
        &self,
        body: Bytes,
    ) -> Result<ReplyStream, ClientError> {
        let request = self.post(M::NAME, body)?;
        let (conn, response) = self.open(M::NAME, request).await?;
        if response.status() != http::StatusCode::OK {
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| self.http_error(M::NAME, true, err))?
                .to_bytes();
            let reply = RawResponse {
                status,
                content_type: None,
                body,
            };
            return Err(reply
                .decode_as::<M>()
                .err()
                .unwrap_or(ClientError::EmptyReply {
                    method: M::NAME.to_string(),
                }));
        }
        Ok(ReplyStream::new(M::NAME, conn, response.into_body()))
    }

    fn http_error(&self, method: &str, written: bool, source: hyper::Error) -> ClientError {
        ClientError::Http {
            method: method.to_string(),
            addr: self.addr(),
            written,
            source,
        }
    }

    /// Sends `request` on a kept connection or a fresh one; the reply's head.
    async fn open(
        &self,
        method: &str,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Conn, http::Response<hyper::body::Incoming>), ClientError> {
        let headers = request.headers_mut();
        if !headers.contains_key(HOST) {
            headers.insert(HOST, self.host());
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, HeaderValue::from_static(GO_USER_AGENT));
        }
        let (mut conn, reused) = match self.pool.take() {
            Some(conn) => (conn, true),
            None => (self.dial(method).await?, false),
        };
        let response = match conn.send(request).await {
            Ok(response) => response,
            // A kept connection that failed before anything was written: Go dials
            // again and sends the request there.
            Err(SendError::Unsent(request)) if reused => {
                conn = self.dial(method).await?;
                match conn.send(*request).await {
                    Ok(response) => response,
                    Err(SendError::Unsent(_)) => return Err(self.closed(method)),
                    Err(SendError::Failed(err)) => return Err(self.http_error(method, true, err)),
                }
            }
            Err(SendError::Unsent(_)) => return Err(self.closed(method)),
            Err(SendError::Failed(err)) => return Err(self.http_error(method, true, err)),
        };
        Ok((conn, response))
    }

    /// A fresh connection to the plugin.
    async fn dial(&self, method: &str) -> Result<Conn, ClientError> {
        let connect_error = |source| ClientError::Connect {
            addr: self.addr(),
            source,
        };
        let conn = match &self.target {
            Target::Unix(path) => {
                let stream = UnixStream::connect(path).await.map_err(connect_error)?;
                let probe = Conn::probe(&stream).map_err(connect_error)?;
                Conn::handshake(stream, probe).await
            }
            Target::Tcp(addr) => {
                let stream = TcpStream::connect(addr.as_str())
                    .await
                    .map_err(connect_error)?;
                let _ = stream.set_nodelay(true);
                let probe = Conn::probe(&stream).map_err(connect_error)?;
                Conn::handshake(stream, probe).await
            }
        };
        conn.map_err(|source| ClientError::Http {
            method: method.to_string(),
            addr: self.addr(),
            written: false,
            source,
        })
    }

    /// A fresh connection that closed before the request could be written.
    fn closed(&self, method: &str) -> ClientError {
        ClientError::Connect {
            addr: self.addr(),
            source: io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!("the plugin closed the connection before {method} was sent"),
            ),
        }
    }
}

/// The body dockerd sends for method `M`: nothing for methods without arguments,
/// else Go's `json.Encoder` output.
pub(crate) fn encode_method_request<M: Method>(request: &M::Request) -> Result<Bytes, ClientError> {
    match M::REQUEST_BODY {
        RequestBody::Empty => Ok(Bytes::new()),
        RequestBody::Json => encode_request(M::NAME, request),
    }
}

/// Encodes a request body as dockerd does: Go's `json.Encoder`, so the JSON (with Go's
/// escaping) and `\n`.
pub(crate) fn encode_request<Req: Serialize + ?Sized>(
    method: &str,
    request: &Req,
) -> Result<Bytes, ClientError> {
    go_json::encode(request)
        .map(Bytes::from)
        .map_err(|source| ClientError::Encode {
            method: method.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{self, CreateRequest};

    #[test]
    fn parses_urls() {
        assert!(Client::from_url("unix://").is_err());
        assert!(Client::from_url("tcp://").is_err());
        let c = Client::from_url("unix:///x.sock").unwrap();
        assert_eq!(c.socket_path(), Some(Path::new("/x.sock")));
    }

    #[test]
    fn bodies_are_what_dockerd_sends() {
        let create = CreateRequest {
            name: "v1".into(),
            opts: Default::default(),
        };
        let body = encode_method_request::<volume::Create>(&create).unwrap();
        assert_eq!(&body[..], b"{\"Name\":\"v1\",\"Opts\":null}\n");
        let body = encode_method_request::<Activate>(&Empty {}).unwrap();
        assert!(body.is_empty());
        let body = encode_method_request::<volume::List>(&Empty {}).unwrap();
        assert_eq!(&body[..], b"{}\n");
    }
}
