//! The log-driver SDK over a real unix socket and real FIFOs, driven as dockerd drives
//! it (moby v20.10.24 `daemon/logger/plugin.go`, `adapter.go`, `plugin_unix.go`): the
//! test creates each FIFO, holds it open `O_RDWR` as dockerd does (so the plugin sees
//! no EOF before StopLogging), calls StartLogging, writes frames, calls StopLogging.

mod support;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::logging::*;
use docker_plugin_sdk::protocol::Empty;
use docker_plugin_sdk::telemetry::CallMetrics;
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Error, Plugin, Result, Server, async_trait};
use support::logs::Logs as Captured;
use tokio::sync::Semaphore;
use tracing::Level;

/// The real bytes dockerd 20.10 wrote for `sh -c 'echo line-one; echo line-two'`.
const TWO_LINES: &[u8] = include_bytes!("fixtures/logdriver-two-lines.bin");

/// A driver keeping what it consumes per container. Its `consumer` log option steers
/// it: `stuck` never reads and never returns, `gated` waits for [`Store::gate`].
struct Store {
    entries: Mutex<HashMap<String, Vec<Entry>>>,
    ended: Mutex<Vec<String>>,
    gate: Semaphore,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            ended: Mutex::default(),
            gate: Semaphore::new(0),
        }
    }
}

struct Shared(Arc<Store>);

#[async_trait]
impl Driver for Shared {
    async fn validate(&self, info: &Info) -> Result<()> {
        for (key, value) in info.driver_options() {
            if key != "consumer" || !["stuck", "gated", "normal"].contains(&value) {
                return Err(Error::new(format!(
                    "log option `{key}={value}`: only consumer=stuck|gated|normal"
                )));
            }
        }
        Ok(())
    }

    async fn consume(&self, info: Info, mut logs: docker_plugin_sdk::logging::Logs) -> Result<()> {
        match info.config.get("consumer").map(String::as_str) {
            Some("stuck") => std::future::pending().await,
            Some("gated") => drop(self.0.gate.acquire().await),
            _ => {}
        }
        while let Some(entry) = logs.next().await {
            let mut entries = self.0.entries.lock().unwrap();
            entries
                .entry(info.container_id.clone())
                .or_default()
                .push(entry);
        }
        self.0.ended.lock().unwrap().push(info.container_id);
        Ok(())
    }

    fn capabilities(&self) -> Capability {
        Capability { read_logs: true }
    }

    async fn read_logs(&self, req: ReadLogsRequest, context: ReadContext) -> Result<EntryStream> {
        let stored = self
            .0
            .entries
            .lock()
            .unwrap()
            .get(&req.info.container_id)
            .cloned();
        Ok(context.reply(stored.unwrap_or_default(), &req.config))
    }
}

/// The plugin, its client, and a directory standing for `/run/docker/logging`.
struct Setup {
    dir: tempfile::TempDir,
    client: Client,
    store: Arc<Store>,
    counters: LogCounters,
    /// The plugin's call metrics, which serve `counters` too.
    metrics: CallMetrics,
    stop: CancellationToken,
}

impl Setup {
    async fn start(options: Options) -> Self {
        Self::start_with(options, |server| server).await
    }

