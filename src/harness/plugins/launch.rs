//! Starting a managed plugin's process the way dockerd (through containerd and runc)
//! does, as far as the plugin can tell: its entrypoint and args, `PATH` plus its
//! settings' env, its working dir, its rootfs as `/`, and the host dir
//! `<exec-root>/plugins/<id>` bound onto `/run/docker/plugins` so the socket it
//! creates there appears where the engine dials it.
//!
//! The process gets a private mount namespace (a user namespace too when the harness
//! is not root), with the host's mounts as slaves so nothing it mounts leaks out:
//!
//! - **rootfs mode**, when the entrypoint is a file inside the rootfs: `/dev`, `/proc`
//!   and `/sys` of the host are bound in, then the config's `mounts` (binds), the
//!   socket dir, and `<plugin dir>/propagated-mount` onto `PropagatedMount`; then
//!   `chroot`.
//! - **host mode**, when the entrypoint is an absolute path that is not in the rootfs
//!   but exists on the host (a plugin binary fresh from `cargo build`): no chroot;
//!   only the socket dir is bound onto `/run/docker/plugins`.
//!
//! Knowing differences from runc: no new PID, network, IPC or UTS namespaces (the
//! plugin runs as if `pidhost`, `ipchost` and `network: host` were set), no
//! capability or device filtering, no cgroups, and mounts the plugin makes under its
//! propagated mount are not propagated back to the host (files it writes there are
//! visible, FUSE mounts are not). Like dockerd, `User` is not applied: the plugin
//! runs as the harness's user (root, or root of its user namespace). A host-mode
//! plugin on a host without `/run/docker/plugins` gets a private tmpfs on `/run`.
//!
//! Every line the plugin writes to stdout or stderr is kept and logged through
//! `tracing` with `plugin=<id>`, as dockerd logs it.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{chdir, chroot};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::harness::error::HarnessError;
use crate::managed::bundle::resolve_in_rootfs;
use crate::managed::config::PluginConfig;

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
    /// Where the entrypoint runs from, decided once by [`LaunchSpec::new`].
    pub(crate) mode: LaunchMode,
}

/// Where the entrypoint runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchMode {
    /// Inside the rootfs, with `chroot`.
    Rootfs,
    /// A host binary, without `chroot`.
    Host,
}

impl LaunchSpec {
    /// Everything needed to start plugin `id`, with its [`LaunchMode`]: rootfs mode
    /// when the entrypoint is in the rootfs, host mode when it is an existing absolute
    /// host path, else an error naming both places looked at.
    pub(crate) fn new(
        id: String,
        rootfs: PathBuf,
        socket_dir: PathBuf,
        propagated_source: PathBuf,
        config: PluginConfig,
    ) -> Result<Self, HarnessError> {
        let fail = |problem| HarnessError::EnableFailed {
            id: id.clone(),
            problem,
        };
        let Some(program) = config.entrypoint.first() else {
            return Err(fail("config.json has an empty entrypoint".into()));
        };
        // Resolved as the plugin will see it after chroot: an absolute symlink in the
        // rootfs (`/bin/sh -> /bin/busybox`) points into the rootfs, not the host.
        let inside = resolve_in_rootfs(&rootfs, program)
            .unwrap_or_else(|_| rootfs.join(program.trim_start_matches('/')));
        let mode = if inside.is_file() {
            LaunchMode::Rootfs
        } else if program.starts_with('/') && Path::new(program).is_file() {
            LaunchMode::Host
        } else {
            return Err(fail(format!(
                "entrypoint {program:?} is neither in the rootfs ({}) nor an absolute host path",
                inside.display()
            )));
        };
        Ok(Self {
            id,
            rootfs,
            socket_dir,
            propagated_source,
            config,
            mode,
        })
    }

    fn fail(&self, problem: String) -> HarnessError {
        HarnessError::EnableFailed {
            id: self.id.clone(),
            problem,
        }
    }

