//! Serving benchmark: the SDK against a bare hyper server, under the same load, in
//! the configurations plugins really run in.
//!
//! ```text
//! cargo build --release --features cli --bin cargo-docker-plugin   # the external load generator
//! cargo build --release --example localvol --features macros       # its size
//! cargo build --release --workspace --bins                         # the members' sizes (optional)
//! cargo bench --bench serve --features macros,load
//! ```
//!
//! One binary plays four parts. Run without arguments (as `cargo bench` does) it
//! measures; it re-executes itself as the servers under test:
//!
//! - `bare SOCKET SETUP`: a bare hyper 1.x HTTP/1 server answering one fixed JSON body
//!   (the same bytes and `Content-Type` the SDK's Get reply has) to any request;
//! - `sdk SOCKET SETUP`: `docker_plugin_sdk::Plugin` serving a trivial volume driver;
//! - `logs SOCKET`: the SDK serving a log driver that counts lines.
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
//! Every socket (the servers', the metrics', the log driver's FIFOs) is in a directory
//! on tmpfs (`/dev/shm`, else the temporary dir), as `/run/docker/plugins` and
//! `/run/docker/logging` are on a Docker host: on a disk, creating and removing the
//! private directory a socket is bound in costs milliseconds that a plugin never pays.
//!
//! The load is `docker_plugin_sdk::load` (what `cargo docker-plugin bench` runs):
//! what dockerd sends (`POST /VolumeDriver.Get`, Go's headers in Go's order, `Accept:
//! application/vnd.docker.plugins.v1.2+json`, no `Content-Type`, body
//! `{"Name":"v1"}\n`) over the unix socket, one request in flight per connection. The
//! cells: 1, 64 and 256 keep-alive connections, and 16 at once with a new connection
//! per call. Both servers are loaded in turns of 1 s (bare, sdk, sdk, bare, ...) after
//! a warmup, so that anything else running on the machine slows both alike. Per server
//! and turn: calls/s, the server's CPU per call (from its CPU-time clock) and every
//! call's latency as the load generator sees it. Each cell has two passes: flat out
//! (each connection's next call as soon as the last is answered), then, for three
//! times as many rounds, paced (`load::Options::rate`) at half the bare server's
//! flat-out calls/s in the same pair's rounds, the same rate for both servers (see
//! `paired::PACED_SHARE` for why). The calls/s and CPU targets are taken flat out: the
//! median over the rounds of the SDK's figure divided by the bare server's in the same
//! round, so that a burst of noise moves one round's ratio, not the verdict. The p99
//! target is taken paced: the p99 of all the SDK's paced calls in the cell over that of
//! all the bare server's (see `paired::pooled_latency`), each server having made at
//! least 95% of the calls offered; the rounds' paced p99 ratios and the flat-out p99
//! are printed beside it. A cell's rounds are spread over several fresh pairs of
//! servers (`BENCH_PAIRS`, started in alternating order; see `start_pair`), which
//! server goes first alternating between the pairs too (see `paired::order`), and the
//! load generator runs at a higher priority than the servers (see `priority`). Memory:
//! each server's idle RSS (`VmRSS` once listening), its peak (`VmHWM`) and its RSS
//! after the cell, the median over the pairs.
//!
//! Then: the same cells in the `main` setup driven by an external load generator, a
//! `cargo docker-plugin bench --json` process per turn (so the figures compare with
//! other servers measured the same way): each process connects and warms up, then
//! measures a window it reports itself, with the server's CPU time read from its
//! CPU-time clock at the window's edges (its start and exit are not measured); exec →
//! first answered `Plugin.Activate` (median of several starts); the stripped size of
//! each example plugin binary that is built; a log driver's lines/s through the FIFO
//! and its peak RSS. At the end a markdown table, ready for the README.
//!
//! It exits non-zero when the SDK misses a target (`BENCH_NO_FAIL=1`: report only):
//!
//! - calls/s at least 90% of the bare server's, in every cell;
//! - CPU per call at most 1.25 times the bare server's, in every cell;
//! - p99 latency at most 1.2 times the bare server's at the same paced rate, in every
//!   cell (and both servers keeping that pace);
//! - idle RSS at most 1 MiB above the bare server's;
//! - peak RSS at 256 connections at most 1.5 times the bare server's;
//! - exec → first answered Activate at most 1.2 times the bare server's;
//! - localvol's stripped binary under 2.5 MB (skipped when it is not built).
//!
//! The external generator's cells are checked against the same three per-cell targets.
//!
//! Environment:
//!
//! - `BENCH_SETUPS` (default `plain,multi,main`), `BENCH_CONNECTIONS` (keep-alive
//!   cells, default `1,64,256`), `BENCH_NEW_CONNECTION` (new-connection-per-call cells,
//!   default `16`; empty for none).
//! - `BENCH_SECONDS` (default 9): measured seconds per server and cell flat out, in 1 s
//!   turns (one round per second); `BENCH_PACED_FACTOR` (default 3): the paced pass's
//!   rounds per flat-out round (its p99 rests on the few bursts a turn's hiccups make,
//!   so it takes more rounds to settle than a median of calls/s); `BENCH_WARMUP` (default 0.5): warmup seconds per server
//!   and pair; `BENCH_PAIRS` (default 9, a pair per round): fresh server pairs per
//!   cell, the rounds (and the external rounds) spread over them.
//! - `BENCH_METHOD` (`get`, the default, or `list`).
//! - `BENCH_CLIENT_THREADS` (default 1): worker threads of the in-process load
//!   generator (1 is a current-thread runtime, as `cargo docker-plugin bench` uses).
//! - `BENCH_EXTERNAL_ROUNDS` (default 9; 0 skips): rounds of the external generator per
//!   cell flat out (`BENCH_PACED_FACTOR` times as many paced, with `bench --rate`),
//!   each a 1 s window per server; `BENCH_EXTERNAL_WARMUP` (default 0.5): each
//!   generator process's warmup seconds before its window; `BENCH_CLI`: its binary
//!   (default `target/release/cargo-docker-plugin`, skipped when missing).
//! - `BENCH_STARTS` (default 15): starts of each server for exec → Activate.
//! - `BENCH_LOG_SECONDS` (default 3; 0 skips), `BENCH_LOG_LINE_BYTES` (default 100):
//!   the log driver's run.
//! - `BENCH_PLUGIN_BINARY`: localvol's binary (default
//!   `target/release/examples/localvol`).
//! - `BENCH_NO_FAIL=1`: report only, always exit 0.
//! - `BENCH_CONTROL=1`: a second bare server in the SDK's place (see `sdk_server`):
//!   the ratios it prints are the measurement's own noise.

