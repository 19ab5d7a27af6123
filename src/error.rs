//! Errors, one type per layer.
//!
//! - [`Error`] is what a driver method returns. The server turns it into Docker's
//!   `{"Err": "..."}` reply, which `dockerd` shows to the user (for example as the
//!   message of a failed `docker volume create`).
//! - [`ServeError`] is what setting up or running the server can fail with: binding a
//!   socket, writing a spec file, reading TLS keys.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::PathBuf;

use http::StatusCode;

/// The error a driver method returns; it reaches `dockerd` as `{"Err": "<message>"}`.
///
/// Any [`std::error::Error`] converts into it with `?`, keeping its chain of causes in
/// the message (`"mount /mnt/x: permission denied"`), so driver code reads like any
/// other Rust code:
///
/// ```
/// use docker_plugin_sdk::Error;
///
/// fn read_state(path: &str) -> Result<String, Error> {
///     let text = std::fs::read_to_string(path)?; // io::Error converts
///     if text.is_empty() {
///         return Err(Error::new(format!("state file {path} is empty")));
///     }
///     Ok(text)
/// }
/// assert!(read_state("/nonexistent/state").is_err());
/// ```
///
/// `Error` deliberately does not implement [`std::error::Error`] itself, so that the
/// blanket conversion from every error type can exist (the same trade-off `anyhow` makes).
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
}

/// What kind of failure an [`Error`] is; it decides the HTTP status of the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The driver could not do what was asked (HTTP 500, as go-plugins-helpers answers).
    Driver,
    /// The plugin does not implement this method (HTTP 404). `dockerd` recognises a 404
    /// as "not implemented" and falls back to its default where it has one.
    NotImplemented,
    /// The request could not be understood: malformed JSON, a missing field (HTTP 400).
    BadRequest,
}

impl Error {
    /// A driver failure with this message, shown to the Docker user as is.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self::with_kind(ErrorKind::Driver, message)
    }

    /// The error optional methods return by default: HTTP 404, which `dockerd` treats as
    /// "not implemented" and answers with its own default.
    pub fn not_implemented(method: &str) -> Self {
        Self::with_kind(
            ErrorKind::NotImplemented,
            format!("{method} is not implemented by this plugin"),
        )
    }

    /// An error of the given kind.
    pub fn with_kind(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message sent to `dockerd` in `Err`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status the reply carries.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Driver => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NotImplemented => StatusCode::NOT_FOUND,
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}: {})", self.kind, self.message)
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Many errors already repeat their cause in their own message.
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self::new(message)
    }
}

/// The `Result` of a driver method.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Setting up or running the plugin server failed. Each variant says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The plugin name cannot be used as a socket or spec file name.
    #[error(
        "invalid plugin name {name:?}: use letters, digits, '.', '_' or '-', not starting with '.'"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A live process already listens on the socket.
    #[error(
        "socket {} is in use by another process: stop that plugin or choose another name",
        path.display()
    )]
    SocketInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket stands where the socket should go.
    #[error(
        "{} exists and is not a socket: refusing to replace it; remove it or choose another name",
        path.display()
    )]
    NotASocket {
        /// The path in the way.
        path: PathBuf,
    },
    /// The socket path is longer than a unix socket address can hold.
    #[error(
        "socket path {} is {len} bytes, longer than the {max} a unix socket allows: use a shorter directory",
        path.display()
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A group named for the socket does not exist.
    #[error("group {group:?} does not exist: create it or omit the group setting")]
    UnknownGroup {
        /// The group name.
        group: String,
    },
    /// No socket was passed by systemd (or another socket activator).
    #[error(
        "no socket was passed in LISTEN_FDS: start the plugin through its systemd .socket unit"
    )]
    NoActivatedSocket,
    /// The metrics endpoint was given a TCP address off loopback.
    #[error(
        "the metrics endpoint must listen on a unix socket or on loopback, not {addr}: \
         use 127.0.0.1 or ::1 (the metrics are the plugin's own business)"
    )]
    MetricsNotLoopback {
        /// The address refused.
        addr: std::net::SocketAddr,
    },
    /// A TLS certificate or key could not be used.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// An I/O operation failed; `action` says which.
    #[error("{action}: {source}")]
    Io {
        /// What was being done, with the path involved.
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ServeError {
    /// An I/O error with a description of what was being done.
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_with_their_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("mount /mnt/x failed")]
        struct Outer(#[source] io::Error);
        let err: Error = Outer(io::Error::other("permission denied")).into();
        assert_eq!(err.message(), "mount /mnt/x failed: permission denied");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn not_implemented_is_a_404() {
        let err = Error::not_implemented("Test.Optional");
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            err.to_string(),
            "Test.Optional is not implemented by this plugin"
        );
    }

    #[test]
    fn serve_errors_name_their_fix() {
        let err = ServeError::SocketInUse {
            path: "/run/docker/plugins/x.sock".into(),
        };
        assert_eq!(
            err.to_string(),
            "socket /run/docker/plugins/x.sock is in use by another process: stop that plugin or choose another name"
        );
    }
}
