//! Starting a managed plugin's process the way dockerd does through containerd and
//! runc, as far as the plugin can tell: its entrypoint and the settings' args, `PATH`
//! plus the settings' env (and `HOME`, as runc adds it), its working dir, and the
//! container dockerd's OCI spec describes (moby v20.10.24 `plugin/v2/plugin_linux.go`
//! `InitSpec`, `oci/defaults.go`, `plugin/manager_linux.go` `enable`):
//!
//! - **namespaces**: mount, UTS, IPC (unless `ipcHost`), PID (unless `pidHost`; the
//!   plugin is PID 1) and network (unless `network.type` is `host`; only `lo`, up);
//!   a user namespace too when the harness is not root;
//! - **capabilities**: Docker's 14 defaults plus `linux.capabilities` ([`caps`]);
//! - **filesystems** ([`plan`], carried out by [`steps`]): the rootfs as `/`
//!   (`pivot_root`), after dockerd's init layer ([`initlayer`]); `/proc`; a tmpfs
//!   `/dev` with runc's nodes plus the settings' devices (the host's `/dev` with
//!   `allowAllDevices`; [`dev`]); `/sys` read-only; the config's mounts;
//!   `<exec-root>/plugins/<id>` on `/run/docker/plugins` (`rshared`); `<plugin
//!   dir>/propagated-mount` on `PropagatedMount` (`rshared`, so mounts the plugin makes
//!   there reach the host); the host's `/etc/hosts` and `/etc/resolv.conf` read-only
//!   when `network.type` is set;
//! - **lifetime** ([`shim`]): a shim between the harness and the plugin, so that
//!   nothing the plugin starts outlives it, and the plugin dies with the harness.
//!
//! [`LaunchMode::Host`], chosen explicitly, runs a host binary instead: the same
//! namespaces, capabilities, `/dev`, `/proc` and `/sys`, but the host's filesystem
//! (made a slave: what the plugin mounts stays private to it) instead of a rootfs,
//! with only the socket dir bound. An entrypoint that is not found fails as runc
//! fails (`exec: "/x": stat /x: no such file or directory`).
//!
//! Not reproduced: cgroups (the device cgroup, `/sys/fs/cgroup`), seccomp and
//! AppArmor (dockerd sets none for plugins), `User` (dockerd does not apply it
//! either: the plugin is root, of the user namespace when the harness is not root).
//! Without root, device nodes are bound from the host and mounts do not propagate
//! back to the host (files written under the propagated mount do).
//!
//! Every line the plugin writes to stdout or stderr is kept and logged through
//! `tracing` with `plugin=<id>`, as dockerd logs it.

mod caps;
mod dev;
mod initlayer;
mod plan;
mod shim;
mod steps;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::harness::error::HarnessError;
use crate::managed::bundle::resolve_in_rootfs;
use crate::managed::config::PluginConfig;
use crate::managed::settings::Settings;
use plan::ContainerPlan;
pub(crate) use plan::go_io_error;

/// dockerd's `PATH` for plugin processes (moby's `system.DefaultPathEnv`).
pub const PLUGIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which stream a plugin log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line a managed plugin printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLogLine {
    /// The plugin ID (dockerd logs it as `plugin=<id>`).
    pub plugin_id: String,
    /// Where it was printed.
    pub stream: Stream,
    /// The line, without its newline.
    pub line: String,
}

impl std::fmt::Display for PluginLogLine {
    /// The line as dockerd logs it, without the time:
    /// `level=info msg="…" plugin=<id>` (stdout), `level=error …` (stderr).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.stream {
            Stream::Stdout => "info",
            Stream::Stderr => "error",
        };
        write!(
            f,
            "level={level} msg={:?} plugin={}",
            self.line, self.plugin_id
        )
    }
}

/// The lines a plugin printed, shared with the reader tasks.
pub(crate) type LogLines = Arc<Mutex<Vec<PluginLogLine>>>;

/// Everything needed to start one plugin process.
#[derive(Debug, Clone)]
pub(crate) struct LaunchSpec {
    pub(crate) id: String,
    pub(crate) rootfs: PathBuf,
    pub(crate) socket_dir: PathBuf,
    pub(crate) propagated_source: PathBuf,
    pub(crate) config: PluginConfig,
    pub(crate) settings: Settings,
    pub(crate) mode: LaunchMode,
    /// Mounts the subsystems add for the plugin's type (the engine's metrics socket).
    pub(crate) runtime_mounts: Vec<crate::managed::config::Mount>,
    /// Run each time the plugin's socket comes up.
    pub(crate) on_start: super::hooks::StartHandlers,
}

