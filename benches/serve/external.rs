//! The same paired turns driven by another process: `cargo docker-plugin bench --json`,
//! one process per turn, so that the figures compare with other servers measured the
//! same way. Each process connects, makes its warmup calls, then measures a window of
//! its own and reports it: the calls made in the window, their latencies, and the
//! server's CPU time read from its CPU-time clock at the window's two edges. The
//! process's start (exec, its runtime), its connections' setup, its warmup and its exit
//! are all outside the window, for both servers alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use docker_plugin_sdk::load::Summary;

use crate::paired::{Cell, Passes, Target, Turn, Turns, order, paced_rate};

/// `cargo-docker-plugin`, from `BENCH_CLI` or beside this binary's `deps` directory.
pub fn cli_binary(exe: &Path) -> Option<PathBuf> {
    let path = match std::env::var_os("BENCH_CLI") {
        Some(path) => PathBuf::from(path),
        None => exe.parent()?.parent()?.join("cargo-docker-plugin"),
    };
    path.is_file().then_some(path)
}

/// How the external turns are made.
pub struct External {
    pub cli: PathBuf,
    /// Each process's calls before its window.
    pub warmup: Duration,
}

/// The `bench` command line of one turn against `socket`, paced at `rate` calls/s
/// if given.
fn command(
    external: &External,
    socket: &Path,
    cell: Cell,
    turns: &Turns,
    rate: Option<f64>,
) -> Command {
    let mut command = Command::new(&external.cli);
    command
        .arg("docker-plugin")
        .arg("bench")
        .arg(socket)
        .arg(turns.method.name())
        .args(turns.method.json())
        .args(["--connections", &cell.connections.to_string()])
        .args(["--duration", &turns.slice().as_secs_f64().to_string()])
        .args(["--warmup", &external.warmup.as_secs_f64().to_string()])
        .args(["--json", "--latency-histogram"]);
    if cell.per_call {
        command.arg("--new-connection-per-call");
    }
    if let Some(rate) = rate {
        command.args(["--rate", &format!("{rate:.0}")]);
    }
    command
}

/// One turn: one `bench --json` process against `target`, and what it measured.
fn run(
    external: &External,
    target: &Target,
    cell: Cell,
    turns: &Turns,
    rate: Option<f64>,
) -> Result<Turn, String> {
    let socket = target.socket.display();
    let cli = external.cli.display();
    let out = command(external, &target.socket, cell, turns, rate)
        .output()
        .map_err(|e| format!("running {cli}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cli} bench: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let summary: Summary = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "bench --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    summary_turn(summary, target.pid).map_err(|e| format!("{socket}: bench --json: {e}"))
}

/// A turn's figures from a `bench --json` summary of a run against the server `pid`.
fn summary_turn(summary: Summary, pid: u32) -> Result<Turn, String> {
    if summary.errors.total() > 0 {
        return Err(format!("counted errors: {:?}", summary.errors));
    }
    // The CPU must be the server's, found as the socket's peer.
    if summary.server_pid != Some(pid) {
        return Err(format!(
            "measured the CPU of pid {:?}, not the server's ({pid})",
            summary.server_pid
        ));
    }
    let cpu_us_per_call = summary
        .server_cpu_us_per_call
        .ok_or("no server_cpu_us_per_call (is the CLI older than the benchmark?)")?;
    let latency = summary
        .latency_histogram
        .ok_or("no latency_histogram (is the CLI older than the benchmark?)")?;
    Ok(Turn {
        calls_per_sec: summary.calls_per_sec,
        cpu_us_per_call,
        latency,
        rate: summary.rate,
    })
}

/// Both servers in turns (ABBA, see `paired::order`), each turn a `bench --json` process: `rounds` flat
/// out, then `turns.paced_factor` times as many paced (see `paired::PACED_SHARE`).
pub fn measure(
    external: &External,
    targets: &[Target; 2],
    pair: usize,
    cell: Cell,
    turns: &Turns,
    rounds: usize,
) -> Result<[Passes; 2], String> {
    let pass = |rounds: usize, rate: Option<f64>| -> Result<[Vec<Turn>; 2], String> {
        let mut measured = [Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
        for round in 0..rounds {
            for i in order(pair, round) {
                measured[i].push(run(external, &targets[i], cell, turns, rate)?);
            }
        }
        Ok(measured)
    };
    let flat_out = pass(rounds, None)?;
    let paced = pass(rounds * turns.paced_factor, Some(paced_rate(&flat_out[0])))?;
    Ok(Passes::of_both(flat_out, paced))
}
