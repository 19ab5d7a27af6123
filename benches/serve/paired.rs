//! The paired measurement: the bare server and the SDK loaded in turns of about a
//! second (bare, sdk, sdk, bare, ...) by the load module's generator, in this process
//! or (see `external`) in a `cargo docker-plugin bench --json` process, first flat out
//! and then paced at a share of the bare server's calls/s (see [`PACED_SHARE`]); each
//! turn's calls/s, CPU per call and latencies; the medians of the rounds' ratios, and
//! the p99 of each server's calls over all its turns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use docker_plugin_sdk::load::{self, Call, Histogram, Load, Options, Report};

use crate::servers::{Method, Server, Setup, spawn_listening};

/// One load: how many calls in flight, and whether each opens its own connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cell {
    pub connections: usize,
    pub per_call: bool,
}

impl Cell {
    pub fn label(self) -> String {
        if self.per_call {
            format!("{} new conn/call", self.connections)
        } else {
            format!("{} keep-alive", self.connections)
        }
    }
}

/// A server under test: the child process and where it listens.
pub struct Target {
    _server: Server,
    pub pid: u32,
    pub socket: PathBuf,
    pub idle_rss: f64,
}

/// Starts one server and waits until it listens; measures its idle RSS.
pub fn start(exe: &Path, name: &str, setup: Setup, socket: PathBuf) -> Result<Target, String> {
    let (server, _) = spawn_listening(
        exe,
        &[name.as_ref(), socket.as_os_str(), setup.name().as_ref()],
        &socket,
    )
    .map_err(|e| format!("the {name} server: {e}"))?;
    let pid = server.0.id();
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = rss(pid, "VmRSS:")?;
    Ok(Target {
        _server: server,
        pid,
        socket,
        idle_rss,
    })
}

/// A `kB` line of `/proc/PID/status`, in bytes.
pub fn rss(pid: u32, key: &str) -> Result<f64, String> {
    load::proc_status_kib(pid, key)
        .map(|kib| kib as f64 * 1024.0)
        .map_err(|e| format!("/proc/{pid}/status: {e}"))
}

/// The server's CPU time so far, from its process CPU-time clock (nanoseconds, where
/// `/proc/PID/stat` counts 10 ms ticks): the same clock the external rows read.
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    load::cpu_time(pid).map_err(|e| format!("the CPU-time clock of pid {pid}: {e}"))
}

/// The share of the bare server's flat-out calls/s both servers are paced at for the
/// latency pass, where the p99 target is taken.
///
/// Flat out, a closed loop's latency restates its throughput (64 calls in flight
/// answered at N calls/s wait 64/N s on average), and at 64 and 256 connections on 2
/// cores 1 to 2.6% of the calls wait a scheduler slice (about 4 ms), for either server:
/// the p99 sits on the edge of that mode and flips between runs (ratios from 0.74 to
/// 1.66 over four runs of the same builds, either way). At a fixed offered rate
/// below saturation, the same for both servers, the tail is the server's own: what a
/// plugin's caller sees when the plugin is not the bottleneck (as `wrk2` measures
/// latency). Half the bare server's rate leaves the SDK, at 90% of it or more, at 56%
/// of its capacity at most.
pub const PACED_SHARE: f64 = 0.5;

/// One server's figures over one of its turns.
#[derive(Clone, Default)]
pub struct Turn {
    pub calls_per_sec: f64,
    pub cpu_us_per_call: f64,
    /// Every call's latency in the turn.
    pub latency: Histogram,
    /// The calls/s the turn was paced at; `None` flat out.
    pub rate: Option<f64>,
}

/// One server's turns in a cell: flat out (calls/s, CPU per call), then paced at the
/// same rate as the other server's (p99).
#[derive(Clone, Default)]
pub struct Passes {
    pub flat_out: Vec<Turn>,
    pub paced: Vec<Turn>,
}

impl Passes {
    /// Both servers' passes from each pass's `[bare, sdk]` turns.
    pub fn of_both(flat_out: [Vec<Turn>; 2], paced: [Vec<Turn>; 2]) -> [Passes; 2] {
        let [bare, sdk] = flat_out;
        let [bare_paced, sdk_paced] = paced;
        [
            Passes {
                flat_out: bare,
                paced: bare_paced,
            },
            Passes {
                flat_out: sdk,
                paced: sdk_paced,
            },
        ]
    }

    pub fn extend(&mut self, other: Passes) {
        self.flat_out.extend(other.flat_out);
        self.paced.extend(other.paced);
    }
}

