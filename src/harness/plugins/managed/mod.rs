//! Managed ("v2") plugins: `docker plugin create / set / enable / disable / upgrade /
//! rm` as dockerd's plugin manager does them (moby v20.10.24 `plugin/manager.go`,
//! `plugin/backend_linux.go`, `plugin/manager_linux.go`, `plugin/store.go`,
//! `plugin/v2/plugin.go`), with dockerd's error messages.
//!
//! - **create** takes a [`Bundle`] dir (what the packager writes): `config.json` decoded
//!   as dockerd decodes it, `rootfs/` copied into `<data-root>/plugins/<id>/rootfs`,
//!   the [`Settings`] made from the config. Names are normalized as references
//!   (`localvol` is `localvol:latest`); every call takes a name, a full ID or an ID
//!   prefix ([`names`](super::names)).
//! - **set** applies `docker plugin set` to the settings, only while disabled; the
//!   arguments before a failing one stay applied.
//! - **enable** starts the plugin in its container ([`launch`](super::launch)), sleeps
//!   500 ms, then dials `<socket-dir>/<id>/<Socket>` up to 4 times 3 s apart; a plugin
//!   that never listens is stopped and stays disabled. Managed plugins are **not** sent
//!   `/Plugin.Activate`: what they implement comes from `Interface.Types` (prefix
//!   `docker`). A plugin that exits while enabled is started again.
//! - **disable** is refused while the plugin is in use (a volume created through it
//!   holds a reference until removed, as dockerd's volume store does) unless forced,
//!   checked before "already disabled"; it stops the process with SIGTERM, then
//!   SIGKILL after 10 s, and unmounts everything under the plugin's dir.
//! - **upgrade** (only while disabled) replaces the rootfs and the config from a new
//!   bundle; the ID, the volumes, the propagated mount and the **old settings** stay.
//! - **rm** is refused while in use or enabled, unless forced.
//!
//! When the engine goes, the plugins it enabled are stopped as dockerd stops them at
//! shutdown (moby `Manager.Shutdown`), and their mounts unmounted.
//!
//! One plugin's state is [`plugin`]'s; what the services look up is [`lookup`]'s.

mod lookup;
mod plugin;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::active::{ActivePlugin, ScopedPaths};
use super::config::EngineConfig;
use super::discovery::Found;
use super::hooks::RuntimeHook;
use super::launch::{LaunchMode, LaunchSpec, LogLines, PluginDirs, PluginLogLine};
use super::mounts::{make_rshared, recursive_unmount};
use super::names::{normalize_name, resolve};
use super::rpc::PluginRpc;
use super::supervise::{Shared, SocketDir, start_and_probe, stop_now, watch};
use crate::client::Client;
use crate::harness::calls::CallLog;
use crate::harness::error::HarnessError;
use crate::harness::ids::random_id;
use crate::managed::bundle::Bundle;
use crate::managed::config::Privilege;
use crate::managed::settings::Settings;
pub use plugin::ManagedInfo;
pub(crate) use plugin::copy_tree;
use plugin::{ManagedPlugin, blocking};

/// Every managed plugin, in creation order: dockerd's plugin store for v2 plugins.
#[derive(Debug)]
pub(crate) struct Managed {
    config: Arc<EngineConfig>,
    log: CallLog,
    plugins: Mutex<Vec<ManagedPlugin>>,
    /// Every line any managed plugin printed, removed ones' too (dockerd's log).
    output: LogLines,
    /// What subsystems add to the plugins of their type.
    hooks: Mutex<Vec<RuntimeHook>>,
}

impl Managed {
    pub(crate) fn new(config: Arc<EngineConfig>, log: CallLog) -> Self {
        Self {
            config,
            log,
            plugins: Mutex::new(Vec::new()),
            output: LogLines::default(),
            hooks: Mutex::new(Vec::new()),
        }
    }

