//! The one abstraction the server consumes, in the spirit of axum's `serve::Listener`:
//! something that accepts connections and says where it listens. The server never
//! learns which kind of socket it has; [`Listener`] (unix, TCP, TLS, systemd) is the
//! implementation plugins use, and any other (an in-memory pipe in a test, a vsock)
//! can be served the same way.
//!
//! Accepting is split in two so that a slow client cannot stall the accept loop: the
//! listener hands out a [`Accept::Handshake`] future at once, and the server runs it in
//! the connection's own task (a TLS handshake; nothing for plain sockets).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Listener, ListenerKind};
use crate::error::ServeError;

/// A source of connections for [`Server`](crate::Server).
///
/// ```
/// use std::io;
/// use std::task::{Context, Poll};
/// use docker_plugin_sdk::transport::Accept;
///
/// /// Connections handed over by another part of the program.
/// struct Handed(tokio::sync::mpsc::Receiver<tokio::io::DuplexStream>);
///
/// impl Accept for Handed {
///     type Io = tokio::io::DuplexStream;
///     type Handshake = std::future::Ready<io::Result<Self::Io>>;
///
///     fn url(&self) -> String {
///         "memory://".to_owned()
///     }
///
///     fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Handshake>> {
///         self.0.poll_recv(cx).map(|io| match io {
///             Some(io) => Ok(std::future::ready(Ok(io))),
///             None => Err(io::Error::other("no more connections")),
///         })
///     }
/// }
/// ```
pub trait Accept: Send + 'static {
    /// A connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// What turns an accepted socket into a connection (a TLS handshake), run in the
    /// connection's own task.
    type Handshake: Future<Output = io::Result<Self::Io>> + Send + 'static;

    /// Where dockerd reaches this listener, as a spec file writes it
    /// (`unix:///run/docker/plugins/x.sock`, `tcp://127.0.0.1:8080`).
    fn url(&self) -> String;

    /// Called once, inside the tokio runtime, before the first accept: the place to
    /// register sockets bound earlier with the runtime.
    fn ready(&mut self) -> Result<(), ServeError> {
        Ok(())
    }

    /// Accepts the next connection. An error is logged, and accepting goes on after a
    /// short pause (it is usually `EMFILE`, out of file descriptors).
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Handshake>>;
}

/// A connection accepted by a [`Listener`].
#[derive(Debug)]
pub struct Connection(Stream);

#[derive(Debug)]
enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// The setup of a [`Listener`]'s connection: nothing for plain sockets, the TLS
/// handshake (bounded by 30 s) for TLS.
pub struct Handshake(HandshakeKind);

enum HandshakeKind {
    Ready(Option<Connection>),
    #[cfg(feature = "tls")]
    Tls(Pin<Box<dyn Future<Output = io::Result<Connection>> + Send>>),
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handshake")
    }
}

impl Handshake {
    fn ready(stream: Stream) -> Self {
        Self(HandshakeKind::Ready(Some(Connection(stream))))
    }
}

impl Future for Handshake {
    type Output = io::Result<Connection>;

    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            HandshakeKind::Ready(connection) => Poll::Ready(
                connection
                    .take()
                    .ok_or_else(|| io::Error::other("handshake polled after completion")),
            ),
            #[cfg(feature = "tls")]
            HandshakeKind::Tls(handshake) => handshake.as_mut().poll(cx),
        }
    }
}

impl Accept for Listener {
    type Io = Connection;
    type Handshake = Handshake;

    fn url(&self) -> String {
        Listener::url(self)
    }

    fn ready(&mut self) -> Result<(), ServeError> {
        self.kind.register()
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Handshake>> {
        match &self.kind {
            ListenerKind::Unix(bound) => {
                let (io, _) = std::task::ready!(bound.socket.ready()?.poll_accept(cx))?;
                Poll::Ready(Ok(Handshake::ready(Stream::Unix(io))))
            }
            ListenerKind::Tcp(listener) => {
                let (io, _) = std::task::ready!(listener.ready()?.poll_accept(cx))?;
                let _ = io.set_nodelay(true);
                Poll::Ready(Ok(Handshake::ready(Stream::Tcp(io))))
            }
            #[cfg(feature = "tls")]
            ListenerKind::Tls(listener, config) => {
                let (io, _) = std::task::ready!(listener.ready()?.poll_accept(cx))?;
                let _ = io.set_nodelay(true);
                let handshake = config.handshake(io);
                Poll::Ready(Ok(Handshake(HandshakeKind::Tls(Box::pin(async move {
                    let stream = handshake.await?;
                    Ok(Connection(Stream::Tls(Box::new(stream))))
                })))))
            }
        }
    }
}

/// Forwards each I/O call to the stream inside.
macro_rules! forward {
    ($self:ident, $stream:ident => $call:expr) => {
        match &mut $self.get_mut().0 {
            Stream::Unix($stream) => $call,
            Stream::Tcp($stream) => $call,
            #[cfg(feature = "tls")]
            Stream::Tls($stream) => $call,
        }
    };
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        forward!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        forward!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        forward!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.0 {
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tcp(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}
