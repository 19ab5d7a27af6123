//! A managed plugin's process while it is enabled, supervised as dockerd's plugin
//! manager supervises it through containerd (moby v20.10.24 `plugin/manager_linux.go`
//! `pluginPostStart`, `shutdownPlugin`; `plugin/manager.go` `HandleExitEvent`): started,
//! its socket waited for (500 ms, then 4 dials 3 s apart), restarted when it exits on
//! its own (its socket dir deleted and made again first), stopped with SIGTERM then
//! SIGKILL 10 s later, and everything mounted under its dir unmounted once it stops
//! for good.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::oneshot;

use super::active::ActivePlugin;
use super::launch::{LaunchSpec, LogLines, PluginLogLine, go_io_error};
use super::mounts::recursive_unmount;
use crate::harness::error::HarnessError;

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

impl SocketProbe {
    /// A freshly enabled managed plugin's socket probed every 100 ms for 5 s
    /// (dockerd: after 500 ms, 4 dials 3 s apart).
    ///
    /// ```
    /// use std::time::Duration;
    /// use docker_plugin_sdk::harness::SocketProbe;
    ///
    /// let fast = SocketProbe::fast();
    /// assert_eq!(fast.first_wait + fast.interval * fast.attempts, Duration::from_millis(5100));
    /// ```
    pub fn fast() -> Self {
        Self {
            first_wait: Duration::from_millis(100),
            interval: Duration::from_millis(100),
            attempts: 50,
        }
    }
}

/// State shared with the task that watches the plugin's process.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) enabled: AtomicBool,
    /// The plugin's process ID (0 when not running).
    pub(super) pid: AtomicU32,
    /// The shim's (the harness's child, leader of the process group).
    shim: AtomicU32,
    active: Mutex<Option<Arc<ActivePlugin>>>,
    pub(super) logs: LogLines,
    /// Every managed plugin's lines, the engine's (dockerd's log).
    pub(super) output: LogLines,
}

impl Shared {
    /// The state of a new plugin whose lines also go to the engine's `output`.
    pub(super) fn new(output: LogLines) -> Self {
        Self {
            output,
            ..Self::default()
        }
    }

    /// The engine's handle on the running plugin, if any.
    pub(super) fn active(&self) -> Option<Arc<ActivePlugin>> {
        self.active_slot().clone()
    }

    /// Puts (or, with `None`, takes away) the engine's handle on the plugin.
    pub(super) fn set_active(&self, active: Option<Arc<ActivePlugin>>) {
        *self.active_slot() = active;
    }

    fn active_slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<ActivePlugin>>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lines printed so far.
    pub(super) fn logs(&self) -> std::sync::MutexGuard<'_, Vec<PluginLogLine>> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_running(&self, shim: u32, plugin: u32) {
        self.shim.store(shim, Ordering::SeqCst);
        self.pid.store(plugin, Ordering::SeqCst);
    }

    fn set_stopped(&self) {
        self.set_running(0, 0);
    }
}

/// The longest socket path `connect` takes (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A plugin's socket dir on the host (`<exec-root>/<id>`, mode 0700 as dockerd makes
/// it), with, when the socket's path is too long to dial, the dir kept open to be
/// dialed through `/proc/self/fd/<fd>/…`. dockerd has no such problem because it
/// always uses the short `/run/docker/plugins/<id>/`; the harness's dirs live under a
/// test's temp dir.
#[derive(Debug)]
pub(super) struct SocketDir {
    path: PathBuf,
    /// Kept open when the socket's path is too long to dial.
    handle: Option<Arc<std::fs::File>>,
}

impl SocketDir {
    /// Makes the dir for a socket named `socket` (and its handle, for long paths).
    pub(super) fn create(path: &Path, socket: &str) -> Result<Self, HarnessError> {
        let mut dir = Self {
            path: path.to_path_buf(),
            handle: None,
        };
        dir.make()?;
        if path.join(socket).as_os_str().len() > MAX_SOCKET_PATH {
            dir.handle = Some(Arc::new(dir.open()?));
        }
        Ok(dir)
    }

