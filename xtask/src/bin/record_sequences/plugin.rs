//! One plugin of an action as the recorder runs it: a `recorder` process on a socket
//! (started, killed, started again), or a bundle dockerd runs; its call log, read as it
//! grows, and the wait until every log is quiet.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::{PluginProcess, Signal};
use serde_json::Value;

use crate::actions::PluginSpec;
use crate::managed::{bundle_dir, managed_config, static_recorder, write_bundle};
use crate::{KILL, QUIET, RECORDER_ENV, RESTART, SETTLE_LIMIT, SOCKET_DIR, recorder};

pub(crate) struct RunningPlugin {
    /// What the action asked for: its name, what the recorder serves, managed or not.
    pub(crate) spec: PluginSpec,
    /// The name docker commands and the recorder's `--name` use.
    pub(crate) docker_name: String,
    pub(crate) root: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) offset: u64,
    pub(crate) starts: usize,
    pub(crate) process: Option<PluginProcess>,
    /// Managed: the config.json written into the bundle.
    pub(crate) config: Option<Value>,
    /// Managed: the plugin ID, once `docker plugin create` made it.
    pub(crate) id: Option<String>,
    /// Managed: the socket dockerd dials, once it was seen on the host.
    pub(crate) socket: Option<PathBuf>,
}

impl RunningPlugin {
    pub(crate) fn new(spec: &PluginSpec, dir: &Path) -> Result<Self, String> {
        let mut plugin = RunningPlugin {
            spec: *spec,
            docker_name: spec.container.docker_name.unwrap_or(spec.name).to_owned(),
            root: dir.join(spec.name),
            log: dir.join(format!("{}.calls.jsonl", spec.name)),
            dir: dir.to_path_buf(),
            offset: 0,
            starts: 0,
            process: None,
            config: None,
            id: None,
            socket: None,
        };
        if plugin.spec.managed {
            // dockerd runs it: only the bundle is made here; its log comes back
            // through a bind mount of a host directory.
            let log_dir = dir.join(format!("{}.log", spec.name));
            fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
            plugin.log = log_dir.join("calls.jsonl");
            // A new version writes where the plugin it upgrades writes.
            let mount_dir = match spec.container.log_of {
                Some(other) => dir.join(format!("{other}.log")),
                None => log_dir,
            };
            let config = managed_config(spec, &mount_dir);
            let bundle = bundle_dir(dir, spec.name);
            write_bundle(&bundle, &config, Some(static_recorder()?))?;
            let version = bundle.join("rootfs/version");
            fs::write(&version, spec.container.version)
                .map_err(|e| format!("{}: {e}", version.display()))?;
            plugin.config = Some(config);
        } else {
            plugin.start()?;
        }
        Ok(plugin)
    }

    fn start(&mut self) -> Result<(), String> {
        let binary = match std::env::var_os(RECORDER_ENV) {
            Some(binary) => PathBuf::from(binary),
            None => recorder()?,
        };
        let mut command = Command::new(binary);
        command
            .args([
                "--name",
                self.spec.name,
                "--socket-dir",
                SOCKET_DIR,
                "--root",
            ])
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log);
        if self.spec.capabilities {
            command.arg("--capabilities");
        }
        if self.spec.bare_get {
            command.arg("--bare-get");
        }
        if self.spec.network {
            command.arg("--network");
        }
        if self.spec.authz {
            command.arg("--authz");
        }
        if self.spec.logging {
            command.arg("--logging");
        }
        self.starts += 1;
        let stderr = self
            .dir
            .join(format!("{}.stderr.{}.log", self.spec.name, self.starts));
        let socket = Path::new(SOCKET_DIR).join(format!("{}.sock", self.spec.name));
        self.process =
            Some(PluginProcess::start(command, &socket, stderr).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// SIGKILL (the socket file stays behind, as after a crash), then start again.
    pub(crate) fn restart(&mut self) -> Result<(), String> {
        self.stop()?;
        self.start()
    }

    /// SIGKILL for good: the socket file stays behind, nothing listens on it.
    pub(crate) fn stop(&mut self) -> Result<(), String> {
        if self.spec.managed {
            return Err(format!("{RESTART} {}: managed, use {KILL}", self.spec.name));
        }
        if let Some(mut process) = self.process.take() {
            process
                .signal_and_wait(Signal::SIGKILL)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn log_len(&self) -> u64 {
        fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The complete log lines written since the last call.
    pub(crate) fn new_calls(&mut self) -> Result<Vec<Value>, String> {
        let mut file = match fs::File::open(&self.log) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", self.log.display())),
        };
        let mut text = String::new();
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        text[..complete]
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|e| format!("bad log line {line:?}: {e}"))
            })
            .collect()
    }
}

/// Waits until no plugin log has grown for [`QUIET`].
/// With `dockerd_log`, that log must be quiet too (managed plugins' output reaches it
/// asynchronously).
pub(crate) fn settle(plugins: &[RunningPlugin], dockerd_log: Option<&Path>) {
    let sizes = || {
        let mut sizes = plugins
            .iter()
            .map(RunningPlugin::log_len)
            .collect::<Vec<_>>();
        if let Some(log) = dockerd_log {
            sizes.push(fs::metadata(log).map(|m| m.len()).unwrap_or(0));
        }
        sizes
    };
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut last = sizes();
    let mut changed = Instant::now();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        let now = sizes();
        if now != last {
            last = now;
            changed = Instant::now();
        } else if changed.elapsed() >= QUIET {
            return;
        }
    }
    eprintln!("  warning: plugin logs still growing after {SETTLE_LIMIT:?}");
}
