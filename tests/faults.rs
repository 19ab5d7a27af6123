//! Load and faults on plugins that run as processes of their own (so that their memory
//! and file descriptors are theirs, read from `/proc`): 10,000 calls over 256
//! connections leave the plugin's memory where it was; a plugin SIGKILLed in the
//! middle of Creates, Mounts and a log stream, then restarted, ends with whole state
//! files, counts that match what was answered, and no leaked FIFO reader or file
//! descriptor; 256 concurrent API calls through the authz middleware are each decided
//! by the policy alone; a log driver whose receiver is stuck, fed at full rate, never
//! blocks the writer and keeps its memory bounded.
//!
//! The tests take turns (`SERIAL`): they count this process's file descriptors and
//! mounts, which a test running beside them would change.
#![cfg(feature = "harness")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use docker_plugin_sdk::authz::{self, Decision, Request};
use docker_plugin_sdk::harness::{
    ApiRequest, ApiResponse, Engine, LogContainer, PluginProcess, Signal,
};
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::volume::{self, MountRequest, UnmountRequest};
use docker_plugin_sdk::{CancellationToken, Plugin, Result, async_trait};
use serde_json::Value;
use support::mounts::mount_points_under;
use support::process::{example_binary, package_binary};
use support::server::{read_reply, request};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// One test at a time: they count this process's descriptors and mounts.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `test` on a runtime of its own once no other test runs: the runtime is made
/// after the turn is taken, so that no waiting test's runtime (its epoll and eventfd
/// descriptors) comes or goes while this one counts descriptors.
fn serial(test: impl std::future::Future<Output = ()>) {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

/// A hang guard, far above what any step here takes.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// A line of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`), read by the load tool's
/// reader.
fn status_kib(pid: u32, field: &str) -> u64 {
    docker_plugin_sdk::load::proc_status_kib(pid, &format!("{field}:")).unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// What the open file descriptors of `pid` point at (`/proc/PID/fd`).
fn fds(pid: &str) -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    fds.sort();
    fds
}

/// The unix sockets process `pid` listens on, and the connections it accepted on them
/// (`/proc/PID/net/unix`: a listener has the `__SO_ACCEPTCON` flag, `00010000`, and a
/// connection the server accepted carries its listener's path, which is the path it
/// was bound at: the SDK binds a temporary path and renames it to the socket's).
fn listeners_and_connections(pid: u32) -> (usize, usize) {
    let held: BTreeSet<String> = fds(&pid.to_string())
        .into_iter()
        .filter_map(|fd| Some(fd.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned()))
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap();
    // Num RefCount Protocol Flags Type St Inode Path, of this process's bound sockets.
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|row| row.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() == 8 && held.contains(fields[6]))
        .collect();
    let listening: BTreeSet<&str> = rows
        .iter()
        .filter(|fields| fields[3] == "00010000")
        .map(|fields| fields[7])
        .collect();
    let connections = rows
        .iter()
        .filter(|fields| fields[5] == "03" && listening.contains(fields[7]))
        .count();
    (listening.len(), connections)
}

/// Waits until the plugin `pid` holds no connection on its socket: the probe of its
/// start (`start_answering`) hung up. The server closes it right after its reply; a
/// loaded machine may take its time to run that.
async fn idle_after_the_probe(pid: u32) {
    assert!(
        eventually(HANG_GUARD, || listeners_and_connections(pid) == (1, 0)).await,
        "the plugin's unix sockets: {:?} (listening, connections), not (1, 0)",
        listeners_and_connections(pid)
    );
}

/// Waits (up to `limit`) until `done` holds, polling every 50 ms; true if it did.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// `localvol` serving `root` on `socket_dir/NAME.sock`, answering before it returns.
async fn start_localvol(root: &Path, socket_dir: &Path, name: &str, log: PathBuf) -> PluginProcess {
    let mut command = Command::new(example_binary("localvol"));
    command
        .arg("--root")
        .arg(root)
        .arg("--socket-dir")
        .arg(socket_dir)
        .args(["--name", name]);
    let socket = socket_dir.join(format!("{name}.sock"));
    tokio::task::spawn_blocking(move || PluginProcess::start_answering(command, &socket, log))
        .await
        .unwrap()
        .unwrap()
}

