//! slowsink under the SDK's harness (a dockerd test double whose logging service writes
//! a container's output into the FIFO as dockerd's copier does, blocking while the FIFO
//! is full, as the container would block), served in-process, with its receiver
//! paused: the container's writes and StopLogging still finish, and each overflow
//! policy does what it says, counted.

use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::{Engine, LogContainer};
use docker_plugin_sdk::logging::{CounterSnapshot, LogCounters};
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Plugin};
use slowsink::forward::SlowSink;
use slowsink::policy::{Policy, PolicyArgs};
use slowsink::receiver::Receiver;

/// The plugin's name.
const NAME: &str = "slowsink";

/// A line of 100 bytes with its `\n`, numbered.
fn line(n: u64) -> String {
    format!("{n:0>99}\n")
}

/// slowsink forwarding to `receiver`, served where `engine` looks, with `policy`;
/// its counters.
fn serve(
    engine: &Engine,
    receiver: &Receiver,
    policy: &PolicyArgs,
    stop: &CancellationToken,
) -> (LogCounters, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let dir = &engine.discovery().socket_dir;
    std::fs::create_dir_all(dir).unwrap();
    let listener = UnixSocket::new(NAME).dir(dir).bind().unwrap();
    let counters = LogCounters::new();
    let sink = SlowSink::new(receiver.addr());
    let forwarded = sink.forwarded();
    let plugin = Plugin::new().logging_with(sink, policy.options(&counters));
    tokio::spawn(plugin.server(listener).shutdown_on(stop.clone()).run());
    (counters, forwarded)
}

/// A container printing `lines` numbered lines, in chunks of 1000, then exiting; how
/// long its writes and the StopLogging took.
async fn run(engine: &Engine, lines: u64) -> Duration {
    let container = LogContainer::new("noisy", "busybox");
    let started = Instant::now();
    let mut log = engine.logging().start(NAME, &container).await.unwrap();
    for chunk in 0..lines / 1000 {
        let text: String = (chunk * 1000..(chunk + 1) * 1000).map(line).collect();
        log.write("stdout", text.as_bytes()).await.unwrap();
    }
    log.stop().await.unwrap();
    started.elapsed()
}

fn policy(policy: Policy, flush_timeout: u64) -> PolicyArgs {
    PolicyArgs {
        policy,
        buffer: 64 * 1024,
        flush_timeout: Duration::from_secs(flush_timeout),
        ..PolicyArgs::default()
    }
}

