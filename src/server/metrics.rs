//! The metrics endpoint: `GET /metrics` in the Prometheus text format on a listener of
//! its own (a unix socket, or a TCP port on loopback: the metrics say what the plugin
//! is asked, which is nobody else's business), served while the plugin serves. It is
//! deliberately small: one path, no keep-alive tuning, no limits beyond hyper's; a
//! scraper calls it every few seconds.

use std::convert::Infallible;
use std::future::poll_fn;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use crate::error::ServeError;
use crate::telemetry::{CallMetrics, Readiness};
use crate::transport::{Accept, Listener};

/// Checks that `listener` may serve metrics: a unix socket, or TCP on loopback.
pub(super) fn check_metrics_listener(listener: &Listener) -> Result<(), ServeError> {
    match listener.tcp_addr() {
        Some(addr) if !addr.ip().is_loopback() => Err(ServeError::MetricsNotLoopback { addr }),
        _ => Ok(()),
    }
}

/// Serves the metrics on `listener` until `stop` is cancelled.
pub(super) async fn serve_metrics(
    mut listener: Listener,
    metrics: CallMetrics,
    readiness: Option<Readiness>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = poll_fn(|cx| listener.poll_accept(cx)) => accepted,
        };
        let handshake = match accepted {
            Ok(handshake) => handshake,
            Err(err) => {
                tracing::debug!(%err, "metrics endpoint: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        let readiness = readiness.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let Ok(io) = handshake.await else { return };
            let service = service_fn(move |request: http::Request<Incoming>| {
                let reply = answer(&request, &metrics, readiness.as_ref());
                async move { Ok::<_, Infallible>(reply) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(io), service);
            tokio::select! {
                _ = connection => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

fn answer(
    request: &http::Request<Incoming>,
    metrics: &CallMetrics,
    readiness: Option<&Readiness>,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if request.uri().path() != "/metrics" {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the metrics are at /metrics\n".to_owned(),
        )
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed: GET /metrics\n".to_owned(),
        )
    } else {
        let body = match readiness {
            Some(readiness) => metrics.render_with_readiness(readiness),
            None => metrics.render(),
        };
        (StatusCode::OK, crate::telemetry::TEXT_CONTENT_TYPE, body)
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
