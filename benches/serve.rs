//! Serving benchmark: the SDK against a bare hyper server, under the same load, in
//! the configurations plugins really run in.
//!
//! ```text
//! cargo bench --bench serve --features macros
//! ```
//!
//! One binary plays three parts. Run without arguments (as `cargo bench` does) it is the
//! load generator; it re-executes itself as the servers under test:
//!
//! - `bare SOCKET SETUP`: a bare hyper 1.x HTTP/1 server answering one fixed JSON body
//!   (the same bytes and `Content-Type` the SDK's Get reply has) to any request;
//! - `sdk SOCKET SETUP`: `docker_plugin_sdk::Plugin` serving a trivial volume driver.
//!
//! Each server runs in one of three setups, and both servers of a comparison run in the
//! same one, except for what the SDK adds itself:
//!
//! - `plain`: both on a current-thread tokio runtime, no log subscriber;
//! - `multi`: both on a multi-thread runtime (what `#[tokio::main]` gives), no
//!   subscriber;
//! - `main`: the SDK started exactly as `#[docker_plugin_sdk::main]` starts a plugin
//!   (its runtime and its log subscriber at the default `info` level), with its call
//!   metrics kept and served on a socket of their own, as real plugins run, against the
//!   bare server on a multi-thread runtime without a subscriber (the floor).
//!
//! For each setup and each connection count (1 and 64 by default) the load generator
//! keeps that many keep-alive HTTP/1.1 connections over the unix socket, one request in
//! flight on each, sending what dockerd sends (`POST /VolumeDriver.Get`, `Accept:
//! application/vnd.docker.plugins.v1.2+json`, no `Content-Type`, body
//! `{"Name":"v1"}\n`). Both servers are loaded in turns of 1 s (bare, sdk, sdk, bare,
//! ...) after a warmup, so that anything else running on the machine slows both alike.
//! It measures, per server and turn: calls/s, the server's CPU per call (utime + stime
//! from `/proc/PID/stat`) and the 99th percentile of the latency the load generator sees
//! (request written → reply read). A round is one turn of each server, back to back;
//! each target is the median over the rounds of the SDK's figure divided by the bare
//! server's in the same round, so that a burst of the machine's noise (a build, a
//! stolen VM slice) moves one round's ratio and not the verdict. The absolute figures
//! shown are each server's medians over its turns. It also measures each server's idle
//! RSS (`VmRSS` once listening, before any load) and its peak RSS (`VmHWM` after the
//! load), and the size of a stripped release plugin binary. It exits non-zero when the
//! SDK misses a target in any cell:
//!
//! - calls/s at least 90% of the bare server's;
//! - CPU per call at most 1.25 times the bare server's;
//! - p99 latency at most 1.2 times the bare server's;
//! - idle RSS at most 1 MiB above the bare server's;
//! - the plugin binary under 2.5 MB (skipped when it is not built).
//!
//! Environment:
//!
//! - `BENCH_SETUPS` (default `plain,multi,main`), `BENCH_CONNECTIONS` (default `1,64`).
//! - `BENCH_SECONDS` (default 7): measured seconds per server and cell, in 1 s turns
//!   (one round per second);
//!   `BENCH_WARMUP` (default 1): seconds of warmup per server and cell.
//! - `BENCH_METHOD` (`get`, the default, or `list`).
//! - `BENCH_CLIENT_THREADS` (default 1): worker threads of the load generator (1 is a
//!   current-thread runtime).
//! - `BENCH_PLUGIN_BINARY`: the plugin binary to size (default
//!   `target/release/examples/localvol`, "not built" when missing).
//! - `BENCH_NO_FAIL=1`: report only, always exit 0.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docker_plugin_sdk::telemetry::CallMetrics;
use docker_plugin_sdk::volume::{self, Volume};
use docker_plugin_sdk::{Plugin, Result as SdkResult, async_trait, transport::UnixSocket};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// What dockerd's Go HTTP client sends (header order and all), with the body it sends.
const GET_REQUEST: &[u8] = b"POST /VolumeDriver.Get HTTP/1.1\r\n\
Host: plugin\r\n\
User-Agent: Go-http-client/1.1\r\n\
Content-Length: 14\r\n\
Accept: application/vnd.docker.plugins.v1.2+json\r\n\
Accept-Encoding: gzip\r\n\
\r\n\
{\"Name\":\"v1\"}\n";

