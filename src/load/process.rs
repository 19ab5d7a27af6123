//! The plugin process as the load tool watches it: its resident memory (`VmRSS`) and
//! peak (`VmHWM`) from `/proc/PID/status`, and its CPU time, to the nanosecond from the
//! process's CPU-time clock or in clock ticks from `/proc/PID/stat`.

use std::io;
use std::time::Duration;

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

/// The CPU time `pid` has used so far, user and system, every thread (those that
/// exited too), to the nanosecond: the process's CPU-time clock
/// (`clock_getcpuclockid`), which `/proc/PID/stat` rounds down to clock ticks (10 ms
/// on most kernels, 1% of a one-second window at one busy core).
///
/// ```
/// let pid = std::process::id();
/// let before = docker_plugin_sdk::load::cpu_time(pid).unwrap();
/// let mut x = 0u64;
/// for i in 0..1_000_000u64 {
///     x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
/// }
/// assert!(docker_plugin_sdk::load::cpu_time(pid).unwrap() > before);
/// ```
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("pid {pid} out of range"),
        )
    })?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid place for the clock id.
    let rc = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid place for the time.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    ))
}

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 if unknown).
pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_clock_agrees_with_proc_stat_to_the_tick() {
        let pid = std::process::id();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        // /proc rounds the same time down to ticks: read in between, the clock's two
        // readings frame it (up to one tick of rounding).
        let before = cpu_time(pid).unwrap();
        let ticks = cpu_ticks(pid).unwrap() as f64 / clock_ticks_per_sec();
        let after = cpu_time(pid).unwrap();
        let tick = 1.0 / clock_ticks_per_sec();
        assert!(
            ticks <= after.as_secs_f64() + tick && ticks + 2.0 * tick >= before.as_secs_f64(),
            "{before:?} .. {after:?}, /proc/{pid}/stat {ticks} s"
        );
    }

    #[test]
    fn a_pid_that_is_not_there_is_an_error() {
        // Above the kernel's pid_max (at most 2^22).
        assert!(cpu_time(1 << 23).is_err());
    }
}
