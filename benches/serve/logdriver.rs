//! A log driver under load: the SDK serving a driver that counts lines (the FIFO
//! decode, the reassembly and the bounded buffer are what is measured), fed by the
//! load module's log lines as fast as it reads; lines/s and the driver's RSS.

use std::path::Path;
use std::time::Duration;

use docker_plugin_sdk::load::{LogOptions, Target, log_lines};

use crate::paired::rss;
use crate::servers::spawn_listening;

/// What the log driver did.
pub struct LogFigures {
    pub lines_per_sec: f64,
    pub mib_per_sec: f64,
    pub idle_rss: f64,
    pub peak_rss: f64,
}

pub fn measure(exe: &Path, seconds: Duration, line_bytes: usize) -> Result<LogFigures, String> {
    let dir = crate::socket_dir()?;
    let socket = dir.path().join("logs.sock");
    let (server, _) = spawn_listening(exe, &["logs".as_ref(), socket.as_os_str()], &socket)
        .map_err(|e| format!("the log driver: {e}"))?;
    let pid = server.0.id();
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = rss(pid, "VmRSS:")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let options = LogOptions {
        rate: 0,
        line_bytes,
        duration: seconds,
        fifo_dir: dir.path().join("fifos"),
        pid: Some(pid),
    };
    let report = runtime
        .block_on(log_lines(&Target::Unix(socket), &options, &mut |_| {}))
        .map_err(|e| e.to_string())?;
    Ok(LogFigures {
        lines_per_sec: report.lines_per_sec(),
        mib_per_sec: report.bytes as f64 / report.elapsed.as_secs_f64() / (1024.0 * 1024.0),
        idle_rss,
        peak_rss: rss(pid, "VmHWM:")?,
    })
}
