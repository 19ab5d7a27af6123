//! Plugins to put behind the harness when the plugin is not what is under test: the
//! harness's own tests, and tools built on it (the call recorder in `xtask/`) that
//! need a working driver to drive dockerd's calls through.
//!
//! [`MemoryLog`] is the log driver both use: every container's lines kept in memory
//! and served back through ReadLogs, so that `docker run --log-driver` and `docker
//! logs` work end to end. One type, so that the tests' driver and the recorder's
//! cannot drift apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::logging::{
    self, Capability, Entry, EntryStream, Info, Logs, ReadContext, ReadLogsRequest,
};
use crate::{Error, Result, async_trait};

/// Every container's lines, by container ID.
type Store = HashMap<String, Vec<Entry>>;

/// A log driver that keeps every container's entries in memory and serves them back
/// through ReadLogs with the SDK's helpers ([`ReadContext::reply`]: `--tail`,
/// `--since`/`--until`, and `-f` until the container's StopLogging).
///
/// Clones share the entries: register one with [`Plugin::logging`](crate::Plugin::logging)
/// and read them through another with [`entries`](Self::entries).
///
/// ```no_run
/// use docker_plugin_sdk::harness::testing::MemoryLog;
/// use docker_plugin_sdk::Plugin;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let memory = MemoryLog::new().refusing_options();
/// tokio::spawn(Plugin::new().logging(memory.clone()).serve_unix("memlog"));
/// // … `docker run --log-driver memlog` a container, then:
/// println!("{} lines", memory.entries("4f2a…").len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    entries: Arc<Mutex<Store>>,
    refuse_options: bool,
}

impl MemoryLog {
    /// A driver with no entries, which takes any log option (`--log-opt`) and ignores
    /// it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses every log option: StartLogging fails with `unknown log option "KEY"`,
    /// which `docker run` prints.
    pub fn refusing_options(mut self) -> Self {
        self.refuse_options = true;
        self
    }

    /// The entries of container `container_id` so far, in the order they came (none
    /// for a container it has not seen).
    pub fn entries(&self, container_id: &str) -> Vec<Entry> {
        self.store().get(container_id).cloned().unwrap_or_default()
    }

    /// The store; a panic elsewhere while it was held leaves it as it was.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl logging::Driver for MemoryLog {
    async fn validate(&self, info: &Info) -> Result<()> {
        match info.driver_options().next() {
            Some((key, _)) if self.refuse_options => {
                Err(Error::new(format!("unknown log option {key:?}")))
            }
            _ => Ok(()),
        }
    }

    async fn consume(&self, info: Info, mut logs: Logs) -> Result<()> {
        while let Some(entry) = logs.next().await {
            self.store()
                .entry(info.container_id.clone())
                .or_default()
                .push(entry);
        }
        Ok(())
    }

    fn capabilities(&self) -> Capability {
        Capability { read_logs: true }
    }

    async fn read_logs(&self, req: ReadLogsRequest, context: ReadContext) -> Result<EntryStream> {
        let stored = self.entries(&req.info.container_id);
        Ok(context.reply(stored, &req.config))
    }
}
