//! The plugin's own metrics and readiness (`telemetry`): the counters after a known
//! sequence of calls are exact, an abandoned call is counted apart, the metrics
//! endpoint serves the Prometheus text format on its own socket (and only on loopback
//! for TCP), and a plugin that is not ready answers at once with a clear error.

mod support;

use std::time::Duration;

use docker_plugin_sdk::protocol::Method as _;
use docker_plugin_sdk::telemetry::{BUCKETS, CallMetrics, Readiness};
use docker_plugin_sdk::transport::{Listener, UnixSocket};
use docker_plugin_sdk::volume::{self, CreateRequest, MountRequest};
use docker_plugin_sdk::{Plugin, ServeError};
use http::StatusCode;
use support::server::{Recorder, TestServer, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn create(name: &str) -> CreateRequest {
    serde_json::from_value(serde_json::json!({ "Name": name })).unwrap()
}

fn mount(name: &str) -> MountRequest {
    serde_json::from_value(serde_json::json!({ "Name": name, "ID": "c1" })).unwrap()
}

#[tokio::test]
async fn the_metrics_after_a_known_sequence_of_calls_are_exact() {
    let metrics = CallMetrics::new();
    let s = TestServer::start(Recorder::default(), |p| p.call_metrics(&metrics)).await;
    s.client.activate().await.unwrap();
    s.client.call::<volume::Create>(&create("a")).await.unwrap();
    s.client.call::<volume::Create>(&create("b")).await.unwrap();
    s.client
        .call::<volume::Create>(&create("fail"))
        .await
        .unwrap_err();
    s.client
        .call::<volume::Mount>(&mount("panic"))
        .await
        .unwrap_err();
    // Refused before the driver (malformed JSON) is an error of its method too.
    let refused = s.client.call_raw("VolumeDriver.Remove", "{").await.unwrap();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    s.client.call_raw("VolumeDriver.Nope", "{}").await.unwrap();
    s.client.call_raw("Other.Path", "{}").await.unwrap();

    let counts: Vec<(String, u64, u64, u64)> = metrics
        .snapshot()
        .into_iter()
        .map(|m| (m.method, m.calls, m.errors, m.abandoned))
        .collect();
    let expect = |name: &str, calls, errors| (name.to_owned(), calls, errors, 0);
    assert_eq!(
        counts,
        vec![
            expect("Plugin.Activate", 1, 0),
            expect(volume::Create::NAME, 3, 1),
            expect(volume::Remove::NAME, 1, 1),
            expect(volume::Mount::NAME, 1, 1),
            expect(volume::Unmount::NAME, 0, 0),
            expect(volume::Path::NAME, 0, 0),
            expect(volume::Get::NAME, 0, 0),
            expect(volume::List::NAME, 0, 0),
            expect(volume::Capabilities::NAME, 0, 0),
        ]
    );
    assert_eq!(metrics.unknown_calls(), 2);
    let create = metrics.method(volume::Create::NAME).unwrap();
    assert_eq!(create.latency.count, 3);
    assert!(create.latency.sum > Duration::ZERO);
    assert!(create.latency.buckets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(
        create.latency.buckets[BUCKETS.len() - 1],
        3,
        "all under 2 min"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_call_whose_client_leaves_is_counted_as_abandoned_not_answered() {
    let metrics = CallMetrics::new();
    let s = TestServer::start(Recorder::default(), |p| p.call_metrics(&metrics)).await;
    let mut stream = UnixStream::connect(&s.socket).await.unwrap();
    let body = r#"{"Name":"slow","ID":"c9"}"#;
    stream
        .write_all(
            format!(
                "POST /VolumeDriver.Mount HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    s.driver.started.notified().await;
    drop(stream);
    wait_for("the abandoned call counted", || {
        metrics
            .method(volume::Mount::NAME)
            .is_some_and(|m| m.abandoned == 1)
    })
    .await;
    s.driver.release.notify_one();
    wait_for("the mount finished in the background", || {
        s.driver.calls().iter().any(|c| c == "Mounted slow c9")
    })
    .await;
    let m = metrics.method(volume::Mount::NAME).unwrap();
    assert_eq!((m.calls, m.errors, m.abandoned), (0, 0, 1));
    s.shutdown().await.unwrap();
}

/// `GET PATH` (or another method) on a unix socket; the whole reply as text.
async fn http(socket: &std::path::Path, method: &str, path: &str) -> String {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    stream
        .write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    reply
}

#[tokio::test]
async fn the_endpoint_serves_the_prometheus_text_format_on_its_own_socket() {
    let metrics = CallMetrics::new();
    let readiness = Readiness::ready();
    let dir = tempfile::tempdir().unwrap();
    let metrics_socket = dir.path().join("metrics.sock");
    let listener = UnixSocket::new("metrics").dir(dir.path()).bind().unwrap();
    let s = TestServer::start_with(
        Recorder::default(),
        |p| p.call_metrics(&metrics).readiness(&readiness),
        |server| server.metrics(listener, &metrics),
    )
    .await;
    s.client.call::<volume::Create>(&create("a")).await.unwrap();
    s.client
        .call::<volume::Create>(&create("fail"))
        .await
        .unwrap_err();

    let reply = http(&metrics_socket, "GET", "/metrics").await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{reply}"
    );
    let text = reply.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(text, metrics.render_with_readiness(&readiness));
    for line in [
        "# TYPE docker_plugin_calls_total counter",
        "docker_plugin_calls_total{method=\"VolumeDriver.Create\"} 2",
        "docker_plugin_call_errors_total{method=\"VolumeDriver.Create\"} 1",
        "docker_plugin_calls_abandoned_total{method=\"VolumeDriver.Create\"} 0",
        "# TYPE docker_plugin_call_duration_seconds histogram",
        "docker_plugin_call_duration_seconds_bucket{method=\"VolumeDriver.Create\",le=\"120\"} 2",
        "docker_plugin_call_duration_seconds_bucket{method=\"VolumeDriver.Create\",le=\"+Inf\"} 2",
        "docker_plugin_call_duration_seconds_count{method=\"VolumeDriver.Create\"} 2",
        "docker_plugin_unknown_calls_total 0",
        "docker_plugin_ready 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    readiness.set_not_ready("backend down");
    let text = http(&metrics_socket, "GET", "/metrics").await;
    assert!(text.ends_with("docker_plugin_ready 0\n"), "{text}");

    let other = http(&metrics_socket, "GET", "/other").await;
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    assert!(
        other.ends_with("not found: the metrics are at /metrics\n"),
        "{other}"
    );
    let post = http(&metrics_socket, "POST", "/metrics").await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    // The plugin's own socket does not serve them.
    let on_plugin = http(&s.socket, "GET", "/metrics").await;
    assert!(on_plugin.starts_with("HTTP/1.1 405"), "{on_plugin}");
    assert!(!on_plugin.contains("docker_plugin_"), "{on_plugin}");

    s.shutdown().await.unwrap();
    assert!(
        !metrics_socket.exists(),
        "the metrics socket is removed at shutdown"
    );
}

#[tokio::test]
async fn the_endpoint_refuses_a_tcp_address_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_listener = UnixSocket::new("p").dir(dir.path()).bind().unwrap();
    let metrics = CallMetrics::new();
    let err = Plugin::new()
        .call_metrics(&metrics)
        .server(plugin_listener)
        .metrics(Listener::tcp("0.0.0.0:0").unwrap(), &metrics)
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServeError::MetricsNotLoopback { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(
            "the metrics endpoint must listen on a unix socket or on loopback, not 0.0.0.0:"
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("use 127.0.0.1 or ::1 (the metrics are the plugin's own business)"),
        "{err}"
    );
}

/// A listening plugin with its metrics endpoint keeps its background work (the
/// endpoint's accept loop, the memory trim after bursts) in the server's own task: on a
/// multi-thread runtime no task is spawned until a connection comes, so an idle plugin
/// never runs its worker threads (and never touches the pages their run loop needs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_spawns_no_task_until_a_connection_comes() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_listener = UnixSocket::new("p").dir(dir.path()).bind().unwrap();
    let metrics_listener = UnixSocket::new("p-metrics").dir(dir.path()).bind().unwrap();
    let metrics_socket = metrics_listener.unix_path().unwrap().to_path_buf();
    let metrics = CallMetrics::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = Plugin::new()
        .call_metrics(&metrics)
        .server(plugin_listener)
        .metrics(metrics_listener, &metrics)
        .shutdown_on(stop.clone());
    let runtime = tokio::runtime::Handle::current();
    let probe = async {
        // Both listen (the metrics endpoint first); a few turns for anything spawned.
        wait_for("the plugin socket", || dir.path().join("p.sock").exists()).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let idle = runtime.metrics().num_alive_tasks();
        // A scrape's connection gets a task of its own, and ends.
        let text = http(&metrics_socket, "GET", "/metrics").await;
        stop.cancel();
        (idle, text)
    };
    let (served, (idle, text)) = tokio::join!(server.run(), probe);
    served.unwrap();
    assert_eq!(idle, 0, "tasks alive in an idle server");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(!metrics_socket.exists(), "the metrics socket is removed");
}

#[tokio::test]
async fn a_plugin_that_is_not_ready_answers_at_once_with_why() {
    let readiness = Readiness::not_ready("connecting to the backend");
    let s = TestServer::start(Recorder::default(), |p| p.readiness(&readiness)).await;
    // Activation still works: dockerd keeps the plugin.
    s.client.activate().await.unwrap();
    let refused = s
        .client
        .call_raw(volume::Create::NAME, "{\"Name\":\"a\"}\n")
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused.text(),
        r#"{"Err":"plugin not ready: connecting to the backend"}"#
    );
    assert!(s.driver.calls().is_empty(), "the driver was not called");
    readiness.set_ready();
    s.client.call::<volume::Create>(&create("a")).await.unwrap();
    assert_eq!(s.driver.calls(), vec!["Create a []".to_owned()]);
    s.shutdown().await.unwrap();
}
