//! Records the plugin calls a REAL dockerd makes for each user action into
//! `tests/fixtures/dockerd-sequences/<action>.json`, for the mini-engine (a dockerd test
//! double) to reproduce exactly.
//!
//! ```text
//! sudo cargo run --example record_sequences            # every action (about 2 minutes)
//! sudo cargo run --example record_sequences -- --only volume_rm,plugin_restart
//! scripts/record-dockerd-sequences                     # the same, as a script
//! ```
//!
//! Each action gets a fresh private dockerd, started exactly as the integration tests
//! start one (`tests/support/dockerd.rs`), and fresh `recorder` plugins
//! (`examples/recorder.rs`) that log every request and reply on the wire. The action's
//! setup commands run first; then its commands, one at a time, each followed by a quiet
//! second so that asynchronous calls are attributed to the command that caused them.
//!
//! dockerd finds legacy plugins in the machine-wide `/run/docker/plugins` and
//! `/etc/docker/plugins`, so another dockerd running at the same time (a concurrent
//! `cargo test`) would call our plugins and ours theirs. The recorder therefore re-runs
//! itself in a private mount namespace (`unshare --mount`) with empty tmpfs mounts over
//! those directories (`--no-isolate` skips this), and it keeps only calls whose peer
//! process is the action's own dockerd.
//!
//! Options:
//!   --only A,B      record only these actions
//!   --out DIR       where fixtures go (default tests/fixtures/dockerd-sequences)
//!   --list          print the actions and exit
//!   --no-isolate    do not enter a private mount namespace
//!   --raw DIR       also keep each plugin's raw log as DIR/<action>.<plugin>.jsonl

// Shared with the integration tests (it allows its own dead code).
#[path = "../tests/support/dockerd.rs"]
mod dockerd;
#[allow(dead_code)]
#[path = "../tests/support/process.rs"]
mod process;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use dockerd::Dockerd;
use process::{PluginProcess, example_binary};
use serde::Serialize;
use serde_json::Value;

/// Where dockerd looks for legacy plugin sockets.
const SOCKET_DIR: &str = "/run/docker/plugins";
/// Where dockerd looks for `.spec` / `.json` plugin files.
const SPEC_DIRS: &[&str] = &["/etc/docker/plugins", "/usr/lib/docker/plugins"];
/// The image the container actions use: a static busybox imported into each dockerd.
const IMAGE: &str = "busybox";
/// How long the plugin logs must stay unchanged before a command counts as finished.
const QUIET: Duration = Duration::from_millis(1000);
/// The longest wait for the logs to become quiet.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// Set in the environment of the copy running inside the private mount namespace.
const ISOLATED_ENV: &str = "DPS_RECORD_ISOLATED";
/// The recorder binary built before entering the namespace, passed to the copy inside.
const RECORDER_ENV: &str = "DPS_RECORDER_BIN";
/// The pseudo-command that SIGKILLs a plugin and starts it again on the same socket.
const RESTART: &str = "@restart-plugin";
/// Replaced in command arguments by the action's temp dir (shown as `<tmp>`).
const TMP: &str = "{tmp}";

// ---------------------------------------------------------------------------------------
// The actions.

struct PluginSpec {
    name: &'static str,
    capabilities: bool,
    bare_get: bool,
}

const fn plugin(name: &'static str) -> PluginSpec {
    PluginSpec {
        name,
        capabilities: true,
        bare_get: false,
    }
}

