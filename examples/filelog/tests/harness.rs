//! filelog under the SDK's harness (a dockerd test double whose logging service
//! creates the FIFO, writes the container's output into it as dockerd's copier does,
//! lines over 16 KiB in pieces, and reads `docker logs` back as dockerd does), served
//! in-process: what `docker logs` prints is exactly what the container printed.

use std::time::{Duration, SystemTime};

use docker_plugin_sdk::harness::{Engine, LogContainer};
use docker_plugin_sdk::logging::ReadConfig;
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Plugin};
use filelog::driver::FileLog;
use filelog::store::existing_files;

/// The plugin's name.
const NAME: &str = "filelog";

/// filelog served in-process where a fresh engine looks, its files under `root/logs`;
/// stopped when dropped.
struct Served {
    root: tempfile::TempDir,
    engine: Engine,
    stop: CancellationToken,
}

impl Served {
    fn start() -> Self {
        Self::writing_to(|root| root.join("logs"))
    }

    /// Files under `logs(root)`.
    fn writing_to(logs: impl FnOnce(&std::path::Path) -> std::path::PathBuf) -> Self {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::for_tests(root.path());
        let dir = &engine.discovery().socket_dir;
        std::fs::create_dir_all(dir).unwrap();
        let listener = UnixSocket::new(NAME).dir(dir).bind().unwrap();
        let plugin = Plugin::new().logging(FileLog::new(logs(root.path())));
        let stop = CancellationToken::new();
        tokio::spawn(plugin.server(listener).shutdown_on(stop.clone()).run());
        Self { root, engine, stop }
    }

    /// The directory of `container`'s files.
    fn dir_of(&self, container: &LogContainer) -> std::path::PathBuf {
        self.root
            .path()
            .join("logs")
            .join(&container.info.container_id)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `docker logs` of the stopped `container` with `config`, as it prints it.
async fn docker_logs(engine: &Engine, container: &LogContainer, config: ReadConfig) -> String {
    let reader = engine
        .logging()
        .read(NAME, container, config)
        .await
        .unwrap();
    reader.collect_text().await.unwrap()
}

fn tail(n: i64) -> ReadConfig {
    ReadConfig {
        tail: n,
        ..ReadConfig::default()
    }
}

/// `--since` and `--until`.
fn between(since: Option<SystemTime>, until: Option<SystemTime>) -> ReadConfig {
    let mut config = ReadConfig::default();
    if let Some(since) = since {
        config.since = since.into();
    }
    if let Some(until) = until {
        config.until = until.into();
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_line_comes_back_whole_and_tail_reaches_across_rotated_files() {
    let served = Served::start();
    let engine = &served.engine;
    let container = LogContainer::new("web", "busybox")
        .opt("max-size", "1k")
        .opt("max-file", "3");
    let mut log = engine.logging().start(NAME, &container).await.unwrap();
    let long = "x".repeat(40_000);
    let mut printed = String::new();
    for n in 0..30 {
        printed.push_str(&format!("line {n}\n"));
    }
    printed.push_str(&format!("{long}\n"));
    for n in 30..40 {
        printed.push_str(&format!("line {n}\n"));
    }
    log.write("stdout", printed.as_bytes()).await.unwrap();
    log.stop().await.unwrap();

    assert_eq!(existing_files(&served.dir_of(&container)).len(), 3);
    let all = docker_logs(engine, &container, ReadConfig::default()).await;
    assert!(printed.ends_with(&all), "{all}");
    assert!(all.contains(&format!("\n{long}\n")), "the long line whole");
    assert_eq!(
        docker_logs(engine, &container, tail(2)).await,
        "line 38\nline 39\n"
    );
    assert_eq!(
        docker_logs(engine, &container, tail(12)).await,
        format!(
            "line 29\n{long}\n{}",
            (30..40).map(|n| format!("line {n}\n")).collect::<String>()
        )
    );
    assert_eq!(docker_logs(engine, &container, tail(0)).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_container_appends_and_since_until_bound_the_read() {
    let served = Served::start();
    let engine = &served.engine;
    let container = LogContainer::new("web", "busybox");
    let mut log = engine.logging().start(NAME, &container).await.unwrap();
    log.write("stdout", b"first run\n").await.unwrap();
    log.write("stderr", b"no newline at exit").await.unwrap();
    log.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let restarted = SystemTime::now();
    let mut log = engine.logging().start(NAME, &container).await.unwrap();
    log.write("stdout", b"second run\n").await.unwrap();
    log.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = SystemTime::now();

    // The unterminated tail stays without its newline.
    assert_eq!(
        docker_logs(engine, &container, ReadConfig::default()).await,
        "first run\nno newline at exitsecond run\n"
    );
    let since = between(Some(restarted), None);
    assert_eq!(docker_logs(engine, &container, since).await, "second run\n");
    let until = between(None, Some(restarted));
    assert_eq!(
        docker_logs(engine, &container, until).await,
        "first run\nno newline at exit"
    );
    let none = between(Some(later), None);
    assert_eq!(docker_logs(engine, &container, none).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_gives_the_stored_lines_then_new_ones_until_stop_logging() {
    let served = Served::start();
    let engine = &served.engine;
    let container = LogContainer::new("web", "busybox");
    let mut log = engine.logging().start(NAME, &container).await.unwrap();
    log.write("stdout", b"before\n").await.unwrap();
    // Stored before `docker logs -f` comes.
    let file = served.dir_of(&container).join("container.log");
    while !std::fs::read_to_string(&file).is_ok_and(|text| text.contains("before")) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let follow = ReadConfig {
        follow: true,
        ..ReadConfig::default()
    };
    let mut reader = log.read(follow).await.unwrap();
    let first = reader.next().await.unwrap().unwrap();
    assert_eq!(first.line, b"before\n");
    log.write("stdout", b"after\n").await.unwrap();
    let second = reader.next().await.unwrap().unwrap();
    assert_eq!(second.line, b"after\n");
    log.stop().await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), reader.next()).await;
    assert!(
        matches!(end, Ok(Ok(None))),
        "the follow ends at StopLogging: {end:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_log_opts_fail_the_start_in_filelogs_words() {
    let served = Served::start();
    let engine = &served.engine;
    let container = LogContainer::new("web", "busybox")
        .opt("max-size", "-1")
        .opt("cache-disabled", "true");
    let err = engine
        .logging()
        .start(NAME, &container)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "invalid options: option `max-size` must be a positive size such as 10m \
             (k, m, g: 1000s of bytes), got `-1`: no number"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_cannot_be_made_fails_the_start_with_what_to_check() {
    let served = Served::writing_to(|root| {
        std::fs::write(root.join("file"), "").unwrap();
        root.join("file").join("logs")
    });
    let engine = &served.engine;
    let not_a_dir = served.root.path().join("file");
    let container = LogContainer::new("web", "busybox");
    let err = engine
        .logging()
        .start(NAME, &container)
        .await
        .unwrap_err()
        .to_string();
    let want = format!(
        "filelog: creating the log directory {}/logs/{}: Not a directory (os error 20) \
         (check the directory given with --dir, the `logs` mount of the managed plugin: \
         it must exist and be writable)",
        not_a_dir.display(),
        container.info.container_id
    );
    assert!(err.contains(&want), "{err}");
}