    /// Adds `hook` to the plugins of its type enabled from now on.
    pub(crate) fn handle(&self, hook: RuntimeHook) {
        self.hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
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

    fn managed(&self) -> std::sync::MutexGuard<'_, Vec<ManagedPlugin>> {
        self.plugins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index of the plugin `ref_or_id` means, as dockerd resolves it.
    fn find(plugins: &[ManagedPlugin], ref_or_id: &str) -> Result<usize, HarnessError> {
        resolve(
            ref_or_id,
            plugins.iter().map(|p| (p.id.as_str(), p.name.as_str())),
        )
    }

    /// The plugin `name` means, `None` when it means none (then dockerd looks for a
    /// legacy plugin); an ambiguous prefix is an error.
    fn find_managed<'a>(
        plugins: &'a [ManagedPlugin],
        name: &str,
    ) -> Result<Option<&'a ManagedPlugin>, HarnessError> {
        match Self::find(plugins, name) {
            Ok(i) => Ok(Some(&plugins[i])),
            Err(HarnessError::NoSuchPlugin { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Runs `f` on the managed plugin `ref_or_id` (a name, an ID or an ID prefix).
    fn with_managed<R>(
        &self,
        ref_or_id: &str,
        f: impl FnOnce(&mut ManagedPlugin) -> Result<R, HarnessError>,
    ) -> Result<R, HarnessError> {
        let mut managed = self.managed();
        let i = Self::find(&managed, ref_or_id)?;
        f(&mut managed[i])
    }

    /// `docker plugin create NAME DIR`: a disabled plugin from the bundle in `dir`,
    /// started from its rootfs (or, with [`LaunchMode::Host`], from the host) once
    /// enabled. Returns its ID.
    pub(crate) async fn create(
        &self,
        name: &str,
        dir: impl AsRef<Path>,
        mode: LaunchMode,
    ) -> Result<String, HarnessError> {
        let name = normalize_name(name);
        let taken = |plugins: &[ManagedPlugin]| {
            if plugins.iter().any(|p| p.name == name) {
                Err(HarnessError::PluginExists { name: name.clone() })
            } else {
                Ok(())
            }
        };
        taken(&self.managed())?;
        let bundle = Bundle::open(dir)?;
        let id = random_id();
        let plugin_dir = self.data_root()?.join("plugins").join(&id);
        let rootfs = bundle.rootfs();
        let config = bundle.into_config();
        let settings = Settings::new(&config);
        let copied = plugin_dir.clone();
        let stored = blocking("copying the rootfs", move || {
            copy_tree(&rootfs, &copied.join("rootfs")).map_err(|e| {
                HarnessError::io(format!("copying the rootfs to {}", copied.display()), e)
            })?;
            std::fs::create_dir_all(copied.join("propagated-mount"))
                .map_err(|e| HarnessError::io("creating the propagated-mount dir", e))
        })
        .await;
        let plugin = ManagedPlugin {
            id: id.clone(),
            name: name.clone(),
            dir: plugin_dir.clone(),
            config,
            settings,
            mode,
            refs: 0,
            enabling: false,
            shared: Arc::new(Shared::new(Arc::clone(&self.output))),
            stop: None,
        };
        let mut managed = self.managed();
        if let Err(err) = stored
            .and_then(|()| plugin.save())
            .and_then(|()| taken(&managed))
        {
            // Nothing is left behind by a create that fails.
            let _ = std::fs::remove_dir_all(&plugin_dir);
            return Err(err);
        }
        managed.push(plugin);
        Ok(id)
    }

    /// The privileges `docker plugin install` would ask for, in dockerd's order.
    pub(crate) fn privileges(&self, name: &str) -> Result<Vec<Privilege>, HarnessError> {
        self.with_managed(name, |p| Ok(p.config.privileges()))
    }

    /// `docker plugin set NAME key=value…`: only while disabled; the arguments before
    /// a failing one stay applied, as in dockerd.
    pub(crate) fn set<I, S>(&self, name: &str, args: I) -> Result<(), HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.with_managed(name, |p| {
            if p.enabled() || p.enabling {
                return Err(HarnessError::SetWhileEnabled);
            }
            let set = p.settings.set(&mut p.config, args);
            p.save()?;
            Ok(set?)
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
        let mut all: Vec<ManagedInfo> = self.managed().iter().map(|p| p.info(socket_dir)).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Every line the plugin printed on stdout and stderr, in order.
    pub(crate) fn logs(&self, name: &str) -> Result<Vec<PluginLogLine>, HarnessError> {
        self.with_managed(name, |p| Ok(p.shared.logs().clone()))
    }

    /// Every line every managed plugin printed, removed ones' too, in order.
    pub(crate) fn output(&self) -> Vec<PluginLogLine> {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `docker plugin enable NAME`: starts it and waits for its socket.
    pub(crate) async fn enable(&self, name: &str) -> Result<(), HarnessError> {
        let socket_root = self.managed_socket_dir().to_path_buf();
        let (spec, shared, display, key) = self.with_managed(name, |p| {
            p.check_not_enabling()?;
            if p.enabled() {
                return Err(HarnessError::AlreadyEnabled {
                    name: p.name.clone(),
                });
            }
            let mut spec = LaunchSpec::new(
                p.id.clone(),
                PluginDirs {
                    rootfs: p.rootfs(),
                    socket_dir: socket_root.join(&p.id),
                    propagated_source: p.propagated_source(),
                },
                p.config.clone(),
                p.settings.clone(),
                p.mode,
            );
            // For each of its types in the config's order, the hooks of that type in
            // registration order (moby v20.10.24 `plugin/manager_linux.go`
            // `pluginPostStart` calls the handlers type by type).
            let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
            for ty in &p.config.interface.types {
                for hook in hooks
                    .iter()
                    .filter(|h| h.applies_to(std::slice::from_ref(ty)))
                {
                    spec.runtime_mounts.extend((hook.mounts)()?);
                    spec.on_start.0.push(std::sync::Arc::clone(&hook.on_start));
                }
            }
            p.enabling = true;
            Ok((spec, Arc::clone(&p.shared), p.name.clone(), p.id.clone()))
        })?;
        let started = self.start_enabled(spec, &shared, &display).await;
        let (stop, result) = match started {
            Ok(stop) => (Some(stop), Ok(())),
            Err(err) => (None, Err(err)),
        };
        self.with_managed(&key, |p| {
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
        let socket_dir = SocketDir::create(&spec.socket_dir, &spec.config.interface.socket)?;
        let plugin_dir = spec
            .rootfs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if spec.mode == LaunchMode::Rootfs
            && !spec.config.propagated_mount.is_empty()
            && nix::unistd::geteuid().is_root()
        {
            // moby: "error setting up propagated mount dir".
            make_rshared(&spec.propagated_source).map_err(|e| HarnessError::Runtime {
                message: format!("error setting up propagated mount dir: {e}"),
            })?;
        }
        let socket = spec.socket_dir.join(&spec.config.interface.socket);
        let dial = socket_dir.dial_path(&socket);
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
        let child = match start_and_probe(&spec, shared, &dial, probe).await {
            Ok(child) => child,
            Err(err) => {
                // moby's HandleExitEvent without restart.
                let _ = recursive_unmount(&plugin_dir);
                socket_dir.remove();
                return Err(err);
            }
        };
        let active = Arc::new(ActivePlugin {
            rpc: PluginRpc::new(
                display,
                Client::unix(&dial),
                self.config.retry,
                self.log.clone(),
            )
            .with_max_timeout(self.config.plugin_timeout),
            implements: spec
                .config
                .interface
                .types
                .iter()
                .filter(|ty| ty.prefix == "docker")
                .map(|ty| ty.capability.clone())
                .collect(),
            found: Found {
                name: display.to_owned(),
                addr: format!("unix://{}", socket.display()),
                path: socket.clone(),
                tls: None,
            },
            scope: Some(scope),
            _socket_dir: socket_dir.handle(),
        });
        shared.set_active(Some(Arc::clone(&active)));
        shared.enabled.store(true, Ordering::SeqCst);
        spec.on_start.run(Some(active)).await;
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(watch(
            child,
            spec,
            Arc::clone(shared),
            socket_dir,
            dial,
            probe,
            stop_rx,
        ));
        Ok(stop_tx)
    }

    /// `docker plugin disable [-f] NAME`: refused while in use unless `force` (checked
    /// before "already disabled", as in dockerd).
    pub(crate) async fn disable(&self, name: &str, force: bool) -> Result<(), HarnessError> {
        let stop = self.with_managed(name, |p| {
            p.check_not_enabling()?;
            if !force && p.refs > 0 {
                return Err(HarnessError::PluginInUse {
                    name: p.name.clone(),
                });
            }
            if !p.enabled() {
                return Err(HarnessError::AlreadyDisabled {
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

    /// The daemon's restart without live-restore: every enabled plugin stopped (moby
    /// v20.10.24 `plugin/manager.go` `Shutdown`), then enabled again in creation order
    /// as `reload` does at the next start (`enable`, whose `pluginPostStart` runs the
    /// start hooks again).
    pub(crate) async fn restart_enabled(&self) -> Result<(), HarnessError> {
        let enabled: Vec<String> = self
            .managed()
            .iter()
            .filter(|p| p.enabled())
            .map(|p| p.id.clone())
            .collect();
        for id in &enabled {
            self.disable(id, true).await?;
        }
        for id in &enabled {
            self.enable(id).await?;
        }
        Ok(())
    }

    /// `docker plugin upgrade NAME`, from the bundle in `dir`: only while disabled.
    /// The rootfs and the config are replaced; the ID, the propagated mount, the
    /// references and the settings stay (moby `upgradePlugin`).
    pub(crate) async fn upgrade(
        &self,
        name: &str,
        dir: impl AsRef<Path>,
    ) -> Result<(), HarnessError> {
        let plugin_dir = self.with_managed(name, |p| {
            p.check_not_enabling()?;
            if p.enabled() {
                return Err(HarnessError::UpgradeEnabled {
                    name: p.name.clone(),
                });
            }
            Ok(p.dir.clone())
        })?;
        let bundle = Bundle::open(dir)?;
        let new_rootfs = bundle.rootfs();
        let config = bundle.into_config();
        blocking("replacing the rootfs", move || {
            let orig = plugin_dir.join("rootfs");
            recursive_unmount(&orig)
                .map_err(|e| HarnessError::io("unmounting the rootfs", e.into()))?;
            let backup = plugin_dir.join("rootfs-old");
            std::fs::rename(&orig, &backup)
                .map_err(|e| HarnessError::io("error backing up plugin data before upgrade", e))?;
            match copy_tree(&new_rootfs, &orig) {
                Ok(()) => {
                    let _ = std::fs::remove_dir_all(&backup);
                    Ok(())
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&orig);
                    let _ = std::fs::rename(&backup, &orig);
                    Err(HarnessError::io("error upgrading", e))
                }
            }
        })
        .await?;
        self.with_managed(name, |p| {
            p.config = config;
            p.save()
        })
    }

    /// `docker plugin rm [-f] NAME`: refused while in use or enabled unless `force`.
    pub(crate) async fn rm(&self, name: &str, force: bool) -> Result<(), HarnessError> {
        let (id, enabled) = self.with_managed(name, |p| {
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
            Ok((p.id.clone(), p.enabled()))
        })?;
        if enabled {
            self.disable(&id, true).await?;
        }
        let removed = {
            let mut managed = self.managed();
            Self::find(&managed, &id).ok().map(|i| managed.remove(i))
        };
        if let Some(plugin) = removed {
            let dir = plugin.dir.clone();
            blocking("removing the plugin", move || {
                recursive_unmount(&dir)
                    .map_err(|e| HarnessError::io("error unmounting plugin data", e.into()))?;
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| HarnessError::io("removing the plugin's files", e))
            })
            .await?;
            let _ = std::fs::remove_dir_all(self.managed_socket_dir().join(&plugin.id));
        }
        Ok(())
    }
}

impl Drop for Managed {
    /// dockerd's `Shutdown`: every running plugin stopped (SIGTERM, SIGKILL 10 s
    /// later), then everything mounted under the plugins' dirs unmounted.
    fn drop(&mut self) {
        let plugins = std::mem::take(&mut *self.managed());
        for plugin in &plugins {
            plugin.shared.enabled.store(false, Ordering::SeqCst);
            stop_now(&plugin.shared);
        }
        for plugin in &plugins {
            let _ = recursive_unmount(&plugin.dir);
        }
    }
}
