//! A plugin binary as a real process, for tests and tools that drive it from outside:
//! started with its output (stdout and stderr) captured to a file, waited for until its
//! socket accepts connections (or any readiness check), and stopped with SIGTERM as
//! systemd or dockerd stop a plugin, so that it removes its socket and spec file.
//!
//! The engine's managed plugins are started by the engine itself (see `launch`); this
//! is for a legacy plugin a test starts by hand, before pointing an
//! [`Engine`](super::Engine) or a real dockerd ([`Dockerd`](super::dockerd::Dockerd))
//! at its socket.
//!
//! ```no_run
//! use std::process::Command;
//! use docker_plugin_sdk::harness::{Engine, PluginProcess, Signal};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let root = std::path::Path::new("/tmp/myplugin-test");
//! let engine = Engine::for_tests(root);
//! let socket = engine.discovery().socket_dir.join("myplugin.sock");
//! let mut command = Command::new("target/debug/myplugin");
//! command.arg("--socket-dir").arg(&engine.discovery().socket_dir);
//! // Returns once the socket accepts connections; fails with the plugin's log when it
//! // exits first or does not listen within 20 s.
//! let mut plugin = PluginProcess::start(command, &socket, root.join("myplugin.log"))?;
//! engine.volumes().create("myplugin", "v1", [("size", "1G")]).await?;
//! assert!(plugin.signal_and_wait(Signal::SIGTERM)?.success(), "{}", plugin.log_text());
//! # Ok(()) }
//! ```

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::protocol::{Activate, MEDIA_TYPE_V1_2, Method};

pub use nix::sys::signal::Signal;

/// How long a plugin gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a plugin gets to exit after a signal (then it is SIGKILLed).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often readiness and exit are polled.
const POLL: Duration = Duration::from_millis(20);

/// Why a [`PluginProcess`] could not be started or stopped; the messages that concern
/// the plugin itself carry its log.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The log file could not be created.
    #[error("creating the plugin's log file {}: {source}", path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The command could not be started.
    #[error("starting {command}: {source}")]
    Spawn {
        /// The command, as `Debug` prints it.
        command: String,
        /// What failed.
        source: io::Error,
    },
    /// The process exited before it was ready.
    #[error("plugin exited ({status}) before {waited_for}; its log:\n{log}")]
    Exited {
        /// How it exited.
        status: ExitStatus,
        /// What was waited for, e.g. `listening on /run/docker/plugins/x.sock`.
        waited_for: String,
        /// Its output.
        log: String,
    },
    /// The process did not become ready in time; it is stopped.
    #[error("plugin not {waited_for} after {timeout:?}; its log:\n{log}")]
    NotReady {
        /// What was waited for.
        waited_for: String,
        /// How long.
        timeout: Duration,
        /// Its output.
        log: String,
    },
    /// The process was already stopped.
    #[error("the plugin is not running")]
    NotRunning,
    /// The signal could not be sent.
    #[error("sending {signal} to the plugin: {source}")]
    Signal {
        /// The signal.
        signal: Signal,
        /// What failed.
        source: nix::Error,
    },
    /// The process did not exit after the signal; it was SIGKILLed.
    #[error("plugin still running {timeout:?} after {signal}, so it was killed; its log:\n{log}")]
    StillRunning {
        /// The signal it ignored.
        signal: Signal,
        /// How long it was given.
        timeout: Duration,
        /// Its output.
        log: String,
    },
    /// Waiting for the process failed.
    #[error("waiting for the plugin: {0}")]
    Wait(#[source] io::Error),
}

/// A running plugin process; stopped with SIGTERM (then SIGKILL) when dropped.
#[derive(Debug)]
pub struct PluginProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl PluginProcess {
    /// Starts `command` (stdin null, stdout and stderr to `log`: a plugin made with
    /// `#[docker_plugin_sdk::main]` logs info on stdout, warnings on stderr) and waits
    /// until the unix socket `socket` accepts connections.
    pub fn start(command: Command, socket: &Path, log: PathBuf) -> Result<Self, ProcessError> {
        let socket = socket.to_path_buf();
        let what = format!("listening on {}", socket.display());
        Self::spawn(command, log, &what, || UnixStream::connect(&socket).is_ok())
    }

    /// Like [`PluginProcess::start`], but waits until the plugin answers: its socket
    /// replies `200` to `POST /Plugin.Activate` (what dockerd sends first). A socket
    /// accepts connections as soon as it listens, before the server may serve, and a
    /// stale socket file left by a killed plugin is there before the new process
    /// starts: this is the wait to use after a restart.
    ///
    /// ```no_run
    /// # use std::process::Command;
    /// # use docker_plugin_sdk::harness::{PluginProcess, Signal};
    /// # fn run() -> Result<(), docker_plugin_sdk::harness::ProcessError> {
    /// let socket = std::path::Path::new("/tmp/t/run/docker/plugins/myplugin.sock");
    /// let command = || {
    ///     let mut command = Command::new("target/debug/myplugin");
    ///     command.args(["--socket-dir", "/tmp/t/run/docker/plugins"]);
    ///     command
    /// };
    /// let mut plugin = PluginProcess::start_answering(command(), socket, "/tmp/t/1.log".into())?;
    /// plugin.signal_and_wait(Signal::SIGKILL)?;
    /// // Its socket file is still there; the new process is waited for all the same.
    /// let plugin = PluginProcess::start_answering(command(), socket, "/tmp/t/2.log".into())?;
    /// # Ok(()) }
    /// ```
    pub fn start_answering(
        command: Command,
        socket: &Path,
        log: PathBuf,
    ) -> Result<Self, ProcessError> {
        let socket = socket.to_path_buf();
        let what = format!("answering {} on {}", Activate::NAME, socket.display());
        Self::spawn(command, log, &what, || answers_activate(&socket))
    }

