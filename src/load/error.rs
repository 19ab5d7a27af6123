//! The load tool's one error type: what stops a run before or instead of measuring
//! (the calls that fail during a run are counted, not raised).

use std::io;
use std::path::PathBuf;

/// Why a load run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The request body is not JSON.
    #[error(
        "the request body is not JSON ({source}): give a JSON value, e.g. '{{\"Name\":\"v1\"}}', or @FILE"
    )]
    BadJson {
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The `@FILE` body could not be read.
    #[error("reading the request body from {path}: {source}")]
    BodyFile {
        /// The file named.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// The address is not one the load tool can reach.
    #[error(
        "invalid plugin address {0:?}: expected a plugin name, a socket path, unix:///path/to.sock or tcp://host:port"
    )]
    BadAddress(String),
    /// An `https://` plugin: the SDK's client has no TLS.
    #[error(
        "{0}: https:// plugins are not supported by the load tool (the SDK's client has no TLS): serve the plugin on unix:// or tcp:// to measure it"
    )]
    Https(String),
    /// No plugin of that name where dockerd looks.
    #[error(
        "plugin {name} not found: no socket /run/docker/plugins/{name}.sock (or {name}/{name}.sock), no {name}.spec or {name}.json in /etc/docker/plugins or /usr/lib/docker/plugins; is it running? Or give its socket path or URL"
    )]
    NotFound {
        /// The plugin name.
        name: String,
    },
    /// The plugin's spec file names no usable address.
    #[error("{0}")]
    Spec(String),
    /// The plugin could not be reached at all.
    #[error(
        "connecting to the plugin at {addr}: {source}: is the plugin running and listening there?"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The plugin does not serve the method (HTTP 404 to the first call).
    #[error(
        "the plugin refused {method}: {message} (HTTP {status}): check the method name (Subsystem.Method, e.g. VolumeDriver.Get) and that the plugin implements that subsystem"
    )]
    Refused {
        /// The method called.
        method: String,
        /// The status it answered.
        status: u16,
        /// The body's `Err`, or the body.
        message: String,
    },
    /// The first call failed on the wire (the plugin closed the connection, or
    /// answered something that is not HTTP).
    #[error(
        "calling {method} on {addr}: {message}: is a plugin (an HTTP/1.1 server) listening there?"
    )]
    Exchange {
        /// The method called.
        method: String,
        /// The plugin address.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// A call of the log-lines run (StartLogging, StopLogging) failed.
    #[error("{0}")]
    Client(#[from] crate::client::ClientError),
    /// The log FIFO could not be made or written.
    #[error("the log FIFO {path}: {source}")]
    Fifo {
        /// The FIFO's path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The options make no run (no connections, no time).
    #[error("{0}")]
    Options(String),
    /// The runtime or a task of the load generator failed.
    #[error("the load generator: {0}")]
    Internal(String),
}
