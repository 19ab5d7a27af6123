//! sshfs as a supervised child: it runs in the foreground (`-f`), so the mount lives
//! exactly as long as this process, which the plugin owns and watches.
//!
//! - It never outlives the plugin: `kill_on_drop` (the runtime going down drops it),
//!   `PR_SET_PDEATHSIG` (SIGKILL when the plugin dies, even by SIGKILL; strictly, when
//!   the spawning thread does: a tokio worker, which lives as long as the runtime),
//!   and a process
//!   group of its own, so [`Running::kill`] takes its `ssh` child too. In a managed
//!   plugin the PID namespace does the same: when the plugin (its PID 1) dies, the
//!   kernel kills everything in it.
//! - Its exit is seen at once: a task waits for it and logs it with what sshfs said,
//!   so a dead sshfs (a network drop) is known before the next Mount needs it.
//! - Its stderr is kept (the last lines, trimmed) for the error the user reads, and
//!   logged at debug level. It never holds the password: that goes to sshfs's stdin
//!   (`-o password_stdin`), never onto its command line, where `ps` would show it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use docker_plugin_sdk::options::Secret;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

/// How many lines of stderr are kept.
const STDERR_LINES: usize = 20;

/// A running (or exited) supervised sshfs.
#[derive(Debug)]
pub struct Running {
    pid: Pid,
    /// `None` while it runs, then how it ended ("exit status: 1").
    exit: watch::Receiver<Option<String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Running {
    /// Starts `program` with `args`, the password (if any) written to its stdin.
    /// `label` names it in the logs (the volume).
    pub async fn spawn(
        program: &Path,
        args: &[OsString],
        password: Option<Secret<String>>,
        label: &str,
    ) -> io::Result<Self> {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(if password.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let plugin = nix::unistd::getpid();
        // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                // The plugin died between fork and prctl: the signal would never come.
                if nix::unistd::getppid() != plugin {
                    return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| io::Error::other("sshfs exited at once"))?;
        if let (Some(mut stdin), Some(password)) = (child.stdin.take(), password) {
            // sshfs reads one line; a write error means it exited: its stderr says why.
            let mut line = password.into_inner().into_bytes();
            line.push(b'\n');
            let _ = stdin.write_all(&line).await;
            line.fill(0);
        }
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let reader = child.stderr.take().map(|pipe| {
            let lines = Arc::clone(&stderr);
            let label = label.to_owned();
            tokio::spawn(async move {
                let mut pipe = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = pipe.next_line().await {
                    tracing::debug!(volume = %label, "sshfs: {line}");
                    let mut lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
                    if lines.len() == STDERR_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(line);
                }
            })
        });
        let (report, exit) = watch::channel(None);
        let label = label.to_owned();
        let lines = Arc::clone(&stderr);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(err) => format!("unknown status ({err})"),
            };
            if let Some(reader) = reader {
                // Its ssh child may hold stderr a moment longer.
                let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
            }
            tracing::info!(
                volume = %label,
                "sshfs exited ({status}): {}",
                trimmed(&lines.lock().unwrap_or_else(PoisonError::into_inner))
            );
            let _ = report.send(Some(status));
        });
        Ok(Self { pid, exit, stderr })
    }

    /// How it ended, or `None` while it runs.
    pub fn exit_status(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Waits until it has exited; how it ended.
    pub async fn exited(&self) -> String {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => status.clone().unwrap_or_default(),
            // The watcher task is gone: the runtime is shutting down.
            Err(_) => "unknown status".into(),
        }
    }

    /// What it printed on stderr, trimmed: its last lines joined by ` `.
    pub fn stderr(&self) -> String {
        trimmed(&self.stderr.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// SIGKILL to its process group (sshfs and its ssh).
    pub fn kill(&self) {
        if self.exit_status().is_none() {
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
    }
}

/// Lines without blanks, each trimmed, joined by a space.
fn trimmed(lines: &VecDeque<String>) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn its_exit_and_stderr_are_kept_and_the_password_goes_to_stdin_only() {
        let script: Vec<OsString> = vec![
            "-c".into(),
            "read pw; echo \"  got ${#pw} chars \" >&2; echo >&2; echo last >&2; exit 3".into(),
        ];
        let run = Running::spawn(
            Path::new("/bin/sh"),
            &script,
            Some(Secret::new("hunter2".into())),
            "t",
        )
        .await
        .unwrap();
        assert_eq!(run.exited().await, "exit status: 3");
        assert_eq!(run.stderr(), "got 7 chars last");
    }

    #[tokio::test]
    async fn kill_takes_the_whole_group() {
        let script: Vec<OsString> = vec!["-c".into(), "sleep 600 & sleep 600".into()];
        let run = Running::spawn(Path::new("/bin/sh"), &script, None, "t")
            .await
            .unwrap();
        let group = run.pid;
        run.kill();
        assert_eq!(run.exited().await, "signal: 9 (SIGKILL)");
        // The background sleep went too: nothing of the group is alive (a zombie
        // waits for whoever reaps orphans here).
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(alive_in_group(group.as_raw()), 0);
    }

    /// Processes of process group `group` that are not zombies (proc(5): `stat`).
    fn alive_in_group(group: i32) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter(|stat| {
                // After the `(comm)`: state, ppid, pgrp.
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
                fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string()
            })
            .count()
    }
}