mod external;
mod logdriver;
mod paired;
mod priority;
mod servers;
mod sizes;
mod startup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use docker_plugin_sdk::load::Histogram;
use paired::PACED_SHARE;
use paired::{
    Cell, Measured, Passes, Turn, Turns, paired_ratio, percentile_us, pooled_latency, start,
};
use servers::{Method, Setup};

// The targets, relative to the bare hyper server.
const MIN_THROUGHPUT_RATIO: f64 = 0.90;
const MAX_CPU_RATIO: f64 = 1.25;
const MAX_P99_RATIO: f64 = 1.2;
/// A paced turn that made fewer of the calls offered measured a load the server did
/// not keep up with: its p99 is not the one at the rate.
const MIN_KEPT_PACE: f64 = 0.95;
const MAX_IDLE_RSS_EXTRA_MIB: f64 = 1.0;
const MAX_PEAK_RSS_RATIO: f64 = 1.5;
const PEAK_RSS_CONNECTIONS: usize = 256;
const MAX_STARTUP_RATIO: f64 = 1.2;
const MAX_BINARY_BYTES: u64 = 2_500_000;

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let setup = args.get(3).and_then(|s| Setup::parse(s));
    match (args.get(1).map(String::as_str), args.get(2), setup) {
        (Some("bare"), Some(socket), Some(setup)) => {
            servers::child(setup, servers::bare(PathBuf::from(socket)))
        }
        // `#[docker_plugin_sdk::main]` expands to this call.
        (Some("sdk"), Some(socket), Some(Setup::Main)) => {
            docker_plugin_sdk::__private::run_main(servers::sdk(PathBuf::from(socket), Setup::Main))
        }
        (Some("sdk"), Some(socket), Some(setup)) => {
            servers::child(setup, servers::sdk(PathBuf::from(socket), setup))
        }
        (Some("logs"), Some(socket), _) => {
            docker_plugin_sdk::__private::run_main(servers::log_driver(PathBuf::from(socket)))
        }
        // `cargo bench` passes `--bench` (and perhaps a filter): measure.
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

struct Config {
    setups: Vec<Setup>,
    cells: Vec<Cell>,
    turns: Turns,
    /// Fresh server pairs per cell, the cell's rounds spread over them.
    pairs: usize,
    external_rounds: usize,
    external_warmup: Duration,
    starts: usize,
    log_seconds: f64,
    log_line_bytes: usize,
}

/// A fresh pair of servers, the bare one started first in even pairs and the SDK first
/// in odd ones, in a directory of their own (kept until the pair is dropped): `[bare,
/// sdk]`.
///
/// Why pairs: a server process's per-call cost depends on where the scheduler placed
/// its threads when it started, next to the load generator's, and that placement
/// stays for the process's life. Between fresh pairs of the same builds, in the
/// `main` setup with a new connection per call, the SDK's CPU per call over the
/// bare server's ranged 0.86 to 1.19, each pair's rounds agreeing with each other:
/// one pair per cell made that the verdict. The rounds of a cell are spread over
/// several pairs (`BENCH_PAIRS`).
fn start_pair(
    exe: &Path,
    setup: Setup,
    pair: usize,
) -> Result<(tempfile::TempDir, [paired::Target; 2]), String> {
    let dir = socket_dir()?;
    let bare = |dir: &Path| start(exe, "bare", setup, dir.join("bare.sock"));
    let sdk = |dir: &Path| start(exe, sdk_server(), setup, dir.join("sdk.sock"));
    let targets = if pair.is_multiple_of(2) {
        let b = bare(dir.path())?;
        [b, sdk(dir.path())?]
    } else {
        let s = sdk(dir.path())?;
        [bare(dir.path())?, s]
    };
    Ok((dir, targets))
}

/// What serves the SDK's side of a pair: the SDK, or with `BENCH_CONTROL=1` a second
/// bare server, so that the ratios show what the measurement reads between two equal
/// servers.
pub fn sdk_server() -> &'static str {
    if std::env::var("BENCH_CONTROL").as_deref() == Ok("1") {
        "bare"
    } else {
        "sdk"
    }
}