    /// Like [`PluginProcess::start`] for a process that listens on something else (a
    /// TCP port announced by a spec file, say): waits until `ready()` is true.
    ///
    /// ```no_run
    /// # use std::process::Command;
    /// # use docker_plugin_sdk::harness::PluginProcess;
    /// # fn run() -> Result<(), docker_plugin_sdk::harness::ProcessError> {
    /// let spec = std::path::PathBuf::from("/tmp/t/etc/docker/plugins/tcpv.spec");
    /// let mut command = Command::new("target/debug/myplugin");
    /// command.args(["--tcp", "127.0.0.1:0", "--spec-dir", "/tmp/t/etc/docker/plugins"]);
    /// let ready = spec.clone();
    /// let plugin = PluginProcess::start_with(command, "/tmp/t/tcpv.log".into(), move || {
    ///     ready.exists()
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn start_with(
        command: Command,
        log: PathBuf,
        ready: impl Fn() -> bool,
    ) -> Result<Self, ProcessError> {
        Self::spawn(command, log, "ready", ready)
    }

    fn spawn(
        mut command: Command,
        log: PathBuf,
        what: &str,
        ready: impl Fn() -> bool,
    ) -> Result<Self, ProcessError> {
        let log_error = |source| ProcessError::Log {
            path: log.clone(),
            source,
        };
        let stderr = fs::File::create(&log).map_err(log_error)?;
        // One open file for both: its shared offset keeps the lines in order.
        let stdout = stderr.try_clone().map_err(log_error)?;
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            command: format!("{command:?}"),
            source,
        })?;
        let mut process = PluginProcess {
            child: Some(child),
            log,
        };
        process.wait_until(what, ready)?;
        Ok(process)
    }

    fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) -> Result<(), ProcessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(ProcessError::Exited {
                    status,
                    waited_for: what.to_owned(),
                    log: self.log_text(),
                });
            }
            if Instant::now() > deadline {
                // Dropping `self` stops it.
                return Err(ProcessError::NotReady {
                    waited_for: what.to_owned(),
                    timeout: START_TIMEOUT,
                    log: self.log_text(),
                });
            }
            thread::sleep(POLL);
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The file its output goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// What the plugin wrote so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no log: {e}>"))
    }

    /// Sends `signal` and waits for the exit; a process still running 20 s later is
    /// SIGKILLed and reported as [`ProcessError::StillRunning`].
    /// `Signal::SIGKILL` stops it as a crash would (its socket file stays behind).
    pub fn signal_and_wait(&mut self, signal: Signal) -> Result<ExitStatus, ProcessError> {
        let Some(mut child) = self.child.take() else {
            return Err(ProcessError::NotRunning);
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        if let Err(source) = kill(pid, signal) {
            self.child = Some(child);
            return Err(ProcessError::Signal { signal, source });
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ProcessError::StillRunning {
                        signal,
                        timeout: STOP_TIMEOUT,
                        log: self.log_text(),
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ProcessError::Wait(e));
                }
            }
        }
    }

    /// SIGTERM, as dockerd and systemd stop a plugin.
    pub fn terminate(&mut self) -> Result<ExitStatus, ProcessError> {
        self.signal_and_wait(Signal::SIGTERM)
    }
}

/// Whether the unix socket answers `POST /Plugin.Activate` with `200`, asked in plain
/// HTTP/1.1 so that the check needs no runtime (the headers are dockerd's).
fn answers_activate(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let request = format!(
        "POST /{} HTTP/1.1\r\nHost: plugin\r\nUser-Agent: Go-http-client/1.1\r\n\
         Accept: {MEDIA_TYPE_V1_2}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        Activate::NAME
    );
    let mut status = [0; 12];
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_ok()
        && stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut status).is_ok()
        && &status == b"HTTP/1.1 200"
}

impl Drop for PluginProcess {
    /// Stops the plugin the way it is meant to stop (SIGTERM), so that it removes its
    /// socket and spec file: a stale socket left in /run/docker/plugins would make
    /// dockerd retry activating it on every `docker volume ls`.
    fn drop(&mut self) {
        if self.child.is_some()
            && self.terminate().is_err()
            && let Some(mut child) = self.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_exits_before_it_is_ready_reports_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "echo 'cannot bind: permission denied' >&2; exit 3"]);
        let err = PluginProcess::start(command, &dir.path().join("x.sock"), dir.path().join("log"))
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "plugin exited (exit status: 3) before listening on {}",
                dir.path().join("x.sock").display()
            )),
            "{message}"
        );
        assert!(
            message.ends_with("its log:\ncannot bind: permission denied\n"),
            "{message}"
        );
    }

    #[test]
    fn a_socket_that_listens_without_answering_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("mute.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert!(!answers_activate(&socket), "connects, but no reply");
        let replying = std::thread::spawn(move || {
            // The first, unanswered, connection is queued: it goes unread.
            drop(listener.accept().unwrap());
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0; 1024];
            let n = conn.read(&mut request).unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
            request
        });
        assert!(answers_activate(&socket));
        let request = replying.join().unwrap();
        assert!(
            request.starts_with("POST /Plugin.Activate HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(!answers_activate(&dir.path().join("none.sock")));
    }

    #[test]
    fn sigterm_stops_a_ready_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("/bin/sleep");
        command.arg("60");
        let mut process =
            PluginProcess::start_with(command, dir.path().join("log"), || true).unwrap();
        assert!(process.pid().is_some());
        let status = process.terminate().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
        assert!(matches!(process.terminate(), Err(ProcessError::NotRunning)));
    }
}
