//! The metrics-collector SDK over a real unix socket, called as dockerd 20.10 calls it
//! (moby v20.10.24 `daemon/metrics.go`: StartMetrics and StopMetrics with no body),
//! and the engine-metrics scraper: `GET /metrics` on a unix socket, the Prometheus
//! text read strictly, its failures named with the socket and what to do.

mod support;

use std::sync::{Arc, Mutex};

use docker_plugin_sdk::metrics::{self, EngineMetrics, MetricKind, ScrapeError};
use docker_plugin_sdk::telemetry::CallMetrics;
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{Error, Plugin, Result, async_trait};
use support::server::{Recorder, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// A collector recording its calls; it refuses to start once told to.
#[derive(Default)]
struct Calls {
    log: Mutex<Vec<&'static str>>,
    refuse: Mutex<bool>,
}

struct Collector(Arc<Calls>);

#[async_trait]
impl metrics::Collector for Collector {
    async fn start_metrics(&self) -> Result<()> {
        self.0.log.lock().unwrap().push("StartMetrics");
        if *self.0.refuse.lock().unwrap() {
            return Err(Error::new("the export directory is read-only"));
        }
        Ok(())
    }
    async fn stop_metrics(&self) -> Result<()> {
        self.0.log.lock().unwrap().push("StopMetrics");
        Ok(())
    }
}

fn serve() -> (TestServer, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixSocket::new("collector").dir(dir.path()).bind().unwrap();
    let plugin = Plugin::new().metrics_collector(Collector(Arc::clone(&calls)));
    let server = TestServer::serve(dir, listener, plugin, Arc::new(Recorder::default()));
    (server, calls)
}

#[tokio::test]
async fn start_and_stop_metrics_take_no_body_and_answer_an_empty_object() {
    let (s, calls) = serve();
    assert_eq!(
        s.client.activate().await.unwrap().implements,
        ["MetricsCollector"]
    );
    // Exactly what dockerd 20.10 sends: no body (pkg/plugins sends none for nil args).
    for method in [
        "MetricsCollector.StartMetrics",
        "MetricsCollector.StopMetrics",
    ] {
        let reply = s.client.call_raw(method, "").await.unwrap();
        assert_eq!(
            (reply.status.as_u16(), reply.text()),
            (200, "{}".into()),
            "{method}"
        );
    }
    assert_eq!(*calls.log.lock().unwrap(), ["StartMetrics", "StopMetrics"]);
    // A failing start is dockerd's logged `Err`.
    *calls.refuse.lock().unwrap() = true;
    let err = s
        .client
        .call::<metrics::StartMetrics>(&Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "MetricsCollector.StartMetrics: the export directory is read-only (HTTP 500)"
    );
}

#[tokio::test]
async fn the_scraper_reads_a_metrics_endpoint_exactly() {
    // The plugin's own metrics endpoint (telemetry) serves the same text format on a
    // unix socket: after a known sequence of calls the scrape has the exact counts.
    let call_metrics = CallMetrics::new();
    let calls = Arc::new(Calls::default());
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixSocket::new("collector").dir(dir.path()).bind().unwrap();
    let endpoint_listener = UnixSocket::new("metrics").dir(dir.path()).bind().unwrap();
    let endpoint = dir.path().join("metrics.sock");
    let plugin = Plugin::new()
        .metrics_collector(Collector(Arc::clone(&calls)))
        .call_metrics(&call_metrics);
    let stop = docker_plugin_sdk::CancellationToken::new();
    let server = plugin
        .server(listener)
        .metrics(endpoint_listener, &call_metrics)
        .shutdown_on(stop.clone());
    let task = tokio::spawn(server.run());
    let client = docker_plugin_sdk::client::Client::unix(dir.path().join("collector.sock"));
    for _ in 0..3 {
        client
            .call::<metrics::StartMetrics>(&Default::default())
            .await
            .unwrap();
    }
    client
        .call::<metrics::StopMetrics>(&Default::default())
        .await
        .unwrap();

    let scrape = EngineMetrics::at(&endpoint).scrape().await.unwrap();
    let calls_of = |method| scrape.value("docker_plugin_calls_total", &[("method", method)]);
    assert_eq!(calls_of("MetricsCollector.StartMetrics"), Some(3.0));
    assert_eq!(calls_of("MetricsCollector.StopMetrics"), Some(1.0));
    assert_eq!(
        scrape.value(
            "docker_plugin_call_duration_seconds_count",
            &[("method", "MetricsCollector.StartMetrics")]
        ),
        Some(3.0)
    );
    assert_eq!(
        scrape
            .family("docker_plugin_call_duration_seconds")
            .unwrap()
            .kind,
        MetricKind::Histogram
    );
    // What the scraper read is what the endpoint rendered.
    let text = EngineMetrics::at(&endpoint).scrape_text().await.unwrap();
    assert_eq!(text, call_metrics.render());
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// A one-shot raw HTTP endpoint answering `reply` on `path`.
fn raw_endpoint(path: &std::path::Path, reply: &'static str) {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"GET /metrics HTTP/1.1\r\n"));
        conn.write_all(reply.as_bytes()).await.unwrap();
    });
}

#[tokio::test]
async fn scrape_failures_name_the_socket_and_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let err = EngineMetrics::at(&missing).scrape().await.unwrap_err();
    assert!(matches!(err, ScrapeError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "scraping the engine's metrics at {0}: connecting to the plugin at unix://{0}: \
             No such file or directory (os error 2) (a managed plugin of type \
             docker.metricscollector/1.0 gets the socket at /run/docker/metrics.sock; \
             elsewhere it is dockerd's <exec-root>/metrics.sock)",
            missing.display()
        )
    );

    let failing = dir.path().join("500.sock");
    raw_endpoint(
        &failing,
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nboom\n",
    );
    let err = EngineMetrics::at(&failing).scrape().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "scraping the engine's metrics at {}: HTTP 500: boom\n",
            failing.display()
        )
    );

    let garbled = dir.path().join("garbled.sock");
    raw_endpoint(
        &garbled,
        "HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\nok 1\nbroken{a=b} 2\nz 3\n",
    );
    let err = EngineMetrics::at(&garbled).scrape().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "scraping the engine's metrics at {}: line 2 of the metrics text: the value of \
             label `a` must be quoted with `\"`",
            garbled.display()
        )
    );
}
