//! A managed plugin's process while it is enabled, supervised as dockerd's plugin
//! manager supervises it through containerd (moby v20.10.24 `plugin/manager_linux.go`
//! `pluginPostStart`, `shutdownPlugin`; `plugin/manager.go` `HandleExitEvent`): started,
//! its socket waited for (500 ms, then 4 dials 3 s apart), restarted when it exits on
//! its own, and stopped with SIGTERM then SIGKILL 10 s later.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::oneshot;

use super::active::ActivePlugin;
use super::launch::{LaunchSpec, LogLines, PluginLogLine};
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
    pub(super) pid: AtomicU32,
    active: Mutex<Option<Arc<ActivePlugin>>>,
    pub(super) logs: LogLines,
}

impl Shared {
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
}

/// The longest socket path `connect` takes (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The path to dial `socket` by: itself when short enough, else through
/// `/proc/self/fd/<dir fd>/…`, with the socket dir kept open for as long as the
/// plugin is. dockerd has no such problem because it always uses the short
/// `/run/docker/plugins/<id>/`; the harness's dirs live under a test's temp dir.
pub(super) fn dial_path(
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
pub(super) async fn start_and_probe(
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
pub(super) async fn watch(
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