fn dropped(counts: &CounterSnapshot) -> u64 {
    counts.dropped_oldest + counts.dropped_newest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_receiver_blocks_neither_the_container_nor_stop_logging_and_drops_are_counted() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let receiver = Receiver::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
    receiver.pause();
    let stop = CancellationToken::new();
    let (counters, forwarded) = serve(&engine, &receiver, &policy(Policy::DropNewest, 1), &stop);
    // 20 MB: far more than the socket buffers and the 64 KiB buffer hold.
    let took = run(&engine, 200_000).await;
    assert!(
        took < Duration::from_secs(60),
        "the container took {took:?}"
    );
    let counts = counters.snapshot();
    assert_eq!(counts.received, 200_000, "{counts:?}");
    assert!(counts.dropped_newest > 0, "{counts:?}");
    assert_eq!(counts.dropped_oldest, 0, "{counts:?}");
    // Resumed, the receiver gets what was forwarded into its socket before the flush
    // timeout cancelled the forwarder (which closed the connection), no more.
    receiver.resume();
    let forwarded = forwarded.load(std::sync::atomic::Ordering::Relaxed);
    let got = receiver
        .wait_for_lines(forwarded, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.lines(), got);
    assert_eq!(got, forwarded, "{counts:?}");
    assert!(
        forwarded + dropped(&counts) <= counts.received,
        "{counts:?}"
    );
    // What neither went out nor was dropped fits the buffer and a batch being written.
    // The buffer weighs an entry as its line without the `\n` plus 64 bytes
    // (`Entry::weight`, src/logging/partial.rs): 163 bytes here, so 402 entries fit.
    let weight = line(0).len() - 1 + 64;
    let unsent = counts.received - forwarded - dropped(&counts);
    assert!(
        unsent <= (64 * 1024 / weight) as u64 + 256 + 1,
        "{unsent} unsent: {counts:?}"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_keeps_the_newest_lines_for_a_receiver_that_comes_back() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let receiver = Receiver::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
    receiver.pause();
    let stop = CancellationToken::new();
    let (counters, _) = serve(&engine, &receiver, &policy(Policy::DropOldest, 20), &stop);
    let container = LogContainer::new("noisy", "busybox");
    let mut log = engine.logging().start(NAME, &container).await.unwrap();
    for chunk in 0..100u64 {
        let text: String = (chunk * 1000..(chunk + 1) * 1000).map(line).collect();
        log.write("stdout", text.as_bytes()).await.unwrap();
    }
    // The receiver is back before the container stops: the buffer is flushed to it.
    receiver.resume();
    log.stop().await.unwrap();
    let counts = counters.snapshot();
    assert!(counts.dropped_oldest > 0, "{counts:?}");
    assert_eq!(counts.dropped_newest, 0, "{counts:?}");
    let kept = 100_000 - counts.dropped_oldest;
    assert_eq!(
        receiver.wait_for_lines(kept, Duration::from_secs(10)).await,
        kept,
        "{counts:?}"
    );
    let last = line(99_999);
    assert_eq!(
        receiver.last_line(),
        last.trim_end().as_bytes(),
        "the newest line is kept"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spill_loses_nothing_and_replays_in_order_once_the_receiver_is_back() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let receiver = Receiver::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
    receiver.pause();
    let stop = CancellationToken::new();
    let spill = PolicyArgs {
        spill_dir: root.path().join("spill"),
        ..policy(Policy::Spill, 30)
    };
    let (counters, _) = serve(&engine, &receiver, &spill, &stop);
    let container = LogContainer::new("noisy", "busybox");
    let mut log = engine.logging().start(NAME, &container).await.unwrap();
    for chunk in 0..50u64 {
        let text: String = (chunk * 1000..(chunk + 1) * 1000).map(line).collect();
        log.write("stdout", text.as_bytes()).await.unwrap();
    }
    receiver.resume();
    log.stop().await.unwrap();
    let counts = counters.snapshot();
    assert!(counts.spilled > 0, "{counts:?}");
    assert_eq!(dropped(&counts), 0, "{counts:?}");
    assert_eq!(
        receiver
            .wait_for_lines(50_000, Duration::from_secs(10))
            .await,
        50_000
    );
    assert_eq!(receiver.last_line(), line(49_999).trim_end().as_bytes());
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_containers_address_log_opt_picks_its_receiver_and_a_bad_one_fails_the_start() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let default = Receiver::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
    let own = Receiver::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
    let stop = CancellationToken::new();
    serve(&engine, &default, &policy(Policy::DropOldest, 5), &stop);
    let address = own.addr().to_string();
    let container = LogContainer::new("web", "busybox").opt("address", &address);
    let mut log = engine.logging().start(NAME, &container).await.unwrap();
    log.write("stdout", b"to my own receiver\n").await.unwrap();
    log.stop().await.unwrap();
    assert_eq!(own.wait_for_lines(1, Duration::from_secs(10)).await, 1);
    assert_eq!(own.last_line(), b"to my own receiver");
    assert_eq!(default.lines(), 0);

    let container = LogContainer::new("web", "busybox").opt("address", "nowhere");
    let err = engine
        .logging()
        .start(NAME, &container)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "invalid options: option `address` must be an address like 127.0.0.1:22, \
             got `nowhere`: invalid socket address syntax"
        ),
        "{err}"
    );
    stop.cancel();
}
