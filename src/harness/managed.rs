//! Managed ("v2") plugins: `docker plugin create / set / enable / disable / rm` as
//! dockerd's plugin manager does them (moby `plugin/manager.go`,
//! `plugin/backend_linux.go`, `plugin/manager_linux.go`, `plugin/v2/plugin.go`).
//!
//! - **create** takes a [`Bundle`] dir (what the packager writes): `config.json` decoded
//!   as dockerd decodes it, `rootfs/` copied into `<data-root>/plugins/<id>/rootfs`.
//!   Names are normalized as references (`localvol` is `localvol:latest`).
//! - **set** applies `docker plugin set` arguments to the config, only while disabled.
//! - **enable** starts the entrypoint ([`launch`](super::launch)), sleeps 500 ms, then
//!   dials `<socket-dir>/<id>/<Socket>` up to 4 times 3 s apart; a plugin that never
//!   listens is stopped and stays disabled. Managed plugins are **not** sent
//!   `/Plugin.Activate`: what they implement comes from `Interface.Types`. A plugin
//!   that exits while enabled is started again.
//! - **disable** is refused while the plugin is in use (a volume created through it
//!   holds a reference until removed, as dockerd's volume store does) unless forced;
//!   it stops the process with SIGTERM, then SIGKILL after 10 s.
//! - **rm** is refused while in use or enabled, unless forced.
//!
//! Volume drivers find a managed plugin before a legacy one of the same name, and the
//! mountpoints it answers are mapped to the host as dockerd's `ScopedPath` does: under
//! `PropagatedMount` to `<plugin dir>/propagated-mount/…`, anything else under its
//! rootfs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::oneshot;

use super::engine::{ActivePlugin, Engine};
use super::error::HarnessError;
use super::launch::{LaunchMode, LaunchSpec, LogLines, PluginLogLine};
use super::rpc::{PluginRpc, RetryPolicy};
use crate::client::Client;
use crate::managed::bundle::Bundle;
use crate::managed::config::{InterfaceType, PluginConfig, Privilege};

/// How dockerd waits for a freshly started plugin's socket (`pluginPostStart`):
/// sleep `first_wait`, then dial up to `attempts` times, `interval` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketProbe {
    /// Before the first dial (dockerd: 500 ms).
    pub first_wait: Duration,
    /// Between dials (dockerd: 3 s).
    pub interval: Duration,
    /// Dials before giving up (dockerd: 4).
    pub attempts: u32,
}

impl Default for SocketProbe {
    fn default() -> Self {
        Self {
            first_wait: Duration::from_millis(500),
            interval: Duration::from_secs(3),
            attempts: 4,
        }
    }
}

/// What the engine keeps per managed plugin.
#[derive(Debug)]
pub(crate) struct ManagedPlugin {
    id: String,
    name: String,
    dir: PathBuf,
    config: PluginConfig,
    refs: usize,
    /// Set while an enable is starting it: other lifecycle calls are refused.
    enabling: bool,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

/// State shared with the task that watches the plugin's process.
#[derive(Debug, Default)]
struct Shared {
    enabled: AtomicBool,
    pid: AtomicU32,
    active: Mutex<Option<Arc<ActivePlugin>>>,
    logs: LogLines,
}

impl Shared {
    /// The engine's handle on the running plugin, if any.
    fn active(&self) -> Option<Arc<ActivePlugin>> {
        self.active_slot().clone()
    }

    /// Puts (or, with `None`, takes away) the engine's handle on the plugin.
    fn set_active(&self, active: Option<Arc<ActivePlugin>>) {
        *self.active_slot() = active;
    }

