//! The harness's logging service against an in-process log driver built with the SDK
//! (`harness::testing::MemoryLog`, the xtask recorder's too):
//! what dockerd does for `docker run --log-driver` and `docker logs` (moby v20.10.24
//! `daemon/logger/plugin.go`, `copier.go`, `adapter.go`, `daemon/logs.go`): the calls
//! in dockerd's order, the FIFO created under the plugin's view of
//! `/run/docker/logging` and removed after StopLogging, lines over 16 KiB split by the
//! copier and whole again in the driver and in `docker logs`, `--tail`, `--since`,
//! `-f`, and a stopped container's logs through a logger of their own.

use std::path::Path;
use std::time::{Duration, SystemTime};

use docker_plugin_sdk::harness::testing::MemoryLog;
use docker_plugin_sdk::harness::{ContainerLog, Engine, LogContainer};
use docker_plugin_sdk::logging::ReadConfig;
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Plugin};

struct Setup {
    dir: tempfile::TempDir,
    engine: Engine,
    memory: MemoryLog,
    stop: CancellationToken,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The `memlog` plugin: a [`MemoryLog`] that refuses every log option.
async fn setup() -> Setup {
    setup_with(MemoryLog::new().refusing_options()).await
}

/// The `memlog` plugin serving `memory`.
async fn setup_with(memory: MemoryLog) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(dir.path());
    let sockets = engine.discovery().socket_dir.clone();
    std::fs::create_dir_all(&sockets).unwrap();
    let stop = serve(&sockets, &memory);
    Setup {
        dir,
        engine,
        memory,
        stop,
    }
}

/// Serves `memory` as the `memlog` plugin on a socket in `sockets` until the token is
/// cancelled.
fn serve(sockets: &Path, memory: &MemoryLog) -> CancellationToken {
    let listener = UnixSocket::new("memlog").dir(sockets).bind().unwrap();
    let stop = CancellationToken::new();
    let server = Plugin::new()
        .logging(memory.clone())
        .server(listener)
        .shutdown_on(stop.clone());
    tokio::spawn(server.run());
    stop
}

/// `docker run --log-driver memlog busybox` of container `web`: its log started.
async fn start_web(s: &Setup) -> (LogContainer, ContainerLog) {
    let container = LogContainer::new("web", "busybox");
    let running = s
        .engine
        .logging()
        .start("memlog", &container)
        .await
        .unwrap();
    (container, running)
}

fn long_line() -> String {
    (0..40_000)
        .map(|n| char::from(b'a' + (n % 26) as u8))
        .collect()
}

#[tokio::test]
async fn docker_run_sends_dockerds_calls_and_a_long_line_arrives_whole() {
    let s = setup().await;
    let (container, mut running) = start_web(&s).await;
    // The FIFO: /run/docker/logging/<64 hex> on the (test's) host, for a legacy plugin.
    let fifo = running.host_path().to_path_buf();
    assert_eq!(
        fifo.parent().unwrap(),
        s.dir.path().join("run/docker/logging")
    );
    assert_eq!(fifo.file_name().unwrap().len(), 64);
    assert!(running.capability().read_logs);
    let output = format!("line-one\nline-two\n{}\n", long_line());
    running.write("stdout", output.as_bytes()).await.unwrap();
    running.write("stderr", b"oops\n").await.unwrap();
    running.stop().await.unwrap();
    assert!(!fifo.exists(), "dockerd removes the FIFO after StopLogging");
    assert_eq!(
        s.engine.calls().take_methods(),
        [
            "Plugin.Activate",
            "LogDriver.Capabilities",
            "LogDriver.StartLogging",
            "LogDriver.StopLogging"
        ]
    );
    let stored = s.memory.entries(&container.info.container_id);
    let lines: Vec<_> = stored
        .iter()
        .map(|e| (e.source.as_str().to_owned(), e.line.len()))
        .collect();
    assert_eq!(
        lines,
        [
            ("stdout".into(), 8),
            ("stdout".into(), 8),
            ("stdout".into(), 40_000),
            ("stderr".into(), 4)
        ]
    );
    assert_eq!(stored[2].line, long_line().into_bytes());
}

#[tokio::test]
async fn a_memory_log_that_does_not_refuse_options_takes_them_and_keeps_the_lines() {
    // The xtask recorder's driver: `--log-opt` is dockerd's business, not its own.
    let s = setup_with(MemoryLog::new()).await;
    let container = LogContainer::new("web", "busybox").opt("max-size", "1m");
    let mut running = s
        .engine
        .logging()
        .start("memlog", &container)
        .await
        .unwrap();
    running.write("stdout", b"hello\n").await.unwrap();
    running.stop().await.unwrap();
    let lines: Vec<_> = s
        .memory
        .entries(&container.info.container_id)
        .into_iter()
        .map(|e| e.line)
        .collect();
    assert_eq!(lines, [b"hello".to_vec()]);
}

