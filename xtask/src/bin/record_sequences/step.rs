//! One command of an action (docker CLI arguments or a pseudo-command) run in the
//! action's [`Session`], with what it printed and the calls it caused.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use docker_plugin_sdk::harness::dockerd::Dockerd;
use serde_json::Value;

use crate::managed::{host_files, interesting_log_lines, kill_managed};
use crate::plugin::{RunningPlugin, settle};
use crate::pseudo::{create_with_mac, write_env_file};
use crate::registry::Registry;
use crate::{
    CREATE_MAC, CURL, HOST_FILES, KILL, RESTART, SLOW, SOCKET_DIR, START_REGISTRY, STOP,
    TLS_DOCKER, TMP, WRITE_ENV_FILE,
};

pub(crate) fn display_command(args: &[&str]) -> String {
    let (program, args) = match args.split_first() {
        Some((first, rest)) if first.starts_with('@') => (*first, rest),
        _ => ("docker", args),
    };
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                (*a).to_owned()
            }
        })
        .collect();
    if quoted.is_empty() {
        return program.to_owned();
    }
    format!("{program} {}", quoted.join(" "))
}

pub(crate) struct RawStep {
    pub(crate) command: String,
    pub(crate) exit_code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) duration_s: Option<u64>,
    pub(crate) dockerd_log: Vec<String>,
    /// (plugin index, log line) in plugin order, then log order.
    pub(crate) calls: Vec<(usize, Value)>,
}

/// What a step needs besides the command: the daemon, the plugins, and (for actions
/// with managed plugins) where dockerd's log was read up to.
pub(crate) struct Session<'a> {
    pub(crate) d: &'a Dockerd,
    pub(crate) dockerd_pid: Option<i64>,
    pub(crate) plugins: Vec<RunningPlugin>,
    pub(crate) tmp: PathBuf,
    /// `Some(offset)` when dockerd's log is collected.
    pub(crate) dockerd_log: Option<u64>,
    /// The registry, once `@start-registry` started it.
    pub(crate) registry: Option<Registry>,
    /// The CLI's TLS flags, for an action with `tls`.
    pub(crate) tls_args: Vec<String>,
}

