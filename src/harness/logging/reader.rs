//! A ReadLogs reply read as dockerd reads it (moby v20.10.24 `daemon/logger/adapter.go`
//! `pluginAdapterWithRead.ReadLogs`): frames decoded with `LogEntryDecoder`, entries
//! before `Since` dropped, the stream ended at the first entry after `Until`, EOF at a
//! frame boundary the end, anything else "error decoding log message". Each line is
//! written **verbatim** (`docker logs` adds nothing), and only `stdout`/`stderr`
//! reach the user (`daemon/logs.go` hands them to the two writers).

use std::time::SystemTime;

use super::ContainerLog;
use crate::client::ReplyStream;
use crate::harness::error::HarnessError;
use crate::logging::{FrameDecoder, ReadConfig, time_of};

/// One message of `docker logs`, as dockerd writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMessage {
    /// `stdout` or `stderr`.
    pub source: String,
    /// The entry's time.
    pub time: SystemTime,
    /// The bytes `docker logs` writes, as the plugin sent them.
    pub line: Vec<u8>,
}

/// The reply to a ReadLogs, read as dockerd reads it.
#[derive(Debug)]
pub struct LogReader {
    stream: Option<ReplyStream>,
    decoder: FrameDecoder,
    config: ReadConfig,
    /// For a stopped container's read: its temporary logger, stopped at the end.
    logger: Option<ContainerLog>,
}

impl LogReader {
    pub(super) fn new(stream: ReplyStream, config: ReadConfig) -> Self {
        Self {
            stream: Some(stream),
            decoder: FrameDecoder::new(),
            config,
            logger: None,
        }
    }

    /// Stops `logger` (StopLogging) once the reply is over.
    pub(super) fn stop_after(mut self, logger: ContainerLog) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The next message; `None` at the end of the reply (or the first entry after
    /// `Until`).
    pub async fn next(&mut self) -> Result<Option<LogMessage>, HarnessError> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(None);
            };
            let entry = match self.decoder.read_frame(stream).await {
                Ok(Some(entry)) => entry,
                Ok(None) => return self.end().await.map(|()| None),
                Err(err) => {
                    self.end().await?;
                    return Err(HarnessError::Runtime {
                        message: format!("error decoding log message: {err}"),
                    });
                }
            };
            let time = time_of(entry.time_nano);
            if self.config.since().is_some_and(|since| time < since) {
                continue;
            }
            if self.config.until().is_some_and(|until| time > until) {
                return self.end().await.map(|()| None);
            }
            if entry.source != "stdout" && entry.source != "stderr" {
                continue;
            }
            return Ok(Some(LogMessage {
                source: entry.source,
                time,
                line: entry.line,
            }));
        }
    }

    /// Every message until the end.
    pub async fn collect(mut self) -> Result<Vec<LogMessage>, HarnessError> {
        let mut messages = Vec::new();
        while let Some(message) = self.next().await? {
            messages.push(message);
        }
        Ok(messages)
    }

    /// What `docker logs` prints: every line, verbatim, stdout and stderr together.
    pub async fn collect_text(self) -> Result<String, HarnessError> {
        let mut text = Vec::new();
        for message in self.collect().await? {
            text.extend_from_slice(&message.line);
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// The reply is over: the connection closed, a temporary logger stopped.
    async fn end(&mut self) -> Result<(), HarnessError> {
        self.stream = None;
        match self.logger.take() {
            Some(logger) => logger.stop().await,
            None => Ok(()),
        }
    }
}
