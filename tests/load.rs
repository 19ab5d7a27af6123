//! The load tool (`docker_plugin_sdk::load`, `cargo docker-plugin bench`) against real
//! sockets: an SDK plugin served in this process counts what it gets, so the tool's
//! counts are checked exactly (never its speed).

mod support;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use docker_plugin_sdk::harness::Discovery;
use docker_plugin_sdk::load::{
    Call, Load, LogOptions, Options, Summary, Target, cpu_time, log_lines,
};
use docker_plugin_sdk::logging::{self, Info, Logs};
use docker_plugin_sdk::transport::{Accept, Listener, UnixSocket};
use docker_plugin_sdk::{CancellationToken, Plugin, async_trait};
use support::server::{Recorder, TestServer};

const RUN: Duration = Duration::from_millis(300);

fn gets(server: &TestServer, name: &str) -> u64 {
    let call = format!("Get {name}");
    server.driver.calls().iter().filter(|c| **c == call).count() as u64
}

/// An SDK plugin in this process, and a load of `connections` Gets of volume `name`.
async fn get_load(name: &str, connections: usize) -> (TestServer, Load) {
    let server = TestServer::start(Recorder::default(), |p| p).await;
    let json = format!(r#"{{"Name":"{name}"}}"#);
    let call = Call::new("VolumeDriver.Get", Some(&json)).unwrap();
    let options = Options {
        connections,
        ..Options::default()
    };
    let load = Load::connect(Target::Unix(server.socket.clone()), call, options)
        .await
        .unwrap();
    (server, load)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_counted_as_the_plugin_counts_it() {
    let (server, mut load) = get_load("v1", 4).await;
    let mut ticks = 0;
    let warmup = load.run(RUN, &mut |_| {}).await.unwrap();
    let report = load.run(RUN, &mut |_| ticks += 1).await.unwrap();
    assert_eq!(report.errors.total(), 0, "{:?}", report.last_error);
    assert!(report.calls > 0);
    // One call checks the endpoint in `connect`, then the warmup's and the run's.
    assert_eq!(gets(&server, "v1"), 1 + warmup.calls + report.calls);
    assert_eq!(report.latency.count(), report.calls);
    assert!(ticks >= 1, "the progress callback was called");
    assert_eq!(
        report.first_reply.as_deref(),
        Some(&br#"{"Volume":{"Name":"v1","Status":{"answer":42}}}"#[..])
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_load_never_exceeds_its_rate() {
    let server = TestServer::start(Recorder::default(), |p| p).await;
    let call = Call::new("VolumeDriver.Get", Some(r#"{"Name":"paced"}"#)).unwrap();
    let options = Options {
        connections: 4,
        rate: Some(200.0),
        ..Options::default()
    };
    let mut load = Load::connect(Target::Unix(server.socket.clone()), call, options)
        .await
        .unwrap();
    let run = Duration::from_millis(500);
    let report = load.run(run, &mut |_| {}).await.unwrap();
    assert_eq!(report.errors.total(), 0, "{:?}", report.last_error);
    // Each connection makes a call every 20 ms from its turn in the first 20 ms: at
    // most 25 in 500 ms (a load as fast as the plugin answers makes thousands), and
    // at least its first.
    assert!(
        (4..=4 * 25).contains(&report.calls),
        "{} calls in {run:?} at 200 calls/s",
        report.calls
    );
    assert_eq!(gets(&server, "paced"), 1 + report.calls);
    assert_eq!(report.latency.count(), report.calls);

    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let call = Call::new("VolumeDriver.List", None).unwrap();
        let options = Options {
            rate: Some(rate),
            ..Options::default()
        };
        let err = Load::connect(Target::Unix(server.socket.clone()), call, options)
            .await
            .unwrap_err()
            .to_string();
        let refused = format!("--rate {rate}: give a positive number of calls per second");
        assert_eq!(err, refused, "rate {rate}");
        // Nor on a load already connected, whose pace stays as it was.
        assert_eq!(load.set_rate(Some(rate)).unwrap_err().to_string(), refused);
        assert_eq!(load.options().rate, Some(200.0));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_measured_flat_out_can_then_be_paced_on_its_connections() {
    let (server, mut load) = get_load("repaced", 4).await;
    let flat_out = load.run(RUN, &mut |_| {}).await.unwrap();
    assert_eq!(flat_out.errors.total(), 0, "{:?}", flat_out.last_error);
    load.set_rate(Some(100.0)).unwrap();
    let paced = load.run(RUN, &mut |_| {}).await.unwrap();
    assert_eq!(paced.errors.total(), 0, "{:?}", paced.last_error);
    // 100 calls/s over 4 connections for 300 ms: one every 40 ms per connection, at
    // most 8 each (the first within 40 ms), at least the first.
    assert!(
        (4..=4 * 8).contains(&paced.calls),
        "{} calls in {RUN:?} at 100 calls/s (flat out: {})",
        paced.calls,
        flat_out.calls
    );
    load.set_rate(None).unwrap();
    let again = load.run(RUN, &mut |_| {}).await.unwrap();
    assert!(again.calls > 4 * 8, "flat out again: {} calls", again.calls);
    // Every call of the three runs reached the plugin, once.
    assert_eq!(
        gets(&server, "repaced"),
        1 + flat_out.calls + paced.calls + again.calls
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugins_errors_are_counted_not_raised() {
    let (server, mut load) = get_load("fail", 2).await;
    let report = load.run(RUN, &mut |_| {}).await.unwrap();
    assert!(report.calls > 0);
    assert_eq!(report.errors.plugin, report.calls);
    assert_eq!(report.errors.total(), report.calls);
    assert_eq!(
        report.last_error.as_deref(),
        Some("HTTP 500: the backend is on fire")
    );
    assert_eq!(gets(&server, "fail"), 1 + report.calls);
    server.shutdown().await.unwrap();
}

/// What connecting to `socket` to load List fails with.
async fn list_error(socket: &std::path::Path) -> String {
    let call = Call::new("VolumeDriver.List", None).unwrap();
    Load::connect(Target::Unix(socket.to_path_buf()), call, Options::default())
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn a_missing_socket_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("missing.sock");
    assert_eq!(
        list_error(&socket).await,
        format!(
            "connecting to the plugin at unix://{}: No such file or directory (os error 2): \
             is the plugin running and listening there?",
            socket.display()
        )
    );
    // A socket nobody listens on any more (a plugin that died): refused.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert_eq!(
        list_error(&stale).await,
        format!(
            "connecting to the plugin at unix://{}: Connection refused (os error 111): is \
             the plugin running and listening there?",
            stale.display()
        )
    );
}

#[test]
fn a_body_that_is_not_json_says_so() {
    let err = Call::new("VolumeDriver.Get", Some("{\"Name\":")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the request body is not JSON (EOF while parsing a value at line 1 column 8): give a \
         JSON value, e.g. '{\"Name\":\"v1\"}', or @FILE"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(&file, "{\"Name\": \"v2\"}\n").unwrap();
    let call = Call::from_arg("VolumeDriver.Get", Some(&format!("@{}", file.display()))).unwrap();
    assert_eq!(call.body(), b"{\"Name\":\"v2\"}\n");
    let err = Call::from_arg("VolumeDriver.Get", Some("@/nonexistent/body.json")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading the request body from /nonexistent/body.json: No such file or directory (os error 2)"
    );
}

#[tokio::test]
async fn an_endpoint_the_plugin_does_not_serve_is_refused() {
    let server = TestServer::start(Recorder::default(), |p| p).await;
    let call = Call::new("NetworkDriver.GetCapabilities", None).unwrap();
    assert_eq!(call.body(), b"", "dockerd sends no body to GetCapabilities");
    let err = Load::connect(
        Target::Unix(server.socket.clone()),
        call,
        Options::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the plugin refused NetworkDriver.GetCapabilities: unknown endpoint \
         /NetworkDriver.GetCapabilities: this plugin does not implement it (HTTP 404): check \
         the method name (Subsystem.Method, e.g. VolumeDriver.Get) and that the plugin \
         implements that subsystem"
    );
    server.shutdown().await.unwrap();
}

#[test]
fn names_are_found_as_dockerd_finds_legacy_plugins() {
    let root = tempfile::tempdir().unwrap();
    let discovery = Discovery::rooted(root.path());
    let err = Target::locate_in("nothere", &discovery).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin nothere not found: no socket /run/docker/plugins/nothere.sock (or \
         nothere/nothere.sock), no nothere.spec or nothere.json in /etc/docker/plugins or \
         /usr/lib/docker/plugins; is it running? Or give its socket path or URL"
    );
    let specs = root.path().join("usr/lib/docker/plugins");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(specs.join("p.spec"), "tcp://127.0.0.1:9\n").unwrap();
    assert_eq!(
        Target::locate_in("p", &discovery).unwrap(),
        Target::Tcp("127.0.0.1:9".into())
    );
    std::fs::write(
        specs.join("s.json"),
        r#"{"Addr":"https://127.0.0.1:9","TLSConfig":{"InsecureSkipVerify":true}}"#,
    )
    .unwrap();
    assert_eq!(
        Target::locate_in("s", &discovery).unwrap_err().to_string(),
        format!(
            "{}: https://127.0.0.1:9: https:// plugins are not supported by the load tool (the SDK's \
         client has no TLS): serve the plugin on unix:// or tcp:// to measure it",
            specs.join("s.json").display()
        )
    );
}

/// A listener that counts the connections it accepts.
struct Counting(Listener, Arc<AtomicU64>);

impl Accept for Counting {
    type Io = <Listener as Accept>::Io;
    type Handshake = <Listener as Accept>::Handshake;

    fn url(&self) -> String {
        self.0.url()
    }

    fn ready(&mut self) -> Result<(), docker_plugin_sdk::ServeError> {
        self.0.ready()
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Handshake>> {
        let polled = self.0.poll_accept(cx);
        if let Poll::Ready(Ok(_)) = &polled {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
        polled
    }
}

/// Serves `plugin` on `DIR/NAME.sock`, counting connections.
fn serve_counting(
    dir: &std::path::Path,
    plugin: Plugin,
) -> (PathBuf, Arc<AtomicU64>, CancellationToken) {
    let listener = UnixSocket::new("counted").dir(dir).bind().unwrap();
    let socket = listener.unix_path().unwrap().to_path_buf();
    let accepted = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let server = plugin
        .server(Counting(listener, Arc::clone(&accepted)))
        .shutdown_on(stop.clone());
    tokio::spawn(server.run());
    (socket, accepted, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_per_call_opens_one_per_call() {
    let driver = Arc::new(Recorder::default());
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::new().volume(support::server::Shared(Arc::clone(&driver)));
    let (socket, accepted, stop) = serve_counting(dir.path(), plugin);
    let call = Call::new("VolumeDriver.List", None).unwrap();
    let per_call = Options {
        connections: 3,
        new_connection_per_call: true,
        ..Options::default()
    };
    let mut load = Load::connect(Target::Unix(socket.clone()), call.clone(), per_call)
        .await
        .unwrap();
    let report = load.run(RUN, &mut |_| {}).await.unwrap();
    assert_eq!(report.errors.total(), 0, "{:?}", report.last_error);
    assert!(report.calls > 3);
    // The check in `connect`, then one connection per call.
    assert_eq!(accepted.load(Ordering::SeqCst), 1 + report.calls);

    let before = accepted.load(Ordering::SeqCst);
    let keep_alive = Options {
        connections: 3,
        ..Options::default()
    };
    let mut load = Load::connect(Target::Unix(socket), call, keep_alive)
        .await
        .unwrap();
    let report = load.run(RUN, &mut |_| {}).await.unwrap();
    assert!(report.calls > 3);
    assert_eq!(accepted.load(Ordering::SeqCst) - before, 3);
    stop.cancel();
}

/// The one JSON object a successful `bench --json` printed.
fn summary_of(out: &std::process::Output) -> Summary {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `cargo docker-plugin bench SOCKET VolumeDriver.Get {"Name":NAME}` for 0.3 s without
/// warmup, with `extra` flags, off the runtime's threads (the plugin serves on them).
async fn bench_get(socket: &str, name: &str, extra: &[&str]) -> std::process::Output {
    let json = format!(r#"{{"Name":"{name}"}}"#);
    let mut args: Vec<String> = [
        "bench",
        socket,
        "VolumeDriver.Get",
        &json,
        "--duration",
        "0.3",
        "--warmup",
        "0",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        support::cli::cargo_docker_plugin(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_json_is_one_object_with_exact_counts() {
    let server = TestServer::start(Recorder::default(), |p| p).await;
    let socket = server.socket.display().to_string();
    let out = bench_get(&socket, "cli", &["--connections", "2", "--json"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    let summary: Summary = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary.plugin, format!("unix://{socket}"));
    assert_eq!(summary.method, "VolumeDriver.Get");
    assert_eq!(summary.connections, 2);
    assert!(!summary.new_connection_per_call);
    assert!(summary.calls > 0);
    assert_eq!(summary.errors.total(), 0);
    assert_eq!(gets(&server, "cli"), 1 + summary.calls);
    // The socket's peer is this test process.
    assert_eq!(summary.server_pid, Some(std::process::id()));
    let rss = summary.rss_kib.unwrap();
    assert!(rss.start > 0 && rss.peak >= rss.start.max(rss.end));
    // The plugin's CPU over the measured run: some, and no more than this process
    // (the plugin) has used since it started.
    let cpu_per_call = summary.server_cpu_us_per_call.unwrap();
    let run_cpu_us = cpu_per_call * summary.calls as f64;
    let total_us = cpu_time(std::process::id()).unwrap().as_secs_f64() * 1e6;
    assert!(
        run_cpu_us > 0.0 && run_cpu_us <= total_us,
        "{run_cpu_us} µs over the run, {total_us} µs in all"
    );
    for key in [
        "calls_per_sec",
        "latency_us",
        "seconds",
        "errors",
        "server_cpu_us_per_call",
    ] {
        assert!(stdout.contains(&format!("\"{key}\":")), "{key} in {stdout}");
    }
    assert_eq!(
        summary.latency_histogram, None,
        "only with --latency-histogram"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_latency_histogram_holds_every_measured_call() {
    let server = TestServer::start(Recorder::default(), |p| p).await;
    let socket = server.socket.display().to_string();
    let run = |extra: &'static [&'static str]| bench_get(&socket, "hist", extra);
    let out = run(&["--connections", "3", "--json", "--latency-histogram"]).await;
    let summary = summary_of(&out);
    assert_eq!(summary.errors.total(), 0);
    let histogram = summary.latency_histogram.expect("latency_histogram");
    // Every measured call is in it, and its percentiles are the summary's.
    assert!(summary.calls > 0);
    assert_eq!(histogram.count(), summary.calls);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    assert_eq!(us(histogram.percentile(99.0)), summary.latency_us.p99);
    assert_eq!(us(histogram.percentile(50.0)), summary.latency_us.p50);
    assert_eq!(us(histogram.max()), summary.latency_us.max);

    // It belongs to the JSON object: without --json it is refused.
    let out = run(&["--connections", "3", "--latency-histogram"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--json"), "{stderr}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_rate_paces_the_calls_and_says_so() {
    let server = TestServer::start(Recorder::default(), |p| p).await;
    let socket = server.socket.display().to_string();
    let out = bench_get(
        &socket,
        "rate",
        &["--connections", "2", "--rate", "100", "--json"],
    )
    .await;
    let summary = summary_of(&out);
    assert_eq!(summary.rate, Some(100.0));
    assert_eq!(summary.errors.total(), 0);
    // 100 calls/s for 0.3 s over 2 connections: at most 15 each.
    assert!((2..=30).contains(&summary.calls), "{} calls", summary.calls);
    assert_eq!(gets(&server, "rate"), 1 + summary.calls);
    server.shutdown().await.unwrap();
}

#[test]
fn bench_errors_are_the_libraries_word_for_word() {
    let out = support::cli::cargo_docker_plugin(&[
        "bench",
        "/nonexistent/p.sock",
        "VolumeDriver.Get",
        "{",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: the request body is not JSON (EOF while parsing an object at line 1 column 1): \
         give a JSON value, e.g. '{\"Name\":\"v1\"}', or @FILE\n"
    );
    let out =
        support::cli::cargo_docker_plugin(&["bench", "/nonexistent/p.sock", "VolumeDriver.List"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: connecting to the plugin at unix:///nonexistent/p.sock: No such file or \
         directory (os error 2): is the plugin running and listening there?\n"
    );
}

/// A log driver that counts the lines it gets.
#[derive(Default)]
struct CountingLog(Arc<AtomicU64>);

#[async_trait]
impl logging::Driver for CountingLog {
    async fn consume(&self, _info: Info, mut logs: Logs) -> docker_plugin_sdk::Result<()> {
        while let Some(entry) = logs.next().await {
            assert_eq!(entry.line.len(), 50);
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_all_reach_the_driver() {
    let received = Arc::new(AtomicU64::new(0));
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::new().logging(CountingLog(Arc::clone(&received)));
    let (socket, _, stop) = serve_counting(dir.path(), plugin);
    let options = LogOptions {
        rate: 4000,
        line_bytes: 50,
        duration: RUN,
        fifo_dir: dir.path().join("fifos"),
        pid: None,
    };
    let mut ticks = 0;
    let report = log_lines(&Target::Unix(socket), &options, &mut |_| ticks += 1)
        .await
        .unwrap();
    assert!(report.lines > 0);
    assert_eq!(report.bytes, report.lines * 50);
    // StopLogging drains the FIFO and waits for the consumer before it answers.
    assert_eq!(received.load(Ordering::SeqCst), report.lines);
    assert_eq!(report.pid, Some(std::process::id()));
    assert!(report.rss.is_some());
    assert!(ticks >= 1);
    // The FIFO is gone.
    assert_eq!(
        std::fs::read_dir(dir.path().join("fifos")).unwrap().count(),
        0
    );
    stop.cancel();
}

#[tokio::test]
async fn a_socket_that_hangs_up_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hangup.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    // Reads the request, then closes without a word.
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
    });
    assert_eq!(
        list_error(&socket).await,
        format!(
            "calling VolumeDriver.List on unix://{}: the plugin closed the connection: is a \
             plugin (an HTTP/1.1 server) listening there?",
            socket.display()
        )
    );
    server.await.unwrap();
}