/// A plugin's directories on the host.
#[derive(Debug, Clone)]
pub(crate) struct PluginDirs {
    /// `<data-root>/plugins/<id>/rootfs`.
    pub(crate) rootfs: PathBuf,
    /// `<exec-root>/<id>`, bound onto `/run/docker/plugins`.
    pub(crate) socket_dir: PathBuf,
    /// `<data-root>/plugins/<id>/propagated-mount`.
    pub(crate) propagated_source: PathBuf,
}

/// Where a managed plugin's entrypoint comes from: chosen when the plugin is created
/// ([`Plugins::create_as`](super::Plugins::create_as)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LaunchMode {
    /// From the bundle's rootfs, which becomes the plugin's `/`: what dockerd does.
    /// An entrypoint missing from the rootfs fails the enable as dockerd fails it.
    #[default]
    Rootfs,
    /// A binary of the host (e.g. fresh from `cargo build`), run in the plugin's
    /// namespaces but on the host's filesystem: a shortcut for development, opted
    /// into explicitly. Paths the plugin answers are host paths.
    Host,
}

/// How dockerd reports a container runc could not start.
fn runc_error(problem: &str) -> HarnessError {
    HarnessError::Runtime {
        message: format!(
            "failed to create shim task: OCI runtime create failed: runc create failed: \
             unable to start container process: {problem}: unknown"
        ),
    }
}

impl LaunchSpec {
    /// Everything needed to start plugin `id` in `mode`.
    pub(crate) fn new(
        id: String,
        dirs: PluginDirs,
        config: PluginConfig,
        settings: Settings,
        mode: LaunchMode,
    ) -> Self {
        Self {
            id,
            rootfs: dirs.rootfs,
            socket_dir: dirs.socket_dir,
            propagated_source: dirs.propagated_source,
            config,
            settings,
            mode,
            runtime_mounts: Vec::new(),
            on_start: super::hooks::StartHandlers::default(),
        }
    }

    fn fail(&self, problem: String) -> HarnessError {
        HarnessError::EnableFailed {
            id: self.id.clone(),
            problem,
        }
    }

    /// runc's `exec.LookPath` of the entrypoint in the plugin's root, with Go's words.
    fn look_path(&self) -> Result<(), HarnessError> {
        let Some(program) = self.config.entrypoint.first() else {
            return Err(runc_error("exec: \"\": executable file not found in $PATH"));
        };
        let root = match self.mode {
            LaunchMode::Rootfs => self.rootfs.as_path(),
            LaunchMode::Host => Path::new("/"),
        };
        let find = |path: &str| -> Result<(), String> {
            let host = resolve_in_rootfs(root, path).map_err(|e| go_io_error(&e))?;
            let meta = std::fs::metadata(&host)
                .map_err(|e| format!("stat {path}: {}", go_io_error(&e)))?;
            use std::os::unix::fs::PermissionsExt;
            if !meta.is_dir() && meta.permissions().mode() & 0o111 != 0 {
                Ok(())
            } else {
                Err("permission denied".into())
            }
        };
        let found = if program.contains('/') {
            let path = if program.starts_with('/') {
                program.clone()
            } else {
                format!("{}/{program}", self.workdir())
            };
            find(&path)
        } else {
            let path_env = self
                .settings
                .env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(PLUGIN_PATH);
            path_env
                .split(':')
                .map(|dir| if dir.is_empty() { "." } else { dir })
                .find_map(|dir| find(&format!("{dir}/{program}")).ok())
                .ok_or_else(|| "executable file not found in $PATH".to_owned())
        };
        found.map_err(|err| runc_error(&format!("exec: {program:?}: {err}")))
    }

    /// runc's `HOME` when the env has none: root's home in the plugin's
    /// `/etc/passwd`, else `/`.
    fn home(&self) -> String {
        let root = match self.mode {
            LaunchMode::Rootfs => self.rootfs.as_path(),
            LaunchMode::Host => Path::new("/"),
        };
        resolve_in_rootfs(root, "/etc/passwd")
            .and_then(std::fs::read_to_string)
            .ok()
            .and_then(|passwd| {
                passwd.lines().find_map(|line| {
                    let fields: Vec<&str> = line.split(':').collect();
                    (fields.len() >= 6 && fields[2] == "0").then(|| fields[5].to_owned())
                })
            })
            .filter(|home| !home.is_empty())
            .unwrap_or_else(|| "/".to_owned())
    }

