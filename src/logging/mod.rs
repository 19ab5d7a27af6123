//! Log drivers (`LogDriver`): the trait a log driver implements, its wire types, its
//! four declared methods, and the machinery that reads dockerd's FIFOs so the driver
//! never has to, and never blocks a container.
//!
//! `docker run --log-driver NAME` makes dockerd create a FIFO, hold it open and call
//! `/LogDriver.StartLogging` with its path and the container's [`Info`]; then it
//! writes every line the container prints into the FIFO as a [frame](LogEntry), and
//! calls `/LogDriver.StopLogging` after the container exits. With the `ReadLogs`
//! [capability](Capability), `docker logs` becomes `/LogDriver.ReadLogs`, whose reply
//! streams frames back.
//!
//! The SDK does the FIFO part: at StartLogging it calls [`Driver::validate`], opens the
//! FIFO, replies, and reads the FIFO in a task of its own, joining split lines
//! ([`Reassembler`]); the driver's [`Driver::consume`] receives the container's
//! [`Logs`], a stream of whole [`Entry`]s, in a task of its own. Between the two sits a
//! bounded buffer: a slow or stuck consumer never stops the read (dockerd writes
//! synchronously, so a FIFO nobody reads blocks the container); when the buffer is
//! full the [`Overflow`] policy drops or spills to disk, with [counters](LogCounters).
//! StopLogging drains the FIFO without blocking, ends the stream, waits for the
//! consumer at most [`Options::flush_timeout`], and replies.
//!
//! ```no_run
//! use docker_plugin_sdk::logging::{self, Capability, Entry, EntryStream, Info, Logs};
//! use docker_plugin_sdk::logging::{ReadContext, ReadLogsRequest};
//! use docker_plugin_sdk::{async_trait, Error, Plugin, Result};
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//!
//! /// Keeps every container's lines in memory.
//! #[derive(Default)]
//! struct Memory(Mutex<HashMap<String, Vec<Entry>>>);
//!
//! #[async_trait]
//! impl logging::Driver for Memory {
//!     async fn validate(&self, info: &Info) -> Result<()> {
//!         match info.driver_options().next() {
//!             Some((key, _)) => Err(Error::new(format!("unknown log option `{key}`: memlog takes none"))),
//!             None => Ok(()),
//!         }
//!     }
//!
//!     async fn consume(&self, info: Info, mut logs: Logs) -> Result<()> {
//!         while let Some(entry) = logs.next().await {
//!             let mut lines = self.0.lock().unwrap();
//!             lines.entry(info.container_id.clone()).or_default().push(entry);
//!         }
//!         Ok(())
//!     }
//!
//!     fn capabilities(&self) -> Capability {
//!         Capability { read_logs: true }
//!     }
//!
//!     async fn read_logs(&self, req: ReadLogsRequest, context: ReadContext) -> Result<EntryStream> {
//!         let stored = self.0.lock().unwrap().get(&req.info.container_id).cloned();
//!         Ok(context.reply(stored.unwrap_or_default(), &req.config))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     Plugin::new().logging(Memory::default()).serve_unix("memlog").await?;
//!     Ok(())
//! }
//! ```
//!
//! How dockerd drives a log driver (moby v20.10.24 `daemon/logger/plugin.go`,
//! `proxy.go`, `adapter.go`, `copier.go`; `shared/protocol.md` section 7):
//!
//! - Capabilities at every logger creation (any error: no ReadLogs). StartLogging's
//!   error fails the container's start and is what `docker run` prints.
//! - Frames carry lines without their `\n`; lines over 16 KiB, and a tail without a
//!   newline at the container's exit, come in pieces ([`Entry::complete`] says which
//!   whole lines ended with a newline).
//! - `docker logs` on a running container is one ReadLogs; on a stopped one,
//!   Capabilities, StartLogging on a new FIFO, ReadLogs, StopLogging. dockerd applies
//!   `Since`/`Until` to the reply, not `Tail` nor `Follow`, and never ends a follow
//!   stream: [`select`], [`ReadContext::reply`] and [`ReadContext::live`] do both.
//! - No call has a timeout for a legacy plugin; a managed one's is `docker plugin
//!   enable --timeout` (none after `docker plugin install`). A hung StopLogging hangs
//!   `docker stop`: the flush timeout bounds it.
//! - Nobody re-sends StartLogging after a plugin restart: the FIFOs of a previous
//!   instance are not read again (and StopLogging for them is answered with success).

mod buffer;
mod counters;
mod fifo;
mod frame;
mod options;
mod partial;
mod read;
mod session;
mod spill;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;

pub use buffer::Logs;
pub use counters::{CounterSnapshot, LogCounters};
pub use frame::{
    FrameDecoder, FrameError, LogEntry, MAX_FRAME_LEN, PartialLogEntryMetadata, encode_frame,
};
pub use options::{DEFAULT_BUFFER, DEFAULT_FLUSH_TIMEOUT, DEFAULT_MAX_LINE, Options, Overflow};
#[cfg(feature = "harness")]
pub(crate) use partial::time_of;
pub use partial::{Entry, Reassembler, Source};
pub use read::{EntryStream, MAX_REPLY_PIECE, ReadContext, reply_frames, select};
pub use wire::*;

