//! A log driver under load: what dockerd does for a container that prints lines as
//! fast as it can (or at a rate), through the FIFO dockerd would give the driver.
//!
//! A FIFO is made and held open `O_RDWR` as dockerd holds it (the harness's
//! `open_fifo`), `LogDriver.StartLogging` is called with its path and an `Info` as
//! dockerd builds it (the harness's [`LogContainer`]), framed entries
//! ([`LogEntry`], [`encode_frame`]) are written for the run's duration, then
//! `LogDriver.StopLogging`, and the FIFO is removed (moby v20.10.24
//! `daemon/logger/plugin.go`, `adapter.go`). Frames are written in batches of up to
//! 64 KiB, not one write per line as dockerd's copier does: the plugin reads the same
//! bytes either way, and the writer stays out of the measurement.
//!
//! The FIFO must be where the plugin can open it: a legacy plugin sees the host's
//! paths; a managed plugin sees its rootfs, where only dockerd can put FIFOs (this
//! tool measures legacy plugins and plugins run by hand).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt;

use super::{LoadError, Progress, RssKib, Target, proc_status_kib};
use crate::client::Client;
use crate::harness::LogContainer;
use crate::logging::{
    LogEntry, StartLogging, StartLoggingRequest, StopLogging, StopLoggingRequest, encode_frame,
};

/// The size of one batch of frames written into the FIFO.
const BATCH: usize = 64 * 1024;

/// How a log-lines run is made.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Lines per second; 0 writes as fast as the plugin reads.
    pub rate: u64,
    /// The bytes of each line (without its newline, which frames do not carry).
    pub line_bytes: usize,
    /// How long lines are written.
    pub duration: Duration,
    /// Where the FIFO is made: a directory the plugin sees at the same path.
    pub fifo_dir: PathBuf,
    /// The plugin's pid, for its RSS (found from the socket's peer otherwise).
    pub pid: Option<u32>,
}

/// What a log-lines run wrote.
#[derive(Debug, Clone, Copy)]
pub struct LogReport {
    /// Lines written.
    pub lines: u64,
    /// Their bytes.
    pub bytes: u64,
    /// From StartLogging's reply to the last frame written.
    pub elapsed: Duration,
    /// The plugin's pid, if known.
    pub pid: Option<u32>,
    /// The plugin's RSS around the run, if its pid is known.
    pub rss: Option<RssKib>,
}

impl LogReport {
    /// Lines written per second.
    pub fn lines_per_sec(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Writes log lines into a FIFO a log driver reads: StartLogging, the lines, then
/// StopLogging. `progress` is called every 100 ms (its `calls` are lines).
pub async fn log_lines(
    target: &Target,
    options: &LogOptions,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<LogReport, LoadError> {
    if options.line_bytes == 0 {
        return Err(LoadError::Options(
            "--line-bytes must be at least 1".to_owned(),
        ));
    }
    let client = match target {
        Target::Unix(path) => Client::unix(path),
        Target::Tcp(_) => Client::from_url(&target.url())?,
    };
    let pid = match options.pid {
        Some(pid) => Some(pid),
        None => target.server_pid().await,
    };
    let rss = |pid: Option<u32>| pid.and_then(|pid| proc_status_kib(pid, "VmRSS:").ok());
    let container = LogContainer::new("load", "docker-plugin-sdk/load");
    let fifo_path = options
        .fifo_dir
        .join(format!("load-{}", container.info.container_id));
    let fifo_error = |path: &Path, source| LoadError::Fifo {
        path: path.to_owned(),
        source,
    };
    tokio::fs::create_dir_all(&options.fifo_dir)
        .await
        .map_err(|e| fifo_error(&options.fifo_dir, e))?;
    let mut fifo =
        crate::harness::logging::open_fifo(&fifo_path).map_err(|e| fifo_error(&fifo_path, e))?;
    let file = fifo_path.display().to_string();
    let start_rss = rss(pid);
    let started = client
        .call::<StartLogging>(&StartLoggingRequest {
            file: file.clone(),
            info: container.info.clone(),
        })
        .await;
    if let Err(err) = started {
        drop(fifo);
        let _ = tokio::fs::remove_file(&fifo_path).await;
        return Err(err.into());
    }
    let written = write_lines(&mut fifo, options, pid, progress).await;
    let stopped = client
        .call::<StopLogging>(&StopLoggingRequest { file })
        .await;
    drop(fifo);
    let _ = tokio::fs::remove_file(&fifo_path).await;
    let (lines, bytes, elapsed, peak) = written.map_err(|e| fifo_error(&fifo_path, e))?;
    stopped?;
    let end_rss = rss(pid);
    Ok(LogReport {
        lines,
        bytes,
        elapsed,
        pid,
        rss: start_rss.zip(end_rss).map(|(start, end)| RssKib {
            start,
            peak: peak.max(start).max(end),
            end,
        }),
    })
}

/// Writes the lines; returns lines, bytes, the time taken and the highest RSS seen.
async fn write_lines(
    fifo: &mut tokio::net::unix::pipe::Sender,
    options: &LogOptions,
    pid: Option<u32>,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> std::io::Result<(u64, u64, Duration, u64)> {
    let line: Vec<u8> = (0..options.line_bytes)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36])
        .collect();
    let started = Instant::now();
    let mut next_report = started;
    let mut lines = 0u64;
    let mut peak = 0u64;
    let mut batch = Vec::with_capacity(BATCH + options.line_bytes + 64);
    loop {
        let elapsed = started.elapsed();
        if elapsed >= options.duration {
            break;
        }
        // At a rate: the lines due by now; else a batch's worth.
        let due = if options.rate == 0 {
            u64::MAX
        } else {
            (elapsed.as_secs_f64() * options.rate as f64) as u64 + 1
        };
        if lines >= due {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            batch.clear();
            let time_nano = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            while lines < due && batch.len() < BATCH {
                let entry = LogEntry::new("stdout", time_nano, line.clone());
                batch.extend_from_slice(&encode_frame(&entry));
                lines += 1;
            }
            fifo.write_all(&batch).await?;
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_millis(100);
            if let Some(rss) = pid.and_then(|pid| proc_status_kib(pid, "VmRSS:").ok()) {
                peak = peak.max(rss);
            }
            progress(&Progress {
                elapsed: started.elapsed(),
                duration: options.duration,
                calls: lines,
                errors: 0,
            });
        }
    }
    let elapsed = started.elapsed();
    Ok((lines, lines * options.line_bytes as u64, elapsed, peak))
}
