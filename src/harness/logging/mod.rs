//! The logging service: what dockerd does for a container whose log driver is a plugin
//! (moby v20.10.24 `daemon/logger/plugin.go` `makePluginCreator`, `plugin_unix.go`,
//! `adapter.go`, `copier.go`; `container/container.go` `StartLogger` for the `Info`;
//! `container/monitor.go` for the stop; `daemon/logs.go` for `docker logs`).
//!
//! - Start: Capabilities (any error: no ReadLogs), a FIFO `/run/docker/logging/<id>`
//!   created under the plugin's view of that directory (a managed plugin's rootfs,
//!   `ScopedPath`; for a legacy plugin the host's directory, here the engine's
//!   `<exec-root>/logging`) and held open `O_RDWR`, then StartLogging with the FIFO's
//!   path as the plugin sees it and the container's `Info`. An error fails the start
//!   (`failed to initialize logging driver: error creating logger: …`).
//! - Output: what the container prints, made into frames by dockerd's copier (lines,
//!   16 KiB pieces) and written into the FIFO; a plugin that does not read blocks the
//!   writer, as it blocks the container.
//! - Stop: the copier's EOF (an unterminated tail as a piece), StopLogging, the FIFO
//!   closed and removed.
//! - `docker logs`: a running container's logs with one ReadLogs; a stopped one's with
//!   Capabilities, StartLogging on a new FIFO, ReadLogs, StopLogging. The reply is
//!   decoded as dockerd decodes it ([`LogReader`]).

mod copier;
mod reader;

use std::collections::BTreeMap;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;

pub use copier::COPIER_BUFFER;
use copier::Copier;
pub use reader::{LogMessage, LogReader};

use super::error::HarnessError;
use super::ids::random_id;
use super::plugins::{ActivePlugin, Plugins};
use crate::logging::{
    self, Capabilities, Capability, Info, ReadConfig, ReadLogs, ReadLogsRequest, StartLogging,
    StartLoggingRequest, StopLogging, StopLoggingRequest, encode_frame,
};
use crate::protocol::{Empty, Timestamp};

/// The FIFO directory as a plugin sees it (`unscopedPath`).
const LOGGING_DIR: &str = "/run/docker/logging";

/// The logging service: containers whose log driver is a plugin. Cheap to clone.
///
/// ```no_run
/// use docker_plugin_sdk::harness::{Engine, LogContainer};
/// use docker_plugin_sdk::logging::ReadConfig;
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::for_tests("/tmp/t");
/// let container = LogContainer::new("web", "busybox").opt("max-size", "1m");
/// let mut running = engine.logging().start("mylog", &container).await?;
/// running.write("stdout", b"line-one\nline-two\n").await?;
/// running.stop().await?; // the container exited
/// let logs = engine.logging().read("mylog", &container, ReadConfig::default()).await?;
/// assert_eq!(logs.collect_text().await?, "line-one\nline-two\n");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Logging {
    plugins: Plugins,
    /// Stands for the host's `/run/docker/logging` (legacy plugins' FIFOs).
    host_dir: PathBuf,
}

/// A container as its log driver sees it: the `Info` dockerd builds at its start
/// (moby v20.10.24 `container/container.go` `StartLogger`).
///
/// ```
/// use docker_plugin_sdk::harness::LogContainer;
///
/// let c = LogContainer::new("web", "busybox").opt("max-size", "1m").label("tier", "front");
/// assert_eq!(c.info.container_name, "/web");
/// assert_eq!(c.info.config["max-size"], "1m");
/// assert_eq!(c.info.daemon_name, "docker");
/// ```
#[derive(Debug, Clone)]
pub struct LogContainer {
    /// What StartLogging and ReadLogs carry.
    pub info: Info,
}

impl LogContainer {
    /// A container named `name` running `image`'s `sh`, created now, with a fresh ID.
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            info: Info {
                config: BTreeMap::new(),
                container_id: random_id(),
                container_name: format!("/{name}"),
                container_entrypoint: "sh".into(),
                container_args: Vec::new(),
                container_image_id: format!("sha256:{}", random_id()),
                container_image_name: image.to_owned(),
                container_created: Timestamp::now(),
                container_env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ],
                container_labels: BTreeMap::new(),
                log_path: String::new(),
                daemon_name: "docker".into(),
            },
        }
    }

    /// `--log-opt key=value`.
    pub fn opt(mut self, key: &str, value: &str) -> Self {
        self.info.config.insert(key.to_owned(), value.to_owned());
        self
    }

    /// `--label key=value`.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.info
            .container_labels
            .insert(key.to_owned(), value.to_owned());
        self
    }
}

/// A running container's logger: its FIFO, held open as dockerd holds it, and the
/// copiers of its two streams.
#[derive(Debug)]
pub struct ContainerLog {
    plugin: Arc<ActivePlugin>,
    info: Info,
    capability: Capability,
    /// Where the FIFO is on the host.
    host_path: PathBuf,
    /// Its path as the plugin sees it (what StartLogging and StopLogging carry).
    file: String,
    fifo: Option<pipe::Sender>,
    stdout: Copier,
    stderr: Copier,
}