use crate::dispatch::Subsystem;
use crate::error::{Error, Result};
use crate::protocol::{
    DEFAULT_BODY_LIMIT, Empty, RequestBody, SubsystemSpec, declare_method, method_list,
};
use session::Sessions;

/// The value of `Implements` for log drivers; a managed one declares the interface
/// type `docker.logdriver/1.0`.
pub const IMPLEMENTS: &str = "LogDriver";

/// The logging subsystem as dockerd knows it.
pub const SUBSYSTEM: SubsystemSpec = SubsystemSpec {
    implements: IMPLEMENTS,
    body_limit: DEFAULT_BODY_LIMIT,
    methods: METHODS,
    call_timeout: None,
};

declare_method!(
    "LogDriver",
    /// `/LogDriver.StartLogging`: a container starts; read its FIFO. An error fails
    /// the container's start.
    StartLogging,
    StartLoggingRequest,
    Empty
);

declare_method!(
    "LogDriver",
    /// `/LogDriver.StopLogging`: the container stopped; finish its logs and release
    /// its FIFO (on an error dockerd leaks the FIFO).
    StopLogging,
    StopLoggingRequest,
    Empty
);

declare_method!(
    "LogDriver",
    /// `/LogDriver.Capabilities`: whether the driver reads logs back. Sent with an
    /// empty body; dockerd ignores every error (then: no ReadLogs).
    Capabilities,
    Empty,
    CapabilitiesResponse,
    const OPTIONAL: bool = true;
    const REQUEST_BODY: RequestBody = RequestBody::Empty;
);

declare_method!(
    "LogDriver",
    /// `/LogDriver.ReadLogs`: `docker logs`. The reply streams [frames](LogEntry):
    /// the response type is one frame's entry.
    ReadLogs,
    ReadLogsRequest,
    LogEntry
);

method_list!(StartLogging, StopLogging, Capabilities, ReadLogs);

/// A log driver.
///
/// Only [`consume`](Driver::consume) is required. Called concurrently for different
/// containers; every method but `consume` is a call dockerd waits for: answer fast.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Checks a container's log options (`--log-opt`, in [`Info::config`]; dockerd does
    /// not check them) before its FIFO is opened. An error fails `docker run` with its
    /// message, so name the option and what it must be ([`Info::options`] does).
    async fn validate(&self, info: &Info) -> Result<()> {
        let _ = info;
        Ok(())
    }

    /// The container's logs, from StartLogging until the stream ends after its
    /// StopLogging: run in a task of its own, for as long as it takes, but StopLogging
    /// waits for it at most [`Options::flush_timeout`] and then cancels it. Take
    /// entries promptly (see [`Logs`]). An error is logged.
    async fn consume(&self, info: Info, logs: Logs) -> Result<()>;

    /// What the driver can do: `ReadLogs` only if [`read_logs`](Driver::read_logs) is
    /// implemented. Default: nothing.
    fn capabilities(&self) -> Capability {
        Capability::default()
    }

    /// `docker logs`: the container's entries that `req.config` asks for, in order.
    /// dockerd writes each entry's line and its `\n` (when
    /// [`complete`](Entry::complete)), drops those before `Since` and stops at the first
    /// after `Until`; the driver applies `Tail` and `Follow` ([`ReadContext::reply`]
    /// does all of it from stored entries). Default: an error.
    async fn read_logs(&self, req: ReadLogsRequest, context: ReadContext) -> Result<EntryStream> {
        let _ = (req, context);
        Err(Error::new(
            "this log driver does not read logs back (its capabilities say so: docker logs uses dockerd's local cache)",
        ))
    }
}

/// The routes of a log driver, with the SDK's FIFO machinery configured by `options`.
pub(crate) fn subsystem<D: Driver>(driver: D, options: Options) -> Subsystem {
    let driver = Arc::new(driver);
    let counters = Arc::new(options.counters.clone());
    let sessions = Arc::new(Sessions::new(options));
    let stop_sessions = Arc::clone(&sessions);
    let read_sessions = Arc::clone(&sessions);
    Subsystem::new(&SUBSYSTEM)
        .section(counters)
        .route(StartLogging, &driver, move |driver, req| {
            let sessions = Arc::clone(&sessions);
            async move {
                sessions.start(&driver, req).await?;
                Ok(Empty {})
            }
        })
        .route(StopLogging, &driver, move |_, req| {
            let sessions = Arc::clone(&stop_sessions);
            async move {
                sessions.stop(req).await?;
                Ok(Empty {})
            }
        })
        .route(Capabilities, &driver, |driver, _| async move {
            Ok(CapabilitiesResponse {
                cap: driver.capabilities(),
            })
        })
        .stream(ReadLogs, &driver, move |driver, req: ReadLogsRequest| {
            let sessions = Arc::clone(&read_sessions);
            async move {
                let context = sessions.read_context(&req.info.container_id);
                let entries = driver.read_logs(req, context).await?;
                Ok(read::frames(entries))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_methods_are_declared_in_the_documentations_order() {
        let names: Vec<_> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "LogDriver.StartLogging",
                "LogDriver.StopLogging",
                "LogDriver.Capabilities",
                "LogDriver.ReadLogs"
            ]
        );
    }
}
