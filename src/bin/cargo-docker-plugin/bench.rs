//! `cargo docker-plugin bench`: drives a plugin endpoint as dockerd calls it, over many
//! connections, and prints calls/s and latency percentiles (or feeds a log driver
//! lines through a FIFO); a thin shell over `docker_plugin_sdk::load`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use docker_plugin_sdk::load::{
    Call, Load, LogLines, LogOptions, Options, Progress, RssKib, Summary, Target, cpu_time,
    log_lines, proc_status_kib,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::examine::managed_socket;

pub const AFTER_HELP: &str = "\
PLUGIN is a plugin name (a managed plugin of the engine at DOCKER_HOST, else found as \
dockerd finds a legacy plugin: /run/docker/plugins/NAME.sock, then NAME.spec or NAME.json \
in /etc/docker/plugins and /usr/lib/docker/plugins), a socket path, or a URL (unix:///…, \
tcp://host:port; https:// is not supported).

The request is what dockerd sends: POST /METHOD with Go's headers in Go's order and the \
JSON as Go's encoder writes it (and a newline). Without JSON the body is {} (nothing for \
the methods dockerd calls without arguments, such as Plugin.Activate). One call is made \
first to check the endpoint: a 404 stops the run.

--json prints one JSON object: {\"plugin\": URL, \"method\": M, \"connections\": N, \
\"new_connection_per_call\": bool, \"seconds\": measured seconds, \"calls\": calls made \
(failed ones included), \"errors\": {\"connect\", \"io\", \"status\", \"plugin\", \"timeout\"}, \
\"calls_per_sec\": f, \"latency_us\": {\"p50\", \"p90\", \"p99\", \"max\"}} and, when the \
plugin's pid is known (--pid, or the unix socket's peer), \"server_pid\", \"rss_kib\": \
{\"start\", \"peak\", \"end\"} (VmRSS; peak sampled every 100 ms) and \
\"server_cpu_us_per_call\": the plugin's CPU time (user and system, every thread) from \
the measured run's start to its end, divided by its calls (the check, the connections' \
setup and the warmup are not in it). With --log-lines, \
\"log_lines\": {\"lines\", \"bytes\", \"lines_per_sec\"} and \"calls\" counts lines. \
With --latency-histogram, \"latency_histogram\": {\"max_ns\", \"buckets\": [[middle_ns, \
count], ...]}, every measured latency by bucket (each within 1/64 of its middle), so that \
the runs of several processes can be merged into one distribution; with --rate, \
\"rate\": the calls per second asked for.

--rate paces the calls instead of sending each connection's next call as soon as the \
last is answered: each connection makes its share at even intervals, the connections' \
turns spread over an interval, so latencies are measured below the plugin's saturation. \
No call is sent before it is due, so the load never exceeds the rate; a connection more \
than an interval and 5 ms behind skips the calls it missed (calls_per_sec says what the \
plugin kept up with); a latency counts from the request's write; calls due in the same \
millisecond go out together.

--log-lines makes a FIFO in --fifo-dir, calls LogDriver.StartLogging with it and a \
container Info as dockerd builds it, writes framed lines for --duration, then calls \
LogDriver.StopLogging. The plugin opens the FIFO at the same path: a legacy plugin sees \
the host's paths; a managed plugin sees only its rootfs, so measure a log driver run by \
hand or as a legacy plugin.";

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A plugin name, a socket path, or a URL (unix:///…, tcp://…).
    plugin: String,
    /// The endpoint as dockerd calls it, e.g. VolumeDriver.Get, Plugin.Activate,
    /// NetworkDriver.GetCapabilities (not needed with --log-lines).
    method: Option<String>,
    /// The JSON request body, or @FILE (default {}).
    json: Option<String>,
    /// Concurrent connections, one call in flight on each.
    #[arg(long, default_value_t = 1, value_name = "N")]
    connections: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    duration: f64,
    /// Seconds of calls before measuring (not counted).
    #[arg(long, default_value_t = 1.0, value_name = "S")]
    warmup: f64,
    /// Open a new connection for each call (dockerd keeps its connections alive).
    #[arg(long)]
    new_connection_per_call: bool,
    /// Calls per second over all connections, at even intervals (see below),
    /// instead of as fast as the plugin answers.
    #[arg(long, value_name = "CALLS")]
    rate: Option<f64>,
    /// Seconds a call may take before it fails as a timeout.
    #[arg(long, default_value_t = 30.0, value_name = "S")]
    timeout: f64,
    /// Print one JSON object (see below) instead of the table, and no progress bar.
    #[arg(long = "json")]
    json_output: bool,
    /// Feed a log driver: lines per second written into a FIFO (0: as fast as it
    /// reads).
    #[arg(long, value_name = "RATE")]
    log_lines: Option<u64>,
    /// The bytes of each log line.
    #[arg(long, default_value_t = 100, value_name = "B")]
    line_bytes: usize,
    /// Where --log-lines makes its FIFO: a directory the plugin sees at the same path.
    #[arg(long, default_value = "/run/docker/logging", value_name = "DIR")]
    fifo_dir: PathBuf,
    /// The plugin's pid, for its RSS (found from a unix socket's peer otherwise).
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// With --json, add every measured latency by bucket (see below).
    #[arg(long, requires = "json_output")]
    latency_histogram: bool,
}

fn seconds(value: f64, flag: &str, zero_ok: bool) -> Result<Duration, String> {
    if value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0)) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!("{flag} {value}: give a positive number of seconds"))
    }
}