impl Logging {
    pub(crate) fn new(plugins: Plugins, exec_root: &Path) -> Self {
        Self {
            plugins,
            host_dir: exec_root.join("logging"),
        }
    }

    /// `docker run --log-driver DRIVER`: Capabilities, the FIFO, StartLogging. An
    /// error (the plugin's, or a FIFO it could not open) is what fails the container's
    /// start, in dockerd's words: `failed to initialize logging driver: error creating
    /// logger: LogDriver.StartLogging: MESSAGE` (moby v20.10.24 `container/container.go`
    /// `startLogging` around `StartLogger`, `daemon/logger/plugin.go`
    /// `makePluginCreator`), what `docker run` prints after `Error response from
    /// daemon: `.
    pub async fn start(
        &self,
        driver: &str,
        container: &LogContainer,
    ) -> Result<ContainerLog, HarnessError> {
        let plugin = self.plugins.get(driver, logging::IMPLEMENTS).await?;
        self.create_logger(plugin, driver, container)
            .await
            .map_err(|message| HarnessError::Runtime {
                message: format!("failed to initialize logging driver: {message}"),
            })
    }

    /// The plugin's logger for `container` (moby's `makePluginCreator`): Capabilities,
    /// the FIFO, StartLogging; an error in `StartLogger`'s words.
    async fn create_logger(
        &self,
        plugin: Arc<ActivePlugin>,
        driver: &str,
        container: &LogContainer,
    ) -> Result<ContainerLog, String> {
        // `a.plugin.Capabilities()`: any error means no capability.
        let capability = plugin
            .rpc
            .call::<Capabilities>(&Empty {})
            .await
            .map(|reply| reply.cap)
            .unwrap_or_default();
        let id = random_id();
        let dir = match plugin.scope {
            Some(_) => plugin.host_path(Path::new(LOGGING_DIR)),
            None => self.host_dir.clone(),
        };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("error creating {}: {e}", dir.display()))?;
        let host_path = dir.join(&id);
        let fifo = open_fifo(&host_path)
            .map_err(|e| format!("error creating i/o pipe for log plugin: {driver}: {e}"))?;
        let file = match plugin.scope {
            Some(_) => format!("{LOGGING_DIR}/{id}"),
            None => host_path.display().to_string(),
        };
        let request = StartLoggingRequest {
            file: file.clone(),
            info: container.info.clone(),
        };
        if let Err(err) = plugin.rpc.call::<StartLogging>(&request).await {
            drop(fifo);
            let _ = tokio::fs::remove_file(&host_path).await;
            return Err(format!("error creating logger: {err}"));
        }
        Ok(ContainerLog {
            plugin,
            info: container.info.clone(),
            capability,
            host_path,
            file,
            fifo: Some(fifo),
            stdout: Copier::new("stdout"),
            stderr: Copier::new("stderr"),
        })
    }

    /// `docker logs` of a stopped container (moby v20.10.24 `daemon/logs.go`: a new
    /// logger for the read): Capabilities, StartLogging on a new FIFO, ReadLogs (if
    /// the plugin has the capability), then StopLogging once the reply is read. A
    /// logger that cannot be made fails in `StartLogger`'s words, unwrapped (`error
    /// creating logger: …`: `getLogger` passes them on as they are).
    pub async fn read(
        &self,
        driver: &str,
        container: &LogContainer,
        config: ReadConfig,
    ) -> Result<LogReader, HarnessError> {
        let plugin = self.plugins.get(driver, logging::IMPLEMENTS).await?;
        let logger = self
            .create_logger(plugin, driver, container)
            .await
            .map_err(|message| HarnessError::Runtime { message })?;
        let reader = logger.read(config).await;
        match reader {
            Ok(reader) => Ok(reader.stop_after(logger)),
            Err(err) => {
                logger.stop().await?;
                Err(err)
            }
        }
    }
}

/// Opens (creating it) the FIFO at `path` as dockerd does: `O_RDWR`, so neither side
/// ever sees the other's close (containerd `fifo.OpenFifo` with
/// `O_RDWR|O_CREAT|O_NONBLOCK`, mode 0700).
pub(crate) fn open_fifo(path: &Path) -> std::io::Result<pipe::Sender> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o700))?;
    pipe::OpenOptions::new().read_write(true).open_sender(path)
}

nix::ioctl_read_bad!(
    /// `ioctl(fd, FIONREAD, &mut int)`: the bytes a pipe holds, asked on either end.
    fionread,
    libc::FIONREAD,
    libc::c_int
);

/// How many bytes the pipe `fifo` holds: written and not yet read.
fn unread_bytes(fifo: &impl AsRawFd) -> std::io::Result<usize> {
    let mut bytes: libc::c_int = 0;
    // SAFETY: FIONREAD writes one `int` through the pointer, which is valid for it;
    // the descriptor is open for as long as `fifo` is borrowed.
    unsafe { fionread(fifo.as_raw_fd(), &mut bytes) }?;
    Ok(usize::try_from(bytes).unwrap_or(0))
}

impl ContainerLog {
    /// The container's ID.
    pub fn container_id(&self) -> &str {
        &self.info.container_id
    }