struct Action {
    name: &'static str,
    description: &'static str,
    plugins: &'static [PluginSpec],
    /// Whether containers run (the busybox image is imported first).
    image: bool,
    /// Commands run first, recorded apart from the action's own.
    setup: &'static [&'static [&'static str]],
    /// The action: docker CLI arguments (`{tmp}` is a temp dir), or `[RESTART, plugin]`.
    commands: &'static [&'static [&'static str]],
    /// Which commands are expected to fail (indexes into `commands`).
    failing: &'static [usize],
}

const ACTIONS: &[Action] = &[
    Action {
        name: "volume_create",
        description: "docker volume create with -o options, then one without options, on a \
                      plugin that implements Capabilities (scope local)",
        plugins: &[plugin("rec-create")],
        image: false,
        setup: &[],
        commands: &[
            &[
                "volume",
                "create",
                "-d",
                "rec-create",
                "-o",
                "a=b",
                "-o",
                "c=d",
                "v1",
            ],
            &["volume", "create", "-d", "rec-create", "v2"],
        ],
        failing: &[],
    },
    Action {
        name: "volume_create_no_capabilities",
        description: "the same two creates on a plugin that does not implement Capabilities \
                      (the SDK answers 404)",
        plugins: &[PluginSpec {
            name: "rec-nocaps",
            capabilities: false,
            bare_get: false,
        }],
        image: false,
        setup: &[],
        commands: &[
            &[
                "volume",
                "create",
                "-d",
                "rec-nocaps",
                "-o",
                "a=b",
                "-o",
                "c=d",
                "v1",
            ],
            &["volume", "create", "-d", "rec-nocaps", "v2"],
        ],
        failing: &[],
    },
    Action {
        name: "volume_create_existing",
        description: "docker volume create of the same name twice",
        plugins: &[plugin("rec-exists")],
        image: false,
        setup: &[],
        commands: &[
            &["volume", "create", "-d", "rec-exists", "-o", "a=b", "v1"],
            &["volume", "create", "-d", "rec-exists", "-o", "a=b", "v1"],
        ],
        failing: &[],
    },
    Action {
        name: "volume_create_other_driver",
        description: "create -d PLUGIN of a name the local driver already has, then create \
                      without -d (the CLI sends driver local) of a name the plugin already has: \
                      both refused",
        plugins: &[plugin("rec-other")],
        image: false,
        setup: &[
            &["volume", "create", "vlocal"],
            &["volume", "create", "-d", "rec-other", "vplugin"],
        ],
        commands: &[
            &["volume", "create", "-d", "rec-other", "vlocal"],
            &["volume", "create", "vplugin"],
        ],
        failing: &[0, 1],
    },
    Action {
        name: "volume_ls",
        description: "docker volume ls with one volume on rec-ls and a second plugin, \
                      rec-ls-idle, that dockerd never heard of before",
        plugins: &[plugin("rec-ls"), plugin("rec-ls-idle")],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-ls", "-o", "a=b", "v1"]],
        commands: &[&["volume", "ls"]],
        failing: &[],
    },
    Action {
        name: "volume_inspect",
        description: "docker volume inspect of a plugin volume (Get answers with a Mountpoint)",
        plugins: &[plugin("rec-inspect")],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-inspect", "-o", "a=b", "v1"]],
        commands: &[&["volume", "inspect", "v1"]],
        failing: &[],
    },
    Action {
        name: "bare_get",
        description: "inspect, ls and a container when Get and List answer without a \
                      Mountpoint: does dockerd ask VolumeDriver.Path?",
        plugins: &[PluginSpec {
            name: "rec-bare",
            capabilities: true,
            bare_get: true,
        }],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-bare", "v1"]],
        commands: &[
            &["volume", "inspect", "v1"],
            &["volume", "ls"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
        ],
        failing: &[],
    },
    Action {
        name: "volume_inspect_unknown",
        description: "docker volume inspect of a name no driver has, with a plugin running \
                      that dockerd never used",
        plugins: &[plugin("rec-unknown")],
        image: false,
        setup: &[],
        commands: &[&["volume", "inspect", "nosuch"]],
        failing: &[0],
    },
    Action {
        name: "volume_rm",
        description: "docker volume rm of an unused plugin volume",
        plugins: &[plugin("rec-rm")],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-rm", "v1"]],
        commands: &[&["volume", "rm", "v1"]],
        failing: &[],
    },
    Action {
        name: "volume_rm_in_use",
        description: "docker volume rm of a volume a stopped (created, never started) \
                      container references: dockerd refuses",
        plugins: &[plugin("rec-inuse")],
        image: true,
        setup: &[
            &["volume", "create", "-d", "rec-inuse", "v1"],
            &["create", "--name", "c1", "-v", "v1:/data", IMAGE, "true"],
        ],
        commands: &[&["volume", "rm", "v1"]],
        failing: &[0],
    },
    Action {
        name: "run_with_volume",
        description: "docker run --rm -v VOLUME:/data with an existing plugin volume",
        plugins: &[plugin("rec-run")],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-run", "v1"]],
        commands: &[&["run", "--rm", "-v", "v1:/data", IMAGE, "true"]],
        failing: &[],
    },
    Action {
        name: "run_with_volume_auto_create",
        description: "docker run --rm --volume-driver PLUGIN -v NEWVOLUME:/data: dockerd \
                      creates the volume itself",
        plugins: &[plugin("rec-autocreate")],
        image: true,
        setup: &[],
        commands: &[&[
            "run",
            "--rm",
            "--volume-driver",
            "rec-autocreate",
            "-v",
            "v1:/data",
            IMAGE,
            "true",
        ]],
        failing: &[],
    },
    Action {
        name: "two_containers_sharing_volume",
        description: "two detached containers mount the same volume, are stopped one after \
                      the other, then removed: one mount ID per container",
        plugins: &[plugin("rec-shared")],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-shared", "v1"]],
        commands: &[
            &[
                "run", "-d", "--name", "c1", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
            &[
                "run", "-d", "--name", "c2", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
            &["stop", "-t", "1", "c1"],
            &["stop", "-t", "1", "c2"],
            &["rm", "c1", "c2"],
        ],
        failing: &[],
    },
    Action {
        name: "cp_from_running_container",
        description: "docker cp out of a running container that mounts the volume: dockerd \
                      mounts the volume again, with the container's mount ID",
        plugins: &[plugin("rec-cp")],
        image: true,
        setup: &[
            &["volume", "create", "-d", "rec-cp", "v1"],
            &[
                "run", "-d", "--name", "c1", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
        ],
        commands: &[
            &["cp", "c1:/etc/passwd", "{tmp}/passwd"],
            &["stop", "-t", "1", "c1"],
        ],
        failing: &[],
    },
    Action {
        name: "plugin_restart",
        description: "the plugin is killed (SIGKILL) and started again on the same socket; \
                      then inspect, ls and a container using the volume",
        plugins: &[plugin("rec-restart")],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-restart", "v1"]],
        commands: &[
            &[RESTART, "rec-restart"],
            &["volume", "inspect", "v1"],
            &["volume", "ls"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
        ],
        failing: &[],
    },
];

// ---------------------------------------------------------------------------------------
// The fixture format.

#[derive(Serialize)]
struct Fixture {
    action: String,
    description: String,
    dockerd_version: String,
    api_version: String,
    docker_cli_version: String,
    plugins: Vec<PluginInfo>,
    /// The headers of the first call (without Content-Length); a call whose headers
    /// differ carries its own.
    request_headers: Value,
    setup: Phase,
    commands: Vec<String>,
    results: Vec<Outcome>,
    calls: Vec<Call>,
}

#[derive(Serialize)]
struct PluginInfo {
    name: String,
    capabilities: bool,
    bare_get: bool,
}

#[derive(Serialize, Default)]
struct Phase {
    commands: Vec<String>,
    results: Vec<Outcome>,
    calls: Vec<Call>,
}

#[derive(Serialize)]
struct Outcome {
    exit_code: i32,
    stdout: String,
    stderr: String,
}

#[derive(Serialize)]
struct Call {
    /// Index into `commands` of the command that caused the call.
    command: usize,
    plugin: String,
    method: String,
    request: Value,
    response: Value,
    status: u64,
    request_body: String,
    response_body: String,
    /// Only when it is not POST (dockerd always posts).
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<String>,
    /// Only when they differ from the fixture's `request_headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_headers: Option<Value>,
}

// ---------------------------------------------------------------------------------------
// Normalization: temp paths and 64-hex IDs become placeholders.

struct Normalizer {
    /// (path, placeholder), longest first.
    paths: Vec<(String, String)>,
    ids: Vec<String>,
}

impl Normalizer {
    fn new(mut paths: Vec<(String, String)>) -> Self {
        paths.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        Self {
            paths,
            ids: Vec::new(),
        }
    }

    fn text(&mut self, text: &str) -> String {
        let mut text = text.to_owned();
        for (path, placeholder) in &self.paths {
            text = text.replace(path.as_str(), placeholder);
        }
        self.ids_in(&text)
    }

    /// Replaces each run of exactly 64 lowercase hex digits by `<idN>`, numbered in order
    /// of first appearance.
    fn ids_in(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            if !is_hex(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_hex(bytes[i]) {
                i += 1;
            }
            let bounded = (start == 0 || !bytes[start - 1].is_ascii_alphanumeric())
                && (i == bytes.len() || !bytes[i].is_ascii_alphanumeric());
            if i - start == 64 && bounded {
                let id = &text[start..i];
                let n = match self.ids.iter().position(|known| known == id) {
                    Some(n) => n + 1,
                    None => {
                        self.ids.push(id.to_owned());
                        self.ids.len()
                    }
                };
                out.push_str(&text[copied..start]);
                out.push_str(&format!("<id{n}>"));
                copied = i;
            }
        }
        out.push_str(&text[copied..]);
        out
    }

    fn value(&mut self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.text(&k), self.value(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running plugins and commands.

struct RunningPlugin {
    name: String,
    capabilities: bool,
    bare_get: bool,
    root: PathBuf,
    log: PathBuf,
    dir: PathBuf,
    offset: u64,
    starts: usize,
    process: Option<PluginProcess>,
}

impl RunningPlugin {
    fn new(spec: &PluginSpec, dir: &Path) -> Result<Self, String> {
        let mut plugin = RunningPlugin {
            name: spec.name.to_owned(),
            capabilities: spec.capabilities,
            bare_get: spec.bare_get,
            root: dir.join(spec.name),
            log: dir.join(format!("{}.calls.jsonl", spec.name)),
            dir: dir.to_path_buf(),
            offset: 0,
            starts: 0,
            process: None,
        };
        plugin.start()?;
        Ok(plugin)
    }

    fn start(&mut self) -> Result<(), String> {
        let binary = std::env::var_os(RECORDER_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| example_binary("recorder"));
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
        self.starts += 1;
        let stderr = self
            .dir
            .join(format!("{}.stderr.{}.log", self.name, self.starts));
        let socket = Path::new(SOCKET_DIR).join(format!("{}.sock", self.name));
        self.process = Some(PluginProcess::start(command, &socket, stderr)?);
        Ok(())
    }

    /// SIGKILL (the socket file stays behind, as after a crash), then start again.
    fn restart(&mut self) -> Result<(), String> {
        if let Some(mut process) = self.process.take() {
            process.signal_and_wait("KILL")?;
        }
        self.start()
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
fn settle(plugins: &[RunningPlugin]) {
    let sizes = || {
        plugins
            .iter()
            .map(RunningPlugin::log_len)
            .collect::<Vec<_>>()
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

fn display_command(args: &[&str]) -> String {
    if args.first() == Some(&RESTART) {
        return args.join(" ");
    }
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
    format!("docker {}", quoted.join(" "))
}

struct RawStep {
    command: String,
    exit_code: i32,
    stdout: String,
    stderr: String,
    /// (plugin index, log line) in plugin order, then log order.
    calls: Vec<(usize, Value)>,
}

/// Runs one command (or restart) and collects the calls it caused.
fn run_step(
    d: &Dockerd,
    dockerd_pid: Option<i64>,
    plugins: &mut [RunningPlugin],
    tmp: &Path,
    args: &[&str],
) -> Result<RawStep, String> {
    let tmp = tmp.display().to_string();
    let args: Vec<String> = args.iter().map(|a| a.replace(TMP, &tmp)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let args = args.as_slice();
    let command = display_command(args);
    let started = Instant::now();
    let (exit_code, stdout, stderr) = if args.first() == Some(&RESTART) {
        let name = args.get(1).copied().unwrap_or_default();
        let plugin = plugins
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("{RESTART}: no plugin {name}"))?;
        plugin.restart()?;
        (0, String::new(), String::new())
    } else {
        let out = d.docker(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim_end().to_owned(),
            String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
        )
    };
    let ran = started.elapsed();
    settle(plugins);
    eprintln!(
        "  $ {command}  [exit {exit_code}, {:.1}s]",
        ran.as_secs_f64()
    );
    let mut calls = Vec::new();
    for (index, plugin) in plugins.iter_mut().enumerate() {
        for call in plugin.new_calls()? {
            let peer = call.get("peer_pid").and_then(Value::as_i64);
            if dockerd_pid.is_some() && peer != dockerd_pid {
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
        calls,
    })
}

fn headers_without_length(call: &Value) -> Value {
    let mut headers = call.get("request_headers").cloned().unwrap_or(Value::Null);
    if let Value::Object(map) = &mut headers {
        map.remove("content-length");
    }
    headers
}

struct Versions {
    dockerd: String,
    api: String,
    cli: String,
}

fn versions(d: &Dockerd) -> Versions {
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

fn record_action(action: &Action, out_dir: &Path, raw: Option<&Path>) -> Result<Fixture, String> {
    let temp = tempfile::Builder::new()
        .prefix("dps-record-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let t = Instant::now();
    let mut d = Dockerd::start()?;
    eprintln!("  dockerd up in {:.1}s", t.elapsed().as_secs_f64());
    let dockerd_pid = fs::read_to_string(d.root().join("pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    if dockerd_pid.is_none() {
        eprintln!("  warning: no dockerd pid file; calls are not filtered by peer");
    }
    let versions = versions(&d);
    if action.image {
        d.import_busybox(IMAGE)?;
    }
    let mut plugins = action
        .plugins
        .iter()
        .map(|spec| RunningPlugin::new(spec, temp.path()))
        .collect::<Result<Vec<_>, _>>()?;

    let mut run_all = |commands: &[&[&str]]| -> Result<Vec<RawStep>, String> {
        commands
            .iter()
            .map(|args| run_step(&d, dockerd_pid, &mut plugins, temp.path(), args))
            .collect()
    };
    let setup = run_all(action.setup);
    let steps = setup.and_then(|setup| Ok((setup, run_all(action.commands)?)));
    // dockerd first (removing containers may unmount), then the plugins.
    d.stop();
    for plugin in &mut plugins {
        if let Some(mut process) = plugin.process.take() {
            let _ = process.terminate();
        }
    }
    if let Some(raw) = raw {
        fs::create_dir_all(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
        for plugin in &plugins {
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

    let mut paths: Vec<(String, String)> = plugins
        .iter()
        .map(|p| (p.root.display().to_string(), "<root>".to_owned()))
        .collect();
    paths.push((temp.path().display().to_string(), "<tmp>".to_owned()));
    paths.push((d.root().display().to_string(), "<dockerd-root>".to_owned()));
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
                phase.calls.push(Call {
                    command: i,
                    plugin: plugins[index].name.clone(),
                    method: text("method"),
                    request: norm.value(field("request")),
                    response: norm.value(field("response")),
                    status: call.get("status").and_then(Value::as_u64).unwrap_or(0),
                    request_body: norm.text(&text("request_body")),
                    response_body: norm.text(&text("response_body")),
                    http_method: Some(text("http_method")).filter(|m| m != "POST"),
                    request_headers: (headers != common_headers).then(|| norm.value(headers)),
                });
            }
            phase.results.push(Outcome {
                exit_code: step.exit_code,
                stdout: norm.text(&step.stdout),
                stderr: norm.text(&step.stderr),
            });
        }
        phase
    };
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
        plugins: plugins
            .iter()
            .map(|p| PluginInfo {
                name: p.name.clone(),
                capabilities: p.capabilities,
                bare_get: p.bare_get,
            })
            .collect(),
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

// ---------------------------------------------------------------------------------------
// The README summary.

const BEGIN: &str = "<!-- BEGIN GENERATED by examples/record_sequences.rs -->";
const END: &str = "<!-- END GENERATED -->";

/// `Get`, `Capabilities 404`, `Get Err`, `List[other-plugin]`: a call as the summary
/// shows it.
fn short(call: &Call, primary: &str) -> String {
    let name = call
        .method
        .rsplit('.')
        .next()
        .unwrap_or(&call.method)
        .to_owned();
    let name = if call.plugin != primary {
        format!("{name}[{}]", call.plugin)
    } else {
        name
    };
    let failed = call.response.get("Err").is_some_and(|e| e != "");
    match (call.status, failed) {
        (200, false) => name,
        (200, true) => format!("{name} Err"),
        (status, _) => format!("{name} {status}"),
    }
}

fn summarize(phase_commands: &[String], calls: &[Call], primary: &str) -> String {
    phase_commands
        .iter()
        .enumerate()
        .map(|(i, command)| {
            let seq: Vec<String> = calls
                .iter()
                .filter(|c| c.command == i)
                .map(|call| short(call, primary))
                .collect();
            let seq = if seq.is_empty() {
                "(none)".to_owned()
            } else {
                seq.join(" → ")
            };
            format!("`{command}`: {seq}")
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn write_summary(out_dir: &Path, fixtures: &[Fixture]) -> Result<(), String> {
    let Some(first) = fixtures.first() else {
        return Ok(());
    };
    let mut generated = format!(
        "{BEGIN}\n\nRecorded from dockerd {} (API {}) with docker CLI {}.\n\n\
         | action | setup | calls per command |\n|---|---|---|\n",
        first.dockerd_version, first.api_version, first.docker_cli_version
    );
    for f in fixtures {
        let primary = f.plugins.first().map_or("", |p| p.name.as_str());
        let setup = if f.setup.commands.is_empty() {
            "".to_owned()
        } else {
            summarize(&f.setup.commands, &f.setup.calls, primary)
        };
        generated.push_str(&format!(
            "| `{}` | {} | {} |\n",
            f.action,
            setup,
            summarize(&f.commands, &f.calls, primary)
        ));
    }
    generated.push('\n');
    generated.push_str(END);

    let readme = out_dir.join("README.md");
    let text = match fs::read_to_string(&readme) {
        Ok(old) => match (old.find(BEGIN), old.find(END)) {
            (Some(b), Some(e)) if b < e => {
                format!("{}{generated}{}", &old[..b], &old[e + END.len()..])
            }
            _ => format!("{}\n{generated}\n", old.trim_end()),
        },
        Err(_) => format!("# dockerd call sequences\n\n{generated}\n"),
    };
    fs::write(&readme, text).map_err(|e| format!("{}: {e}", readme.display()))
}

// ---------------------------------------------------------------------------------------

struct Options {
    only: Option<Vec<String>>,
    out: PathBuf,
    isolate: bool,
    list: bool,
    raw: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        only: None,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerd-sequences"),
        isolate: true,
        list: false,
        raw: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--only" => {
                options.only = Some(value()?.split(',').map(str::to_owned).collect());
            }
            "--out" => options.out = PathBuf::from(value()?),
            "--no-isolate" => options.isolate = false,
            "--list" => options.list = true,
            "--raw" => options.raw = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                return Err(
                    "usage: record_sequences [--only A,B] [--out DIR] [--list] [--no-isolate] \
                     [--raw DIR]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if let Some(only) = &options.only {
        for name in only {
            if !ACTIONS.iter().any(|a| a.name == name) {
                return Err(format!("unknown action {name:?} (see --list)"));
            }
        }
    }
    Ok(options)
}

/// Runs this program again inside a private mount namespace; returns its exit code.
fn reexec_isolated(recorder: &Path) -> Result<ExitCode, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(ISOLATED_ENV, "1")
        .env(RECORDER_ENV, recorder)
        .status()
        .map_err(|e| format!("cannot run unshare (use --no-isolate to skip it): {e}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// Inside the namespace: empty plugin directories, private to this process tree.
fn hide_other_plugins() -> Result<(), String> {
    fs::create_dir_all(SOCKET_DIR).map_err(|e| format!("{SOCKET_DIR}: {e}"))?;
    for dir in std::iter::once(&SOCKET_DIR).chain(SPEC_DIRS) {
        if !Path::new(dir).is_dir() {
            continue;
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0700", "dps-record", dir])
            .status()
            .map_err(|e| format!("running mount: {e}"))?;
        if !status.success() {
            return Err(format!("mounting a tmpfs over {dir} failed ({status})"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("record_sequences: {message}");
            return ExitCode::from(2);
        }
    };
    if options.list {
        for action in ACTIONS {
            println!("{}: {}", action.name, action.description);
        }
        return ExitCode::SUCCESS;
    }
    if options.isolate && std::env::var_os(ISOLATED_ENV).is_none() {
        // Build the plugin once, before entering the namespace.
        let recorder = example_binary("recorder");
        return reexec_isolated(&recorder).unwrap_or_else(|message| {
            eprintln!("record_sequences: {message}");
            ExitCode::FAILURE
        });
    }
    if options.isolate
        && let Err(message) = hide_other_plugins()
    {
        eprintln!("record_sequences: {message}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = fs::create_dir_all(&options.out) {
        eprintln!("record_sequences: {}: {e}", options.out.display());
        return ExitCode::FAILURE;
    }

    let started = Instant::now();
    let mut fixtures = Vec::new();
    let mut failed = false;
    for action in ACTIONS {
        if let Some(only) = &options.only
            && !only.iter().any(|name| name == action.name)
        {
            continue;
        }
        eprintln!("== {}", action.name);
        let t = Instant::now();
        match record_action(action, &options.out, options.raw.as_deref()) {
            Ok(fixture) => {
                eprintln!(
                    "   {} calls, {:.1}s",
                    fixture.calls.len(),
                    t.elapsed().as_secs_f64()
                );
                fixtures.push(fixture);
            }
            Err(message) => {
                eprintln!("   FAILED: {message}");
                failed = true;
            }
        }
    }
    // The table lists every action, so only a complete run rewrites it.
    if options.only.is_none()
        && !failed
        && let Err(message) = write_summary(&options.out, &fixtures)
    {
        eprintln!("record_sequences: {message}");
        failed = true;
    }
    eprintln!(
        "recorded {} action(s) into {} in {:.0}s",
        fixtures.len(),
        options.out.display(),
        started.elapsed().as_secs_f64()
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
