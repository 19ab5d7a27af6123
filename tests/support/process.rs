//! Example plugins run as real processes: built on demand with cargo, started with
//! their stderr captured to a file, waited for until their socket answers, and stopped
//! with SIGTERM like systemd or dockerd would.

use std::collections::HashMap;
use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// How long a plugin gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a plugin gets to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

static BUILT: Mutex<Option<HashMap<String, Result<(), String>>>> = Mutex::new(None);

/// The path of example `name`, built first (with all features, like the test suite) so
/// it is never stale. Panics with cargo's output when the build fails.
pub fn example_binary(name: &str) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    // target/debug/deps/<test binary> -> target/debug/examples/<name>
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let binary = profile_dir.join("examples").join(name);
    let result = built.entry(name.to_string()).or_insert_with(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "--all-features", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cargo build --example {name} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
    assert!(binary.exists(), "{} was not built", binary.display());
    binary
}

/// A running plugin process; killed on drop if still running.
pub struct PluginProcess {
    child: Option<Child>,
    /// Where the plugin's stderr goes.
    pub log: PathBuf,
}

impl PluginProcess {
    /// Starts `command` (stderr to `log`) and waits until `socket` accepts connections.
    pub fn start(command: Command, socket: &Path, log: PathBuf) -> Result<Self, String> {
        let socket = socket.to_path_buf();
        let what = format!("listening on {}", socket.display());
        Self::spawn(command, log, &what, || UnixStream::connect(&socket).is_ok())
    }

    /// Like [`PluginProcess::start`] for processes that listen on something else: waits
    /// until `ready()` is true.
    pub fn start_with(
        command: Command,
        log: PathBuf,
        ready: impl Fn() -> bool,
    ) -> Result<Self, String> {
        Self::spawn(command, log, "ready", ready)
    }

    fn spawn(
        mut command: Command,
        log: PathBuf,
        what: &str,
        ready: impl Fn() -> bool,
    ) -> Result<Self, String> {
        let stderr =
            fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command
            .spawn()
            .map_err(|e| format!("starting {command:?}: {e}"))?;
        let mut process = PluginProcess {
            child: Some(child),
            log,
        };
        process.wait_until(what, ready)?;
        Ok(process)
    }

    fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "plugin exited ({status}) before {what}; its log:\n{}",
                    self.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "plugin not {what} after {START_TIMEOUT:?}; its log:\n{}",
                    self.log_text()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the plugin wrote to stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no log: {e}>"))
    }

    /// Sends `signal` (e.g. "TERM") and waits for the exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> Result<ExitStatus, String> {
        let Some(mut child) = self.child.take() else {
            return Err("plugin is not running".into());
        };
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .map_err(|e| format!("running kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -{signal} failed: {status}"));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "plugin still running {STOP_TIMEOUT:?} after SIGTERM; log:\n{}",
                        self.log_text()
                    ));
                }
                Err(e) => return Err(format!("waiting for the plugin: {e}")),
            }
        }
    }

    /// SIGTERM, as dockerd and systemd stop a plugin.
    pub fn terminate(&mut self) -> Result<ExitStatus, String> {
        self.signal_and_wait("TERM")
    }
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
