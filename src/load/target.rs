//! Where the plugin under load listens: a plugin name found as dockerd finds a legacy
//! plugin (the harness's [`Discovery`], which follows moby v20.10.24
//! `pkg/plugins/discovery.go`), a socket path, or a `unix://` / `tcp://` URL; and the
//! connections to it.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::LoadError;
use crate::harness::{Discovery, HarnessError};

/// Where a plugin listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A unix socket.
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

impl Target {
    /// A plugin named the way a person names it: a URL (`unix:///…`, `tcp://…`), a
    /// socket path (anything with a `/`), or a plugin name, looked up where dockerd
    /// looks for a legacy plugin (`/run/docker/plugins/NAME.sock`, then `NAME.spec` and
    /// `NAME.json` in `/etc/docker/plugins` and `/usr/lib/docker/plugins`).
    ///
    /// ```
    /// use docker_plugin_sdk::load::Target;
    /// use std::path::PathBuf;
    /// assert_eq!(Target::locate("./p.sock").unwrap(), Target::Unix(PathBuf::from("./p.sock")));
    /// assert_eq!(Target::locate("tcp://127.0.0.1:80").unwrap(), Target::Tcp("127.0.0.1:80".into()));
    /// assert!(Target::locate("https://h:1").is_err());
    /// ```
    pub fn locate(plugin: &str) -> Result<Self, LoadError> {
        Self::locate_in(plugin, &Discovery::system())
    }

    /// [`locate`](Self::locate) with plugin names looked up in `discovery`'s
    /// directories.
    pub fn locate_in(plugin: &str, discovery: &Discovery) -> Result<Self, LoadError> {
        if plugin.contains("://") {
            return Self::from_url(plugin);
        }
        if plugin.contains('/') {
            return Ok(Self::Unix(PathBuf::from(plugin)));
        }
        if plugin.is_empty() {
            return Err(LoadError::BadAddress(plugin.to_owned()));
        }
        let found = discovery.find(plugin).map_err(|err| match err {
            HarnessError::PluginNotFound { .. } => LoadError::NotFound {
                name: plugin.to_owned(),
            },
            other => LoadError::Spec(other.to_string()),
        })?;
        Self::from_url(&found.addr)
            .map_err(|err| LoadError::Spec(format!("{}: {err}", found.path.display())))
    }

    /// `unix:///path` or `tcp://host:port`.
    pub fn from_url(url: &str) -> Result<Self, LoadError> {
        let url = url.trim();
        if url.starts_with("https://") {
            return Err(LoadError::Https(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("unix://")
            && !path.is_empty()
        {
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = url.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            if !addr.is_empty() && addr.contains(':') {
                return Ok(Self::Tcp(addr.to_owned()));
            }
        }
        Err(LoadError::BadAddress(url.to_owned()))
    }

    /// The address as a URL.
    pub fn url(&self) -> String {
        match self {
            Self::Unix(path) => format!("unix://{}", path.display()),
            Self::Tcp(addr) => format!("tcp://{addr}"),
        }
    }

    /// The unix socket, for a unix target.
    pub fn socket_path(&self) -> Option<&Path> {
        match self {
            Self::Unix(path) => Some(path),
            Self::Tcp(_) => None,
        }
    }

    /// The `Host` header Go's client writes: empty for a unix socket (Go cuts the
    /// socket path at its first `/`), `host:port` over TCP (see `client`).
    pub(crate) fn host(&self) -> &str {
        match self {
            Self::Unix(_) => "",
            Self::Tcp(addr) => addr,
        }
    }

    /// A new connection.
    pub(crate) async fn connect(&self) -> std::io::Result<Stream> {
        match self {
            Self::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            Self::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                // Go's transport sets TCP_NODELAY on its connections.
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }

    /// The pid of the process serving the unix socket, from the connection's peer
    /// credentials (`SO_PEERCRED`); `None` over TCP or when the kernel does not say.
    pub async fn server_pid(&self) -> Option<u32> {
        let Self::Unix(path) = self else {
            return None;
        };
        let stream = UnixStream::connect(path).await.ok()?;
        let pid = stream.peer_cred().ok()?.pid()?;
        u32::try_from(pid).ok().filter(|pid| *pid > 0)
    }
}

/// One connection to the plugin.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Self::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Self::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Unix(s) => std::pin::Pin::new(s).poll_flush(cx),
            Self::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Unix(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Self::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}