/// `rounds` spread over `pairs` pairs as evenly as they go (the first ones take the
/// remainder), pairs without a round left out: `(pair, its rounds)`.
fn split(rounds: usize, pairs: usize) -> impl Iterator<Item = (usize, usize)> {
    let pairs = pairs.max(1);
    (0..pairs)
        .map(move |pair| (pair, rounds / pairs + usize::from(pair < rounds % pairs)))
        .filter(|(_, rounds)| *rounds > 0)
}

/// A fresh directory for sockets, on tmpfs as a Docker host's `/run` is (see above).
fn socket_dir() -> Result<tempfile::TempDir, String> {
    let shm = Path::new("/dev/shm");
    let made = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("serve-bench")
            .tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    made.map_err(|e| format!("socket dir: {e}"))
}

fn seconds(name: &str, default: f64, zero_ok: bool) -> Result<f64, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && (*s > 0.0 || (zero_ok && *s == 0.0)))
            .ok_or_else(|| format!("{name}={v}: not a positive number of seconds")),
        Err(_) => Ok(default),
    }
}

fn count(name: &str, default: usize, zero_ok: bool) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| zero_ok || *n > 0)
            .ok_or_else(|| format!("{name}={v}: not a positive integer")),
        Err(_) => Ok(default),
    }
}

