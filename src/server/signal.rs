//! The shutdown signals of a plugin run as a service: SIGTERM (what dockerd, systemd and
//! `docker plugin disable` send) or SIGINT (Ctrl-C) starts a graceful shutdown; a
//! second one, of either kind, stops at once (the calls still running are not waited
//! for), as an impatient operator expects.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::error::ServeError;

/// What the signals cancel.
pub(super) struct Signals {
    /// Cancelled on the first SIGTERM or SIGINT.
    pub(super) shutdown: CancellationToken,
    /// Cancelled on the second.
    pub(super) force: CancellationToken,
}

/// Installs the handlers: the tokens, and the future that waits for the signals and
/// cancels them (polled by the server's own task alongside its accept loop, see
/// [`alongside`](super::alongside)).
pub(super) fn signal_tokens() -> Result<(Signals, impl Future<Output = ()> + Send), ServeError> {
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| ServeError::io("installing the SIGTERM handler", e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| ServeError::io("installing the SIGINT handler", e))?;
    let signals = Signals {
        shutdown: CancellationToken::new(),
        force: CancellationToken::new(),
    };
    let (shutdown, force) = (signals.shutdown.clone(), signals.force.clone());
    let watch = async move {
        let name = next(&mut term, &mut int).await;
        tracing::info!("{name} received: shutting down (send it again to stop at once)");
        shutdown.cancel();
        let name = next(&mut term, &mut int).await;
        tracing::warn!("{name} received again: stopping at once");
        force.cancel();
    };
    Ok((signals, watch))
}

/// Waits for the next SIGTERM or SIGINT and names it.
async fn next(term: &mut Signal, int: &mut Signal) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