    /// The command that starts the plugin: entrypoint and args, `PATH` and the
    /// settings' env, its own process group, and the namespace setup run between
    /// fork and exec.
    fn command(&self) -> Result<std::process::Command, HarnessError> {
        let mode = self.mode;
        let plan = MountPlan::new(self, mode)?;
        let config = &self.config;
        let mut command = std::process::Command::new(&config.entrypoint[0]);
        command
            .args(&config.entrypoint[1..])
            .args(&config.args.value)
            .env_clear()
            .stdin(Stdio::null())
            // Its own process group, so stopping it reaches every process it started.
            .process_group(0);
        command.env("PATH", PLUGIN_PATH);
        for env in &config.env {
            if let Some(value) = &env.value {
                command.env(&env.name, value);
            }
        }
        // SAFETY: the closure runs in the child between fork and exec and only makes
        // system calls on data prepared before the fork (no allocation, no locks).
        unsafe {
            command.pre_exec(move || plan.enter());
        }
        Ok(command)
    }

    /// Starts the process; its output lines go to `logs`.
    pub(crate) fn spawn(&self, logs: &LogLines) -> Result<Child, HarnessError> {
        let config = &self.config;
        let mut command = Command::from(self.command()?);
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| self.fail(spawn_problem(&config.entrypoint[0], self.mode, &e)))?;
        if let Some(out) = child.stdout.take() {
            forward_lines(out, Stream::Stdout, self.id.clone(), Arc::clone(logs));
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, Stream::Stderr, self.id.clone(), Arc::clone(logs));
        }
        Ok(child)
    }
}

/// The command that runs the managed plugin whose rootfs is `rootfs` and whose
/// config is `config` exactly as the harness runs it from its own copy of a bundle
/// (rootfs mode: private mount namespace, `/dev`, `/proc`, `/sys`, the config's
/// binds, `socket_dir` on `/run/docker/plugins`, `propagated_source` on the
/// propagated mount, `chroot`; `PATH` and the config's env; its own process group):
/// entrypoint and args from `config`. Missing mount targets are created in
/// `rootfs`, so give it a copy. Used by `cargo docker-plugin package --verify`
/// (each program's version flag as the entrypoint) and `doctor`.
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
    if config.entrypoint.is_empty() {
        return Err(HarnessError::EnableFailed {
            id: String::new(),
            problem: "config.json has an empty entrypoint".into(),
        });
    }
    LaunchSpec {
        id: String::new(),
        rootfs: rootfs.to_path_buf(),
        socket_dir: socket_dir.to_path_buf(),
        propagated_source: propagated_source.to_path_buf(),
        config: config.clone(),
        mode: LaunchMode::Rootfs,
    }
    .command()
}

/// What a failed start means. The error of the child's setup (namespaces, mounts,
/// chroot) reaches the parent as a bare errno, so the likely step is named here.
fn spawn_problem(program: &str, mode: LaunchMode, err: &std::io::Error) -> String {
    let hint = match err.raw_os_error() {
        Some(libc_eperm) if libc_eperm == nix::errno::Errno::EPERM as i32 => {
            if nix::unistd::geteuid().is_root() {
                " (a mount of the plugin's namespace was refused)"
            } else {
                " (without root the plugin needs an unprivileged user namespace: check \
                 /proc/sys/user/max_user_namespaces and kernel.unprivileged_userns_clone, \
                 or run as root)"
            }
        }
        Some(enoent) if enoent == nix::errno::Errno::ENOENT as i32 => match mode {
            LaunchMode::Rootfs => {
                " (inside the rootfs: the entrypoint or its dynamic loader or libraries are missing)"
            }
            LaunchMode::Host => " (the entrypoint or a mount source is missing)",
        },
        _ => "",
    };
    format!("starting {program:?}: {err}{hint}")
}