const LIST_REQUEST: &[u8] = b"POST /VolumeDriver.List HTTP/1.1\r\n\
Host: plugin\r\n\
User-Agent: Go-http-client/1.1\r\n\
Content-Length: 3\r\n\
Accept: application/vnd.docker.plugins.v1.2+json\r\n\
Accept-Encoding: gzip\r\n\
\r\n\
{}\n";

/// The SDK's replies to those requests; the bare server answers the same bytes.
const GET_REPLY: &[u8] = br#"{"Volume":{"Name":"v1","Mountpoint":"/srv/vols/v1"}}"#;
const LIST_REPLY: &[u8] = br#"{"Volumes":[{"Name":"v1","Mountpoint":"/srv/vols/v1"},{"Name":"v2","Mountpoint":"/srv/vols/v2"}]}"#;

// The targets, relative to the bare hyper server.
const MIN_THROUGHPUT_RATIO: f64 = 0.90;
const MAX_CPU_RATIO: f64 = 1.25;
const MAX_P99_RATIO: f64 = 1.2;
const MAX_IDLE_RSS_EXTRA_MIB: f64 = 1.0;
const MAX_BINARY_BYTES: u64 = 2_500_000;

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let setup = args.get(3).and_then(|s| Setup::parse(s));
    match (args.get(1).map(String::as_str), args.get(2), setup) {
        (Some("bare"), Some(socket), Some(setup)) => child(setup, bare(PathBuf::from(socket))),
        // `#[docker_plugin_sdk::main]` expands to this call.
        (Some("sdk"), Some(socket), Some(Setup::Main)) => {
            docker_plugin_sdk::__private::run_main(sdk(PathBuf::from(socket), Setup::Main))
        }
        (Some("sdk"), Some(socket), Some(setup)) => child(setup, sdk(PathBuf::from(socket), setup)),
        // `cargo bench` passes `--bench` (and perhaps a filter): be the load generator.
        _ => match parent() {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(err) => {
                eprintln!("serve bench: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

// ---------------------------------------------------------------------------------------
// The servers.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    List,
}

impl Method {
    fn from_env() -> Self {
        match std::env::var("BENCH_METHOD").as_deref() {
            Ok("list") => Self::List,
            _ => Self::Get,
        }
    }

    fn request(self) -> &'static [u8] {
        match self {
            Self::Get => GET_REQUEST,
            Self::List => LIST_REQUEST,
        }
    }

    fn reply(self) -> &'static [u8] {
        match self {
            Self::Get => GET_REPLY,
            Self::List => LIST_REPLY,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Get => "VolumeDriver.Get",
            Self::List => "VolumeDriver.List",
        }
    }
}

/// Where the servers run: see the module documentation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Setup {
    Plain,
    Multi,
    Main,
}

impl Setup {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "plain" => Some(Self::Plain),
            "multi" => Some(Self::Multi),
            "main" => Some(Self::Main),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Multi => "multi",
            Self::Main => "main",
        }
    }
}

