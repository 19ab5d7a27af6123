//! The recorder's log driver (`--logging`): keeps every container's lines in memory and
//! serves them back through ReadLogs with the SDK's helpers (`Tail`, `Since`/`Until`,
//! `Follow` until the container's StopLogging), so that `docker run --log-driver` and
//! `docker logs` work end to end while the middleware records the calls. A ReadLogs
//! reply is frames, not JSON: the middleware records them decoded ([`frames_json`]).

use std::collections::HashMap;
use std::sync::Mutex;

use docker_plugin_sdk::logging::{
    self, Capability, Entry, EntryStream, FrameDecoder, Info, Logs, ReadContext, ReadLogsRequest,
};
use docker_plugin_sdk::{Result, async_trait};
use serde_json::{Value, json};

/// Every container's lines, by container ID.
#[derive(Default)]
pub(crate) struct RecLogs(Mutex<HashMap<String, Vec<Entry>>>);

#[async_trait]
impl logging::Driver for RecLogs {
    async fn consume(&self, info: Info, mut logs: Logs) -> Result<()> {
        while let Some(entry) = logs.next().await {
            let mut stored = self.0.lock().unwrap_or_else(|p| p.into_inner());
            stored
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
        let stored = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&req.info.container_id)
            .cloned();
        Ok(context.reply(stored.unwrap_or_default(), &req.config))
    }
}

/// A ReadLogs reply's frames as JSON: `[{"source", "line" (text), "bytes"}]`, the time
/// left out (it is the run's own).
pub(crate) fn frames_json(body: &[u8]) -> Value {
    let mut decoder = FrameDecoder::new();
    decoder.extend(body);
    let mut frames = Vec::new();
    loop {
        match decoder.decode() {
            Ok(Some(entry)) => frames.push(json!({
                "source": entry.source,
                "line": String::from_utf8_lossy(&entry.line),
                "bytes": entry.line.len(),
                "partial": entry.partial,
            })),
            Ok(None) => break,
            Err(err) => {
                frames.push(json!({ "error": err.to_string() }));
                break;
            }
        }
    }
    Value::Array(frames)
}