const CONNECTIONS: usize = 256;
const CALLS: usize = 10_000;

/// One connection's share of `calls`: `IpamDriver.GetDefaultAddressSpaces` (no
/// arguments: an empty body, as dockerd sends it) for each of its call numbers;
/// every answer checked. Returns the number of correct answers.
async fn soak_connection(socket: PathBuf, first: usize, calls: usize) -> usize {
    let mut stream = UnixStream::connect(&socket).await.unwrap();
    let mut answered = 0;
    for _ in (first..calls).step_by(CONNECTIONS) {
        stream
            .write_all(request("IpamDriver.GetDefaultAddressSpaces", "").as_bytes())
            .await
            .unwrap();
        let reply = read_reply(&mut stream).await.expect("the plugin hung up");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(
            reply.ends_with(
                "\r\n\r\n{\"LocalDefaultAddressSpace\":\"local\",\"GlobalDefaultAddressSpace\":\"global\"}"
            ),
            "{reply}"
        );
        answered += 1;
    }
    answered
}

/// `calls` calls over [`CONNECTIONS`] connections at once; the number answered right.
async fn soak(socket: &Path, calls: usize) -> usize {
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| tokio::spawn(soak_connection(socket.into(), c, calls)))
        .collect();
    let mut answered = 0;
    for task in tasks {
        answered += tokio::time::timeout(HANG_GUARD, task)
            .await
            .expect("hang guard")
            .unwrap();
    }
    answered
}

/// poolipam: its default address spaces need neither its state nor a blocking thread,
/// so what the load leaves behind is the server's alone.
#[test]
fn ten_thousand_calls_over_256_connections_are_all_answered_and_memory_returns_to_idle() {
    serial(async {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("sockets");
        std::fs::create_dir_all(&sockets).unwrap();
        let mut command = Command::new(package_binary("poolipam", "poolipam"));
        command
            .arg("--state")
            .arg(dir.path().join("allocations.json"))
            .arg("--socket-dir")
            .arg(&sockets)
            .args(["--name", "soak"]);
        let socket = sockets.join("soak.sock");
        let log = dir.path().join("soak.log");
        let probe = socket.clone();
        let plugin = tokio::task::spawn_blocking(move || {
            PluginProcess::start_answering(command, &probe, log)
        })
        .await
        .unwrap()
        .unwrap();
        let pid = plugin.pid().unwrap();
        // Idle: started, and the probe of its start hung up.
        idle_after_the_probe(pid).await;
        let idle = rss_kib(pid);
        let idle_split = (status_kib(pid, "RssAnon"), status_kib(pid, "RssFile"));
        let idle_fds = fds(&pid.to_string()).len();

        assert_eq!(soak(&socket, CALLS).await, CALLS);
        let peak = status_kib(pid, "VmHWM");
        // The connections are closed (the tasks dropped them): the plugin frees what they
        // held. Give the allocator a moment.
        let back = eventually(Duration::from_secs(10), || rss_kib(pid) <= idle + 1024).await;
        let after = rss_kib(pid);
        eprintln!(
            "poolipam RSS: idle {idle} KiB (anon, file: {idle_split:?}), peak {peak} KiB, \
         afterwards {after} KiB ({} KiB, {} KiB)",
            status_kib(pid, "RssAnon"),
            status_kib(pid, "RssFile")
        );
        assert!(
            back,
            "RSS idle {idle} KiB, afterwards {after} KiB (peak {peak} KiB): more than 1 MiB kept"
        );
        assert!(
            eventually(Duration::from_secs(10), || fds(&pid.to_string()).len()
                == idle_fds)
            .await,
            "descriptors: {idle_fds} idle, now {:?}",
            fds(&pid.to_string())
        );
        drop(plugin);
    });
}

/// An engine rooted in `dir/engine` (dockerd's retry, fast), and its legacy plugin
/// socket directory, created.
fn engine_in(dir: &Path) -> (Engine, PathBuf) {
    let engine = Engine::for_tests(dir.join("engine"));
    let sockets = engine.discovery().socket_dir.clone();
    std::fs::create_dir_all(&sockets).unwrap();
    (engine, sockets)
}