/// Runs a server child on its setup's runtime: current-thread for `plain`, the
/// multi-thread one `#[tokio::main]` gives otherwise (the `main` setup's SDK server is
/// started by `run_main` instead, as the SDK's macro does).
fn child(setup: Setup, server: impl Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match setup {
        Setup::Plain => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Setup::Multi | Setup::Main => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let result = match runtime {
        Ok(runtime) => runtime.block_on(server),
        Err(err) => Err(format!("runtime: {err}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("serve bench server: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A bare hyper server: one fixed body, whatever the request. It reads the request
/// body, as any server answering a POST must.
async fn bare(socket: PathBuf) -> Result<(), String> {
    let reply = Bytes::from_static(Method::from_env().reply());
    let listener = tokio::net::UnixListener::bind(&socket).map_err(|e| format!("bind: {e}"))?;
    loop {
        let (io, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        let reply = reply.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let reply = reply.clone();
                async move {
                    let _ = request.into_body().collect().await;
                    let mut response = hyper::Response::new(Full::new(reply));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static(MEDIA_TYPE),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    }
}

/// A volume driver that does nothing but answer.
struct Trivial;

#[async_trait]
impl volume::Driver for Trivial {
    async fn create(&self, _req: volume::CreateRequest) -> SdkResult<()> {
        Ok(())
    }
    async fn remove(&self, _req: volume::RemoveRequest) -> SdkResult<()> {
        Ok(())
    }
    async fn mount(&self, req: volume::MountRequest) -> SdkResult<volume::MountResponse> {
        Ok(volume::MountResponse::new(format!(
            "/srv/vols/{}",
            req.name
        )))
    }
    async fn unmount(&self, _req: volume::UnmountRequest) -> SdkResult<()> {
        Ok(())
    }
    async fn path(&self, req: volume::PathRequest) -> SdkResult<volume::PathResponse> {
        Ok(volume::PathResponse::new(format!("/srv/vols/{}", req.name)))
    }
    async fn get(&self, req: volume::GetRequest) -> SdkResult<volume::GetResponse> {
        let mountpoint = format!("/srv/vols/{}", req.name);
        Ok(volume::GetResponse {
            volume: Volume::new(req.name).mountpoint(mountpoint),
        })
    }
    async fn list(&self) -> SdkResult<volume::ListResponse> {
        Ok(volume::ListResponse {
            volumes: vec![
                Volume::new("v1").mountpoint("/srv/vols/v1"),
                Volume::new("v2").mountpoint("/srv/vols/v2"),
            ],
        })
    }
}

/// The SDK serving [`Trivial`] at `socket` (`DIR/NAME.sock`) until SIGTERM. In the
/// `main` setup it runs as a real plugin does: with its call metrics kept and served
/// (on `DIR/NAME-metrics.sock`).
async fn sdk(socket: PathBuf, setup: Setup) -> Result<(), String> {
    let dir = socket.parent().ok_or("socket path has no directory")?;
    let name = socket
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("socket path has no name")?;
    let listener = UnixSocket::new(name)
        .dir(dir)
        .bind()
        .map_err(|e| e.to_string())?;
    let plugin = Plugin::new().volume(Trivial);
    let server = if setup == Setup::Main {
        let metrics = CallMetrics::new();
        let endpoint = UnixSocket::new(format!("{name}-metrics"))
            .dir(dir)
            .bind()
            .map_err(|e| e.to_string())?;
        plugin
            .call_metrics(&metrics)
            .server(listener)
            .metrics(endpoint, &metrics)
    } else {
        plugin.server(listener)
    };
    server.run().await.map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// The load generator.

struct Config {
    setups: Vec<Setup>,
    connections: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    client_threads: usize,
    method: Method,
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let seconds = |name: &str, default: f64| -> Result<Duration, String> {
            match std::env::var(name) {
                Ok(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{name}={v}: not a positive number of seconds")),
                Err(_) => Ok(Duration::from_secs_f64(default)),
            }
        };
        let count =
            |v: &str| -> Option<usize> { v.trim().parse::<usize>().ok().filter(|n| *n > 0) };
        let list =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let setups = list("BENCH_SETUPS", "plain,multi,main")
            .split(',')
            .map(|s| {
                Setup::parse(s.trim()).ok_or_else(|| {
                    format!("BENCH_SETUPS: unknown setup {s:?} (plain, multi, main)")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let connections = list("BENCH_CONNECTIONS", "1,64")
            .split(',')
            .map(|c| {
                count(c)
                    .ok_or_else(|| format!("BENCH_CONNECTIONS: {c:?} is not a positive integer"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client_threads = match std::env::var("BENCH_CLIENT_THREADS") {
            Ok(v) => count(&v)
                .ok_or_else(|| format!("BENCH_CLIENT_THREADS={v}: not a positive integer"))?,
            Err(_) => 1,
        };
        Ok(Self {
            setups,
            connections,
            warmup: seconds("BENCH_WARMUP", 1.0)?,
            duration: seconds("BENCH_SECONDS", 7.0)?,
            client_threads,
            method: Method::from_env(),
        })
    }
}

/// What one server measured in one cell: its figures in each round (one 1 s turn per
/// server and round), and its memory.
struct Measured {
    rounds: Vec<Turn>,
    idle_rss: f64,
    peak_rss: f64,
}

/// One server's figures over one of its turns.
#[derive(Clone, Copy)]
struct Turn {
    calls_per_sec: f64,
    cpu_us_per_call: f64,
    p99_us: f64,
}

impl Measured {
    /// The median of one figure over the rounds.
    fn median(&self, figure: impl Fn(&Turn) -> f64) -> f64 {
        median(self.rounds.iter().map(figure).collect())
    }
}

/// The SDK's figure divided by the bare server's, compared round by round (their turns
/// are adjacent, so both ran on the same machine state): the median of the rounds'
/// ratios. A burst of the machine's noise (a build, a VM steal) lands in one turn and
/// moves one round's ratio, not the verdict, which a ratio of totals lets it decide.
fn paired_ratio(bare: &Measured, sdk: &Measured, figure: impl Fn(&Turn) -> f64) -> f64 {
    median(
        bare.rounds
            .iter()
            .zip(&sdk.rounds)
            .map(|(b, s)| figure(s) / figure(b))
            .collect(),
    )
}

/// The median of some values (NaN when there are none).
fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// The targets, each a ratio of the SDK's figure to the bare server's.
struct Verdicts {
    pass: bool,
}

impl Verdicts {
    fn check(&mut self, label: &str, value: String, ok: bool) {
        self.pass &= ok;
        println!(
            "  {label:<44} {value:>16}  {}",
            if ok { "PASS" } else { "FAIL" }
        );
    }
}

fn parent() -> Result<bool, String> {
    let config = Config::from_env()?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    println!(
        "serve bench: POST /{} over a unix socket; setups {:?}, connections {:?}; {:.1} s warmup + {:.1} s per server and cell (in 1 s turns); load generator on {} thread(s)",
        config.method.name(),
        config.setups.iter().map(|s| s.name()).collect::<Vec<_>>(),
        config.connections,
        config.warmup.as_secs_f64(),
        config.duration.as_secs_f64(),
        config.client_threads,
    );
    println!();
    println!(
        "{:<6} {:>5} | {:>9} {:>9} {:>6} | {:>7} {:>7} {:>6} | {:>8} {:>8} {:>6} | {:>8} {:>8}",
        "setup",
        "conns",
        "bare/s",
        "sdk/s",
        "ratio",
        "bare µs",
        "sdk µs",
        "ratio",
        "bare p99",
        "sdk p99",
        "ratio",
        "idle MiB",
        "peak MiB"
    );
    let mut verdicts = Verdicts { pass: true };
    let mut failures = Vec::new();
    for &setup in &config.setups {
        for &connections in &config.connections {
            let [bare, sdk] = cell(&exe, setup, connections, &config)?;
            let throughput = paired_ratio(&bare, &sdk, |t| t.calls_per_sec);
            let cpu = paired_ratio(&bare, &sdk, |t| t.cpu_us_per_call);
            let p99 = paired_ratio(&bare, &sdk, |t| t.p99_us);
            let idle = (sdk.idle_rss - bare.idle_rss) / MIB;
            println!(
                "{:<6} {:>5} | {:>9.0} {:>9.0} {:>6.3} | {:>7.2} {:>7.2} {:>6.3} | {:>8.1} {:>8.1} {:>6.3} | {:>+8.2} {:>8.2}",
                setup.name(),
                connections,
                bare.median(|t| t.calls_per_sec),
                sdk.median(|t| t.calls_per_sec),
                throughput,
                bare.median(|t| t.cpu_us_per_call),
                sdk.median(|t| t.cpu_us_per_call),
                cpu,
                bare.median(|t| t.p99_us),
                sdk.median(|t| t.p99_us),
                p99,
                idle,
                sdk.peak_rss / bare.peak_rss,
            );
            let name = format!("{} x{connections}", setup.name());
            for (what, ok) in [
                (
                    format!("calls/s {throughput:.3} < {MIN_THROUGHPUT_RATIO}"),
                    throughput >= MIN_THROUGHPUT_RATIO,
                ),
                (
                    format!("CPU/call {cpu:.3} > {MAX_CPU_RATIO}"),
                    cpu <= MAX_CPU_RATIO,
                ),
                (
                    format!("p99 {p99:.3} > {MAX_P99_RATIO}"),
                    p99 <= MAX_P99_RATIO,
                ),
                (
                    format!("idle RSS {idle:+.2} MiB > {MAX_IDLE_RSS_EXTRA_MIB}"),
                    idle <= MAX_IDLE_RSS_EXTRA_MIB,
                ),
            ] {
                if !ok {
                    failures.push(format!("{name}: {what}"));
                }
            }
        }
    }
    println!("(ratio: sdk / bare; idle MiB: sdk - bare; peak MiB: sdk / bare)");
    println!();
    println!("targets, in every cell:");
    verdicts.check(
        &format!("calls/s sdk/bare >= {MIN_THROUGHPUT_RATIO:.2}, CPU/call <= {MAX_CPU_RATIO:.2}, p99 <= {MAX_P99_RATIO:.2}, idle RSS <= +{MAX_IDLE_RSS_EXTRA_MIB:.1} MiB"),
        if failures.is_empty() { "all cells".to_owned() } else { format!("{} misses", failures.len()) },
        failures.is_empty(),
    );
    for failure in &failures {
        println!("    {failure}");
    }
    let label = format!(
        "stripped plugin binary < {:.1} MB",
        MAX_BINARY_BYTES as f64 / 1e6
    );
    match plugin_binary(&exe) {
        Some((path, size)) => {
            verdicts.check(
                &label,
                format!("{:.2} MB", size as f64 / 1e6),
                size < MAX_BINARY_BYTES,
            );
            println!("    ({}, {size} bytes)", path.display());
        }
        None => println!("  {label:<44} {:>16}  (skipped)", "not built"),
    }

    if !verdicts.pass && std::env::var("BENCH_NO_FAIL").as_deref() == Ok("1") {
        println!("\nsome targets failed (BENCH_NO_FAIL=1: reporting only)");
        return Ok(true);
    }
    Ok(verdicts.pass)
}

/// Measures the bare server and the SDK in one setup with `connections` connections.
fn cell(
    exe: &Path,
    setup: Setup,
    connections: usize,
    config: &Config,
) -> Result<[Measured; 2], String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let targets = [
        start(exe, "bare", setup, dir.path().join("bare.sock"))?,
        start(exe, "sdk", setup, dir.path().join("sdk.sock"))?,
    ];
    measure(&targets, connections, config)
    // Dropping the targets stops the servers.
}

/// A server under test: the child process and what the load generator counts for it.
struct Target {
    _server: Server,
    pid: u32,
    socket: PathBuf,
    idle_rss: f64,
    load: Arc<LoadState>,
}

/// Shared by the load generator's connections to one server.
#[derive(Default)]
struct LoadState {
    /// Whether the connections send requests now (else they wait).
    active: AtomicBool,
    /// Whether the calls now count (after the warmup).
    measuring: AtomicBool,
    stop: AtomicBool,
    calls: AtomicU64,
    /// The server's turns so far (counted when a turn starts).
    turn: std::sync::atomic::AtomicU32,
    /// The turn and latency (in ns) of every measured call, gathered when the
    /// connections end.
    latencies: std::sync::Mutex<Vec<(u32, u32)>>,
    wake: tokio::sync::Notify,
}

impl LoadState {
    fn set_active(&self, active: bool) {
        if active {
            self.turn.fetch_add(1, Ordering::SeqCst);
        }
        self.active.store(active, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// The 99th percentile of each measured turn's latencies, in µs, in turn order.
    fn p99_per_turn_us(&self) -> Vec<f64> {
        let mut latencies = self.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        latencies.sort_unstable();
        latencies
            .chunk_by(|a, b| a.0 == b.0)
            .map(|turn| {
                let at = ((turn.len() as f64 * 0.99).ceil() as usize).clamp(1, turn.len()) - 1;
                f64::from(turn[at].1) / 1e3
            })
            .collect()
    }
}

/// Starts one server and waits until it listens; measures its idle RSS.
fn start(exe: &Path, name: &'static str, setup: Setup, socket: PathBuf) -> Result<Target, String> {
    let child = Command::new(exe)
        .arg(name)
        .arg(&socket)
        .arg(setup.name())
        // The `main` setup's subscriber logs at its default level, `info`.
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the {name} server: {e}"))?;
    let mut server = Server(child);
    let pid = server.0.id();
    // Listening once the socket exists (the SDK binds under a temporary name and
    // renames it into place). Nothing has connected yet: that is the idle state.
    let started = Instant::now();
    while !socket.exists() {
        if let Ok(Some(status)) = server.0.try_wait() {
            return Err(format!("the {name} server exited: {status}"));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("the {name} server did not listen within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = proc_status_kib(pid, "VmRSS:")? as f64 * 1024.0;
    Ok(Target {
        _server: server,
        pid,
        socket,
        idle_rss,
        load: Arc::default(),
    })
}

/// Loads both servers in turns and measures them.
///
/// The measured time is cut in slices of about a second, given to the servers in turns
/// (bare, sdk, sdk, bare, bare, ...): on a shared 2-core machine, anything else running
/// (a build, a test) then slows both servers alike instead of whichever ran at the time.
/// Each server is idle (and uses no CPU) while the other is loaded, so its CPU time over
/// the whole measurement is its CPU time for its own slices.
fn measure(
    targets: &[Target; 2],
    connections: usize,
    config: &Config,
) -> Result<[Measured; 2], String> {
    let runtime = if config.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.client_threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("load generator runtime: {e}"))?;
    let rounds = runtime.block_on(load(targets, connections, config))?;
    let ticks_per_sec = clock_ticks_per_sec();
    let mut measured = Vec::with_capacity(2);
    for (i, target) in targets.iter().enumerate() {
        let p99s = target.load.p99_per_turn_us();
        let turns = rounds
            .iter()
            .enumerate()
            .map(|(round, slices)| {
                let slice = &slices[i];
                Turn {
                    calls_per_sec: slice.calls as f64 / slice.elapsed.as_secs_f64(),
                    cpu_us_per_call: slice.cpu_ticks as f64 / ticks_per_sec * 1e6
                        / slice.calls.max(1) as f64,
                    p99_us: p99s.get(round).copied().unwrap_or(f64::NAN),
                }
            })
            .collect();
        measured.push(Measured {
            rounds: turns,
            idle_rss: target.idle_rss,
            peak_rss: proc_status_kib(target.pid, "VmHWM:")? as f64 * 1024.0,
        });
    }
    measured
        .try_into()
        .map_err(|_| "two servers, two measurements".to_owned())
}

/// One server's turn: its calls, its CPU ticks and the wall time.
#[derive(Clone, Copy, Default)]
struct Slice {
    calls: u64,
    cpu_ticks: u64,
    elapsed: Duration,
}

/// Runs the connections; returns, for each round, each server's slice.
async fn load(
    targets: &[Target; 2],
    connections: usize,
    config: &Config,
) -> Result<Vec<[Slice; 2]>, String> {
    let mut tasks = Vec::with_capacity(2 * connections);
    for target in targets {
        for _ in 0..connections {
            let stream = tokio::net::UnixStream::connect(&target.socket)
                .await
                .map_err(|e| format!("connecting to {}: {e}", target.socket.display()))?;
            tasks.push(tokio::spawn(connection(
                stream,
                config.method,
                Arc::clone(&target.load),
            )));
        }
    }

    for target in targets {
        target.load.set_active(true);
        tokio::time::sleep(config.warmup).await;
        target.load.set_active(false);
    }
    // Let the last warmup calls finish.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for target in targets {
        target.load.measuring.store(true, Ordering::SeqCst);
    }

    let slices = (config.duration.as_secs_f64() / SLICE.as_secs_f64())
        .round()
        .max(1.0) as usize;
    let slice = config.duration / slices as u32;
    let mut rounds = vec![[Slice::default(); 2]; slices];
    for (round, measured) in rounds.iter_mut().enumerate() {
        // ABBA order: a slow drift in the machine's speed favours neither server.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let load = &targets[i].load;
            let calls0 = load.calls.load(Ordering::SeqCst);
            let cpu0 = cpu_ticks(targets[i].pid)?;
            let started = Instant::now();
            load.set_active(true);
            tokio::time::sleep(slice).await;
            load.set_active(false);
            let elapsed = started.elapsed();
            // The calls in flight when the turn ended finish now; they count (a few
            // dozen among thousands), and so does the CPU they use.
            tokio::time::sleep(Duration::from_millis(20)).await;
            measured[i] = Slice {
                calls: load.calls.load(Ordering::SeqCst) - calls0,
                cpu_ticks: cpu_ticks(targets[i].pid)? - cpu0,
                elapsed,
            };
        }
    }

    for target in targets {
        target.load.stop.store(true, Ordering::SeqCst);
        target.load.set_active(false);
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("connection task: {e}"))?
            .map_err(|e| format!("connection: {e}"))?;
    }
    Ok(rounds)
}

/// How long each server is loaded at a time.
const SLICE: Duration = Duration::from_secs(1);

/// One keep-alive connection: a request, its whole reply, and again, while its server's
/// turn lasts, until `stop`. The latency of each measured call is kept.
async fn connection(
    mut stream: tokio::net::UnixStream,
    method: Method,
    load: Arc<LoadState>,
) -> Result<(), String> {
    let request = method.request();
    let expected = method.reply();
    let mut buf = Vec::with_capacity(4096);
    let mut checked = false;
    let mut latencies: Vec<(u32, u32)> = Vec::new();
    loop {
        if !load.active.load(Ordering::Relaxed) {
            if load.stop.load(Ordering::SeqCst) {
                if let Ok(mut all) = load.latencies.lock() {
                    all.extend_from_slice(&latencies);
                }
                return Ok(());
            }
            let wake = load.wake.notified();
            let mut wake = std::pin::pin!(wake);
            wake.as_mut().enable();
            if !load.active.load(Ordering::SeqCst) && !load.stop.load(Ordering::SeqCst) {
                wake.await;
            }
            continue;
        }
        let sent = Instant::now();
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let body = read_response(&mut stream, &mut buf).await?;
        if load.measuring.load(Ordering::Relaxed) {
            let turn = load.turn.load(Ordering::Relaxed);
            latencies.push((
                turn,
                u32::try_from(sent.elapsed().as_nanos()).unwrap_or(u32::MAX),
            ));
        }
        if !checked {
            // The first reply of each connection is checked in full, the others by
            // status and length (read_response).
            if &buf[body.clone()] != expected {
                return Err(format!(
                    "unexpected reply: {}",
                    String::from_utf8_lossy(&buf)
                ));
            }
            checked = true;
        }
        load.calls.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads one `200` reply with a `Content-Length` body into `buf`; returns the body's range.
async fn read_response(
    stream: &mut tokio::net::UnixStream,
    buf: &mut Vec<u8>,
) -> Result<std::ops::Range<usize>, String> {
    buf.clear();
    let mut scanned: usize = 0;
    let head_end = loop {
        if let Some(at) = find(&buf[scanned.saturating_sub(3)..], b"\r\n\r\n") {
            break scanned.saturating_sub(3) + at + 4;
        }
        scanned = buf.len();
        read_more(stream, buf).await?;
    };
    let head = &buf[..head_end];
    if !head.starts_with(b"HTTP/1.1 200 ") {
        return Err(format!(
            "unexpected reply: {}",
            String::from_utf8_lossy(head)
        ));
    }
    let length = head
        .split(|&b| b == b'\n')
        .find_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            if !name.eq_ignore_ascii_case(b"content-length") {
                return None;
            }
            std::str::from_utf8(&value[1..])
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .ok_or("reply without Content-Length")?;
    while buf.len() < head_end + length {
        read_more(stream, buf).await?;
    }
    Ok(head_end..head_end + length)
}

async fn read_more(stream: &mut tokio::net::UnixStream, buf: &mut Vec<u8>) -> Result<(), String> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    match stream.read_buf(buf).await {
        Ok(0) => Err("the server closed the connection".to_owned()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read: {e}")),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// Measuring the server process.

/// A server child, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of every thread of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces), counted from field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("malformed /proc/{pid}/stat field {n}"))
    };
    Ok(field(14)? + field(15)?)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// A `kB` line of `/proc/PID/status`.
fn proc_status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {key} in /proc/{pid}/status"))
}

/// The plugin binary to size and its stripped size, if it was built.
fn plugin_binary(exe: &Path) -> Option<(PathBuf, u64)> {
    let path = match std::env::var_os("BENCH_PLUGIN_BINARY") {
        Some(path) => PathBuf::from(path),
        // This binary is target/release/deps/serve-HASH.
        None => exe
            .parent()
            .and_then(Path::parent)
            .map(|release| release.join("examples/localvol"))
            .unwrap_or_else(|| PathBuf::from("target/release/examples/localvol")),
    };
    let size = std::fs::metadata(&path).ok()?.len();
    // The release profile already strips symbols; strip a copy to be sure, if `strip`
    // is installed.
    let stripped =
        std::env::temp_dir().join(format!("serve-bench-{}.stripped", std::process::id()));
    let stripped_size = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&path)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&stripped).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&stripped);
    Some((path, stripped_size.unwrap_or(size).min(size)))
}
