//! Running one action: its plugins (recorder processes, or bundles dockerd runs), its
//! commands one at a time with the calls each caused, and the fixture made of them.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::harness::{PluginProcess, Signal};
use serde_json::Value;

use crate::actions::{Action, PluginSpec};
use crate::fixture::{BundleInfo, Call, Fixture, Normalizer, Outcome, Phase, PluginInfo};
use crate::managed::{
    bundle_dir, host_files, interesting_log_lines, kill_managed, managed_config, static_recorder,
    write_bad_bundle, write_bundle,
};
use crate::registry::Registry;
use crate::{
    CREATE_MAC, CURL, HOST_FILES, IMAGE, KILL, QUIET, RECORDER_ENV, RESTART, SETTLE_LIMIT, SLOW,
    SOCKET_DIR, START_REGISTRY, STOP, TLS_DOCKER, TMP, WRITE_ENV_FILE, recorder, tls,
};

pub(crate) struct RunningPlugin {
    pub(crate) name: String,
    /// The name docker commands and the recorder's `--name` use.
    pub(crate) docker_name: String,
    pub(crate) capabilities: bool,
    pub(crate) bare_get: bool,
    pub(crate) network: bool,
    pub(crate) authz: bool,
    pub(crate) logging: bool,
    pub(crate) managed: bool,
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
    fn new(spec: &PluginSpec, dir: &Path) -> Result<Self, String> {
        let mut plugin = RunningPlugin {
            name: spec.name.to_owned(),
            docker_name: spec.container.docker_name.unwrap_or(spec.name).to_owned(),
            capabilities: spec.capabilities,
            bare_get: spec.bare_get,
            network: spec.network,
            authz: spec.authz,
            logging: spec.logging,
            managed: spec.managed,
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
        if plugin.managed {
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
            .args(["--name", &self.name, "--socket-dir", SOCKET_DIR, "--root"])
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log);
        if self.capabilities {
            command.arg("--capabilities");
        }
        if self.bare_get {
            command.arg("--bare-get");
        }
        if self.network {
            command.arg("--network");
        }
        if self.authz {
            command.arg("--authz");
        }
        if self.logging {
            command.arg("--logging");
        }
        self.starts += 1;
        let stderr = self
            .dir
            .join(format!("{}.stderr.{}.log", self.name, self.starts));
        let socket = Path::new(SOCKET_DIR).join(format!("{}.sock", self.name));
        self.process =
            Some(PluginProcess::start(command, &socket, stderr).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// SIGKILL (the socket file stays behind, as after a crash), then start again.
    fn restart(&mut self) -> Result<(), String> {
        self.stop()?;
        self.start()
    }

    /// SIGKILL for good: the socket file stays behind, nothing listens on it.
    fn stop(&mut self) -> Result<(), String> {
        if self.managed {
            return Err(format!("{RESTART} {}: managed, use {KILL}", self.name));
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
    fn new_calls(&mut self) -> Result<Vec<Value>, String> {
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
        for plugin in self.plugins.iter_mut().filter(|p| p.managed) {
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
                    .replace(&format!("{{id:{}}}", plugin.name), id)
                    .replace(&format!("{{id12:{}}}", plugin.name), &id[..12]);
            }
        }
        arg
    }

    /// Runs one command (or pseudo-command) and collects the calls it caused.
    fn run_step(&mut self, args: &[&str]) -> Result<RawStep, String> {
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
                .find(|p| p.name == name)
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
                        plugin.name, call["path"]
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

/// `value` with each string that is the first of a pair replaced by its second.
fn replace_strings(value: Value, pairs: &[(String, String)]) -> Value {
    match value {
        Value::String(s) => Value::String(
            pairs
                .iter()
                .find(|(from, _)| *from == s)
                .map_or(s, |(_, to)| to.clone()),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| replace_strings(v, pairs))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, replace_strings(v, pairs)))
                .collect(),
        ),
        other => other,
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

/// `[WRITE_ENV_FILE, path, bytes]`: variables `BIG0=xxx…`, `BIG1=…` of about `bytes`
/// bytes in all, each line under the 64 KiB the CLI's line scanner takes.
fn write_env_file(args: &[&str]) -> Result<(), String> {
    let (Some(path), Some(bytes)) = (args.get(1), args.get(2)) else {
        return Err(format!("{WRITE_ENV_FILE} PATH BYTES"));
    };
    let bytes: usize = bytes
        .parse()
        .map_err(|e| format!("{WRITE_ENV_FILE}: {bytes}: {e}"))?;
    const LINE: usize = 60_000;
    let text: String = (0..bytes.div_ceil(LINE))
        .map(|n| format!("BIG{n}={}\n", "x".repeat(LINE)))
        .collect();
    fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

pub(crate) fn headers_without_length(call: &Value) -> Value {
    let mut headers = call.get("request_headers").cloned().unwrap_or(Value::Null);
    if let Value::Object(map) = &mut headers {
        map.remove("content-length");
    }
    headers
}

pub(crate) struct Versions {
    pub(crate) dockerd: String,
    pub(crate) api: String,
    pub(crate) cli: String,
}

pub(crate) fn versions(d: &Dockerd) -> Versions {
    let get = |format: &str| {
        let out = d.docker(&["version", "--format", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    Versions {
        dockerd: get("{{.Server.Version}}"),
        api: get("{{.Server.APIVersion}}"),
        cli: get("{{.Client.Version}}"),
    }
}

pub(crate) fn record_action(
    action: &Action,
    out_dir: &Path,
    raw: Option<&Path>,
) -> Result<Fixture, String> {
    let temp = tempfile::Builder::new()
        .prefix("dps-record-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    // Authorization plugins listen first: dockerd does not start without them.
    let mut plugins = action
        .plugins
        .iter()
        .filter(|spec| spec.authz)
        .map(|spec| RunningPlugin::new(spec, temp.path()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = Dockerd::builder().daemon_args(
        plugins
            .iter()
            .map(|p| format!("--authorization-plugin={}", p.name)),
    );
    let tls = if action.tls {
        Some(tls::write(&temp.path().join("tls"))?)
    } else {
        None
    };
    if let Some(tls) = &tls {
        builder = builder.daemon_args(tls.daemon_args.iter().cloned());
    }
    let t = Instant::now();
    let mut d = builder.start().map_err(|e| e.to_string())?;
    eprintln!("  dockerd up in {:.1}s", t.elapsed().as_secs_f64());
    // The peer every call must come from.
    let dockerd_pid = d.pid().map(i64::from);
    if dockerd_pid.is_none() {
        eprintln!("  warning: no dockerd pid; calls are not filtered by peer");
    }
    let versions = versions(&d);
    if action.image {
        d.import_busybox(IMAGE).map_err(|e| e.to_string())?;
    }
    for (name, kind) in action.bundles {
        write_bad_bundle(temp.path(), name, *kind)?;
    }
    // The calls of the daemon's start, `docker version` and the image import are not
    // the action's.
    for plugin in &mut plugins {
        plugin.new_calls()?;
    }
    for spec in action.plugins.iter().filter(|spec| !spec.authz) {
        plugins.push(RunningPlugin::new(spec, temp.path())?);
    }
    let managed = action.plugins.iter().any(|p| p.managed);
    let mut session = Session {
        d: &d,
        dockerd_pid,
        plugins,
        tmp: temp.path().to_path_buf(),
        // From now on: the lines logged while the daemon started are not the action's.
        dockerd_log: managed.then(|| fs::metadata(d.log()).map_or(0, |m| m.len())),
        registry: None,
        tls_args: tls.map(|tls| tls.client_args).unwrap_or_default(),
    };
    let mut run_all = |commands: &[&[&str]]| -> Result<Vec<RawStep>, String> {
        commands.iter().map(|args| session.run_step(args)).collect()
    };
    let setup = run_all(action.setup);
    let steps = setup.and_then(|setup| Ok((setup, run_all(action.commands)?)));
    let registry = session.registry.take();
    let mut plugins = session.plugins;
    if let Some(raw) = raw
        && managed
    {
        fs::create_dir_all(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
        let to = raw.join(format!("{}.dockerd.log", action.name));
        fs::copy(d.log(), &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    // dockerd first (removing containers may unmount), then the plugins.
    d.stop();
    for plugin in &mut plugins {
        if let Some(mut process) = plugin.process.take() {
            let _ = process.terminate();
        }
    }
    if let Some(raw) = raw {
        fs::create_dir_all(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
        for plugin in plugins.iter().filter(|p| p.log.exists()) {
            let to = raw.join(format!("{}.{}.jsonl", action.name, plugin.name));
            fs::copy(&plugin.log, &to).map_err(|e| format!("{}: {e}", to.display()))?;
        }
    }
    let (setup, steps) = steps?;

    let mut problems = Vec::new();
    for (i, step) in setup.iter().enumerate() {
        if step.exit_code != 0 {
            problems.push(format!(
                "setup command {i} `{}` failed: {}",
                step.command, step.stderr
            ));
        }
    }
    for (i, step) in steps.iter().enumerate() {
        let expect_failure = action.failing.contains(&i);
        if (step.exit_code != 0) != expect_failure {
            problems.push(format!(
                "command {i} `{}` exited with {} (expected {}): {}",
                step.command,
                step.exit_code,
                if expect_failure { "failure" } else { "success" },
                step.stderr
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }

    // A managed plugin's volumes are inside it (`/mnt/volumes/...`): left as they are.
    let mut paths: Vec<(String, String)> = plugins
        .iter()
        .filter(|p| !p.managed)
        .map(|p| (p.root.display().to_string(), "<root>".to_owned()))
        .collect();
    paths.push((temp.path().display().to_string(), "<tmp>".to_owned()));
    paths.push((d.root().display().to_string(), "<dockerd-root>".to_owned()));
    if let Some(registry) = &registry {
        paths.push((registry.addr.clone(), "<registry>".to_owned()));
    }
    let mut norm = Normalizer::new(paths);

    let common_headers = setup
        .iter()
        .chain(&steps)
        .flat_map(|s| &s.calls)
        .next()
        .map(|(_, call)| headers_without_length(call))
        .unwrap_or(Value::Null);
    let phase = |raw: Vec<RawStep>, norm: &mut Normalizer| -> Phase {
        let mut phase = Phase::default();
        for (i, step) in raw.into_iter().enumerate() {
            phase.commands.push(norm.text(&step.command));
            for (index, call) in step.calls {
                let headers = headers_without_length(&call);
                let field = |key: &str| call.get(key).cloned().unwrap_or(Value::Null);
                let text = |key: &str| {
                    call.get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                // Authz bodies carry the API call's bodies in base64: normalized inside.
                let (request_body, pairs) = norm.authz_bodies(&text("request_body"));
                let request = replace_strings(field("request"), &pairs);
                phase.calls.push(Call {
                    command: i,
                    plugin: plugins[index].name.clone(),
                    method: text("method"),
                    request: norm.value(request),
                    response: norm.value(field("response")),
                    status: call.get("status").and_then(Value::as_u64).unwrap_or(0),
                    request_body: norm.text(&request_body),
                    response_body: norm.text(&text("response_body")),
                    http_method: Some(text("http_method")).filter(|m| m != "POST"),
                    request_headers: (headers != common_headers).then(|| norm.value(headers)),
                });
            }
            phase.results.push(Outcome {
                exit_code: step.exit_code,
                stdout: norm.text(&step.stdout),
                stderr: norm.text(&step.stderr),
                duration_s: step.duration_s,
                dockerd_log: step.dockerd_log.iter().map(|l| norm.text(l)).collect(),
            });
        }
        phase
    };
    // In file order: the plugins (their IDs, config paths) come before the setup.
    let plugin_infos: Vec<PluginInfo> = plugins
        .iter()
        .map(|p| PluginInfo {
            name: p.name.clone(),
            docker_name: (p.docker_name != p.name).then(|| p.docker_name.clone()),
            capabilities: p.capabilities,
            bare_get: p.bare_get,
            network: p.network,
            authz: p.authz,
            logging: p.logging,
            managed: p.managed,
            id: p.id.as_deref().map(|id| norm.text(id)),
            socket: p
                .socket
                .as_ref()
                .map(|s| norm.text(&s.display().to_string())),
            config: p.config.clone().map(|c| norm.value(c)),
        })
        .collect();
    let bundles = action
        .bundles
        .iter()
        .map(|(name, _)| {
            let dir = bundle_dir(temp.path(), name);
            let config_json = fs::read_to_string(dir.join("config.json"))
                .ok()
                .map(|text| norm.text(&text));
            let info = BundleInfo {
                config_json,
                rootfs: dir.join("rootfs").is_dir(),
                program: dir
                    .join("rootfs/recorder")
                    .exists()
                    .then(|| "/recorder".to_owned()),
            };
            ((*name).to_owned(), info)
        })
        .collect();
    let setup = phase(setup, &mut norm);
    let main = phase(steps, &mut norm);
    let fixture = Fixture {
        action: action.name.to_owned(),
        description: action
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        dockerd_version: versions.dockerd,
        api_version: versions.api,
        docker_cli_version: versions.cli,
        plugins: plugin_infos,
        bundles,
        request_headers: norm.value(common_headers),
        setup,
        commands: main.commands,
        results: main.results,
        calls: main.calls,
    };
    let path = out_dir.join(format!("{}.json", action.name));
    let mut json = serde_json::to_string_pretty(&fixture).map_err(|e| e.to_string())?;
    json.push('\n');
    fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(fixture)
}

/// [`CREATE_MAC`]: `POST /v1.41/containers/create?name=NAME` on dockerd's API socket
/// (curl), the MAC address in the container config as API 1.41 takes it. The exit
/// code is 0 for a 201, else 1 with dockerd's message as stderr, as the CLI would.
fn create_with_mac(
    d: &Dockerd,
    name: &str,
    network: &str,
    mac: &str,
) -> Result<(i32, String, String), String> {
    let socket = d
        .host()
        .strip_prefix("unix://")
        .ok_or_else(|| format!("{CREATE_MAC}: DOCKER_HOST {} is not a socket", d.host()))?;
    let body = serde_json::json!({
        "Image": IMAGE,
        "Cmd": ["sleep", "60"],
        "MacAddress": mac,
        "HostConfig": {"NetworkMode": network},
    });
    let out = Command::new("curl")
        .args(["--silent", "--unix-socket", socket, "-X", "POST"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-w",
            "\n%{http_code}",
        ])
        .arg("--data")
        .arg(body.to_string())
        .arg(format!("http://docker/v1.41/containers/create?name={name}"))
        .output()
        .map_err(|e| format!("{CREATE_MAC}: cannot run curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (reply, status) = text.trim_end().rsplit_once('\n').unwrap_or(("", &text));
    if status == "201" {
        Ok((0, String::new(), String::new()))
    } else {
        let message = serde_json::from_str::<Value>(reply)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("status {status}: {reply}"));
        Ok((
            1,
            String::new(),
            format!("Error response from daemon: {message}"),
        ))
    }
}
