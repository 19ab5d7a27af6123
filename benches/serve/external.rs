//! The same paired turns driven by another process: `cargo docker-plugin bench --json`
//! (one process per turn, no warmup), so that the figures compare with other servers
//! measured the same way. Each turn's first call (the endpoint check) and its
//! connections' setup count in the turn, for both servers alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use docker_plugin_sdk::load::Summary;

use crate::paired::{Cell, Target, Turn, Turns, cpu_ticks, turn};

/// `cargo-docker-plugin`, from `BENCH_CLI` or beside this binary's `deps` directory.
pub fn cli_binary(exe: &Path) -> Option<PathBuf> {
    let path = match std::env::var_os("BENCH_CLI") {
        Some(path) => PathBuf::from(path),
        None => exe.parent()?.parent()?.join("cargo-docker-plugin"),
    };
    path.is_file().then_some(path)
}

/// One turn: one `bench --json` process against `target`.
fn run(
    cli: &Path,
    target: &Target,
    cell: Cell,
    turns: &Turns,
    slice: Duration,
) -> Result<Turn, String> {
    let socket = target.socket.display().to_string();
    let mut command = Command::new(cli);
    command
        .args(["docker-plugin", "bench", &socket, turns.method.name()])
        .args(turns.method.json())
        .args(["--connections", &cell.connections.to_string()])
        .args(["--duration", &slice.as_secs_f64().to_string()])
        .args(["--warmup", "0", "--json"]);
    if cell.per_call {
        command.arg("--new-connection-per-call");
    }
    let cpu0 = cpu_ticks(target.pid)?;
    let out = command
        .output()
        .map_err(|e| format!("running {}: {e}", cli.display()))?;
    let cpu = cpu_ticks(target.pid)? - cpu0;
    if !out.status.success() {
        return Err(format!(
            "{} bench: {}",
            cli.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let summary: Summary = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "bench --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    if summary.errors.total() > 0 {
        return Err(format!(
            "{socket}: bench --json counted errors: {:?}",
            summary.errors
        ));
    }
    // The endpoint check is one more call the server made.
    Ok(turn(
        summary.calls + 1,
        summary.calls_per_sec,
        summary.latency_us.p99,
        cpu,
    ))
}

/// Both servers in turns (ABBA), each turn a `bench --json` process.
pub fn measure(
    cli: &Path,
    targets: &[Target; 2],
    cell: Cell,
    turns: &Turns,
    rounds: usize,
) -> Result<[Vec<Turn>; 2], String> {
    let mut measured = [Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            measured[i].push(run(cli, &targets[i], cell, turns, turns.slice())?);
        }
    }
    Ok(measured)
}