    fn active_slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<ActivePlugin>>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lines printed so far.
    fn logs(&self) -> std::sync::MutexGuard<'_, Vec<PluginLogLine>> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A managed plugin as `docker plugin inspect` shows it.
#[derive(Debug, Clone)]
pub struct ManagedInfo {
    /// The 64-hex plugin ID.
    pub id: String,
    /// The normalized name, e.g. `localvol:latest`.
    pub name: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Its config, with `set` applied.
    pub config: PluginConfig,
    /// `<data-root>/plugins/<id>/rootfs`.
    pub rootfs: PathBuf,
    /// `<data-root>/plugins/<id>/propagated-mount`.
    pub propagated_mount: PathBuf,
    /// Where the engine dials it: `<socket-dir>/<id>/<Socket>`.
    pub socket: PathBuf,
    /// The process ID while it runs.
    pub pid: Option<u32>,
    /// References held by volumes created through it.
    pub refs: usize,
}

/// Where a managed plugin's paths are on the host (moby `Plugin.ScopedPath`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPaths {
    /// The plugin's rootfs on the host.
    pub rootfs: PathBuf,
    /// `PropagatedMount` inside the plugin (empty when none).
    pub propagated_mount: String,
    /// Where that is on the host: `<plugin dir>/propagated-mount`.
    pub propagated_source: PathBuf,
}

impl ScopedPaths {
    /// The host path of `path`, a path the plugin answered.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        let text = path.to_string_lossy();
        // moby compares as strings (`strings.HasPrefix`), and so does this.
        if !self.propagated_mount.is_empty()
            && let Some(rest) = text.strip_prefix(self.propagated_mount.as_str())
        {
            return self.propagated_source.join(rest.trim_start_matches('/'));
        }
        self.rootfs.join(text.trim_start_matches('/'))
    }
}

/// `localvol` → `localvol:latest`; a tag or digest already given is kept.
pub fn normalize_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// The subsystem name dockerd asks for, for an interface type's capability.
fn subsystem_of(ty: &InterfaceType) -> String {
    match ty.capability.as_str() {
        "volumedriver" => "VolumeDriver".into(),
        "networkdriver" => "NetworkDriver".into(),
        "ipamdriver" => "IpamDriver".into(),
        "logdriver" => "LogDriver".into(),
        "metricscollector" => "MetricsCollector".into(),
        other => other.into(),
    }
}

fn save_config(plugin_dir: &Path, config: &PluginConfig) -> Result<(), HarnessError> {
    std::fs::write(plugin_dir.join("config.json"), config.to_json_pretty()?)
        .map_err(|e| HarnessError::io("writing config.json", e))
}

/// Copies a rootfs: dirs, files and symlinks as they are (a dir's mode is applied
/// after its contents, so read-only dirs copy too). Sockets, fifos and device nodes
/// are left out: a rootfs has none that a plugin can use (`/dev` is bound from the
/// host).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())
}

impl ManagedPlugin {
    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    fn propagated_source(&self) -> PathBuf {
        self.dir.join("propagated-mount")
    }

    fn enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::SeqCst)
    }

    /// Writes the config (with the settings applied) to `<plugin dir>/config.json`,
    /// as dockerd keeps it.
    fn save_config(&self) -> Result<(), HarnessError> {
        save_config(&self.dir, &self.config)
    }

    fn check_not_enabling(&self) -> Result<(), HarnessError> {
        if self.enabling {
            return Err(HarnessError::PluginEnabling {
                name: self.name.clone(),
            });
        }
        Ok(())
    }

    fn info(&self, socket_dir: &Path) -> ManagedInfo {
        let pid = self.shared.pid.load(Ordering::SeqCst);
        ManagedInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            enabled: self.enabled(),
            config: self.config.clone(),
            rootfs: self.rootfs(),
            propagated_mount: self.propagated_source(),
            socket: socket_dir
                .join(&self.id)
                .join(&self.config.interface.socket),
            pid: (pid != 0).then_some(pid),
            refs: self.refs,
        }
    }
}

impl Engine {
    /// Where managed plugins' files go: the configured data root.
    fn data_root(&self) -> Result<&Path, HarnessError> {
        self.inner
            .config
            .data_root
            .as_deref()
            .ok_or(HarnessError::NoDataRoot)
    }

    fn managed_socket_dir(&self) -> &Path {
        &self.inner.config.discovery.socket_dir
    }

    /// Runs `f` on the managed plugin `name` (normalized).
    fn with_managed<R>(
        &self,
        name: &str,
        f: impl FnOnce(&mut ManagedPlugin) -> Result<R, HarnessError>,
    ) -> Result<R, HarnessError> {
        let name = normalize_name(name);
        let mut managed = self.managed();
        let plugin = managed
            .get_mut(&name)
            .ok_or_else(|| HarnessError::NoSuchPlugin { name: name.clone() })?;
        f(plugin)
    }