    fn make(&self) -> Result<(), HarnessError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(|e| HarnessError::io(format!("creating {}", self.path.display()), e))
    }

    fn open(&self) -> Result<std::fs::File, HarnessError> {
        std::fs::File::open(&self.path)
            .map_err(|e| HarnessError::io(format!("opening {}", self.path.display()), e))
    }

    /// The handle kept open, if the socket is dialed through it.
    pub(super) fn handle(&self) -> Option<Arc<std::fs::File>> {
        self.handle.clone()
    }

    /// The path to dial `socket` (a file in this dir) by.
    pub(super) fn dial_path(&self, socket: &Path) -> PathBuf {
        use std::os::fd::AsRawFd;
        match self.handle() {
            Some(handle) if socket.as_os_str().len() > MAX_SOCKET_PATH => {
                let name = socket.file_name().unwrap_or_default();
                Path::new("/proc/self/fd")
                    .join(handle.as_raw_fd().to_string())
                    .join(name)
            }
            _ => socket.to_path_buf(),
        }
    }

    /// dockerd's `HandleExitEvent`: the dir deleted, then (to restart) made again. A
    /// kept handle is pointed at the new dir under the same descriptor number, so the
    /// dial path through it stays valid; it stays close-on-exec (`dup3` with
    /// `O_CLOEXEC`: `dup2` would clear the flag, and every process the harness starts
    /// afterwards would inherit the handle).
    fn recreate(&self) -> Result<(), HarnessError> {
        use std::os::fd::AsRawFd;
        self.remove();
        self.make()?;
        if let Some(kept) = &self.handle {
            let opened = self.open()?;
            // SAFETY: dup3 onto a descriptor this struct owns (through the Arc).
            if unsafe { libc::dup3(opened.as_raw_fd(), kept.as_raw_fd(), libc::O_CLOEXEC) } < 0 {
                return Err(HarnessError::io(
                    "reopening the socket dir",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        Ok(())
    }

    /// Deletes the dir (after the plugin's last exit).
    pub(super) fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Starts the process and waits for its socket as dockerd does; stops it on failure.
pub(super) async fn start_and_probe(
    spec: &LaunchSpec,
    shared: &Shared,
    socket: &Path,
    probe: SocketProbe,
) -> Result<Child, HarnessError> {
    let (mut child, plugin) = spec.spawn(&shared.logs, &shared.output)?;
    shared.set_running(child.id().unwrap_or_default(), plugin);
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
        shared.set_stopped();
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
    stop_process(&mut child, shared).await;
    let err = last_error.map_or_else(|| "never dialed".to_owned(), |e| go_io_error(&e));
    Err(HarnessError::EnableFailed {
        id: spec.id.clone(),
        problem: format!("dial unix {}: connect: {err}", socket.display()),
    })
}

/// Whether the shim `pid` has exited (left a zombie), without reaping it.
fn exited(pid: Pid) -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    !matches!(
        waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG
        ),
        Ok(WaitStatus::StillAlive)
    )
}

/// SIGTERM to the plugin's process group (the shim ignores it, the plugin gets it),
/// then, if it has not exited 10 s later (moby `shutdownPlugin`), SIGKILL to the
/// plugin, a second for the shim to kill what it left, then SIGKILL to the group.
async fn stop_process(child: &mut Child, shared: &Shared) {
    let Some(shim) = child.id() else {
        shared.set_stopped();
        return;
    };
    let group = Pid::from_raw(shim as i32);
    let plugin = shared.pid.load(Ordering::SeqCst);
    let _ = killpg(group, Signal::SIGTERM);
    // The shim stays (a zombie at worst) until reaped below, so its group ID cannot
    // belong to anybody else meanwhile.
    let gone = |limit: Duration| async move {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if exited(group) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    };
    if !gone(Duration::from_secs(10)).await {
        if plugin != 0 {
            let _ = kill(Pid::from_raw(plugin as i32), Signal::SIGKILL);
        }
        if !gone(Duration::from_secs(1)).await {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
    // Reaps it (at once, or once the SIGKILL has landed).
    let _ = child.wait().await;
    shared.set_stopped();
}

/// Stops a plugin at once, without waiting on the runtime (the engine is going
/// away): SIGTERM to its group, up to 10 s for the shim to exit, then SIGKILL.
pub(super) fn stop_now(shared: &Shared) {
    let shim = shared.shim.load(Ordering::SeqCst);
    if shim == 0 {
        return;
    }
    let group = Pid::from_raw(shim as i32);
    if killpg(group, Signal::SIGTERM).is_err() {
        return;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if exited(group) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = killpg(group, Signal::SIGKILL);
}

/// Watches an enabled plugin's process: restarts it when it exits on its own, stops
/// it when asked; once it stops for good, its mounts and socket dir go.
pub(super) async fn watch(
    mut child: Child,
    spec: LaunchSpec,
    shared: Arc<Shared>,
    socket_dir: SocketDir,
    dial: PathBuf,
    probe: SocketProbe,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
) {
    let plugin_dir = spec
        .rootfs
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let finish = || {
        // moby's HandleExitEvent without restart.
        if let Err(err) = recursive_unmount(&plugin_dir) {
            tracing::warn!(plugin = %spec.id, %err, "error cleaning up plugin mounts");
        }
        socket_dir.remove();
    };
    loop {
        tokio::select! {
            request = &mut stop => {
                stop_process(&mut child, &shared).await;
                finish();
                if let Ok(done) = request {
                    let _ = done.send(());
                }
                return;
            }
            status = child.wait() => {
                shared.set_stopped();
                if !shared.enabled.load(Ordering::SeqCst) {
                    finish();
                    return;
                }
                tracing::warn!(plugin = %spec.id, ?status, "plugin exited while enabled, restarting it");
                let restarted = match socket_dir.recreate() {
                    Ok(()) => start_and_probe(&spec, &shared, &dial, probe).await,
                    Err(err) => Err(err),
                };
                match restarted {
                    Ok(restarted) => {
                        child = restarted;
                        spec.on_start.run(shared.active()).await;
                    }
                    Err(err) => {
                        tracing::error!(plugin = %spec.id, %err, "restarting the plugin failed, it is now disabled");
                        shared.enabled.store(false, Ordering::SeqCst);
                        shared.set_active(None);
                        finish();
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
    use std::os::fd::AsRawFd;

    #[test]
    fn a_recreated_dirs_kept_handle_is_still_close_on_exec() {
        let root = tempfile::tempdir().unwrap();
        let long = root.path().join("d".repeat(MAX_SOCKET_PATH));
        let dir = SocketDir::create(&long, "p.sock").unwrap();
        dir.recreate().unwrap();
        let handle = dir.handle().expect("a long path keeps its dir open");
        // SAFETY: F_GETFD on a descriptor the handle owns.
        let flags = unsafe { libc::fcntl(handle.as_raw_fd(), libc::F_GETFD) };
        dir.remove();
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "flags {flags}");
    }
}