/// A logger the plugin refuses fails `docker run` in dockerd's words (moby v20.10.24
/// `container/container.go` `startLogging` wraps `StartLogger`'s), and `docker logs`
/// of a stopped container, which makes a logger of its own, in `StartLogger`'s words
/// as they are (`daemon/logs.go` `getLogger`); neither leaves a FIFO.
#[tokio::test]
async fn bad_log_options_fail_the_start_and_docker_logs_in_dockerds_words_and_leave_no_fifo() {
    let s = setup().await;
    let container = LogContainer::new("web", "busybox").opt("max-sise", "1m");
    let logging = s.engine.logging();
    let refused = "error creating logger: LogDriver.StartLogging: unknown log option \"max-sise\"";
    let err = logging.start("memlog", &container).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("failed to initialize logging driver: {refused}")
    );
    let config = ReadConfig::default();
    let err = logging
        .read("memlog", &container, config)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), refused);
    let dir = s.dir.path().join("run/docker/logging");
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}

#[tokio::test]
async fn docker_logs_of_a_running_container_honours_tail_since_and_follow() {
    let s = setup().await;
    let (container, mut running) = start_web(&s).await;
    running.write("stdout", b"one\ntwo\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = SystemTime::now();
    running
        .write("stdout", format!("three\n{}\n", long_line()).as_bytes())
        .await
        .unwrap();
    // The driver consumes asynchronously: wait until it has the four lines.
    for _ in 0..500 {
        let n = s.memory.entries(&container.info.container_id).len();
        if n == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.engine.calls().take();
    let all = running.read(ReadConfig::default()).await.unwrap();
    assert_eq!(
        all.collect_text().await.unwrap(),
        format!("one\ntwo\nthree\n{}\n", long_line())
    );
    assert_eq!(s.engine.calls().take_methods(), ["LogDriver.ReadLogs"]);
    let tail = ReadConfig {
        tail: 1,
        ..ReadConfig::default()
    };
    let text = running
        .read(tail)
        .await
        .unwrap()
        .collect_text()
        .await
        .unwrap();
    assert_eq!(text, format!("{}\n", long_line()));
    let since = ReadConfig {
        since: since.into(),
        ..ReadConfig::default()
    };
    let text = running
        .read(since)
        .await
        .unwrap()
        .collect_text()
        .await
        .unwrap();
    assert_eq!(text, format!("three\n{}\n", long_line()));

    let follow = ReadConfig {
        tail: 0,
        follow: true,
        ..ReadConfig::default()
    };
    let mut reader = running.read(follow).await.unwrap();
    running.write("stderr", b"later\n").await.unwrap();
    let message = reader.next().await.unwrap().unwrap();
    assert_eq!(
        (message.source.as_str(), &message.line[..]),
        ("stderr", &b"later\n"[..])
    );
    running.write("stdout", b"cut at exit").await.unwrap();
    let (stopped, last) = tokio::join!(running.stop(), async {
        let last = reader.next().await.unwrap();
        (last, reader.next().await.unwrap())
    });
    stopped.unwrap();
    // An unterminated tail comes back without a newline, then the stream ends.
    assert_eq!(last.0.unwrap().line, b"cut at exit");
    assert_eq!(last.1, None);
}

#[tokio::test]
async fn docker_logs_of_a_stopped_container_starts_a_logger_of_its_own() {
    let s = setup().await;
    let (container, mut running) = start_web(&s).await;
    running.write("stdout", b"before exit\n").await.unwrap();
    running.stop().await.unwrap();
    s.engine.calls().take();
    let text = s
        .engine
        .logging()
        .read("memlog", &container, ReadConfig::default())
        .await
        .unwrap()
        .collect_text()
        .await
        .unwrap();
    assert_eq!(text, "before exit\n");
    assert_eq!(
        s.engine.calls().take_methods(),
        [
            "LogDriver.Capabilities",
            "LogDriver.StartLogging",
            "LogDriver.ReadLogs",
            "LogDriver.StopLogging"
        ]
    );
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("run/docker/logging"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn docker_logs_retries_a_plugin_socket_that_appears_late_as_dockerd_retries_any_call() {
    // moby v20.10.24 `pkg/plugins/client.go`: `Stream` goes through `callWithRetry`.
    let mut s = setup().await;
    let (container, mut running) = start_web(&s).await;
    running.write("stdout", b"one\n").await.unwrap();
    for _ in 0..500 {
        if !s.memory.entries(&container.info.container_id).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The plugin goes away: its socket is removed.
    let sockets = s.engine.discovery().socket_dir.clone();
    s.stop.cancel();
    for _ in 0..500 {
        if !sockets.join("memlog.sock").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !sockets.join("memlog.sock").exists(),
        "the plugin did not stop"
    );
    s.engine.calls().take();
    let read = tokio::spawn(running.read(ReadConfig::default()));
    // Once the first attempt has failed, the plugin is back on its socket.
    let mut refused = false;
    for _ in 0..500 {
        refused = s.engine.calls().records().iter().any(|r| r.error.is_some());
        if refused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "no ReadLogs attempt failed");
    s.stop = serve(&sockets, &s.memory);
    let text = read.await.unwrap().unwrap().collect_text().await.unwrap();
    assert_eq!(text, "one\n");
    let attempts = s.engine.calls().take();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert!(attempts.iter().all(|r| r.method == "LogDriver.ReadLogs"));
    let (failed, answered) = attempts.split_at(attempts.len() - 1);
    assert!(failed.iter().all(|r| r.status.is_none()), "{failed:?}");
    assert_eq!(answered[0].status, Some(200));
}
