//! Where a plugin listens: a unix socket (the usual case), TCP, TCP with TLS (feature
//! `tls`), or a socket passed by systemd socket activation. Transport is kept apart from
//! protocol (design principle 4): a [`Listener`] only accepts connections; the server
//! speaks HTTP on whatever it accepts. [`ListenArgs`] reads the command-line flags that
//! choose one.

mod accept;
mod claim;
mod listen_args;
mod systemd;
#[cfg(feature = "tls")]
mod tls;
mod unix;
mod value_flag;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

pub use accept::{Accept, Connection, Handshake};
pub use listen_args::ListenArgs;
pub(crate) use systemd::{notify_ready, notify_stopping};
pub(crate) use unix::{BoundUnix, validate_name};
pub use unix::{DEFAULT_SOCKET_DIR, DEFAULT_SOCKET_MODE, UnixSocket};
pub use value_flag::ValueFlag;

#[cfg(feature = "tls")]
pub use tls::TlsConfig;

use crate::error::ServeError;

/// A bound listening socket, ready to be served by [`Plugin::serve`](crate::Plugin::serve).
///
/// A unix socket this process created is removed when the listener is dropped (when
/// the server stops accepting), unless another process has replaced it since.
#[derive(Debug)]
pub struct Listener {
    pub(crate) kind: ListenerKind,
}

#[derive(Debug)]
pub(crate) enum ListenerKind {
    Unix(BoundUnix),
    Tcp(Socket<std::net::TcpListener, tokio::net::TcpListener>),
    #[cfg(feature = "tls")]
    Tls(
        Socket<std::net::TcpListener, tokio::net::TcpListener>,
        tls::TlsConfig,
    ),
}

impl ListenerKind {
    /// Registers the socket with the tokio runtime (see [`Accept::ready`]).
    fn register(&mut self) -> Result<(), ServeError> {
        let registered = match self {
            Self::Unix(bound) => bound.socket.register(|std| {
                std.set_nonblocking(true)?;
                tokio::net::UnixListener::from_std(std)
            }),
            Self::Tcp(socket) => socket.register(register_tcp),
            #[cfg(feature = "tls")]
            Self::Tls(socket, _) => socket.register(register_tcp),
        };
        registered.map_err(|e| ServeError::io("registering the listener with tokio", e))?;
        if let Self::Tcp(socket) = self {
            warn_if_reachable_from_other_hosts(socket.local_addr());
        }
        Ok(())
    }
}

/// Plain TCP has no authentication: on an address other than loopback, any host that
/// reaches it can call the plugin (and mount on this host as root).
fn warn_if_reachable_from_other_hosts(addr: io::Result<SocketAddr>) {
    if let Ok(addr) = addr
        && !addr.ip().is_loopback()
    {
        tracing::warn!(
            %addr,
            "listening on plain TCP on {addr}: any host that can reach this address can \
             call the plugin; listen on 127.0.0.1, or use TLS with client certificates \
             (Listener::tls, TlsConfig::require_client_ca)"
        );
    }
}

fn register_tcp(std: std::net::TcpListener) -> io::Result<tokio::net::TcpListener> {
    std.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(std)
}

/// A listening socket: bound with the standard library (possibly before any runtime
/// exists), then registered with tokio when the server starts.
#[derive(Debug)]
pub(crate) enum Socket<S, T> {
    Bound(S),
    Ready(T),
    /// Registration failed; the socket is closed.
    Gone,
}

impl<S, T> Socket<S, T> {
    fn register(&mut self, with: impl FnOnce(S) -> io::Result<T>) -> io::Result<()> {
        match std::mem::replace(self, Self::Gone) {
            Self::Bound(std) => {
                *self = Self::Ready(with(std)?);
                Ok(())
            }
            other => {
                *self = other;
                Ok(())
            }
        }
    }

    /// The registered socket.
    pub(crate) fn ready(&self) -> io::Result<&T> {
        match self {
            Self::Ready(socket) => Ok(socket),
            _ => Err(io::Error::other(
                "the listener is not registered with the runtime (Accept::ready was not called)",
            )),
        }
    }
}

impl Socket<std::net::TcpListener, tokio::net::TcpListener> {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Bound(l) => l.local_addr(),
            Self::Ready(l) => l.local_addr(),
            Self::Gone => Err(io::Error::other("the listener is closed")),
        }
    }
}

impl Listener {
    /// Binds `/run/docker/plugins/NAME.sock`; see [`UnixSocket`] for the options.
    pub fn unix(name: &str) -> Result<Self, ServeError> {
        UnixSocket::new(name).bind()
    }

    /// Listens on a TCP address (plain HTTP). dockerd finds such a plugin through a spec
    /// file: see [`SpecFile`](crate::spec::SpecFile).
    pub fn tcp(addr: impl ToSocketAddrs) -> Result<Self, ServeError> {
        let listener = bind_tcp(addr)?;
        Ok(Self {
            kind: ListenerKind::Tcp(Socket::Bound(listener)),
        })
    }

    /// Listens on a TCP address with TLS. dockerd uses TLS only for `https://` addresses
    /// of a `.json` spec file.
    #[cfg(feature = "tls")]
    pub fn tls(addr: impl ToSocketAddrs, config: TlsConfig) -> Result<Self, ServeError> {
        let listener = bind_tcp(addr)?;
        Ok(Self {
            kind: ListenerKind::Tls(Socket::Bound(listener), config),
        })
    }

    /// Takes the first socket passed by systemd socket activation (`LISTEN_FDS`), unix or
    /// TCP. The socket belongs to systemd, so it is not removed on shutdown.
    pub fn from_systemd() -> Result<Self, ServeError> {
        systemd::take_first()
    }

    /// The address dockerd reaches this listener at, as a spec file writes it:
    /// `unix:///run/docker/plugins/x.sock`, `tcp://127.0.0.1:8080` or
    /// `https://127.0.0.1:8443`.
    pub fn url(&self) -> String {
        match &self.kind {
            ListenerKind::Unix(bound) => match &bound.path {
                Some(path) => format!("unix://{}", path.display()),
                None => "unix://".to_owned(),
            },
            ListenerKind::Tcp(l) => format!("tcp://{}", display_addr(l.local_addr())),
            #[cfg(feature = "tls")]
            ListenerKind::Tls(l, _) => format!("https://{}", display_addr(l.local_addr())),
        }
    }

    /// The socket's path, for unix listeners.
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.kind {
            ListenerKind::Unix(bound) => bound.path.as_deref(),
            _ => None,
        }
    }

    /// The bound address, for TCP and TLS listeners (useful after binding port 0).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match &self.kind {
            ListenerKind::Tcp(l) => l.local_addr().ok(),
            #[cfg(feature = "tls")]
            ListenerKind::Tls(l, _) => l.local_addr().ok(),
            ListenerKind::Unix(_) => None,
        }
    }
}

fn bind_tcp(addr: impl ToSocketAddrs) -> Result<std::net::TcpListener, ServeError> {
    std::net::TcpListener::bind(addr).map_err(|e| ServeError::io("binding TCP listener", e))
}

fn display_addr(addr: io::Result<SocketAddr>) -> String {
    addr.map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown".to_owned())
}