pub fn bench(args: BenchArgs) -> Result<(), String> {
    let duration = seconds(args.duration, "--duration", false)?;
    let warmup = seconds(args.warmup, "--warmup", true)?;
    let timeout = seconds(args.timeout, "--timeout", false)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async {
        let target = match managed_socket(&args.plugin).await? {
            Some(socket) => Target::Unix(socket),
            None => Target::locate(&args.plugin).map_err(|e| e.to_string())?,
        };
        let bar = progress_bar(args.json_output);
        let summary = match args.log_lines {
            Some(rate) => logs(&args, &target, rate, duration, &bar).await?,
            None => {
                let method = args.method.as_deref().ok_or(
                    "give the METHOD to call, e.g. VolumeDriver.Get (or --log-lines for a log driver)",
                )?;
                calls(&args, target, method, duration, warmup, timeout, &bar).await?
            }
        };
        bar.finish_and_clear();
        if args.json_output {
            println!(
                "{}",
                serde_json::to_string(&summary).map_err(|e| e.to_string())?
            );
        } else {
            print_table(&summary);
        }
        Ok(())
    })
}

async fn calls(
    args: &BenchArgs,
    target: Target,
    method: &str,
    duration: Duration,
    warmup: Duration,
    timeout: Duration,
    bar: &ProgressBar,
) -> Result<Summary, String> {
    let call = Call::from_arg(method, args.json.as_deref()).map_err(|e| e.to_string())?;
    let pid = match args.pid {
        Some(pid) => Some(pid),
        None => target.server_pid().await,
    };
    let options = Options {
        connections: args.connections,
        new_connection_per_call: args.new_connection_per_call,
        timeout: Some(timeout),
        rate: args.rate,
    };
    let url = target.url();
    let mut load = Load::connect(target, call, options)
        .await
        .map_err(|e| e.to_string())?;
    if !warmup.is_zero() {
        bar.set_message("warmup");
        load.run(warmup, &mut |p| show(bar, p))
            .await
            .map_err(|e| e.to_string())?;
    }
    let rss = |pid: Option<u32>| pid.and_then(|pid| proc_status_kib(pid, "VmRSS:").ok());
    let cpu = |pid: Option<u32>| pid.and_then(|pid| cpu_time(pid).ok());
    let start = rss(pid);
    let mut peak = start.unwrap_or(0);
    bar.set_message("measuring");
    // The plugin's CPU time, read right before and right after the run: over the
    // window its calls are counted in.
    let cpu_start = cpu(pid);
    let report = load
        .run(duration, &mut |p| {
            show(bar, p);
            if let Some(now) = rss(pid) {
                peak = peak.max(now);
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    let cpu_end = cpu(pid);
    let end = rss(pid);
    let mut summary = Summary::new(
        url,
        method.to_owned(),
        args.connections,
        args.new_connection_per_call,
        &report,
    );
    summary.server_pid = pid;
    summary.rss_kib = start.zip(end).map(|(start, end)| RssKib {
        start,
        peak: peak.max(end),
        end,
    });
    summary.server_cpu_us_per_call = cpu_start.zip(cpu_end).map(|(start, end)| {
        end.saturating_sub(start).as_secs_f64() * 1e6 / report.calls.max(1) as f64
    });
    if args.latency_histogram {
        summary.latency_histogram = Some(report.latency.clone());
    }
    summary.rate = args.rate;
    if let Some(error) = &report.last_error {
        eprintln!("last error: {error}");
    }
    Ok(summary)
}

async fn logs(
    args: &BenchArgs,
    target: &Target,
    rate: u64,
    duration: Duration,
    bar: &ProgressBar,
) -> Result<Summary, String> {
    let options = LogOptions {
        rate,
        line_bytes: args.line_bytes,
        duration,
        fifo_dir: args.fifo_dir.clone(),
        pid: args.pid,
    };
    bar.set_message("writing lines");
    let report = log_lines(target, &options, &mut |p| show(bar, p))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Summary {
        plugin: target.url(),
        method: "LogDriver.StartLogging".to_owned(),
        connections: 1,
        new_connection_per_call: false,
        seconds: report.elapsed.as_secs_f64(),
        calls: report.lines,
        errors: Default::default(),
        calls_per_sec: report.lines_per_sec(),
        latency_us: Default::default(),
        server_pid: report.pid,
        rss_kib: report.rss,
        server_cpu_us_per_call: None,
        log_lines: Some(LogLines {
            lines: report.lines,
            bytes: report.bytes,
            lines_per_sec: report.lines_per_sec(),
        }),
        latency_histogram: None,
        rate: None,
    })
}

/// A bar over the run's time on a terminal; hidden otherwise, and with --json.
fn progress_bar(json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(1000);
    if let Ok(style) = ProgressStyle::with_template("{msg:>10} [{bar:30}] {prefix}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn show(bar: &ProgressBar, p: &Progress) {
    let done = p.elapsed.as_secs_f64() / p.duration.as_secs_f64().max(1e-9);
    bar.set_position((done.min(1.0) * 1000.0) as u64);
    bar.set_prefix(format!("{} calls, {} errors", p.calls, p.errors));
}

fn print_table(s: &Summary) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("plugin        {}", s.plugin);
    println!("method        {}", s.method);
    match &s.log_lines {
        Some(lines) => {
            println!("seconds       {:.2}", s.seconds);
            println!(
                "lines         {} ({} bytes), {:.0} lines/s",
                lines.lines, lines.bytes, lines.lines_per_sec
            );
        }
        None => {
            println!(
                "connections   {}{}",
                s.connections,
                if s.new_connection_per_call {
                    " (a new connection per call)"
                } else {
                    " (keep-alive)"
                }
            );
            println!("seconds       {:.2}", s.seconds);
            println!("calls         {} ({:.0}/s)", s.calls, s.calls_per_sec);
            let e = &s.errors;
            println!(
                "errors        {} (connect {}, io {}, status {}, plugin {}, timeout {})",
                e.total(),
                e.connect,
                e.io,
                e.status,
                e.plugin,
                e.timeout
            );
            let l = &s.latency_us;
            println!(
                "latency µs    p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
                l.p50, l.p90, l.p99, l.max
            );
        }
    }
    if let Some(pid) = s.server_pid {
        match &s.rss_kib {
            Some(rss) => println!(
                "plugin RSS    pid {pid}: {:.2} MiB before, {:.2} MiB peak, {:.2} MiB after",
                mib(rss.start),
                mib(rss.peak),
                mib(rss.end)
            ),
            None => println!("plugin RSS    pid {pid}: unreadable"),
        }
        if let Some(cpu) = s.server_cpu_us_per_call {
            println!("plugin CPU    {cpu:.2} µs per call (user + system)");
        }
    }
}