    async fn start_with(options: Options, server: impl FnOnce(Server) -> Server) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixSocket::new("log").dir(dir.path()).bind().unwrap();
        let socket = listener.unix_path().unwrap().to_path_buf();
        let store = Arc::new(Store::default());
        let counters = LogCounters::new();
        let metrics = CallMetrics::new();
        let plugin = Plugin::new()
            .logging_with(Shared(Arc::clone(&store)), options.counters(&counters))
            .call_metrics(&metrics);
        let stop = CancellationToken::new();
        tokio::spawn(
            server(plugin.server(listener))
                .shutdown_on(stop.clone())
                .run(),
        );
        Self {
            client: Client::unix(socket),
            dir,
            store,
            counters,
            metrics,
            stop,
        }
    }

    /// What dockerd does for a new container: a FIFO, held open `O_RDWR`, and
    /// StartLogging with the container's Info.
    async fn start_container(&self, id: &str, opts: &[(&str, &str)]) -> Result<Container, String> {
        let path = self.dir.path().join(format!("{id:0>64}"));
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o700)).unwrap();
        let fifo = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let info = Info {
            container_id: id.into(),
            container_name: format!("/{id}"),
            config: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            daemon_name: "docker".into(),
            ..Info::default()
        };
        let req = StartLoggingRequest {
            file: path.display().to_string(),
            info: info.clone(),
        };
        match self.client.call::<StartLogging>(&req).await {
            Ok(Empty {}) => Ok(Container {
                path,
                fifo: Some(fifo),
                info,
            }),
            Err(err) => Err(err.to_string()),
        }
    }

    async fn stop_container(&self, container: &mut Container) -> Duration {
        let started = Instant::now();
        let req = StopLoggingRequest {
            file: container.path.display().to_string(),
        };
        self.client.call::<StopLogging>(&req).await.unwrap();
        let took = started.elapsed();
        // dockerd closes and removes the FIFO after the reply.
        container.fifo.take();
        std::fs::remove_file(&container.path).unwrap();
        took
    }

    fn lines(&self, id: &str) -> Vec<String> {
        self.store
            .entries
            .lock()
            .unwrap()
            .get(id)
            .map_or_else(Vec::new, |entries| {
                entries
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.line).into_owned())
                    .collect()
            })
    }

    async fn wait_lines(&self, id: &str, count: usize) {
        support::server::wait_for(&format!("{count} lines of {id}"), || {
            self.lines(id).len() >= count
        })
        .await;
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Container {
    path: PathBuf,
    fifo: Option<File>,
    info: Info,
}

impl Container {
    /// Writes `bytes` from a thread of its own (dockerd's copier writes synchronously),
    /// and says how long the writes took: a FIFO nobody reads would block them.
    async fn write(&self, bytes: Vec<u8>) -> Duration {
        let mut fifo = self.fifo.as_ref().unwrap().try_clone().unwrap();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            fifo.write_all(&bytes).unwrap();
            started.elapsed()
        })
        .await
        .unwrap()
    }
}

/// The time of the test's `n`th line: 1 ns apart from `T0`, as dockerd's clock would
/// stamp them, whatever the batch.
const T0: i64 = 1_700_000_000_000_000_000;

/// `count` frames of whole lines `prefix-0`, `prefix-1`, … padded with dots to at least
/// `len` bytes, the `n`th at `T0 + first + n`.
fn lines_at(first: i64, prefix: &str, count: usize, len: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for n in 0..count {
        let mut line = format!("{prefix}-{n}").into_bytes();
        if line.len() < len {
            line.resize(len, b'.');
        }
        let time = T0 + first + n as i64;
        bytes.extend_from_slice(&encode_frame(&LogEntry::new("stdout", time, line)));
    }
    bytes
}

/// `count` lines from `T0`.
fn lines(prefix: &str, count: usize, len: usize) -> Vec<u8> {
    lines_at(0, prefix, count, len)
}

fn piece(id: &str, ordinal: i32, last: bool, text: &[u8]) -> Vec<u8> {
    encode_frame(&LogEntry {
        partial: true,
        partial_log_metadata: Some(PartialLogEntryMetadata {
            last,
            id: id.into(),
            ordinal,
        }),
        ..LogEntry::new("stdout", T0 + 1_000, text.to_vec())
    })
    .to_vec()
}

#[tokio::test]
async fn the_fixture_dockerd_wrote_arrives_as_two_entries_and_the_stream_ends_only_at_stop_logging()
{
    let s = Setup::start(Options::new()).await;
    assert_eq!(s.client.activate().await.unwrap().implements, ["LogDriver"]);
    let mut c = s.start_container("c1", &[]).await.unwrap();
    c.write(TWO_LINES.to_vec()).await;
    s.wait_lines("c1", 2).await;
    assert_eq!(s.lines("c1"), ["line-one", "line-two"]);
    let entries = s.store.entries.lock().unwrap()["c1"].clone();
    assert!(
        entries
            .iter()
            .all(|e| e.complete && e.source == Source::Stdout)
    );
    // Each keeps the time dockerd stamped it with, to the nanosecond.
    let mut decoder = FrameDecoder::new();
    decoder.extend(TWO_LINES);
    for entry in &entries {
        let sent = decoder.decode().unwrap().unwrap().time_nano;
        let kept = entry.time.duration_since(UNIX_EPOCH).unwrap().as_nanos();
        assert_eq!(kept, sent as u128);
    }
    // dockerd holds the FIFO open: no EOF, so the consumer's stream is still open.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s.store.ended.lock().unwrap().is_empty());
    s.stop_container(&mut c).await;
    assert_eq!(*s.store.ended.lock().unwrap(), ["c1"]);
    assert_eq!(s.counters.snapshot().received, 2);
    assert_eq!(s.counters.snapshot().delivered, 2);
}

