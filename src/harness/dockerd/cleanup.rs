//! What a private dockerd leaves behind and how it is cleared: processes found by a
//! token in their command line (containerd, shims, their containers), mounts under its
//! root, and docker CLI calls that must not hang a test run. Std only, plus signals.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::mountinfo::mount_points;

/// Directories appended to `PATH` for dockerd (it needs containerd, runc, docker-init).
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The current `PATH` with the usual system directories appended.
pub(super) fn extended_path() -> String {
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{SYSTEM_PATH}"),
        _ => SYSTEM_PATH.to_string(),
    }
}

/// Finds an executable in `PATH` or the usual system directories.
pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    extended_path()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Sends `signal` to each of `pids`, ignoring those already gone.
pub(super) fn signal(pids: &[u32], signal: Signal) {
    for pid in pids {
        if let Ok(pid) = i32::try_from(*pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

/// SIGKILLs every process (but this one) whose command line contains `needle`,
/// together with all their descendants, until none is left (10 rounds at most).
pub(super) fn kill_matching(needle: &str) {
    let me = std::process::id();
    for _ in 0..10 {
        let procs = list_processes();
        let mut doomed: Vec<u32> = procs
            .iter()
            .filter(|p| p.pid != me && p.cmdline.contains(needle))
            .map(|p| p.pid)
            .collect();
        if doomed.is_empty() {
            return;
        }
        // Add descendants (container processes of killed shims).
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i];
            for p in &procs {
                if p.ppid == parent && p.pid != me && !doomed.contains(&p.pid) {
                    doomed.push(p.pid);
                }
            }
            i += 1;
        }
        signal(&doomed, Signal::SIGKILL);
        thread::sleep(Duration::from_millis(200));
    }
}

/// A live process as seen in `/proc`.
struct Proc {
    pid: u32,
    ppid: u32,
    cmdline: String,
}

/// Lists non-zombie processes with parent pid and command line.
fn list_processes() -> Vec<Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Format: pid (comm) state ppid ...; comm may contain spaces/parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        if state == "Z" || state == "X" {
            continue;
        }
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let cmdline = fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        out.push(Proc { pid, ppid, cmdline });
    }
    out
}

/// Mount points at or below `root`, from `/proc/self/mountinfo`.
fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    let prefix = format!("{root}/");
    mount_points()
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.display().to_string())
        .filter(|m| *m == root || m.starts_with(&prefix))
        .collect()
}

/// Lazily unmounts everything at or below `root`, deepest first, repeating for stacked
/// mounts.
pub(super) fn unmount_under(root: &Path) {
    for _ in 0..10 {
        let mut mounts = mounts_under(root);
        if mounts.is_empty() {
            return;
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.matches('/').count()));
        mounts.dedup();
        for m in mounts {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(OsStr::new(&m))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    let left = mounts_under(root);
    if !left.is_empty() {
        eprintln!("warning: still mounted under {}: {left:?}", root.display());
    }
}

/// Runs `cmd` capturing stdout/stderr; kills it after `timeout`. Spawn failures and
/// timeouts are reported as a failed `Output` (exit code 127 / SIGKILL) with an
/// explanation appended to stderr.
pub(super) fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let failed = |msg: String| Output {
        status: ExitStatus::from_raw(127 << 8),
        stdout: Vec::new(),
        stderr: msg.into_bytes(),
    };
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot run {program}: {e}")),
    };
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let (result, timed_out) = match rx.recv_timeout(timeout) {
        Ok(r) => (r, false),
        Err(_) => {
            signal(&[pid], Signal::SIGKILL);
            match rx.recv() {
                Ok(r) => (r, true),
                Err(_) => return failed(format!("{program}: waiter thread vanished")),
            }
        }
    };
    match result {
        Ok(mut out) => {
            if timed_out {
                out.stderr.extend_from_slice(
                    format!("\n{program} killed after {}s timeout", timeout.as_secs()).as_bytes(),
                );
            }
            out
        }
        Err(e) => failed(format!("waiting for {program} failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_past_its_timeout_is_killed_and_says_so() {
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("30");
        let out = run_with_timeout(cmd, Duration::from_millis(100));
        assert_eq!(out.status.signal(), Some(9));
        assert!(
            String::from_utf8_lossy(&out.stderr).ends_with("/bin/sleep killed after 0s timeout"),
            "{:?}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