impl Session<'_> {
    fn dockerd_log_path(&self) -> PathBuf {
        self.d.log().to_path_buf()
    }

    /// The complete lines dockerd logged since the last call.
    fn new_log_text(&mut self) -> String {
        let Some(offset) = self.dockerd_log else {
            return String::new();
        };
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(self.dockerd_log_path()) {
            let _ = file
                .seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_to_string(&mut text));
        }
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        self.dockerd_log = Some(offset + complete as u64);
        text.truncate(complete);
        text
    }

    /// Learns managed plugins' IDs (after `docker plugin create`) and sockets.
    fn observe_managed(&mut self) {
        for plugin in self.plugins.iter_mut().filter(|p| p.spec.managed) {
            if plugin.id.is_none() {
                let out = self.d.docker(&[
                    "plugin",
                    "inspect",
                    "--format",
                    "{{.Id}}",
                    &plugin.docker_name,
                ]);
                if out.status.success() {
                    plugin.id = Some(String::from_utf8_lossy(&out.stdout).trim().to_owned());
                }
            }
            if plugin.socket.is_none()
                && let Some(id) = &plugin.id
            {
                let socket = Path::new(SOCKET_DIR)
                    .join(id)
                    .join(format!("{}.sock", plugin.docker_name));
                if socket.exists() {
                    plugin.socket = Some(socket);
                }
            }
        }
    }

    /// `{tmp}`, `{registry}`, `{id:NAME}` and `{id12:NAME}` in `arg`.
    fn substitute(&self, arg: &str) -> String {
        let mut arg = arg.replace(TMP, &self.tmp.display().to_string());
        if let Some(registry) = &self.registry {
            arg = arg.replace("{registry}", &registry.addr);
        }
        for plugin in &self.plugins {
            if let Some(id) = &plugin.id {
                arg = arg
                    .replace(&format!("{{id:{}}}", plugin.spec.name), id)
                    .replace(&format!("{{id12:{}}}", plugin.spec.name), &id[..12]);
            }
        }
        arg
    }

    /// Runs one command (or pseudo-command) and collects the calls it caused.
    pub(crate) fn run_step(&mut self, args: &[&str]) -> Result<RawStep, String> {
        if args.first() == Some(&START_REGISTRY) {
            self.registry = Some(Registry::start(&self.tmp.join("registry"))?);
        }
        let args: Vec<String> = args.iter().map(|a| self.substitute(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let args = args.as_slice();
        let command = display_command(args);
        let started = Instant::now();
        let pseudo = args.first().copied().filter(|a| a.starts_with('@'));
        let (exit_code, stdout, stderr) = if pseudo == Some(START_REGISTRY) {
            (0, String::new(), String::new())
        } else if let [CREATE_MAC, name, network, mac] = args {
            create_with_mac(self.d, name, network, mac)?
        } else if pseudo == Some(WRITE_ENV_FILE) {
            write_env_file(args)?;
            (0, String::new(), String::new())
        } else if pseudo == Some(CURL) {
            let socket = self.d.host().trim_start_matches("unix://");
            let mut command = Command::new("curl");
            command.arg("--unix-socket").arg(socket).args(&args[1..]);
            let out = command.output().map_err(|e| format!("running curl: {e}"))?;
            // Without the Date header, which changes from run to run.
            recorded(out, Some("Date:"), None)
        } else if pseudo == Some(TLS_DOCKER) {
            let mut tls_args: Vec<&str> = self.tls_args.iter().map(String::as_str).collect();
            tls_args.extend(&args[1..]);
            cli_output(self.d.docker(&tls_args))
        } else if let Some(pseudo) = pseudo {
            let name = args.get(1).copied().unwrap_or_default();
            let plugin = self
                .plugins
                .iter_mut()
                .find(|p| p.spec.name == name)
                .ok_or_else(|| format!("{pseudo}: no plugin {name}"))?;
            let stdout = match pseudo {
                RESTART => {
                    plugin.restart()?;
                    String::new()
                }
                STOP => {
                    plugin.stop()?;
                    String::new()
                }
                KILL => kill_managed(plugin)?,
                HOST_FILES => host_files(self.d, plugin)?,
                other => return Err(format!("unknown pseudo-command {other}")),
            };
            (0, stdout, String::new())
        } else {
            cli_output(self.d.docker(args))
        };
        let ran = started.elapsed();
        let log_path = self.dockerd_log.map(|_| self.dockerd_log_path());
        settle(&self.plugins, log_path.as_deref());
        eprintln!(
            "  $ {command}  [exit {exit_code}, {:.1}s]",
            ran.as_secs_f64()
        );
        if self.dockerd_log.is_some() {
            self.observe_managed();
        }
        let log_text = self.new_log_text();
        let mut dockerd_log = interesting_log_lines(&log_text, &self.plugins);
        // dockerd reads a plugin's stdout and stderr from two pipes, so their relative
        // order varies from run to run: stdout lines (level=info) first, for stable
        // fixtures.
        dockerd_log.sort_by_key(|line| !(line.contains(" plugin=") && line.contains("level=info")));
        let mut calls = Vec::new();
        for (index, plugin) in self.plugins.iter_mut().enumerate() {
            for call in plugin.new_calls()? {
                let peer = call.get("peer_pid").and_then(Value::as_i64);
                if self.dockerd_pid.is_some() && peer != self.dockerd_pid {
                    eprintln!(
                        "  warning: ignoring a call to {} from pid {peer:?}, not our dockerd: {}",
                        plugin.spec.name, call["path"]
                    );
                    continue;
                }
                calls.push((index, call));
            }
        }
        Ok(RawStep {
            command,
            exit_code,
            stdout,
            stderr,
            duration_s: (ran >= SLOW).then_some(ran.as_secs()),
            dockerd_log,
            calls,
        })
    }
}

/// A docker CLI run's exit code, stdout and stderr as recorded.
fn cli_output(out: Output) -> (i32, String, String) {
    // The CLI's own log lines (`time="…" level=error msg="Can't add file … to tar:
    // io: read/write on closed pipe"` when dockerd refuses a plugin create before the
    // upload ends) come or not from run to run: left out.
    recorded(out, None, Some("time=\""))
}

/// A run's exit code, stdout and stderr, trimmed, without the lines that start with
/// `stdout_noise` / `stderr_noise`.
fn recorded(
    out: Output,
    stdout_noise: Option<&str>,
    stderr_noise: Option<&str>,
) -> (i32, String, String) {
    let text = |bytes: &[u8], noise: Option<&str>| {
        let text = String::from_utf8_lossy(bytes);
        match noise {
            None => text.trim_end().to_owned(),
            Some(noise) => text
                .lines()
                .filter(|line| !line.starts_with(noise))
                .collect::<Vec<_>>()
                .join("\n")
                .trim_end()
                .to_owned(),
        }
    };
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout, stdout_noise),
        text(&out.stderr, stderr_noise),
    )
}