    fn workdir(&self) -> &str {
        if self.config.work_dir.is_empty() {
            "/"
        } else {
            &self.config.work_dir
        }
    }

    /// Prepares the rootfs (dockerd's init layer) and plans the container.
    fn prepare(&self) -> Result<ContainerPlan, HarnessError> {
        self.look_path()?;
        let parent = match self.mode {
            LaunchMode::Rootfs => {
                initlayer::setup(&self.rootfs).map_err(|e| {
                    HarnessError::io(
                        format!("setting up the init layer in {}", self.rootfs.display()),
                        e,
                    )
                })?;
                super::mounts::mount_point_of(&self.rootfs)
            }
            LaunchMode::Host => PathBuf::from("/"),
        };
        ContainerPlan::new(self, &parent)
    }

    /// The command that starts the plugin in its container: entrypoint and the
    /// settings' args, `PATH`, the settings' env and `HOME`, its own process group (the
    /// shim and the plugin), and the container set up between fork and exec, which
    /// reports a failed step on `report` (kept open by the command).
    fn command(&self, plan: ContainerPlan, report: OwnedFd) -> std::process::Command {
        let config = &self.config;
        let mut command = std::process::Command::new(&config.entrypoint[0]);
        command
            .args(&config.entrypoint[1..])
            .args(&self.settings.args)
            .env_clear()
            .stdin(Stdio::null())
            .process_group(0);
        command.env("PATH", PLUGIN_PATH);
        for env in &self.settings.env {
            match env.split_once('=') {
                Some((name, value)) => command.env(name, value),
                None => command.env(env, ""),
            };
        }
        if !self.settings.env.iter().any(|e| e.starts_with("HOME=")) {
            command.env("HOME", self.home());
        }
        // SAFETY: the closure runs in the child between fork and exec and only makes
        // system calls on data prepared before the fork (no allocation, no locks).
        unsafe {
            command.pre_exec(move || plan.enter(report.as_raw_fd()));
        }
        command
    }

    /// Starts the process; its output lines go to `logs` and `output`. Returns the
    /// shim (the harness's child) and the plugin's PID.
    pub(crate) fn spawn(
        &self,
        logs: &LogLines,
        output: &LogLines,
    ) -> Result<(Child, u32), HarnessError> {
        let plan = self.prepare()?;
        let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| HarnessError::io("creating a pipe", e.into()))?;
        let mut command = Command::from(self.command(plan, report_write));
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = command.spawn();
        // The report pipe's write end goes with the command: a read then ends.
        drop(command);
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => return Err(self.start_failure(&err, &report_read)),
        };
        let shim = child.id().unwrap_or_default();
        let plugin = plugin_pid(shim).unwrap_or(shim);
        let to = || [Arc::clone(logs), Arc::clone(output)];
        if let Some(out) = child.stdout.take() {
            forward_lines(out, Stream::Stdout, self.id.clone(), to());
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, Stream::Stderr, self.id.clone(), to());
        }
        Ok((child, plugin))
    }

    /// What a failed start means: the step the child reported, worded as runc does.
    fn start_failure(&self, err: &std::io::Error, report: &OwnedFd) -> HarnessError {
        let mut step = [0u8; 4];
        let _ = nix::fcntl::fcntl(
            report,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let reported =
            matches!(nix::unistd::read(report, &mut step), Ok(4)).then(|| u32::from_ne_bytes(step));
        let errno = go_io_error(err);
        let what = match reported {
            Some(shim::STEP_UNSHARE) => format!(
                "unsharing the plugin's namespaces: {errno}{}",
                userns_hint()
            ),
            Some(shim::STEP_USER_MAPS) => {
                format!("mapping the user namespace: {errno}{}", userns_hint())
            }
            Some(shim::STEP_FORK) => format!("starting the plugin: {errno}"),
            Some(shim::STEP_LOOPBACK) => format!("bringing up lo: {errno}"),
            Some(shim::STEP_WORKDIR) => format!(
                "chdir to cwd ({:?}) set in config.json failed: {errno}",
                self.workdir()
            ),
            Some(shim::STEP_CAPABILITIES) => format!("setting the capabilities: {errno}"),
            Some(i) => match plan_step_description(self, i) {
                Some(step) => format!("error during container init: {step}: {errno}"),
                None => errno,
            },
            // The exec itself failed (a missing dynamic loader or library).
            None => format!("exec {}: {errno}", self.config.entrypoint[0]),
        };
        match reported {
            Some(shim::STEP_UNSHARE | shim::STEP_USER_MAPS) => self.fail(what),
            _ => runc_error(&what),
        }
    }
}