#[tokio::test]
async fn a_split_line_arrives_whole_and_an_unterminated_tail_arrives_flagged_at_stop() {
    let s = Setup::start(Options::new()).await;
    let mut c = s.start_container("c2", &[]).await.unwrap();
    let long = vec![b'x'; 16 * 1024];
    let mut bytes = piece("a", 1, false, &long);
    bytes.extend(piece("a", 2, false, &long));
    bytes.extend(piece("a", 3, true, b"end"));
    bytes.extend(piece("b", 1, false, b"tail without newline"));
    c.write(bytes).await;
    s.wait_lines("c2", 1).await;
    s.stop_container(&mut c).await;
    let entries = s.store.entries.lock().unwrap()["c2"].clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].line.len(), 32 * 1024 + 3);
    assert!(entries[0].complete);
    assert_eq!(entries[1].line, b"tail without newline");
    assert!(!entries[1].complete);
}

#[tokio::test]
async fn bad_log_options_fail_start_logging_with_the_drivers_words() {
    let s = Setup::start(Options::new()).await;
    let err = s
        .start_container("c3", &[("max-size", "1x")])
        .await
        .err()
        .unwrap();
    assert_eq!(
        err,
        "LogDriver.StartLogging: log option `max-size=1x`: only consumer=stuck|gated|normal (HTTP 500)"
    );
    // dockerd's own options are not the driver's to check.
    s.start_container(
        "c4",
        &[("mode", "non-blocking"), ("cache-disabled", "false")],
    )
    .await
    .unwrap();
}

async fn never_read(overflow: Overflow) -> (CounterSnapshot, Duration, String) {
    let s = Setup::start(
        Options::new()
            .buffer(64 * 1024)
            .overflow(overflow)
            .flush_timeout(Duration::from_millis(200)),
    )
    .await;
    let mut c = s
        .start_container("slow", &[("consumer", "stuck")])
        .await
        .unwrap();
    // 2000 lines of 1000 bytes: 2 MB, 30 times what the FIFO and the buffer hold.
    let took = c.write(lines("l", 2000, 1000)).await;
    let stop = s.stop_container(&mut c).await;
    (s.counters.snapshot(), took.max(stop), s.metrics.render())
}

#[tokio::test]
async fn a_consumer_that_never_reads_never_blocks_the_writer_and_drops_are_counted_exactly() {
    // Each entry weighs its 1000 bytes and 64: 61 fit in 64 KiB.
    let (newest, took, served) = never_read(Overflow::DropNewest).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        (
            newest.received,
            newest.delivered,
            newest.dropped_newest,
            newest.dropped_oldest
        ),
        (2000, 0, 2000 - 61, 0)
    );
    // What the metrics endpoint serves (`--metrics`): the same counts, after the calls'.
    for line in [
        "docker_plugin_log_entries_received_total 2000\n",
        "docker_plugin_log_entries_dropped_total{policy=\"newest\"} 1939\n",
        "docker_plugin_log_entries_dropped_total{policy=\"oldest\"} 0\n",
        "docker_plugin_calls_total{method=\"LogDriver.StartLogging\"} 1\n",
    ] {
        assert!(served.contains(line), "{line} not in:\n{served}");
    }
    let (oldest, took, _) = never_read(Overflow::DropOldest).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        (
            oldest.received,
            oldest.delivered,
            oldest.dropped_newest,
            oldest.dropped_oldest
        ),
        (2000, 0, 0, 2000 - 61)
    );
}

#[tokio::test]
async fn a_stuck_consumer_does_not_hold_stop_logging_past_the_flush_timeout() {
    let (logs, _guard) = Captured::capture(Level::WARN);
    let s = Setup::start(Options::new().flush_timeout(Duration::from_millis(300))).await;
    let mut c = s
        .start_container("stuck", &[("consumer", "stuck")])
        .await
        .unwrap();
    c.write(lines("l", 10, 10)).await;
    let took = s.stop_container(&mut c).await;
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(logs.lines_with("flush timeout").len(), 1, "{}", logs.text());
    assert!(logs.text().contains(
        "the log driver's consumer did not finish within the flush timeout (300 ms): cancelled, with 0 of 10 entries delivered"
    ), "{}", logs.text());
}

