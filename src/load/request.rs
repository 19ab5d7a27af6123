//! The request the load tool sends, byte for byte what dockerd's Go client writes
//! (moby v20.10.24 `pkg/plugins/client.go`, Go 1.19 `net/http`; the same headers, in
//! the same order, as `client`): `POST /METHOD`, `Host`, `User-Agent`,
//! `Content-Length`, `Accept: application/vnd.docker.plugins.v1.2+json`, and the
//! `Accept-Encoding: gzip` Go's transport adds; no `Content-Type`. The body is what
//! Go's `json.Encoder` writes (the JSON and `\n`), or nothing for the methods dockerd
//! calls without arguments (`Plugin.Activate`, `NetworkDriver.GetCapabilities`, …).

use std::path::Path;

use bytes::Bytes;

use super::LoadError;
use crate::protocol::{Activate, Method, MethodSpec, RequestBody};

/// One call: the method and the body sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    method: String,
    body: Bytes,
}

impl Call {
    /// `method` (`VolumeDriver.Get`, as dockerd names it) with `json` as its body
    /// (encoded as Go encodes it), or, without `json`, the body dockerd sends when the
    /// method takes none (nothing for `Plugin.Activate` and the other methods called
    /// without arguments, `{}` otherwise).
    ///
    /// ```
    /// use docker_plugin_sdk::load::Call;
    /// let get = Call::new("VolumeDriver.Get", Some(r#"{"Name": "v1"}"#)).unwrap();
    /// assert_eq!(get.body(), b"{\"Name\":\"v1\"}\n");
    /// assert_eq!(Call::new("Plugin.Activate", None).unwrap().body(), b"");
    /// assert_eq!(Call::new("VolumeDriver.List", None).unwrap().body(), b"{}\n");
    /// assert!(Call::new("VolumeDriver.Get", Some("{")).is_err());
    /// ```
    pub fn new(method: &str, json: Option<&str>) -> Result<Self, LoadError> {
        let method = method.trim_start_matches('/').to_owned();
        let body = match json {
            Some(text) => {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|source| LoadError::BadJson { source })?;
                crate::client::encode_request(&method, &value)?
            }
            None if spec(&method).is_some_and(|s| s.request_body == RequestBody::Empty) => {
                Bytes::new()
            }
            None => Bytes::from_static(b"{}\n"),
        };
        Ok(Self { method, body })
    }

    /// [`new`](Self::new) with the JSON read from `arg`: `@FILE` reads the file,
    /// anything else is the JSON itself.
    pub fn from_arg(method: &str, arg: Option<&str>) -> Result<Self, LoadError> {
        match arg.and_then(|a| a.strip_prefix('@')) {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| LoadError::BodyFile {
                    path: Path::new(path).to_path_buf(),
                    source,
                })?;
                Self::new(method, Some(&text))
            }
            None => Self::new(method, arg),
        }
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The body sent.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The whole request as written on the wire, with `host` as its `Host`.
    pub(crate) fn bytes(&self, host: &str) -> Bytes {
        let mut out = format!(
            "POST /{} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\nAccept: {}\r\nAccept-Encoding: gzip\r\n\r\n",
            self.method,
            self.body.len(),
            crate::protocol::MEDIA_TYPE_V1_2,
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }
}

/// The declaration of a method the SDK knows, by name.
fn spec(name: &str) -> Option<&'static MethodSpec> {
    if name == Activate::NAME {
        return Some(&Activate::SPEC);
    }
    [
        crate::volume::SUBSYSTEM,
        crate::network::SUBSYSTEM,
        crate::ipam::SUBSYSTEM,
        crate::authz::SUBSYSTEM,
        crate::logging::SUBSYSTEM,
        crate::secrets::SUBSYSTEM,
        crate::metrics::SUBSYSTEM,
    ]
    .into_iter()
    .find_map(|subsystem| subsystem.method(name))
}