    /// The FIFO's path as the plugin sees it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Where the FIFO is on the host.
    pub fn host_path(&self) -> &Path {
        &self.host_path
    }

    /// What Capabilities answered.
    pub fn capability(&self) -> Capability {
        self.capability
    }

    /// How many bytes written into the FIFO the plugin has not read yet (`FIONREAD`).
    ///
    /// [`ContainerLog::write`] returns once its frames are in the FIFO, not once the
    /// plugin has read them: up to a pipe's worth (64 KiB) may still wait there. A
    /// test that needs the plugin to have taken everything, say before it kills the
    /// plugin and writes more into a FIFO that nobody reads any longer (which blocks
    /// once the pipe is full, as it blocks the container), waits for this to be 0.
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::harness::{Engine, LogContainer};
    /// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
    /// # let engine = Engine::for_tests("/tmp/t");
    /// let mut log = engine.logging().start("mylog", &LogContainer::new("web", "busybox")).await?;
    /// log.write("stdout", b"line-one\n").await?;
    /// while log.unread()? > 0 {
    ///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn unread(&self) -> Result<usize, HarnessError> {
        match &self.fifo {
            Some(fifo) => unread_bytes(fifo).map_err(|e| {
                HarnessError::io(
                    format!(
                        "asking the log FIFO {} what it holds",
                        self.host_path.display()
                    ),
                    e,
                )
            }),
            None => Ok(0),
        }
    }

    /// The container prints `output` on `source` (`stdout` or `stderr`): dockerd's
    /// copier makes frames of it and writes them into the FIFO, waiting while the FIFO
    /// is full (a plugin that does not read blocks this, as it blocks the container).
    pub async fn write(&mut self, source: &str, output: &[u8]) -> Result<(), HarnessError> {
        let entries = match source {
            "stderr" => self.stderr.write(output),
            _ => self.stdout.write(output),
        };
        self.send(entries).await
    }

    async fn send(&mut self, entries: Vec<logging::LogEntry>) -> Result<(), HarnessError> {
        let Some(fifo) = self.fifo.as_mut() else {
            return Ok(());
        };
        for entry in entries {
            fifo.write_all(&encode_frame(&entry))
                .await
                .map_err(|e| HarnessError::Runtime {
                    message: format!("writing to the log FIFO {}: {e}", self.host_path.display()),
                })?;
        }
        Ok(())
    }

    /// `docker logs` while the container runs: ReadLogs, the reply decoded as dockerd
    /// does. Without the ReadLogs capability: dockerd's error. The future borrows
    /// nothing: a follow read can wait for its reply while the container goes on
    /// writing and exits (a plugin may send the reply's head only with its first
    /// frame).
    pub fn read(
        &self,
        config: ReadConfig,
    ) -> impl Future<Output = Result<LogReader, HarnessError>> + Send + 'static {
        let plugin = Arc::clone(&self.plugin);
        let capable = self.capability.read_logs;
        let request = ReadLogsRequest {
            info: self.info.clone(),
            config,
        };
        async move {
            if !capable {
                return Err(HarnessError::Runtime {
                    message: "configured logging driver does not support reading".into(),
                });
            }
            let stream = plugin.rpc.stream::<ReadLogs>(&request).await?;
            Ok(LogReader::new(stream, config))
        }
    }

    /// The container exited: the copiers reach EOF (an unterminated tail goes out as a
    /// piece), StopLogging, and the FIFO is closed and removed (moby v20.10.24
    /// `daemon/logger/adapter.go` `Close`).
    pub async fn stop(mut self) -> Result<(), HarnessError> {
        let mut tails = self.stdout.close();
        tails.extend(self.stderr.close());
        self.send(tails).await?;
        let request = StopLoggingRequest {
            file: self.file.clone(),
        };
        let stopped = self.plugin.rpc.call::<StopLogging>(&request).await;
        // On an error dockerd returns before closing: the FIFO leaks.
        stopped?;
        self.fifo.take();
        if let Err(err) = tokio::fs::remove_file(&self.host_path).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(path = %self.host_path.display(), "error cleaning up plugin fifo: {err}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unread_counts_what_the_fifo_holds_until_the_reader_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let fifo = open_fifo(&path).unwrap();
        let reader = pipe::OpenOptions::new().open_receiver(&path).unwrap();
        assert_eq!(unread_bytes(&fifo).unwrap(), 0);
        let mut written = 0;
        // Until the pipe is full: what nobody reads stays there. Plain non-blocking
        // writes: tokio's `try_write` waits for its reactor to have seen the pipe
        // writable.
        while let Ok(n) = nix::unistd::write(&fifo, &[b'x'; 1000]) {
            written += n;
        }
        assert!(written >= 4096, "{written}");
        assert_eq!(unread_bytes(&fifo).unwrap(), written);
        let mut buf = vec![0; 1500];
        let read = nix::unistd::read(&reader, &mut buf).unwrap();
        assert_eq!(unread_bytes(&fifo).unwrap(), written - read);
        assert_eq!(unread_bytes(&reader).unwrap(), written - read);
    }
}