/// The outcome of every call the workers of [`burst`] made.
#[derive(Default)]
struct Outcomes {
    /// Answered 200.
    ok: BTreeSet<String>,
    /// Failed (the plugin died under them, or their retry was refused).
    failed: BTreeSet<String>,
}

/// Runs `call` for names `{prefix}{w}-{k}` from 16 workers until `stop` is set (or
/// `names` runs out), recording each outcome.
fn burst<F, Fut>(
    prefix: &'static str,
    names: Option<Vec<String>>,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
    call: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let names = names.map(|n| Arc::new(Mutex::new(n)));
    (0..16)
        .map(|w| {
            let (stop, outcomes, call, names) =
                (stop.clone(), outcomes.clone(), call.clone(), names.clone());
            tokio::spawn(async move {
                for k in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = match &names {
                        Some(names) => match names.lock().unwrap().pop() {
                            Some(name) => name,
                            None => break,
                        },
                        None => format!("{prefix}{w}-{k}"),
                    };
                    let ok = call(name.clone()).await;
                    let mut outcomes = outcomes.lock().unwrap();
                    match ok {
                        true => outcomes.ok.insert(name),
                        false => outcomes.failed.insert(name),
                    };
                }
            })
        })
        .collect()
}

/// Waits for the workers of [`burst`], then takes their outcomes.
async fn joined(workers: Vec<tokio::task::JoinHandle<()>>, outcomes: &Mutex<Outcomes>) -> Outcomes {
    for worker in workers {
        tokio::time::timeout(HANG_GUARD, worker)
            .await
            .expect("hang guard")
            .unwrap();
    }
    std::mem::take(&mut *outcomes.lock().unwrap())
}

/// SIGKILLs `plugin` once `ready` holds, while the workers still call it, then starts
/// it again; the workers run on for a moment against the new process.
async fn kill_mid_burst(
    plugin: &mut PluginProcess,
    ready: impl FnMut() -> bool,
    restart: impl std::future::Future<Output = PluginProcess>,
) {
    assert!(
        eventually(HANG_GUARD, ready).await,
        "the burst never got going"
    );
    plugin.signal_and_wait(Signal::SIGKILL).unwrap();
    *plugin = restart.await;
}

/// The mount counts in localvol's state file, which must be whole JSON.
fn saved_mounts(root: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(root.join(".mounts.json")).unwrap_or_default();
    if text.is_empty() {
        return BTreeMap::new();
    }
    let saved: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the state file is not whole JSON ({e}): {text}"));
    let mut counts = BTreeMap::new();
    collect_counts(&saved, &mut counts);
    counts
}

/// Sums the per-ID counts of each volume, whatever the file's nesting
/// (`{volume: {id: count}}`).
fn collect_counts(saved: &Value, counts: &mut BTreeMap<String, u64>) {
    if let Value::Object(volumes) = saved {
        for (volume, ids) in volumes {
            let total = match ids {
                Value::Object(ids) => ids.values().filter_map(Value::as_u64).sum(),
                other => other.as_u64().unwrap_or(0),
            };
            counts.insert(volume.clone(), total);
        }
    }
}

const MOUNT_ID: &str = "b87d7442095999a92b65b3d9691e697b61713829cc0ffd1bb72e4ccd51aa4d6c";