fn forward_lines(
    reader: impl AsyncRead + Unpin + Send + 'static,
    stream: Stream,
    plugin_id: String,
    logs: LogLines,
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
            logs.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(PluginLogLine {
                    plugin_id: plugin_id.clone(),
                    stream,
                    line,
                });
        }
    });
}

/// One bind mount, its paths as C strings made before the fork.
#[derive(Debug)]
struct Bind {
    source: CString,
    target: CString,
    recursive: bool,
    read_only: bool,
    /// The source mount's nosuid/nodev/noexec/atime flags, kept on a read-only
    /// remount (they are locked in a user namespace, and dropping them as root would
    /// weaken the bind).
    kept_flags: MsFlags,
}

/// The flags of the mount `path` is on that a bind remount must repeat.
fn mount_flags_of(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let Ok(stat) = statvfs(path) else {
        return MsFlags::empty();
    };
    let flags = stat.flags();
    let mut kept = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if flags.contains(fs) {
            kept |= ms;
        }
    }
    kept
}

/// The namespace setup of the child, prepared in the parent.
#[derive(Debug)]
struct MountPlan {
    user_ns: Option<UserMaps>,
    /// Mount a tmpfs on `/run` and create `/run/docker/plugins` in it (host mode on a
    /// host without that dir).
    run_tmpfs: bool,
    binds: Vec<Bind>,
    chroot: Option<CString>,
    workdir: CString,
}

/// `/proc/self/{setgroups,uid_map,gid_map}` contents for an unprivileged harness.
#[derive(Debug)]
struct UserMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

fn c_path(path: impl AsRef<OsStr>) -> Result<CString, HarnessError> {
    CString::new(path.as_ref().as_bytes()).map_err(|_| HarnessError::Io {
        action: format!("path {:?}", path.as_ref()),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "contains a NUL byte"),
    })
}

/// Creates `path` (a dir, or an empty file when `file`) if missing, so a bind has a
/// target; `path` was resolved inside the harness's own copy of the rootfs.
fn ensure_target(path: &Path, file: bool) -> Result<(), HarnessError> {
    if path.exists() {
        return Ok(());
    }
    let created = if file {
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(path).map(drop))
    } else {
        std::fs::create_dir_all(path)
    };
    created.map_err(|e| HarnessError::io(format!("creating {}", path.display()), e))
}