    pub(crate) fn managed(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ManagedPlugin>> {
        self.inner.managed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `docker plugin create NAME DIR`: a disabled plugin from the bundle in `dir`.
    /// Returns its ID.
    pub async fn plugin_create(
        &self,
        name: &str,
        dir: impl AsRef<Path>,
    ) -> Result<String, HarnessError> {
        let name = normalize_name(name);
        if self.managed().contains_key(&name) {
            return Err(HarnessError::PluginExists { name });
        }
        let bundle = Bundle::open(dir)?;
        let id = super::volumes::random_id();
        let plugin_dir = self.data_root()?.join("plugins").join(&id);
        let rootfs = bundle.rootfs();
        let config = bundle.into_config();
        let copied = plugin_dir.clone();
        let stored = tokio::task::spawn_blocking(move || {
            copy_tree(&rootfs, &copied.join("rootfs")).map_err(|e| {
                HarnessError::io(format!("copying the rootfs to {}", copied.display()), e)
            })?;
            std::fs::create_dir_all(copied.join("propagated-mount"))
                .map_err(|e| HarnessError::io("creating the propagated-mount dir", e))
        })
        .await
        .unwrap_or_else(|e| {
            Err(HarnessError::io(
                "copying the rootfs",
                std::io::Error::other(e),
            ))
        })
        .and_then(|()| save_config(&plugin_dir, &config));
        let mut managed = self.managed();
        let stored = stored.and_then(|()| {
            if managed.contains_key(&name) {
                Err(HarnessError::PluginExists { name: name.clone() })
            } else {
                Ok(())
            }
        });
        if let Err(err) = stored {
            // Nothing is left behind by a create that fails.
            let _ = std::fs::remove_dir_all(&plugin_dir);
            return Err(err);
        }
        managed.insert(
            name.clone(),
            ManagedPlugin {
                id: id.clone(),
                name,
                dir: plugin_dir,
                config,
                refs: 0,
                enabling: false,
                shared: Arc::default(),
                stop: None,
            },
        );
        Ok(id)
    }

    /// The privileges `docker plugin install` would ask for, in dockerd's order.
    pub fn plugin_privileges(&self, name: &str) -> Result<Vec<Privilege>, HarnessError> {
        self.with_managed(name, |p| Ok(p.config.privileges()))
    }

    /// `docker plugin set NAME key=value…`: only while disabled.
    pub fn plugin_set<I, S>(&self, name: &str, args: I) -> Result<(), HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.with_managed(name, |p| {
            if p.enabled() || p.enabling {
                return Err(HarnessError::SetWhileEnabled);
            }
            p.config.set(args)?;
            p.save_config()
        })
    }

    /// `docker plugin inspect NAME`.
    pub fn plugin_inspect(&self, name: &str) -> Result<ManagedInfo, HarnessError> {
        let socket_dir = self.managed_socket_dir().to_path_buf();
        self.with_managed(name, |p| Ok(p.info(&socket_dir)))
    }

    /// `docker plugin ls`, sorted by name.
    pub fn plugin_ls(&self) -> Vec<ManagedInfo> {
        let socket_dir = self.managed_socket_dir();
        self.managed()
            .values()
            .map(|p| p.info(socket_dir))
            .collect()
    }

    /// Every line the plugin printed on stdout and stderr, in order.
    pub fn plugin_logs(&self, name: &str) -> Result<Vec<PluginLogLine>, HarnessError> {
        self.with_managed(name, |p| Ok(p.shared.logs().clone()))
    }

    /// `docker plugin enable NAME`: starts it and waits for its socket.
    pub async fn plugin_enable(&self, name: &str) -> Result<(), HarnessError> {
        let (spec, shared, display) = self.with_managed(name, |p| {
            p.check_not_enabling()?;
            if p.enabled() {
                return Err(HarnessError::AlreadyEnabled {
                    name: p.name.clone(),
                });
            }
            let spec = LaunchSpec::new(
                p.id.clone(),
                p.rootfs(),
                self.managed_socket_dir().join(&p.id),
                p.propagated_source(),
                p.config.clone(),
            )?;
            p.enabling = true;
            Ok((spec, Arc::clone(&p.shared), p.name.clone()))
        })?;
        let started = self.start_enabled(spec, &shared, &display).await;
        let (stop, result) = match started {
            Ok(stop) => (Some(stop), Ok(())),
            Err(err) => (None, Err(err)),
        };
        self.with_managed(name, |p| {
            p.enabling = false;
            p.stop = stop;
            Ok(())
        })?;
        result
    }

    /// Starts an enabling plugin and its watcher; the sender stops it.
    async fn start_enabled(
        &self,
        spec: LaunchSpec,
        shared: &Arc<Shared>,
        display: &str,
    ) -> Result<oneshot::Sender<oneshot::Sender<()>>, HarnessError> {
        std::fs::create_dir_all(&spec.socket_dir)
            .map_err(|e| HarnessError::io(format!("creating {}", spec.socket_dir.display()), e))?;
        let socket = spec.socket_dir.join(&spec.config.interface.socket);
        let (dial, dir_handle) = dial_path(&spec.socket_dir, &socket)?;
        let probe = self.inner.config.socket_probe;
        // A host binary sees the host's paths; a rootfs plugin's are mapped.
        let scope = match spec.mode {
            LaunchMode::Rootfs => ScopedPaths {
                rootfs: spec.rootfs.clone(),
                propagated_mount: spec.config.propagated_mount.clone(),
                propagated_source: spec.propagated_source.clone(),
            },
            LaunchMode::Host => ScopedPaths {
                rootfs: PathBuf::from("/"),
                propagated_mount: String::new(),
                propagated_source: PathBuf::new(),
            },
        };
        let child = start_and_probe(&spec, shared, &dial, probe).await?;
        let active = Arc::new(ActivePlugin {
            rpc: PluginRpc::new(
                display,
                Client::unix(&dial),
                RetryPolicy::default(),
                self.calls().clone(),
            )
            .with_max_timeout(self.inner.config.plugin_timeout),
            implements: spec
                .config
                .interface
                .types
                .iter()
                .map(subsystem_of)
                .collect(),
            found: super::discovery::Found {
                name: display.to_owned(),
                addr: format!("unix://{}", socket.display()),
                path: socket.clone(),
                tls: None,
            },
            scope: Some(scope),
            _socket_dir: dir_handle.clone(),
        });
        shared.set_active(Some(active));
        shared.enabled.store(true, Ordering::SeqCst);
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(watch(
            child,
            spec,
            Arc::clone(shared),
            (dial, dir_handle),
            probe,
            stop_rx,
        ));
        Ok(stop_tx)
    }

    /// `docker plugin disable [-f] NAME`: refused while in use unless `force`.
    pub async fn plugin_disable(&self, name: &str, force: bool) -> Result<(), HarnessError> {
        let stop = self.with_managed(name, |p| {
            p.check_not_enabling()?;
            if !p.enabled() {
                return Err(HarnessError::AlreadyDisabled {
                    name: p.name.clone(),
                });
            }
            if !force && p.refs > 0 {
                return Err(HarnessError::PluginInUse {
                    name: p.name.clone(),
                });
            }
            p.shared.enabled.store(false, Ordering::SeqCst);
            p.shared.set_active(None);
            Ok(p.stop.take())
        })?;
        if let Some(stop) = stop {
            let (done_tx, done_rx) = oneshot::channel();
            if stop.send(done_tx).is_ok() {
                let _ = done_rx.await;
            }
        }
        Ok(())
    }

    /// `docker plugin rm [-f] NAME`: refused while in use or enabled unless `force`.
    pub async fn plugin_rm(&self, name: &str, force: bool) -> Result<(), HarnessError> {
        let enabled = self.with_managed(name, |p| {
            p.check_not_enabling()?;
            if !force {
                if p.refs > 0 {
                    return Err(HarnessError::PluginInUse {
                        name: p.name.clone(),
                    });
                }
                if p.enabled() {
                    return Err(HarnessError::PluginEnabled {
                        name: p.name.clone(),
                    });
                }
            }
            Ok(p.enabled())
        })?;
        if enabled {
            self.plugin_disable(name, true).await?;
        }
        let removed = self.managed().remove(&normalize_name(name));
        if let Some(plugin) = removed {
            let dir = plugin.dir.clone();
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir))
                .await
                .map_err(|e| HarnessError::io("removing the plugin", std::io::Error::other(e)))?
                .map_err(|e| HarnessError::io("removing the plugin's files", e))?;
            let socket_dir = self.managed_socket_dir().join(&plugin.id);
            let _ = std::fs::remove_dir_all(socket_dir);
        }
        Ok(())
    }

    /// The managed plugin `name` for `subsystem`: `Ok(None)` when there is none (look
    /// for a legacy one), an error when it is disabled or does not implement it.
    pub(crate) fn managed_plugin(
        &self,
        name: &str,
        subsystem: &str,
    ) -> Result<Option<Arc<ActivePlugin>>, HarnessError> {
        let managed = self.managed();
        let Some(plugin) = managed.get(&normalize_name(name)) else {
            return Ok(None);
        };
        let active = plugin.shared.active();
        match active {
            Some(active) if plugin.enabled() => {
                if active.implements(subsystem) {
                    Ok(Some(active))
                } else {
                    Err(HarnessError::NotImplements {
                        name: plugin.name.clone(),
                        subsystem: subsystem.to_owned(),
                        implements: active.implements.clone(),
                    })
                }
            }
            _ => Err(HarnessError::PluginDisabled {
                name: name.to_owned(),
            }),
        }
    }

    /// Every enabled managed plugin implementing `subsystem`, by name.
    pub(crate) fn managed_implementing(&self, subsystem: &str) -> Vec<Arc<ActivePlugin>> {
        self.managed()
            .values()
            .filter(|p| p.enabled())
            .filter_map(|p| p.shared.active())
            .filter(|a| a.implements(subsystem))
            .collect()
    }

    /// A volume took (`+1`) or dropped (`-1`) a reference on driver `name`.
    pub(crate) fn managed_reference(&self, name: &str, take: bool) {
        if let Some(plugin) = self.managed().get_mut(&normalize_name(name)) {
            if take {
                plugin.refs += 1;
            } else {
                plugin.refs = plugin.refs.saturating_sub(1);
            }
        }
    }
}

