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
//! The registry ([`Plugins`](super::Plugins)) finds a managed plugin before a legacy
//! one of the same name; the process itself is supervised by [`supervise`](super::supervise).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::active::{ActivePlugin, ScopedPaths};
use super::config::EngineConfig;
use super::discovery::Found;
use super::launch::{LaunchMode, LaunchSpec, PluginLogLine};
use super::rpc::{PluginRpc, RetryPolicy};
use super::supervise::{Shared, dial_path, start_and_probe, watch};
use crate::client::Client;
use crate::harness::calls::CallLog;
use crate::harness::error::HarnessError;
use crate::harness::ids::random_id;
use crate::managed::bundle::Bundle;
use crate::managed::config::{PluginConfig, Privilege};

/// Every managed plugin, by normalized name: dockerd's plugin store for v2 plugins.
#[derive(Debug)]
pub(crate) struct Managed {
    config: Arc<EngineConfig>,
    log: CallLog,
    plugins: Mutex<BTreeMap<String, ManagedPlugin>>,
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

/// `localvol` → `localvol:latest`; a tag or digest already given is kept.
pub fn normalize_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
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
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
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

impl Managed {
    pub(crate) fn new(config: Arc<EngineConfig>, log: CallLog) -> Self {
        Self {
            config,
            log,
            plugins: Mutex::new(BTreeMap::new()),
        }
    }

    /// Where managed plugins' files go: the configured data root.
    pub(crate) fn data_root(&self) -> Result<&Path, HarnessError> {
        self.config
            .data_root
            .as_deref()
            .ok_or(HarnessError::NoDataRoot)
    }

    fn managed_socket_dir(&self) -> &Path {
        &self.config.discovery.socket_dir
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

    fn managed(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ManagedPlugin>> {
        self.plugins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `docker plugin create NAME DIR`: a disabled plugin from the bundle in `dir`.
    /// Returns its ID.
    pub(crate) async fn create(
        &self,
        name: &str,
        dir: impl AsRef<Path>,
    ) -> Result<String, HarnessError> {
        let name = normalize_name(name);
        if self.managed().contains_key(&name) {
            return Err(HarnessError::PluginExists { name });
        }
        let bundle = Bundle::open(dir)?;
        let id = random_id();
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
    pub(crate) fn privileges(&self, name: &str) -> Result<Vec<Privilege>, HarnessError> {
        self.with_managed(name, |p| Ok(p.config.privileges()))
    }

    /// `docker plugin set NAME key=value…`: only while disabled.
    pub(crate) fn set<I, S>(&self, name: &str, args: I) -> Result<(), HarnessError>
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
    pub(crate) fn inspect(&self, name: &str) -> Result<ManagedInfo, HarnessError> {
        let socket_dir = self.managed_socket_dir().to_path_buf();
        self.with_managed(name, |p| Ok(p.info(&socket_dir)))
    }

    /// `docker plugin ls`, sorted by name.
    pub(crate) fn ls(&self) -> Vec<ManagedInfo> {
        let socket_dir = self.managed_socket_dir();
        self.managed()
            .values()
            .map(|p| p.info(socket_dir))
            .collect()
    }

    /// Every line the plugin printed on stdout and stderr, in order.
    pub(crate) fn logs(&self, name: &str) -> Result<Vec<PluginLogLine>, HarnessError> {
        self.with_managed(name, |p| Ok(p.shared.logs().clone()))
    }

    /// `docker plugin enable NAME`: starts it and waits for its socket.
    pub(crate) async fn enable(&self, name: &str) -> Result<(), HarnessError> {
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
        let probe = self.config.socket_probe;
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
                self.log.clone(),
            )
            .with_max_timeout(self.config.plugin_timeout),
            implements: spec
                .config
                .interface
                .types
                .iter()
                .map(|ty| ty.capability.clone())
                .collect(),
            found: Found {
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
    pub(crate) async fn disable(&self, name: &str, force: bool) -> Result<(), HarnessError> {
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
    pub(crate) async fn rm(&self, name: &str, force: bool) -> Result<(), HarnessError> {
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
            self.disable(name, true).await?;
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
    pub(crate) fn lookup(
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
    pub(crate) fn implementing(&self, subsystem: &str) -> Vec<Arc<ActivePlugin>> {
        self.managed()
            .values()
            .filter(|p| p.enabled())
            .filter_map(|p| p.shared.active())
            .filter(|a| a.implements(subsystem))
            .collect()
    }

    /// The normalized name of managed plugin `name`, if there is one.
    pub(crate) fn normalized(&self, name: &str) -> Option<String> {
        let normalized = normalize_name(name);
        self.managed()
            .contains_key(&normalized)
            .then_some(normalized)
    }

    /// A volume took (`+1`) or dropped (`-1`) a reference on driver `name`.
    pub(crate) fn reference(&self, name: &str, take: bool) {
        if let Some(plugin) = self.managed().get_mut(&normalize_name(name)) {
            if take {
                plugin.refs += 1;
            } else {
                plugin.refs = plugin.refs.saturating_sub(1);
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
}
