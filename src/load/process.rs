//! The plugin process as the load tool watches it: its resident memory (`VmRSS`) and
//! peak (`VmHWM`) from `/proc/PID/status`, and its CPU time from `/proc/PID/stat`.

use std::io;

/// A `kB` line of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), in KiB.
///
/// ```
/// let rss = docker_plugin_sdk::load::proc_status_kib(std::process::id(), "VmRSS:").unwrap();
/// assert!(rss > 0);
/// ```
pub fn proc_status_kib(pid: u32, key: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no {key} in /proc/{pid}/status"),
            )
        })
}

/// utime + stime of every thread of `pid`, in clock ticks (see
/// [`clock_ticks_per_sec`]).
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let malformed = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed /proc/{pid}/stat"),
        )
    };
    // Fields after the command name (which may hold spaces), counted from field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(malformed)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(malformed)
    };
    Ok(field(14)? + field(15)?)
}

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 if unknown).
pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}