/// The longest socket path `connect` takes (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The path to dial `socket` by: itself when short enough, else through
/// `/proc/self/fd/<dir fd>/…`, with the socket dir kept open for as long as the
/// plugin is. dockerd has no such problem because it always uses the short
/// `/run/docker/plugins/<id>/`; the harness's dirs live under a test's temp dir.
fn dial_path(
    dir: &Path,
    socket: &Path,
) -> Result<(PathBuf, Option<Arc<std::fs::File>>), HarnessError> {
    use std::os::fd::AsRawFd;
    if socket.as_os_str().len() <= MAX_SOCKET_PATH {
        return Ok((socket.to_path_buf(), None));
    }
    let handle = std::fs::File::open(dir)
        .map_err(|e| HarnessError::io(format!("opening {}", dir.display()), e))?;
    let name = socket.file_name().unwrap_or_default();
    let short = Path::new("/proc/self/fd")
        .join(handle.as_raw_fd().to_string())
        .join(name);
    Ok((short, Some(Arc::new(handle))))
}

/// Starts the process and waits for its socket as dockerd does; stops it on failure.
async fn start_and_probe(
    spec: &LaunchSpec,
    shared: &Shared,
    socket: &Path,
    probe: SocketProbe,
) -> Result<Child, HarnessError> {
    let mut child = spec.spawn(&shared.logs)?;
    shared
        .pid
        .store(child.id().unwrap_or_default(), Ordering::SeqCst);
    let mut last_error = None;
    let probing = async {
        tokio::time::sleep(probe.first_wait).await;
        for attempt in 0..probe.attempts.max(1) {
            match tokio::net::UnixStream::connect(socket).await {
                Ok(_) => return true,
                Err(err) => last_error = Some(err),
            }
            if attempt + 1 < probe.attempts || probe.attempts == 0 {
                tokio::time::sleep(probe.interval).await;
            }
        }
        tokio::time::sleep(probe.interval).await;
        false
    };
    // A plugin that exits while being waited for fails the enable at once, with its
    // exit status and last words (dockerd would wait out the dials).
    let exited = tokio::select! {
        listening = probing => {
            if listening {
                return Ok(child);
            }
            None
        }
        status = child.wait() => Some(status),
    };
    if let Some(status) = exited {
        shared.pid.store(0, Ordering::SeqCst);
        // Let the output readers catch the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let last: Vec<String> = {
            let logs = shared.logs();
            logs.iter()
                .rev()
                .take(5)
                .rev()
                .map(|l| l.line.clone())
                .collect()
        };
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        return Err(HarnessError::EnableFailed {
            id: spec.id.clone(),
            problem: format!(
                "the plugin exited ({status}) before listening on {}; its last output: {:?}",
                socket.display(),
                last
            ),
        });
    }
    stop_process(&mut child).await;
    shared.pid.store(0, Ordering::SeqCst);
    let err = last_error.map_or_else(|| "never dialed".to_owned(), |e| e.to_string());
    Err(HarnessError::EnableFailed {
        id: spec.id.clone(),
        problem: format!("dial unix {}: connect: {err}", socket.display()),
    })
}