fn counts(name: &str, default: &str) -> Result<Vec<usize>, String> {
    let list = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    list.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}: {c:?} is not a positive integer"))
        })
        .collect()
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let setups = std::env::var("BENCH_SETUPS")
            .unwrap_or_else(|_| "plain,multi,main".to_owned())
            .split(',')
            .map(|s| {
                Setup::parse(s.trim()).ok_or_else(|| {
                    format!("BENCH_SETUPS: unknown setup {s:?} (plain, multi, main)")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut cells: Vec<Cell> = counts("BENCH_CONNECTIONS", "1,64,256")?
            .into_iter()
            .map(|connections| Cell {
                connections,
                per_call: false,
            })
            .collect();
        cells.extend(
            counts("BENCH_NEW_CONNECTION", "16")?
                .into_iter()
                .map(|connections| Cell {
                    connections,
                    per_call: true,
                }),
        );
        Ok(Self {
            setups,
            cells,
            turns: Turns {
                method: Method::from_env(),
                warmup: Duration::from_secs_f64(seconds("BENCH_WARMUP", 0.5, false)?),
                duration: Duration::from_secs_f64(seconds("BENCH_SECONDS", 9.0, false)?),
                client_threads: count("BENCH_CLIENT_THREADS", 1, false)?,
                paced_factor: count("BENCH_PACED_FACTOR", 3, false)?,
            },
            pairs: count("BENCH_PAIRS", 9, false)?,
            external_rounds: count("BENCH_EXTERNAL_ROUNDS", 9, true)?,
            external_warmup: Duration::from_secs_f64(seconds("BENCH_EXTERNAL_WARMUP", 0.5, true)?),
            starts: count("BENCH_STARTS", 15, false)?,
            log_seconds: seconds("BENCH_LOG_SECONDS", 3.0, true)?,
            log_line_bytes: count("BENCH_LOG_LINE_BYTES", 100, false)?,
        })
    }
}

/// The verdicts and the markdown table's rows.
struct Outcome {
    pass: bool,
    failures: Vec<String>,
    rows: Vec<String>,
}

impl Outcome {
    fn check(&mut self, what: String, ok: bool) {
        if !ok {
            self.pass = false;
            self.failures.push(what);
        }
    }
}

fn ratio_mark(value: f64, ok: bool) -> String {
    if ok {
        format!("{value:.2}")
    } else {
        format!("**{value:.2}** ✗")
    }
}

/// The `p`th percentiles of two servers' latencies, in µs.
struct Tail {
    bare: f64,
    sdk: f64,
}

impl Tail {
    fn of(bare: &Histogram, sdk: &Histogram, p: f64) -> Self {
        Self {
            bare: percentile_us(bare, p),
            sdk: percentile_us(sdk, p),
        }
    }

    fn ratio(&self) -> f64 {
        self.sdk / self.bare
    }

    fn text(&self, p: f64) -> String {
        format!(
            "p{p} {:.0}/{:.0} µs {:.2}",
            self.bare,
            self.sdk,
            self.ratio()
        )
    }
}

/// Prints one cell's figures and checks its targets: calls/s and CPU per call from the
/// flat-out rounds, p99 from the paced ones (see `paired::PACED_SHARE`).
fn report_cell(
    outcome: &mut Outcome,
    label: &str,
    cell: Cell,
    bare_passes: &Passes,
    sdk_passes: &Passes,
    memory: Option<(&Measured, &Measured)>,
) {
    let (bare, sdk) = (&bare_passes.flat_out[..], &sdk_passes.flat_out[..]);
    let (bare_paced, sdk_paced) = (&bare_passes.paced[..], &sdk_passes.paced[..]);
    let throughput = paired_ratio(bare, sdk, |t| t.calls_per_sec);
    let cpu = paired_ratio(bare, sdk, |t| t.cpu_us_per_call);
    let [bare_latency, sdk_latency] = [bare, sdk].map(pooled_latency);
    let flat_out_tail = |p| Tail::of(&bare_latency, &sdk_latency, p);
    let [bare_paced_latency, sdk_paced_latency] = [bare_paced, sdk_paced].map(pooled_latency);
    let paced_tail = |p| Tail::of(&bare_paced_latency, &sdk_paced_latency, p);
    let med = |turns: &[Turn], f: fn(&Turn) -> f64| paired::median(turns.iter().map(f).collect());
    // Paced too, the p99 is that of all the cell's calls (see `pooled_latency`): a
    // turn's p99 still rests on how a few of its bursts met the scheduler, and the
    // rounds' ratios spread from 0.4 to 1.7 in a cell (they are printed).
    let turn_p99 = |t: &Turn| percentile_us(&t.latency, 99.0);
    let tail = paced_tail(99.0);
    let p99 = tail.ratio();
    let flat_out_p99 = flat_out_tail(99.0);
    let rate = med(bare_paced, |t| t.rate.unwrap_or(f64::NAN));
    let kept = [bare_paced, sdk_paced].map(paired::kept_pace);
    let (tp_ok, cpu_ok, p99_ok, pace_ok) = (
        throughput >= MIN_THROUGHPUT_RATIO,
        cpu <= MAX_CPU_RATIO,
        p99 <= MAX_P99_RATIO,
        kept.iter().all(|k| *k >= MIN_KEPT_PACE),
    );
    let name = format!("{label} {}", cell.label());
    let mut memory_text = String::from("|  |  |  |");
    let mut console_memory = String::new();
    if let Some((b, s)) = memory {
        let idle = (s.idle_rss - b.idle_rss) / MIB;
        let peak = s.peak_rss / b.peak_rss;
        let peak_checked = cell.connections == PEAK_RSS_CONNECTIONS && !cell.per_call;
        let idle_ok = idle <= MAX_IDLE_RSS_EXTRA_MIB;
        let peak_ok = !peak_checked || peak <= MAX_PEAK_RSS_RATIO;
        let idle_text = if idle_ok {
            format!("{idle:+.2}")
        } else {
            format!("**{idle:+.2}** ✗")
        };
        memory_text = format!(
            "| {idle_text} | {} ({:.1} / {:.1}) | {:.1} / {:.1} |",
            ratio_mark(peak, peak_ok),
            s.peak_rss / MIB,
            b.peak_rss / MIB,
            s.after_rss / MIB,
            b.after_rss / MIB,
        );
        console_memory = format!(
            " | {idle:>+8.2} {peak:>6.2} {:>6.1}/{:<6.1}",
            s.after_rss / MIB,
            b.after_rss / MIB
        );
        outcome.check(
            format!("{name}: idle RSS {idle:+.2} MiB > +{MAX_IDLE_RSS_EXTRA_MIB}"),
            idle_ok,
        );
        outcome.check(
            format!("{name}: peak RSS {peak:.3} > {MAX_PEAK_RSS_RATIO}"),
            peak_ok,
        );
    }
    println!(
        "{:<9} {:>17} | {:>9.0} {:>9.0} {:>6.3} | {:>7.2} {:>7.2} {:>6.3} | {:>8.1} {:>8.1} {:>6.3}{console_memory}",
        label,
        cell.label(),
        med(bare, |t| t.calls_per_sec),
        med(sdk, |t| t.calls_per_sec),
        throughput,
        med(bare, |t| t.cpu_us_per_call),
        med(sdk, |t| t.cpu_us_per_call),
        cpu,
        tail.bare,
        tail.sdk,
        p99,
    );
    outcome.check(
        format!("{name}: calls/s {throughput:.3} < {MIN_THROUGHPUT_RATIO}"),
        tp_ok,
    );
    outcome.check(
        format!("{name}: CPU/call {cpu:.3} > {MAX_CPU_RATIO}"),
        cpu_ok,
    );
    outcome.check(
        format!("{name}: p99 at {rate:.0} calls/s {p99:.3} > {MAX_P99_RATIO}"),
        p99_ok,
    );
    outcome.check(
        format!(
            "{name}: the paced load was not kept up (bare made {:.3}, sdk {:.3} of the calls offered; the p99 does not count)",
            kept[0], kept[1]
        ),
        pace_ok,
    );
    // Each round's ratios, in order, for the spread behind the medians.
    let ratios = |bare: &[Turn], sdk: &[Turn], figure: fn(&Turn) -> f64| {
        bare.iter()
            .zip(sdk)
            .map(|(b, s)| format!("{:.2}", figure(s) / figure(b)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let rounds = |figure: fn(&Turn) -> f64| ratios(bare, sdk, figure);
    println!(
        "{:<27} | flat out: rounds' calls/s ratios {} | CPU/call ratios {} | bare/sdk {}, {}",
        "",
        rounds(|t| t.calls_per_sec),
        rounds(|t| t.cpu_us_per_call),
        flat_out_tail(95.0).text(95.0),
        flat_out_p99.text(99.0),
    );
    println!(
        "{:<27} | paced at {rate:.0} calls/s (made: bare {:.3}, sdk {:.3}) | rounds' p99 ratios {} | all calls bare/sdk {}, {}, {}, {}",
        "",
        kept[0],
        kept[1],
        ratios(bare_paced, sdk_paced, turn_p99),
        paced_tail(50.0).text(50.0),
        paced_tail(90.0).text(90.0),
        paced_tail(95.0).text(95.0),
        paced_tail(99.9).text(99.9),
    );
    outcome.rows.push(format!(
        "| {label} | {} | {:.0} / {:.0} | {} | {} | {} ({:.0} / {:.0} µs at {:.0}k/s) | {:.2} {memory_text}",
        cell.label(),
        med(sdk, |t| t.calls_per_sec),
        med(bare, |t| t.calls_per_sec),
        ratio_mark(throughput, tp_ok),
        ratio_mark(cpu, cpu_ok),
        ratio_mark(p99, p99_ok),
        tail.sdk,
        tail.bare,
        rate / 1000.0,
        flat_out_p99.ratio(),
    ));
}

fn parent() -> Result<bool, String> {
    // First, before any thread: the runtimes and the processes started later inherit it.
    let priority = priority::favour_generator().unwrap_or_else(|refused| refused);
    let config = Config::from_env()?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let turns = &config.turns;
    println!(
        "serve bench: POST /{} over a unix socket; setups {:?}; cells {:?}; {:.1} s warmup + {:.1} s per server and cell flat out and {:.1} s paced (in 1 s turns); load generator on {} thread(s); {priority}",
        turns.method.name(),
        config.setups.iter().map(|s| s.name()).collect::<Vec<_>>(),
        config.cells.iter().map(|c| c.label()).collect::<Vec<_>>(),
        turns.warmup.as_secs_f64(),
        turns.duration.as_secs_f64(),
        turns.duration.as_secs_f64() * turns.paced_factor as f64,
        turns.client_threads,
    );
    if sdk_server() == "bare" {
        println!(
            "BENCH_CONTROL=1: the sdk columns are a second bare server (the ratios are the measurement's own noise)"
        );
    }
    println!();
    println!(
        "{:<9} {:>17} | {:>9} {:>9} {:>6} | {:>7} {:>7} {:>6} | {:>8} {:>8} {:>6} | {:>8} {:>6} {:>13}",
        "setup",
        "cell",
        "bare/s",
        "sdk/s",
        "ratio",
        "bare µs",
        "sdk µs",
        "ratio",
        "bare p99*",
        "sdk p99*",
        "ratio",
        "idle MiB",
        "peak",
        "after sdk/bare"
    );
    let mut outcome = Outcome {
        pass: true,
        failures: Vec::new(),
        rows: Vec::new(),
    };
    for &setup in &config.setups {
        for &cell in &config.cells {
            let mut pairs = Vec::with_capacity(config.pairs);
            for (pair, rounds) in split(turns.rounds(), config.pairs) {
                let (_dir, targets) = start_pair(&exe, setup, pair)?;
                let per_pair = Turns {
                    duration: paired::SLICE * rounds as u32,
                    ..turns.clone()
                };
                pairs.push(paired::measure(&targets, pair, cell, &per_pair)?);
            }
            let [bare, sdk] = paired::pooled(pairs);
            report_cell(
                &mut outcome,
                setup.name(),
                cell,
                &bare.turns,
                &sdk.turns,
                Some((&bare, &sdk)),
            );
        }
    }
    println!(
        "(ratio: sdk / bare; p99*: µs, paced at {PACED_SHARE} of the bare server's flat-out calls/s; idle MiB: sdk - bare; peak: VmHWM sdk / bare; after: VmRSS MiB after the cell)"
    );

    external_cells(&exe, &config, &mut outcome)?;
    startup(&exe, &config, &mut outcome)?;
    sizes(&exe, &mut outcome);
    log_driver(&exe, &config, &mut outcome)?;

    println!();
    println!("targets:");
    if outcome.failures.is_empty() {
        println!("  all met");
    }
    for failure in &outcome.failures {
        println!("  FAIL {failure}");
    }
    println!();
    println!("markdown (for the README):");
    println!();
    println!(
        "| setup | cell | calls/s sdk / bare | calls/s ratio (≥ {MIN_THROUGHPUT_RATIO}) | CPU/call ratio (≤ {MAX_CPU_RATIO}) | p99 ratio at {PACED_SHARE} of bare's calls/s (≤ {MAX_P99_RATIO}) | p99 ratio flat out (reported) | idle RSS sdk − bare MiB (≤ +{MAX_IDLE_RSS_EXTRA_MIB}) | peak RSS ratio (MiB sdk / bare; ≤ {MAX_PEAK_RSS_RATIO} at {PEAK_RSS_CONNECTIONS}) | RSS after, MiB sdk / bare |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in &outcome.rows {
        println!("{row}");
    }

    if !outcome.pass && std::env::var("BENCH_NO_FAIL").as_deref() == Ok("1") {
        println!("\nsome targets failed (BENCH_NO_FAIL=1: reporting only)");
        return Ok(true);
    }
    Ok(outcome.pass)
}

/// The cells again in the `main` setup, driven by `cargo docker-plugin bench --json`.
fn external_cells(exe: &Path, config: &Config, outcome: &mut Outcome) -> Result<(), String> {
    if config.external_rounds == 0 {
        return Ok(());
    }
    println!();
    let Some(cli) = external::cli_binary(exe) else {
        println!(
            "external load generator: skipped (build it: cargo build --release --features cli --bin cargo-docker-plugin, or set BENCH_CLI)"
        );
        return Ok(());
    };
    println!(
        "external load generator ({} bench --json, a process per turn: {:.1} s warmup, then a {:.1} s window it measures; {} rounds):",
        cli.display(),
        config.external_warmup.as_secs_f64(),
        config.turns.slice().as_secs_f64(),
        config.external_rounds
    );
    let external = external::External {
        cli,
        warmup: config.external_warmup,
    };
    for &cell in &config.cells {
        let (mut bare, mut sdk) = (Passes::default(), Passes::default());
        for (pair, rounds) in split(config.external_rounds, config.pairs) {
            let (_dir, targets) = start_pair(exe, Setup::Main, pair)?;
            let [b, s] = external::measure(&external, &targets, pair, cell, &config.turns, rounds)?;
            bare.extend(b);
            sdk.extend(s);
        }
        report_cell(outcome, "main ext", cell, &bare, &sdk, None);
    }
    Ok(())
}

fn startup(exe: &Path, config: &Config, outcome: &mut Outcome) -> Result<(), String> {
    let (bare, sdk, ratio) = startup::measure(exe, Setup::Main, config.starts)?;
    let ok = ratio <= MAX_STARTUP_RATIO;
    println!();
    println!(
        "exec → first answered Plugin.Activate (main setup, median of {}): bare {bare:.2} ms, sdk {sdk:.2} ms, ratio {ratio:.3} (≤ {MAX_STARTUP_RATIO})",
        config.starts
    );
    outcome.check(
        format!("exec → Activate ratio {ratio:.3} > {MAX_STARTUP_RATIO}"),
        ok,
    );
    outcome.rows.push(format!(
        "| main | exec → first Activate, ms | {sdk:.2} / {bare:.2} | | | {} (≤ {MAX_STARTUP_RATIO}) | | | | |",
        ratio_mark(ratio, ok)
    ));
    Ok(())
}

fn sizes(exe: &Path, outcome: &mut Outcome) {
    println!();
    println!("stripped example binaries (release):");
    for (name, path) in sizes::examples(exe) {
        match sizes::stripped_size(&path) {
            Some(size) => {
                let checked = name == "localvol";
                let ok = !checked || size < MAX_BINARY_BYTES;
                println!(
                    "  {name:<14} {:>6.2} MB{}  ({})",
                    size as f64 / 1e6,
                    if checked {
                        format!(" (< {:.1} MB)", MAX_BINARY_BYTES as f64 / 1e6)
                    } else {
                        String::new()
                    },
                    path.display()
                );
                if checked {
                    outcome.check(
                        format!(
                            "localvol {:.2} MB >= {:.1} MB",
                            size as f64 / 1e6,
                            MAX_BINARY_BYTES as f64 / 1e6
                        ),
                        ok,
                    );
                }
                outcome.rows.push(format!(
                    "| | {name} stripped | {:.2} MB{} | | | | | | | |",
                    size as f64 / 1e6,
                    if checked { " (< 2.5 MB)" } else { "" }
                ));
            }
            None => println!("  {name:<14} not built ({})", path.display()),
        }
    }
}

fn log_driver(exe: &Path, config: &Config, outcome: &mut Outcome) -> Result<(), String> {
    if config.log_seconds == 0.0 {
        return Ok(());
    }
    let figures = logdriver::measure(
        exe,
        Duration::from_secs_f64(config.log_seconds),
        config.log_line_bytes,
    )?;
    println!();
    println!(
        "log driver (SDK, counting lines; {}-byte lines through the FIFO as fast as it reads, {:.0} s): {:.0} lines/s ({:.1} MiB/s), RSS idle {:.1} MiB, peak {:.1} MiB",
        config.log_line_bytes,
        config.log_seconds,
        figures.lines_per_sec,
        figures.mib_per_sec,
        figures.idle_rss / MIB,
        figures.peak_rss / MIB,
    );
    outcome.rows.push(format!(
        "| main | log driver, {}-byte lines | {:.0} lines/s ({:.1} MiB/s) | | | | | | peak {:.1} MiB (idle {:.1}) | |",
        config.log_line_bytes,
        figures.lines_per_sec,
        figures.mib_per_sec,
        figures.peak_rss / MIB,
        figures.idle_rss / MIB,
    ));
    Ok(())
}