/// The rate both servers are paced at after flat-out rounds: [`PACED_SHARE`] of the
/// bare server's median calls/s in them.
pub fn paced_rate(bare_flat_out: &[Turn]) -> f64 {
    PACED_SHARE * median(bare_flat_out.iter().map(|t| t.calls_per_sec).collect())
}

/// What one server measured in one cell: its turns, and its memory.
pub struct Measured {
    pub turns: Passes,
    pub idle_rss: f64,
    /// `VmHWM` after the load.
    pub peak_rss: f64,
    /// `VmRSS` after the load.
    pub after_rss: f64,
}

/// The measurements of several pairs of servers as one: every pair's turns, in order,
/// and the median of the pairs' memory figures.
pub fn pooled(pairs: Vec<[Measured; 2]>) -> [Measured; 2] {
    let mut servers = [Vec::new(), Vec::new()];
    for [bare, sdk] in pairs {
        servers[0].push(bare);
        servers[1].push(sdk);
    }
    servers.map(|measured| {
        let of = |f: fn(&Measured) -> f64| median(measured.iter().map(f).collect());
        Measured {
            idle_rss: of(|m| m.idle_rss),
            peak_rss: of(|m| m.peak_rss),
            after_rss: of(|m| m.after_rss),
            turns: measured.into_iter().fold(Passes::default(), |mut all, m| {
                all.extend(m.turns);
                all
            }),
        }
    })
}

/// The SDK's figure divided by the bare server's, compared round by round (their turns
/// are adjacent, so both ran on the same machine state): the median of the rounds'
/// ratios. A burst of the machine's noise (a build, a VM steal) lands in one turn and
/// moves one round's ratio, not the verdict, which a ratio of totals lets it decide.
pub fn paired_ratio(bare: &[Turn], sdk: &[Turn], figure: impl Fn(&Turn) -> f64) -> f64 {
    median(
        bare.iter()
            .zip(sdk)
            .map(|(b, s)| figure(s) / figure(b))
            .collect(),
    )
}

/// Every call's latency of some turns, in one histogram: the cell's distribution,
/// which both servers' interleaved turns sample alike.
///
/// Flat out, the cell's p99 is read from it, not from the turns' p99s: at 64 and 256
/// connections about 1% of the calls wait a scheduler slice (see `priority`), so a 1 s
/// turn's p99 falls in one of two modes a slice apart and the ratio of two turns' p99s
/// is often 0.5 or 2. Paced, a turn's p99 still rests on how a few of its bursts of
/// calls (those due in the same millisecond) met the scheduler.
pub fn pooled_latency(turns: &[Turn]) -> Histogram {
    let mut all = Histogram::default();
    for turn in turns {
        all.merge(&turn.latency);
    }
    all
}

/// The `p`th percentile of `latency`, in µs.
pub fn percentile_us(latency: &Histogram, p: f64) -> f64 {
    latency.percentile(p).as_secs_f64() * 1e6
}

/// The median of some values (NaN when there are none).
pub fn median(mut values: Vec<f64>) -> f64 {
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

/// A turn's figures from the run's report and the server's CPU time over it.
pub fn turn(report: &Report, cpu: Duration, rate: Option<f64>) -> Turn {
    Turn {
        calls_per_sec: report.calls_per_sec(),
        cpu_us_per_call: cpu.as_secs_f64() * 1e6 / report.calls.max(1) as f64,
        latency: report.latency.clone(),
        rate,
    }
}

/// The median share of the offered calls a server made in its paced turns (1: it
/// kept the pace).
pub fn kept_pace(paced: &[Turn]) -> f64 {
    median(
        paced
            .iter()
            .filter_map(|t| Some(t.calls_per_sec / t.rate?))
            .collect(),
    )
}

/// The ABBA order of the turns of a pair's round `round` (indices into `[bare, sdk]`):
/// a slow drift in the machine's speed favours neither server. The pair's index shifts
/// it, so that which server goes first alternates between pairs too: with a round per
/// pair, the bare server went first in every pair, and in a control run (two bare
/// servers, `BENCH_CONTROL=1`) the second one's pooled paced p99 came out 1.04 to 1.07
/// times the first's on average.
pub fn order(pair: usize, round: usize) -> [usize; 2] {
    if (pair + round).is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    }
}

/// How the paired turns are made.
#[derive(Clone)]
pub struct Turns {
    pub method: Method,
    pub warmup: Duration,
    pub duration: Duration,
    pub client_threads: usize,
    /// The paced pass's rounds per flat-out round (see [`PACED_SHARE`]).
    pub paced_factor: usize,
}

/// How long each server is loaded at a time.
pub const SLICE: Duration = Duration::from_secs(1);