#[tokio::test]
async fn spilled_entries_are_replayed_in_order_when_the_consumer_catches_up() {
    let spill = tempfile::tempdir().unwrap();
    let s = Setup::start(
        Options::new()
            .buffer(64 * 1024)
            .overflow(Overflow::Spill {
                dir: spill.path().into(),
                max_bytes: 100 << 20,
            })
            .flush_timeout(Duration::from_secs(10)),
    )
    .await;
    let mut c = s
        .start_container("gated", &[("consumer", "gated")])
        .await
        .unwrap();
    let took = c.write(lines("l", 2000, 1000)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    // `received` counts an entry as it is read, `spilled` once its append to the file
    // is done: the last append may still be on a blocking thread when the 2000th entry
    // is counted, so wait for every entry past the 61 the buffer holds to be put away.
    support::server::wait_for("every entry read and spilled or dropped", || {
        let counts = s.counters.snapshot();
        counts.received == 2000
            && counts.spilled + counts.dropped_newest + counts.dropped_oldest >= 2000 - 61
    })
    .await;
    let counts = s.counters.snapshot();
    assert_eq!(
        (counts.spilled, counts.delivered, counts.dropped_newest),
        (2000 - 61, 0, 0)
    );
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 1);
    s.store.gate.add_permits(1);
    s.wait_lines("gated", 2000).await;
    let expected: Vec<String> = (0..2000)
        .map(|n| {
            let mut line = format!("l-{n}");
            line.push_str(&".".repeat(1000 - line.len()));
            line
        })
        .collect();
    assert_eq!(s.lines("gated"), expected);
    s.stop_container(&mut c).await;
    let counts = s.counters.snapshot();
    assert_eq!(
        (
            counts.delivered,
            counts.dropped_newest,
            counts.dropped_oldest
        ),
        (2000, 0, 0)
    );
    assert_eq!(
        std::fs::read_dir(spill.path()).unwrap().count(),
        0,
        "the spill file is removed"
    );
}

