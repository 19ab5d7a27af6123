//! `{{project-name}}`'s driver: where a container's log lines go. `docker run
//! --log-driver {{project-name}}` makes dockerd call StartLogging; the SDK reads the
//! FIFO dockerd writes the container's lines to (never blocking it: a bounded buffer,
//! then the overflow policy), checks the `--log-opt`s with [`Driver::validate`], and
//! hands [`Driver::consume`] a stream of whole lines. With the ReadLogs capability,
//! `docker logs` is answered by [`Driver::read_logs`].
//!
//! This one keeps each container's last `max-lines` lines in memory (`--log-opt
//! max-lines=N`, default 1000) and serves them back to `docker logs`, with `--tail`,
//! `--since`, `--until` and `-f`. Send the lines somewhere of your own in
//! [`Driver::consume`]; keep every other method fast, as dockerd waits for them
//! (StopLogging holds up `docker stop`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use docker_plugin_sdk::logging::{
    Capability, Driver, Entry, EntryStream, Info, Logs, ReadContext, ReadLogsRequest,
};
use docker_plugin_sdk::{DriverOptions, Result, async_trait};

/// The `--log-opt`s the driver takes; anything else fails `docker run` with a message
/// naming it (dockerd's own, `mode` and `cache-*`, are left out for you).
#[derive(Debug, DriverOptions)]
pub struct LogOptions {
    /// How many of a container's last lines are kept.
    #[opt(rename = "max-lines", default = "1000")]
    pub max_lines: usize,
}

/// One container's kept lines.
type Lines = Arc<Mutex<VecDeque<Entry>>>;

/// The driver: each container's last lines, by container ID.
#[derive(Debug, Default)]
pub struct Memory {
    containers: Mutex<HashMap<String, Lines>>,
}

impl Memory {
    /// The kept lines of the container `id`, created empty.
    fn lines(&self, id: &str) -> Lines {
        let mut containers = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(containers.entry(id.to_owned()).or_default())
    }
}

#[async_trait]
impl Driver for Memory {
    async fn validate(&self, info: &Info) -> Result<()> {
        info.options::<LogOptions>()?;
        Ok(())
    }

    async fn consume(&self, info: Info, mut logs: Logs) -> Result<()> {
        let options: LogOptions = info.options()?;
        let lines = self.lines(&info.container_id);
        while let Some(entry) = logs.next().await {
            let mut lines = lines.lock().unwrap_or_else(|p| p.into_inner());
            lines.push_back(entry);
            while lines.len() > options.max_lines {
                lines.pop_front();
            }
        }
        Ok(())
    }

    fn capabilities(&self) -> Capability {
        Capability { read_logs: true }
    }

    async fn read_logs(&self, req: ReadLogsRequest, context: ReadContext) -> Result<EntryStream> {
        let lines = self.lines(&req.info.container_id);
        let kept: Vec<Entry> = lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        // `--tail`, `--since`/`--until`, and `-f` until the container stops.
        Ok(context.reply(kept, &req.config))
    }
}