impl Turns {
    pub fn rounds(&self) -> usize {
        (self.duration.as_secs_f64() / SLICE.as_secs_f64())
            .round()
            .max(1.0) as usize
    }

    pub fn slice(&self) -> Duration {
        self.duration / self.rounds() as u32
    }

    /// The rounds of the paced pass.
    pub fn paced_rounds(&self) -> usize {
        self.rounds() * self.paced_factor
    }
}

/// Loads both servers in turns, in this process, and measures them: flat out, then
/// paced (see [`PACED_SHARE`]) for `paced_factor` times as many rounds.
///
/// The measured time is cut in slices of about a second, given to the servers in turns
/// (bare, sdk, sdk, bare, bare, ...): on a shared 2-core machine, anything else running
/// (a build, a test) then slows both servers alike instead of whichever ran at the time.
/// Each server is idle (its connections open, and it uses no CPU) while the other is
/// loaded, so its CPU time over a turn is its CPU time for its own calls.
pub fn measure(
    targets: &[Target; 2],
    pair: usize,
    cell: Cell,
    turns: &Turns,
) -> Result<[Measured; 2], String> {
    let runtime = if turns.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(turns.client_threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("load generator runtime: {e}"))?;
    let mut passes = runtime.block_on(load_turns(targets, pair, cell, turns))?;
    let mut measured = Vec::with_capacity(2);
    for (i, target) in targets.iter().enumerate() {
        measured.push(Measured {
            turns: std::mem::take(&mut passes[i]),
            idle_rss: target.idle_rss,
            peak_rss: rss(target.pid, "VmHWM:")?,
            after_rss: rss(target.pid, "VmRSS:")?,
        });
    }
    measured
        .try_into()
        .map_err(|_| "two servers, two measurements".to_owned())
}

/// A run that must have no errors.
fn checked(report: Report, socket: &Path) -> Result<Report, String> {
    if report.errors.total() > 0 {
        return Err(format!(
            "{}: {} of {} calls failed ({:?}), the last: {}",
            socket.display(),
            report.errors.total(),
            report.calls,
            report.errors,
            report.last_error.as_deref().unwrap_or("")
        ));
    }
    Ok(report)
}

async fn load_turns(
    targets: &[Target; 2],
    pair: usize,
    cell: Cell,
    turns: &Turns,
) -> Result<[Passes; 2], String> {
    let call = Call::new(turns.method.name(), turns.method.json()).map_err(|e| e.to_string())?;
    let options = Options {
        connections: cell.connections,
        new_connection_per_call: cell.per_call,
        timeout: Some(Duration::from_secs(30)),
        rate: None,
    };
    let mut loads = Vec::with_capacity(2);
    for target in targets {
        let mut load = Load::connect(
            load::Target::Unix(target.socket.clone()),
            call.clone(),
            options.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let warmup = checked(
            load.run(turns.warmup, &mut |_| {})
                .await
                .map_err(|e| e.to_string())?,
            &target.socket,
        )?;
        // The first reply is checked in full, the others by status and `Err`.
        if warmup.first_reply.as_deref() != Some(turns.method.reply()) {
            return Err(format!(
                "{}: unexpected reply {:?}",
                target.socket.display(),
                warmup.first_reply
            ));
        }
        loads.push(load);
    }
    let flat_out = rounds(targets, &mut loads, pair, turns, turns.rounds(), None).await?;
    let rate = paced_rate(&flat_out[0]);
    for load in &mut loads {
        load.set_rate(Some(rate)).map_err(|e| e.to_string())?;
    }
    let paced = rounds(
        targets,
        &mut loads,
        pair,
        turns,
        turns.paced_rounds(),
        Some(rate),
    )
    .await?;
    Ok(Passes::of_both(flat_out, paced))
}

/// `count` rounds of a turn per server, in ABBA order (see [`order`]): each server's
/// turns.
async fn rounds(
    targets: &[Target; 2],
    loads: &mut [Load],
    pair: usize,
    turns: &Turns,
    count: usize,
    rate: Option<f64>,
) -> Result<[Vec<Turn>; 2], String> {
    let mut measured = [Vec::new(), Vec::new()];
    for round in 0..count {
        for i in order(pair, round) {
            let cpu0 = cpu_time(targets[i].pid)?;
            let report = checked(
                loads[i]
                    .run(turns.slice(), &mut |_| {})
                    .await
                    .map_err(|e| e.to_string())?,
                &targets[i].socket,
            )?;
            // The calls in flight at the end of the turn were waited for; the CPU
            // they used is the server's too.
            let cpu = cpu_time(targets[i].pid)?.saturating_sub(cpu0);
            measured[i].push(turn(&report, cpu, rate));
        }
    }
    Ok(measured)
}
