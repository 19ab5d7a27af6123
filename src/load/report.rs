//! What a load run measured ([`Report`]), and the one JSON object
//! `cargo docker-plugin bench --json` prints ([`Summary`]), which the benchmark reads
//! back with the same type.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Histogram;

/// The calls that failed, by kind. A call fails at most once, in one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    /// No connection: the socket is missing, refused, or the connection limit hit.
    pub connect: u64,
    /// The connection failed mid-call (closed, reset, not HTTP).
    pub io: u64,
    /// A status other than 200 without an `Err` in its body.
    pub status: u64,
    /// A reply whose body carries a non-empty `Err` (whatever its status): the
    /// plugin's own error, as dockerd reads it.
    pub plugin: u64,
    /// No reply within the call timeout.
    pub timeout: u64,
}

impl Errors {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.connect + self.io + self.status + self.plugin + self.timeout
    }

    pub(crate) fn add(&mut self, other: &Errors) {
        self.connect += other.connect;
        self.io += other.io;
        self.status += other.status;
        self.plugin += other.plugin;
        self.timeout += other.timeout;
    }
}

/// One run of [`Load::run`](super::Load::run).
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Calls made to their end, failed ones included (a call in flight at the end of
    /// the run is waited for and counts).
    pub calls: u64,
    /// The failed ones.
    pub errors: Errors,
    /// The last error's message, if any failed.
    pub last_error: Option<String>,
    /// From the run's start to the end of its last call.
    pub elapsed: Duration,
    /// The latency of every call that got a reply (request written, or connection
    /// opened for a new connection per call, to its reply read in full).
    pub latency: Histogram,
    /// The body of the first 200 reply without an `Err`.
    pub first_reply: Option<Bytes>,
}

impl Report {
    /// Calls per second.
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// p50, p90, p99 and max in µs.
    pub fn latencies_us(&self) -> Latencies {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Latencies {
            p50: us(self.latency.percentile(50.0)),
            p90: us(self.latency.percentile(90.0)),
            p99: us(self.latency.percentile(99.0)),
            max: us(self.latency.max()),
        }
    }

    pub(crate) fn merge(&mut self, other: Report) {
        self.calls += other.calls;
        self.errors.add(&other.errors);
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
        self.latency.merge(&other.latency);
        if self.first_reply.is_none() {
            self.first_reply = other.first_reply;
        }
    }
}

/// Latency percentiles, in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The longest call.
    pub max: f64,
}

/// A process's resident memory during a run, in KiB (`VmRSS` of
/// `/proc/PID/status`): before, the highest sampled (every 100 ms, with the
/// progress), after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RssKib {
    /// Before the run.
    pub start: u64,
    /// The highest sample during the run.
    pub peak: u64,
    /// After the run.
    pub end: u64,
}

/// The one JSON object `cargo docker-plugin bench --json` prints.
///
/// ```
/// use docker_plugin_sdk::load::Summary;
/// let text = r#"{"plugin":"unix:///p.sock","method":"VolumeDriver.Get","connections":4,
///   "new_connection_per_call":false,"seconds":2.0,"calls":1000,
///   "errors":{"connect":0,"io":0,"status":0,"plugin":0,"timeout":0},
///   "calls_per_sec":500.0,"latency_us":{"p50":1.0,"p90":2.0,"p99":3.0,"max":4.0}}"#;
/// let summary: Summary = serde_json::from_str(text).unwrap();
/// assert_eq!(summary.calls, 1000);
/// assert_eq!(summary.server_pid, None);
/// assert_eq!(summary.server_cpu_us_per_call, None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The plugin's address (`unix:///…` or `tcp://…`).
    pub plugin: String,
    /// The method called.
    pub method: String,
    /// The concurrent connections (calls in flight).
    pub connections: usize,
    /// Whether each call opened a connection of its own.
    pub new_connection_per_call: bool,
    /// The measured time, warmup excluded.
    pub seconds: f64,
    /// The calls made (failed ones included).
    pub calls: u64,
    /// The failed calls, by kind.
    pub errors: Errors,
    /// `calls / seconds`.
    pub calls_per_sec: f64,
    /// Latency percentiles, in µs.
    pub latency_us: Latencies,
    /// The pid of the plugin process, when known (`--pid`, or a unix socket's peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_pid: Option<u32>,
    /// Its resident memory around the run, when its pid is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_kib: Option<RssKib>,
    /// Its CPU time (user and system, every thread) over the measured run, divided
    /// by the run's calls, in µs, when its pid is known: read from its CPU-time clock
    /// at the run's two edges, so the warmup, the connections' setup and the load
    /// tool's own start and exit are not in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_call: Option<f64>,
    /// For `--log-lines`: the lines written into the FIFO, and their rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lines: Option<LogLines>,
    /// With `--latency-histogram`: every latency of `latency_us`, by bucket, so that
    /// the runs of several processes can be merged into one distribution (a p99 of
    /// all their calls rather than a mean of p99s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_histogram: Option<Histogram>,
    /// With `--rate`: the calls per second asked for (`calls_per_sec` is what the
    /// plugin kept up with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

/// The log-lines figures of a [`Summary`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogLines {
    /// Lines written.
    pub lines: u64,
    /// Their bytes (the lines', not the frames').
    pub bytes: u64,
    /// Lines written per second.
    pub lines_per_sec: f64,
}

impl Summary {
    /// The summary of `report`, a run of `method` at `plugin`.
    pub fn new(
        plugin: String,
        method: String,
        connections: usize,
        new_connection_per_call: bool,
        report: &Report,
    ) -> Self {
        Self {
            plugin,
            method,
            connections,
            new_connection_per_call,
            seconds: report.elapsed.as_secs_f64(),
            calls: report.calls,
            errors: report.errors,
            calls_per_sec: report.calls_per_sec(),
            latency_us: report.latencies_us(),
            server_pid: None,
            rss_kib: None,
            server_cpu_us_per_call: None,
            log_lines: None,
            latency_histogram: None,
            rate: None,
        }
    }
}