#[test]
fn a_volume_plugin_killed_mid_create_and_mid_mount_restarts_with_consistent_state() {
    serial(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let engine = Engine::for_tests(dir.path().join("engine"));
        let sockets = engine.discovery().socket_dir.clone();
        std::fs::create_dir_all(&sockets).unwrap();
        let fds_before = fds("self").len();
        let start = |n: u32| {
            start_localvol(
                &root,
                &sockets,
                "faultvol",
                dir.path().join(format!("{n}.log")),
            )
        };
        let mut plugin = start(1).await;
        // Once the probe of its start has hung up.
        idle_after_the_probe(plugin.pid().unwrap()).await;
        let idle_fds = fds(&plugin.pid().unwrap().to_string()).len();

        // Creates, as `docker volume create` (the harness retries as dockerd does).
        let stop = Arc::new(AtomicBool::new(false));
        let created = Arc::new(Mutex::new(Outcomes::default()));
        let e = engine.clone();
        let workers = burst("c", None, stop.clone(), created.clone(), move |name| {
            let e = e.clone();
            async move {
                let no_opts: [(&str, &str); 0] = [];
                e.volumes().create("faultvol", &name, no_opts).await.is_ok()
            }
        });
        let progress = created.clone();
        kill_mid_burst(
            &mut plugin,
            || progress.lock().unwrap().ok.len() >= 100,
            start(2),
        )
        .await;
        let after_restart = created.lock().unwrap().ok.len();
        assert!(
            eventually(HANG_GUARD, || created.lock().unwrap().ok.len()
                >= after_restart + 50)
            .await,
            "the restarted plugin serves no Create"
        );
        stop.store(true, Ordering::SeqCst);
        let created = joined(workers, &created).await;
        // The kill landed mid-call: some calls lost their connection (dockerd's retry of a
        // written request sends an empty body, which the new process refuses).
        let cut = engine.calls().take();
        let cut_creates = cut
            .iter()
            .filter(|r| r.method == "VolumeDriver.Create" && r.status.is_none())
            .count();
        assert!(cut_creates > 0, "no Create was cut by the kill");
        let listed: Vec<String> = engine
            .plugins()
            .get("faultvol", volume::IMPLEMENTS)
            .await
            .unwrap()
            .rpc
            .call::<volume::List>(&docker_plugin_sdk::protocol::Empty {})
            .await
            .unwrap()
            .volumes
            .into_iter()
            .map(|v| v.name)
            .collect();
        let unique: BTreeSet<&String> = listed.iter().collect();
        assert_eq!(
            unique.len(),
            listed.len(),
            "a volume listed twice: {listed:?}"
        );
        for name in &created.ok {
            assert!(unique.contains(name), "created {name} is gone: {listed:?}");
        }
        for name in &listed {
            assert!(
                created.ok.contains(name) || created.failed.contains(name),
                "{name} was never asked for"
            );
        }
        eprintln!(
            "Create: {} answered, {} failed, {} cut by the kill; {} volumes listed",
            created.ok.len(),
            created.failed.len(),
            cut_creates,
            listed.len()
        );

        // Mounts of the created volumes, one ID each.
        let plugin_rpc = |e: &Engine| {
            let e = e.clone();
            async move {
                e.plugins()
                    .get("faultvol", volume::IMPLEMENTS)
                    .await
                    .unwrap()
                    .rpc
                    .clone()
            }
        };
        let rpc = plugin_rpc(&engine).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mounted = Arc::new(Mutex::new(Outcomes::default()));
        let names: Vec<String> = created.ok.iter().cloned().collect();
        let r = rpc.clone();
        let workers = burst(
            "",
            Some(names),
            stop.clone(),
            mounted.clone(),
            move |name| {
                let r = r.clone();
                async move {
                    let req = MountRequest {
                        name,
                        id: MOUNT_ID.to_owned(),
                    };
                    r.call::<volume::Mount>(&req).await.is_ok()
                }
            },
        );
        let progress = mounted.clone();
        let total = created.ok.len();
        kill_mid_burst(
            &mut plugin,
            || progress.lock().unwrap().ok.len() >= 30,
            start(3),
        )
        .await;
        let mounted = joined(workers, &mounted).await;
        assert_eq!(mounted.ok.len() + mounted.failed.len(), total);
        let cut_mounts = engine
            .calls()
            .take()
            .iter()
            .filter(|r| r.method == "VolumeDriver.Mount" && r.status.is_none())
            .count();
        assert!(cut_mounts > 0, "no Mount was cut by the kill");
        // The state file is whole; a Mount answered counts once, one never answered counts
        // at most once (the kill may have come after its save), the others not at all.
        let counts = saved_mounts(&root);
        for name in &created.ok {
            let count = counts.get(name).copied().unwrap_or(0);
            if mounted.ok.contains(name) {
                assert_eq!(count, 1, "{name}: {counts:?}");
            } else {
                assert!(count <= 1, "{name}: {counts:?}");
            }
        }
        // localvol's own atomic write: every volume's options file, where there is one, is
        // whole.
        for name in &listed {
            let opts = root.join(name).join("opts.json");
            if let Ok(text) = std::fs::read_to_string(&opts) {
                let parsed: std::result::Result<Value, _> = serde_json::from_str(&text);
                assert!(parsed.is_ok(), "{}: {text:?}", opts.display());
            }
        }
        eprintln!(
            "Mount: {} answered, {} failed, {} cut by the kill; {} saved with a count",
            mounted.ok.len(),
            mounted.failed.len(),
            cut_mounts,
            counts.values().filter(|c| **c > 0).count()
        );
        // dockerd unmounts what it mounted: the counts go back to zero.
        let pid = plugin.pid().unwrap().to_string();
        for name in &mounted.ok {
            let req = UnmountRequest {
                name: name.clone(),
                id: MOUNT_ID.to_owned(),
            };
            rpc.call::<volume::Unmount>(&req).await.unwrap();
        }
        let counts = saved_mounts(&root);
        for name in &mounted.ok {
            assert_eq!(counts.get(name).copied().unwrap_or(0), 0, "{counts:?}");
        }
        drop(rpc);
        engine.shutdown().await;
        drop(engine);
        // The third process holds what the first held before any call, once the engine's
        // connections close: every call was answered before the engine went, so the
        // plugin only has to read each connection's EOF and close it (milliseconds; the
        // bound is for a loaded machine). It once took "more than 60 s": the restarted
        // process had inherited the engine's sockets, dup'ed without close-on-exec by
        // the client, and held their client ends itself (tests/client.rs
        // a_process_started_meanwhile_inherits_no_connection_of_the_client).
        assert!(
            eventually(Duration::from_secs(5), || fds(&pid).len() == idle_fds).await,
            "the plugin's descriptors: {idle_fds:?} idle, now {:?}",
            fds(&pid)
        );
        plugin.signal_and_wait(Signal::SIGTERM).unwrap();
        drop(plugin);
        // Only what this test could have mounted: other test binaries run at the same time.
        assert_eq!(
            mount_points_under(dir.path()),
            Vec::<PathBuf>::new(),
            "a mount leaked"
        );
        assert!(
            eventually(Duration::from_secs(10), || fds("self").len() <= fds_before).await,
            "this process's descriptors: {fds_before} before, now {:?}",
            fds("self")
        );
    });
}