/// SIGTERM, then SIGKILL after 10 s (moby `shutdownPlugin`), to the plugin's whole
/// process group: the plugin and whatever it started.
async fn stop_process(child: &mut Child) {
    use nix::sys::signal::{Signal, killpg};
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let Some(pid) = child.id() else {
        return;
    };
    let group = nix::unistd::Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    // Wait for the exit without reaping (WNOWAIT): while the plugin is alive or a
    // zombie, its group ID cannot belong to anybody else, so the SIGKILL below reaches
    // only what is left of its own group (a process ignoring SIGTERM, a helper).
    let exited = tokio::task::spawn_blocking(move || {
        waitid(Id::Pid(group), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
    });
    let _ = tokio::time::timeout(Duration::from_secs(10), exited).await;
    let _ = killpg(group, Signal::SIGKILL);
    // Reaps it (at once, or once the SIGKILL has landed).
    let _ = child.wait().await;
}

/// Watches an enabled plugin's process: restarts it when it exits on its own, stops
/// it when asked.
async fn watch(
    mut child: Child,
    spec: LaunchSpec,
    shared: Arc<Shared>,
    // The path dialed, and the socket dir it may go through (kept open here).
    (socket, _socket_dir): (PathBuf, Option<Arc<std::fs::File>>),
    probe: SocketProbe,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
) {
    loop {
        tokio::select! {
            request = &mut stop => {
                stop_process(&mut child).await;
                shared.pid.store(0, Ordering::SeqCst);
                if let Ok(done) = request {
                    let _ = done.send(());
                }
                return;
            }
            status = child.wait() => {
                shared.pid.store(0, Ordering::SeqCst);
                if !shared.enabled.load(Ordering::SeqCst) {
                    return;
                }
                tracing::warn!(plugin = %spec.id, ?status, "plugin exited while enabled, restarting it");
                match start_and_probe(&spec, &shared, &socket, probe).await {
                    Ok(restarted) => child = restarted,
                    Err(err) => {
                        tracing::error!(plugin = %spec.id, %err, "restarting the plugin failed, it is now disabled");
                        shared.enabled.store(false, Ordering::SeqCst);
                        shared.set_active(None);
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_like_references() {
        assert_eq!(normalize_name("localvol"), "localvol:latest");
        assert_eq!(normalize_name("localvol:1"), "localvol:1");
        assert_eq!(
            normalize_name("127.0.0.1:5000/test/localvol"),
            "127.0.0.1:5000/test/localvol:latest"
        );
        assert_eq!(
            normalize_name("127.0.0.1:5000/test/localvol:2"),
            "127.0.0.1:5000/test/localvol:2"
        );
    }

    #[test]
    fn scoped_paths_follow_moby() {
        let scope = ScopedPaths {
            rootfs: "/d/plugins/ID/rootfs".into(),
            propagated_mount: "/mnt/volumes".into(),
            propagated_source: "/d/plugins/ID/propagated-mount".into(),
        };
        assert_eq!(
            scope.host_path(Path::new("/mnt/volumes/v1")),
            Path::new("/d/plugins/ID/propagated-mount/v1")
        );
        assert_eq!(
            scope.host_path(Path::new("/data/v1")),
            Path::new("/d/plugins/ID/rootfs/data/v1")
        );
    }

    #[test]
    fn subsystems_come_from_interface_types() {
        let ty = |c: &str| InterfaceType::new("docker", c, "1.0");
        assert_eq!(subsystem_of(&ty("volumedriver")), "VolumeDriver");
        assert_eq!(subsystem_of(&ty("authz")), "authz");
    }
}