impl MountPlan {
    fn new(spec: &LaunchSpec, mode: LaunchMode) -> Result<Self, HarnessError> {
        let config = &spec.config;
        let mut binds = Vec::new();
        let mut run_tmpfs = false;
        let mut bind = |source: &Path, target: PathBuf, recursive, read_only| {
            if mode == LaunchMode::Rootfs {
                ensure_target(&target, source.is_file())?;
            }
            binds.push(Bind {
                source: c_path(source)?,
                target: c_path(&target)?,
                recursive,
                read_only,
                kept_flags: if read_only {
                    mount_flags_of(source)
                } else {
                    MsFlags::empty()
                },
            });
            Ok::<(), HarnessError>(())
        };
        let chroot = match mode {
            LaunchMode::Rootfs => {
                // Bind targets as the plugin sees them: symlinks in the rootfs are
                // followed inside it, never onto the host.
                let inside = |path: &str| {
                    resolve_in_rootfs(&spec.rootfs, path).map_err(|e| {
                        HarnessError::io(format!("resolving {path} in the plugin's rootfs"), e)
                    })
                };
                for dir in ["/dev", "/proc", "/sys"] {
                    bind(Path::new(dir), inside(dir)?, true, false)?;
                }
                // dockerd passes every mount to runc; the harness does binds only.
                for m in config
                    .mounts
                    .iter()
                    .filter(|m| m.r#type.is_empty() || m.r#type == "bind")
                {
                    let Some(source) = m.source.as_deref().filter(|s| !s.is_empty()) else {
                        continue;
                    };
                    let read_only = m.options.iter().any(|o| o == "ro");
                    let recursive = m.options.iter().any(|o| o == "rbind");
                    bind(
                        Path::new(source),
                        inside(&m.destination)?,
                        recursive,
                        read_only,
                    )?;
                }
                bind(
                    &spec.socket_dir,
                    inside(crate::transport::DEFAULT_SOCKET_DIR)?,
                    false,
                    false,
                )?;
                if !config.propagated_mount.is_empty() {
                    bind(
                        &spec.propagated_source,
                        inside(&config.propagated_mount)?,
                        false,
                        false,
                    )?;
                }
                Some(c_path(&spec.rootfs)?)
            }
            LaunchMode::Host => {
                // Nothing is created on the host: without /run/docker/plugins there,
                // the plugin gets a private tmpfs on /run holding it.
                if !Path::new(crate::transport::DEFAULT_SOCKET_DIR).is_dir() {
                    run_tmpfs = true;
                }
                bind(
                    &spec.socket_dir,
                    PathBuf::from(crate::transport::DEFAULT_SOCKET_DIR),
                    false,
                    false,
                )?;
                None
            }
        };
        let workdir = if config.work_dir.is_empty() {
            "/"
        } else {
            &config.work_dir
        };
        let uid = nix::unistd::geteuid();
        let user_ns = (!uid.is_root()).then(|| UserMaps {
            uid_map: format!("0 {uid} 1").into_bytes(),
            gid_map: format!("0 {} 1", nix::unistd::getegid()).into_bytes(),
        });
        Ok(Self {
            user_ns,
            run_tmpfs,
            binds,
            chroot,
            workdir: c_path(workdir)?,
        })
    }

    /// Runs in the child: namespaces, mounts, chroot, chdir. System calls only.
    fn enter(&self) -> std::io::Result<()> {
        let mut flags = CloneFlags::CLONE_NEWNS;
        if self.user_ns.is_some() {
            flags |= CloneFlags::CLONE_NEWUSER;
        }
        unshare(flags)?;
        if let Some(maps) = &self.user_ns {
            write_proc(c"/proc/self/setgroups", b"deny")?;
            write_proc(c"/proc/self/uid_map", &maps.uid_map)?;
            write_proc(c"/proc/self/gid_map", &maps.gid_map)?;
        }
        // Host mounts reach the plugin; nothing mounted here reaches the host.
        mount(
            None::<&std::ffi::CStr>,
            c"/",
            None::<&std::ffi::CStr>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&std::ffi::CStr>,
        )?;
        if self.run_tmpfs {
            mount(
                Some(c"tmpfs"),
                c"/run",
                Some(c"tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(c"mode=755"),
            )?;
            let mode = nix::sys::stat::Mode::from_bits_truncate(0o755);
            nix::unistd::mkdir(c"/run/docker", mode)?;
            nix::unistd::mkdir(c"/run/docker/plugins", mode)?;
        }
        for bind in &self.binds {
            let mut flags = MsFlags::MS_BIND;
            if bind.recursive {
                flags |= MsFlags::MS_REC;
            }
            mount(
                Some(bind.source.as_c_str()),
                bind.target.as_c_str(),
                None::<&std::ffi::CStr>,
                flags,
                None::<&std::ffi::CStr>,
            )?;
            if bind.read_only {
                mount(
                    None::<&std::ffi::CStr>,
                    bind.target.as_c_str(),
                    None::<&std::ffi::CStr>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | bind.kept_flags,
                    None::<&std::ffi::CStr>,
                )?;
            }
        }
        if let Some(root) = &self.chroot {
            chroot(root.as_c_str())?;
        }
        chdir(self.workdir.as_c_str())?;
        Ok(())
    }
}

fn write_proc(path: &std::ffi::CStr, contents: &[u8]) -> std::io::Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    nix::unistd::write(&fd, contents)?;
    Ok(())
}
