//! systemd socket activation: the socket comes from `LISTEN_FDS` (through `listenfd`),
//! already bound by systemd (or `systemd-socket-activate`), and readiness is reported
//! back with `sd_notify`.

use listenfd::ListenFd;

use super::{BoundUnix, Listener, ListenerKind, Socket};
use crate::error::ServeError;

/// Takes the first passed socket, unix first, then TCP.
pub(super) fn take_first() -> Result<Listener, ServeError> {
    let mut fds = ListenFd::from_env();
    if fds.len() == 0 {
        return Err(ServeError::NoActivatedSocket);
    }
    if let Ok(Some(listener)) = fds.take_unix_listener(0) {
        let path = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.to_path_buf()));
        return Ok(Listener {
            kind: ListenerKind::Unix(BoundUnix {
                socket: Socket::Bound(listener),
                owned: None, // systemd owns the socket file
                path,
            }),
        });
    }
    match fds.take_tcp_listener(0) {
        Ok(Some(listener)) => Ok(Listener {
            kind: ListenerKind::Tcp(Socket::Bound(listener)),
        }),
        Ok(None) => Err(ServeError::NoActivatedSocket),
        Err(e) => Err(ServeError::io("taking the socket passed by systemd", e)),
    }
}

/// Tells systemd the plugin is ready (a no-op when not started by systemd).
pub(crate) fn notify_ready() {
    if let Err(err) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::debug!(%err, "sd_notify READY failed");
    }
}

/// Tells systemd the plugin is stopping.
pub(crate) fn notify_stopping() {
    if let Err(err) = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]) {
        tracing::debug!(%err, "sd_notify STOPPING failed");
    }
}