/// The command that runs the managed plugin whose rootfs is `rootfs` and whose
/// config is `config` exactly as the harness runs it from its own copy of a bundle:
/// in the container dockerd's runc would give it (namespaces, capabilities, `/dev`,
/// the init layer, its mounts, `socket_dir` on `/run/docker/plugins`,
/// `propagated_source` on the propagated mount), entrypoint, args and env from
/// `config` with its default settings. The init layer and missing mount targets are
/// written into `rootfs`, so give it a copy. Used by `cargo docker-plugin package
/// --verify` (each program's version flag as the entrypoint) and `doctor`.
///
/// ```no_run
/// use docker_plugin_sdk::harness::rootfs_command;
/// use docker_plugin_sdk::managed::bundle::Bundle;
///
/// let bundle = Bundle::open("/tmp/copy-of-my-bundle")?;
/// let mut config = bundle.config().clone();
/// config.entrypoint = vec!["/usr/bin/ssh".into(), "-V".into()];
/// let output = rootfs_command(&bundle.rootfs(), &config, "/tmp/sock".as_ref(), "/tmp/prop".as_ref())?
///     .output()?;
/// assert!(output.status.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn rootfs_command(
    rootfs: &Path,
    config: &PluginConfig,
    socket_dir: &Path,
    propagated_source: &Path,
) -> Result<std::process::Command, HarnessError> {
    let spec = LaunchSpec::new(
        String::new(),
        PluginDirs {
            rootfs: rootfs.to_path_buf(),
            socket_dir: socket_dir.to_path_buf(),
            propagated_source: propagated_source.to_path_buf(),
        },
        config.clone(),
        Settings::new(config),
        LaunchMode::Rootfs,
    );
    let plan = spec.prepare()?;
    // Nobody reads which step failed here: the command's own error says it.
    let report = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| HarnessError::io("opening /dev/null", e))?;
    Ok(spec.command(plan, report.into()))
}

/// The description of step `i` of the plan (planned again: the child's copy is gone).
fn plan_step_description(spec: &LaunchSpec, i: u32) -> Option<String> {
    let parent = match spec.mode {
        LaunchMode::Rootfs => super::mounts::mount_point_of(&spec.rootfs),
        LaunchMode::Host => PathBuf::from("/"),
    };
    let plan = ContainerPlan::new(spec, &parent).ok()?;
    let text = plan.steps.get(i as usize).map(steps::Step::describe)?;
    // Paths as the plugin sees them (runc names the mount's destination).
    Some(match spec.mode {
        LaunchMode::Rootfs => text.replace(&format!("\"{}/", spec.rootfs.display()), "\"/"),
        LaunchMode::Host => text,
    })
}

fn userns_hint() -> &'static str {
    if nix::unistd::geteuid().is_root() {
        ""
    } else {
        " (without root the plugin needs an unprivileged user namespace: check \
         /proc/sys/user/max_user_namespaces and kernel.unprivileged_userns_clone, or run \
         as root)"
    }
}

/// The plugin's PID: the shim's only child.
fn plugin_pid(shim: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{shim}/task/{shim}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn forward_lines(
    reader: impl AsyncRead + Unpin + Send + 'static,
    stream: Stream,
    plugin_id: String,
    to: [LogLines; 2],
) {
    tokio::spawn(async move {
        // Bytes, not `lines()`: a line that is not UTF-8 must neither stop the reader
        // nor close the pipe (the plugin would then die of EPIPE / SIGPIPE).
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(plugin = %plugin_id, %err, "reading the plugin's output");
                    continue;
                }
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\n', '\r']).to_owned();
            // dockerd logs stdout at info and stderr at error, with `plugin=<id>`.
            match stream {
                Stream::Stdout => tracing::info!(plugin = %plugin_id, "{line}"),
                Stream::Stderr => tracing::error!(plugin = %plugin_id, "{line}"),
            }
            let line = PluginLogLine {
                plugin_id: plugin_id.clone(),
                stream,
                line,
            };
            for logs in &to {
                logs.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line.clone());
            }
        }
    });
}