/// A TCP receiver for slowsink: takes connections and, once `read` is set, reads each
/// to its end, counting lines; ends when `stop` is set and every connection ended.
struct Receiver {
    address: String,
    read: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    lines: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Reads at once (`reading`) or only once [`Receiver::start_reading`] is called.
    fn start(reading: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let read = Arc::new(AtomicBool::new(reading));
        let stop = Arc::new(AtomicBool::new(false));
        let lines = Arc::new(AtomicUsize::new(0));
        let (r, s, l) = (read.clone(), stop.clone(), lines.clone());
        let thread = std::thread::spawn(move || {
            let mut readers = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let (r, l) = (r.clone(), l.clone());
                        readers.push(std::thread::spawn(move || {
                            while !r.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            stream.set_nonblocking(false).unwrap();
                            let mut buf = vec![0u8; 64 * 1024];
                            while let Ok(n @ 1..) = stream.read(&mut buf) {
                                let newlines = buf[..n].iter().filter(|b| **b == b'\n').count();
                                l.fetch_add(newlines, Ordering::SeqCst);
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            for reader in readers {
                reader.join().unwrap();
            }
        });
        Self {
            address,
            read,
            stop,
            lines,
            thread: Some(thread),
        }
    }

    fn start_reading(&self) {
        self.read.store(true, Ordering::SeqCst);
    }

    /// Stops taking connections and waits for the readers (whose peer must be gone).
    fn finish(mut self) -> usize {
        self.start_reading();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.lines.load(Ordering::SeqCst)
    }
}

/// slowsink as `NAME` on `socket_dir`, forwarding to `address`, with `flags`.
async fn start_slowsink(
    socket_dir: &Path,
    name: &str,
    address: &str,
    flags: &[&str],
    log: PathBuf,
) -> PluginProcess {
    let mut command = Command::new(package_binary("slowsink", "slowsink"));
    command
        .arg("--socket-dir")
        .arg(socket_dir)
        .args(["--name", name, "--address", address])
        .args(flags);
    let socket = socket_dir.join(format!("{name}.sock"));
    tokio::task::spawn_blocking(move || PluginProcess::start_answering(command, &socket, log))
        .await
        .unwrap()
        .unwrap()
}

/// `count` lines of `len` bytes (with their newline), numbered from `first`.
fn lines(first: usize, count: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * len);
    for n in first..first + count {
        let line = format!("line-{n}-");
        out.extend_from_slice(line.as_bytes());
        out.extend(std::iter::repeat_n(b'.', len - 1 - line.len()));
        out.push(b'\n');
    }
    out
}

/// The counts slowsink logged when the logging of the container named `container`
/// ended.
fn ended_counts(log: &str, container: &str) -> Option<BTreeMap<String, u64>> {
    let name = format!(" container={container} ");
    let line = log
        .lines()
        .find(|l| l.contains("logging ended") && l.contains(&name))?;
    Some(
        line.split_whitespace()
            .filter_map(|word| {
                let (key, value) = word.split_once('=')?;
                Some((key.to_owned(), value.parse().ok()?))
            })
            .collect(),
    )
}

#[test]
fn a_log_driver_killed_mid_stream_is_not_restarted_and_leaves_no_fifo_reader() {
    serial(async {
        let dir = tempfile::tempdir().unwrap();
        let (engine, sockets) = engine_in(dir.path());
        let fds_before = fds("self").len();
        let receiver = Receiver::start(true);
        let flags = ["--flush-timeout", "1"];
        let start = |n: u32| {
            start_slowsink(
                &sockets,
                "faultlog",
                &receiver.address,
                &flags,
                dir.path().join(format!("{n}.log")),
            )
        };
        let mut plugin = start(1).await;

        let container = LogContainer::new("web", "busybox");
        let mut log = engine
            .logging()
            .start("faultlog", &container)
            .await
            .unwrap();
        let fifo = log.host_path().display().to_string();
        let pid = plugin.pid().unwrap().to_string();
        assert!(
            fds(&pid).contains(&fifo),
            "the plugin does not read the FIFO"
        );
        // The container prints at full rate; the plugin dies mid-stream.
        for n in 0..20 {
            let chunk = lines(n * 1000, 1000, 100);
            tokio::time::timeout(HANG_GUARD, log.write("stdout", &chunk))
                .await
                .expect("hang guard")
                .unwrap();
        }
        // Killed once it has read all it was sent, though perhaps not forwarded it all.
        // `write` returns once its frames are in the FIFO, not once the plugin took
        // them: on a loaded machine up to a pipe's worth still waits there (62,976 of
        // 65,536 bytes seen). Killed then, the plugin may leave no room for the 1,230
        // bytes written below (the pipe's 16 pages in use, the last one nearly full),
        // and that write, into a FIFO nobody reads any more, blocks for ever, as it
        // would block the container (issue 19).
        assert!(
            eventually(HANG_GUARD, || log.unread().unwrap() == 0).await,
            "the plugin left {} bytes in the FIFO unread",
            log.unread().unwrap()
        );
        plugin.signal_and_wait(Signal::SIGKILL).unwrap();
        // dockerd's FIFO (held O_RDWR) takes what fits in the pipe; nothing reads it now.
        tokio::time::timeout(HANG_GUARD, log.write("stdout", &lines(20_000, 10, 100)))
            .await
            .expect("hang guard")
            .unwrap();
        plugin = start(2).await;
        let pid = plugin.pid().unwrap().to_string();
        // What the new process holds before it serves anything (once the probe of its
        // start has hung up).
        idle_after_the_probe(plugin.pid().unwrap()).await;
        let idle_fds = fds(&pid);
        // dockerd does not start the stream again on the new process (moby v20.10.24
        // `daemon/logger/plugin.go`: StartLogging once, when the container starts).
        let starts = engine
            .calls()
            .methods()
            .iter()
            .filter(|m| *m == "LogDriver.StartLogging")
            .count();
        assert_eq!(starts, 1);
        assert!(
            !fds(&pid).contains(&fifo),
            "the new process reads the old FIFO"
        );
        // The container exits: StopLogging of a FIFO the new process never saw succeeds,
        // and the FIFO is removed.
        tokio::time::timeout(HANG_GUARD, log.stop())
            .await
            .expect("hang guard")
            .unwrap();
        assert!(!Path::new(&fifo).exists(), "{fifo} is left");
        // The new process serves a new container in full.
        let second = LogContainer::new("web2", "busybox");
        let mut log = engine.logging().start("faultlog", &second).await.unwrap();
        let id = "web2";
        log.write("stdout", &lines(0, 3, 20)).await.unwrap();
        log.stop().await.unwrap();
        let counts = eventually(Duration::from_secs(10), || {
            ended_counts(&plugin.log_text(), id).is_some()
        })
        .await
        .then(|| ended_counts(&plugin.log_text(), id).unwrap());
        let counts = counts.unwrap_or_else(|| panic!("no counts logged: {}", plugin.log_text()));
        assert_eq!(
            (counts["received"], counts["forwarded"]),
            (3, 3),
            "{counts:?}"
        );
        // Once the engine's connections close, the new process holds what it held before
        // it served anything.
        engine.shutdown().await;
        drop(engine);
        assert!(
            eventually(Duration::from_secs(10), || fds(&pid).len()
                == idle_fds.len())
            .await,
            "the new process's descriptors: {idle_fds:?} when idle, now {:?}",
            fds(&pid)
        );
        plugin.signal_and_wait(Signal::SIGTERM).unwrap();
        drop(plugin);
        receiver.finish();
        assert!(
            eventually(Duration::from_secs(10), || fds("self").len() <= fds_before).await,
            "this process's descriptors: {fds_before} before, now {:?}",
            fds("self")
        );
    });
}

#[test]
fn a_log_driver_with_a_stuck_receiver_fed_at_full_rate_never_blocks_and_stays_bounded() {
    serial(async {
        let dir = tempfile::tempdir().unwrap();
        let (engine, sockets) = engine_in(dir.path());
        // The receiver takes the connection and reads nothing until the end.
        let receiver = Receiver::start(false);
        const BUFFER: u64 = 1 << 20;
        let flags = [
            "--buffer",
            "1048576",
            "--overflow",
            "drop-newest",
            "--flush-timeout",
            "1",
        ];
        let mut plugin = start_slowsink(
            &sockets,
            "fullrate",
            &receiver.address,
            &flags,
            dir.path().join("fullrate.log"),
        )
        .await;
        let pid = plugin.pid().unwrap();
        let idle = rss_kib(pid);
        let container = LogContainer::new("chatty", "busybox");
        let mut log = engine
            .logging()
            .start("fullrate", &container)
            .await
            .unwrap();
        let id = "chatty";
        // 200,000 lines of 200 bytes (40 MB), written as fast as the FIFO takes them: 40
        // times the buffer.
        const LINES: usize = 200_000;
        for n in 0..LINES / 1000 {
            tokio::time::timeout(HANG_GUARD, log.write("stdout", &lines(n * 1000, 1000, 200)))
                .await
                .expect("the writer blocked")
                .unwrap();
        }
        tokio::time::timeout(HANG_GUARD, log.stop())
            .await
            .expect("StopLogging blocked")
            .unwrap();
        let logged = eventually(Duration::from_secs(30), || {
            ended_counts(&plugin.log_text(), id).is_some()
        })
        .await;
        assert!(logged, "no counts logged: {}", plugin.log_text());
        let counts = ended_counts(&plugin.log_text(), id).unwrap();
        let peak = status_kib(pid, "VmHWM");
        // The plugin goes: its connection closes and the receiver reads what it got.
        plugin.signal_and_wait(Signal::SIGTERM).unwrap();
        let arrived = receiver.finish() as u64;
        eprintln!(
            "slowsink with a stuck receiver: RSS idle {idle} KiB, peak {peak} KiB; counts \
         {counts:?}; {arrived} lines reached the receiver"
        );
        assert_eq!(counts["received"], LINES as u64, "{counts:?}");
        assert_eq!(counts["forwarded"], arrived, "{counts:?}");
        assert!(counts["dropped"] > 0, "{counts:?}");
        assert_eq!(
            counts["forwarded"] + counts["dropped"] + counts["spilled"] + counts["unsent"],
            LINES as u64,
            "{counts:?}"
        );
        // Bounded: the buffer and the batch being written (at most what the buffer held).
        assert!(counts["unsent"] * 200 <= 2 * BUFFER, "{counts:?}");
        // The buffer, plus the pipe, the batch in hand and the allocator's slack.
        let bound = idle + 2 * BUFFER / 1024 + 16 * 1024;
        assert!(
            peak <= bound,
            "RSS peak {peak} KiB past {bound} KiB (idle {idle} KiB)"
        );
    });
}

/// Denies `/v1.41/secrets` (AuthZReq) and `/v1.41/info` replies (AuthZRes).
struct Policy;

#[async_trait]
impl authz::Plugin for Policy {
    async fn authorize_request(&self, req: &Request) -> Result<Decision> {
        Ok(match req.endpoint() {
            "/secrets" => Decision::deny("secrets are not for you"),
            _ => Decision::allow(),
        })
    }

    async fn authorize_response(&self, req: &Request, _: &authz::Response) -> Result<Decision> {
        Ok(match req.endpoint() {
            "/info" => Decision::deny("info is private"),
            _ => Decision::allow(),
        })
    }
}

#[test]
fn an_authz_plugin_decides_256_concurrent_api_calls_by_its_policy_alone() {
    serial(async {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::for_tests(dir.path());
        let stop = CancellationToken::new();
        let listener = UnixSocket::new("policy")
            .dir(&engine.discovery().socket_dir)
            .bind()
            .unwrap();
        let server = Plugin::new()
            .authz(Policy)
            .server(listener)
            .shutdown_on(stop.clone());
        let served = tokio::spawn(server.run());
        engine.authz().set_plugins(["policy"]);
        // Each round: 256 calls at once, a third of them denied by the request, a third by
        // the reply.
        let uris = ["/v1.41/volumes", "/v1.41/secrets", "/v1.41/info"];
        let calls: Vec<_> = (0..256)
            .map(|n| {
                let (engine, uri) = (engine.clone(), uris[n % 3]);
                tokio::spawn(async move {
                    let request = ApiRequest::new("GET", uri);
                    let reply = engine
                        .authz()
                        .call(request, || async {
                            ApiResponse::json(200, &serde_json::json!({"ok": true}))
                        })
                        .await;
                    (uri, reply.map(|r| r.status).map_err(|e| e.to_string()))
                })
            })
            .collect();
        let mut tally = BTreeMap::new();
        for call in calls {
            let (uri, outcome) = tokio::time::timeout(HANG_GUARD, call)
                .await
                .expect("hang guard")
                .unwrap();
            let expected = match uri {
                "/v1.41/volumes" => Ok(200),
                "/v1.41/secrets" => {
                    Err("authorization denied by plugin policy: secrets are not for you".to_owned())
                }
                _ => Err("authorization denied by plugin policy: info is private".to_owned()),
            };
            assert_eq!(outcome, expected, "{uri}");
            *tally.entry(uri).or_insert(0) += 1;
        }
        assert_eq!(
            tally,
            BTreeMap::from([
                ("/v1.41/info", 85),
                ("/v1.41/secrets", 85),
                ("/v1.41/volumes", 86)
            ])
        );
        // Every call reached the plugin: 256 AuthZReq, and an AuthZRes for each of the 171
        // calls that ran.
        let methods = engine.calls().take_methods();
        let count = |m: &str| methods.iter().filter(|x| *x == m).count();
        assert_eq!(
            (count("AuthZPlugin.AuthZReq"), count("AuthZPlugin.AuthZRes")),
            (256, 171)
        );
        stop.cancel();
        served.await.unwrap().unwrap();
    });
}