#[tokio::test]
async fn malformed_frames_end_that_containers_stream_and_the_plugin_serves_the_others() {
    let (logs, _guard) = Captured::capture(Level::ERROR);
    let s = Setup::start(Options::new()).await;
    let mut truncated = s.start_container("truncated", &[]).await.unwrap();
    let mut oversized = s.start_container("oversized", &[]).await.unwrap();
    let mut garbage = s.start_container("garbage", &[]).await.unwrap();
    let mut healthy = s.start_container("healthy", &[]).await.unwrap();

    let mut bytes = lines("ok", 1, 0);
    let frame = lines("cut", 1, 0);
    bytes.extend_from_slice(&frame[..frame.len() - 2]);
    truncated.write(bytes).await;
    let mut bytes = lines("ok", 1, 0);
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    oversized.write(bytes).await;
    let mut bytes = lines("ok", 1, 0);
    bytes.extend_from_slice(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
    garbage.write(bytes).await;
    // After the bad frame the FIFO is still read: 1 MB more does not block.
    let took = oversized.write(vec![b'z'; 1 << 20]).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    healthy.write(lines("fine", 3, 0)).await;
    s.wait_lines("healthy", 3).await;

    for c in [&mut truncated, &mut oversized, &mut garbage, &mut healthy] {
        s.stop_container(c).await;
    }
    for id in ["truncated", "oversized", "garbage"] {
        assert_eq!(s.lines(id), ["ok-0"], "{id}");
    }
    assert_eq!(s.lines("healthy"), ["fine-0", "fine-1", "fine-2"]);
    let text = logs.text();
    let cut = format!(
        "log stream ended inside a frame ({} of {} bytes): the writer stopped mid-frame",
        frame.len() - 2,
        frame.len()
    );
    for message in [
        cut.as_str(),
        "log frame of 4294967295 bytes is over the 1049600-byte limit",
        "log frame is not a protobuf LogEntry",
    ] {
        assert!(text.contains(message), "{message}\n{text}");
    }
    assert_eq!(s.counters.snapshot().malformed, 3);
    let ended = s.store.ended.lock().unwrap().len();
    assert_eq!(ended, 4);
}

/// The frames of a ReadLogs reply, decoded as dockerd decodes them; the lines as
/// dockerd writes them (verbatim).
async fn read_logs(s: &Setup, info: &Info, config: ReadConfig) -> String {
    let req = ReadLogsRequest {
        info: info.clone(),
        config,
    };
    let mut reply = s.client.stream::<ReadLogs>(&req).await.unwrap();
    let mut decoder = FrameDecoder::new();
    let mut out = String::new();
    while let Some(entry) = decoder.read_frame(&mut reply).await.unwrap() {
        out.push_str(&String::from_utf8_lossy(&entry.line));
    }
    out
}

#[tokio::test]
async fn read_logs_honours_tail_since_until_and_sends_each_line_with_its_newline() {
    let s = Setup::start(Options::new()).await;
    let reply = s.client.call::<Capabilities>(&Empty {}).await.unwrap();
    assert!(reply.cap.read_logs);
    let mut c = s.start_container("r1", &[]).await.unwrap();
    c.write(lines("l", 5, 0)).await;
    s.wait_lines("r1", 5).await;
    let info = c.info.clone();
    assert_eq!(
        read_logs(&s, &info, ReadConfig::default()).await,
        "l-0\nl-1\nl-2\nl-3\nl-4\n"
    );
    let tail = |tail| ReadConfig {
        tail,
        ..ReadConfig::default()
    };
    assert_eq!(read_logs(&s, &info, tail(2)).await, "l-3\nl-4\n");
    assert_eq!(read_logs(&s, &info, tail(0)).await, "");
    let at = |n: u64| (UNIX_EPOCH + Duration::from_nanos(T0 as u64 + n)).into();
    let window = ReadConfig {
        since: at(1),
        until: at(3),
        ..ReadConfig::default()
    };
    assert_eq!(read_logs(&s, &info, window).await, "l-1\nl-2\nl-3\n");
    s.stop_container(&mut c).await;
}

#[tokio::test]
async fn a_follow_stream_gets_new_lines_even_after_a_silence_and_ends_at_stop_logging() {
    let s = Setup::start_with(Options::new(), |server| {
        server.idle_timeout(Duration::from_millis(300))
    })
    .await;
    let mut c = s.start_container("f1", &[]).await.unwrap();
    c.write(lines("old", 2, 0)).await;
    s.wait_lines("f1", 2).await;
    let req = ReadLogsRequest {
        info: c.info.clone(),
        config: ReadConfig {
            follow: true,
            ..ReadConfig::default()
        },
    };
    let mut reply = s.client.stream::<ReadLogs>(&req).await.unwrap();
    let mut decoder = FrameDecoder::new();
    let mut next = async || {
        let entry = decoder.read_frame(&mut reply).await.unwrap();
        entry.map(|e| String::from_utf8(e.line).unwrap())
    };
    assert_eq!(next().await.as_deref(), Some("old-0\n"));
    assert_eq!(next().await.as_deref(), Some("old-1\n"));
    // Silent for longer than the server's idle timeout: a follow stream is a call in
    // progress, its connection is kept.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut bytes = lines_at(100, "new", 1, 0);
    bytes.extend(piece("p", 1, false, b"long "));
    bytes.extend(piece("p", 2, true, b"line"));
    c.write(bytes).await;
    assert_eq!(next().await.as_deref(), Some("new-0\n"));
    assert_eq!(next().await.as_deref(), Some("long line\n"));
    let stop = s.stop_container(&mut c);
    let (took, end) = tokio::join!(stop, next());
    assert_eq!(end, None, "the follow stream ends at StopLogging");
    assert!(took < Duration::from_secs(2));
}

#[tokio::test]
async fn stop_logging_for_an_unknown_fifo_succeeds_and_start_logging_on_a_missing_one_fails() {
    let s = Setup::start(Options::new()).await;
    let req = StopLoggingRequest {
        file: "/run/docker/logging/unknown".into(),
    };
    s.client.call::<StopLogging>(&req).await.unwrap();
    let req = StartLoggingRequest {
        file: s.dir.path().join("missing").display().to_string(),
        info: Info::default(),
    };
    let err = s
        .client
        .call::<StartLogging>(&req)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot open the log FIFO") && err.contains("No such file or directory"),
        "{err}"
    );
}

#[test]
fn the_log_counters_are_served_once_with_the_call_metrics_of_every_plugin_sharing_them() {
    let metrics = CallMetrics::new();
    let counters = LogCounters::new();
    let store = Arc::new(Store::default());
    let _first = Plugin::new()
        .logging_with(
            Shared(Arc::clone(&store)),
            Options::new().counters(&counters),
        )
        .call_metrics(&metrics)
        .into_router();
    let _second = Plugin::new()
        .call_metrics(&metrics)
        .logging_with(
            Shared(Arc::clone(&store)),
            Options::new().counters(&counters),
        )
        .into_router();
    let text = metrics.render();
    assert_eq!(
        text.matches("# TYPE docker_plugin_log_entries_received_total counter")
            .count(),
        1,
        "{text}"
    );
    // The default options keep counters of their own, served all the same.
    let own = CallMetrics::new();
    let _plugin = Plugin::new()
        .logging(Shared(store))
        .call_metrics(&own)
        .into_router();
    assert!(
        own.render()
            .contains("docker_plugin_log_entries_received_total 0\n")
    );
    // A plugin without a log driver serves no log families.
    let volume_only = CallMetrics::new();
    let _plugin = Plugin::new().call_metrics(&volume_only).into_router();
    assert!(!volume_only.render().contains("log_entries"));
}
