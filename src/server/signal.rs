//! The shutdown signal of a plugin run as a service: SIGTERM (what dockerd, systemd and
//! `docker plugin disable` send) or SIGINT (Ctrl-C).

use std::convert::Infallible;

use tokio_util::sync::CancellationToken;

use crate::error::ServeError;

/// A token cancelled on the first SIGTERM or SIGINT.
pub(super) fn signal_token() -> Result<CancellationToken, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| ServeError::io("installing the SIGTERM handler", e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| ServeError::io("installing the SIGINT handler", e))?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        cancel.cancel();
        Ok::<(), Infallible>(())
    });
    Ok(token)
}
