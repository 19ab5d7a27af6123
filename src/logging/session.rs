//! The containers a log driver is logging: one session per StartLogging FIFO, from
//! StartLogging to StopLogging, with the two tasks that serve it (the FIFO reader and
//! the driver's consumer).
//!
//! StartLogging validates, opens the FIFO, starts both tasks and replies at once
//! (dockerd waits for the reply to start the container: moby v20.10.24
//! `daemon/logger/plugin.go` `makePluginCreator`). StopLogging comes after the
//! container exited and dockerd's copier drained its output (up to 10 s:
//! `container/monitor.go`); it ends the reader (which drains the FIFO without
//! blocking), ends the consumer's stream, waits for the consumer at most the flush
//! timeout and replies; dockerd then closes and removes the FIFO
//! (`daemon/logger/adapter.go` `Close`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use super::Driver;
use super::buffer::{Logs, Queue};
use super::counters::ContainerCounters;
use super::fifo::{self, Sink};
use super::options::Options;
use super::partial::Entry;
use super::read::ReadContext;
use super::wire::{StartLoggingRequest, StopLoggingRequest};
use crate::error::{Error, Result};

/// How many entries a `docker logs -f` follower may fall behind.
const FOLLOW_BACKLOG: usize = 4096;

/// Every container being logged, by FIFO path.
pub(crate) struct Sessions {
    running: Mutex<HashMap<String, Session>>,
    options: Options,
}

struct Session {
    container_id: String,
    /// Cancelled to stop the reader.
    stop: CancellationToken,
    /// Cancelled once the reader has drained the FIFO (ends followers' waits).
    stopped: CancellationToken,
    live: broadcast::Sender<Entry>,
    reader: JoinHandle<()>,
    consumer: JoinHandle<()>,
    queue: Arc<Queue>,
}

impl Sessions {
    pub(crate) fn new(options: Options) -> Self {
        Self {
            running: Mutex::default(),
            options,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// StartLogging: validate, open the FIFO, start reading it and the consumer.
    pub(crate) async fn start<D: Driver>(
        &self,
        driver: &Arc<D>,
        req: StartLoggingRequest,
    ) -> Result<()> {
        driver.validate(&req.info).await?;
        let receiver = fifo::open(Path::new(&req.file)).map_err(|err| {
            Error::new(format!(
                "cannot open the log FIFO {}: {err} (a managed plugin sees it inside its rootfs, a legacy one under the host's /run/docker/logging)",
                req.file
            ))
        })?;
        let name = fifo_name(&req.file);
        let counters = ContainerCounters::new(&self.options.counters);
        let queue = Arc::new(Queue::new(&name, &self.options, counters));
        let (live, _) = broadcast::channel(FOLLOW_BACKLOG);
        let stop = CancellationToken::new();
        let sink = Sink {
            queue: Arc::clone(&queue),
            live: live.clone(),
            max_line: self.options.max_line,
            name: req.info.container_id.clone(),
        };
        let reader = tokio::spawn(fifo::read(receiver, sink, stop.clone()));
        let logs = Logs::new(Arc::clone(&queue));
        let info = req.info.clone();
        let consumer_driver = Arc::clone(driver);
        let container = req.info.container_id.clone();
        let consumer = tokio::spawn(async move {
            if let Err(err) = consumer_driver.consume(info, logs).await {
                tracing::error!(container = %container, "the log driver's consumer failed: {err}");
            }
        });
        let session = Session {
            container_id: req.info.container_id.clone(),
            stop,
            stopped: CancellationToken::new(),
            live,
            reader,
            consumer,
            queue,
        };
        let replaced = self.lock().insert(req.file.clone(), session);
        if let Some(old) = replaced {
            tracing::warn!(file = %req.file, "StartLogging again for a FIFO being read: the earlier reader stops");
            self.finish(old).await;
        }
        Ok(())
    }

    /// StopLogging: drain, end the consumer's stream, wait for it (bounded), reply.
    pub(crate) async fn stop(&self, req: StopLoggingRequest) -> Result<()> {
        let Some(session) = self.lock().remove(&req.file) else {
            // After a plugin restart dockerd stops FIFOs this process never opened:
            // nothing to release, and an error would make dockerd leak the FIFO.
            tracing::warn!(file = %req.file, "StopLogging for a FIFO this plugin is not reading");
            return Ok(());
        };
        self.finish(session).await;
        Ok(())
    }

    async fn finish(&self, session: Session) {
        let deadline = Instant::now() + self.options.flush_timeout;
        session.stop.cancel();
        let Session {
            container_id,
            stopped,
            reader,
            consumer,
            queue,
            ..
        } = session;
        if timeout_at(deadline, reader).await.is_err() {
            tracing::warn!(container = %container_id, "the log FIFO's reader did not finish within the flush timeout");
            queue.close();
        }
        stopped.cancel();
        let abort = consumer.abort_handle();
        if timeout_at(deadline, consumer).await.is_err() {
            abort.abort();
            let counts = queue.counters().snapshot();
            tracing::warn!(
                container = %container_id,
                "the log driver's consumer did not finish within the flush timeout ({} ms): cancelled, with {} of {} entries delivered",
                self.options.flush_timeout.as_millis(),
                counts.delivered,
                counts.received,
            );
        }
    }

    /// What a ReadLogs call for `container_id` may follow.
    pub(crate) fn read_context(&self, container_id: &str) -> ReadContext {
        let running = self.lock();
        let session = running
            .values()
            .find(|session| session.container_id == container_id);
        match session {
            Some(session) => {
                ReadContext::new(Some(session.live.subscribe()), session.stopped.clone())
            }
            None => {
                let stopped = CancellationToken::new();
                stopped.cancel();
                ReadContext::new(None, stopped)
            }
        }
    }
}

/// The FIFO's own name (dockerd's random 64-hex id), for the spill file.
fn fifo_name(file: &str) -> String {
    Path::new(file).file_name().map_or_else(
        || "fifo".to_owned(),
        |name| name.to_string_lossy().into_owned(),
    )
}
