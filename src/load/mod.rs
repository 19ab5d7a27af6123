//! The load generator (feature `load`): drives any plugin the way dockerd calls it and
//! measures it. `cargo docker-plugin bench` and the serving benchmark
//! (`benches/serve.rs`) are built on it.
//!
//! - [`Target`]: where the plugin listens (a name found as dockerd finds a legacy
//!   plugin, a socket path, a `unix://` or `tcp://` URL).
//! - [`Call`]: the endpoint as dockerd names it and its body, sent byte for byte as
//!   dockerd's Go client sends it.
//! - [`Load`]: `connections` keep-alive HTTP/1.1 connections, one call in flight on
//!   each (or a new connection per call), for a duration; a [`Report`] of calls,
//!   [`Errors`] by kind, calls/s and latency percentiles from a bounded-memory
//!   [`Histogram`]; a [`Progress`] callback.
//! - [`log_lines`]: a log driver fed framed lines through a FIFO at a rate, and its
//!   RSS.
//! - [`Summary`]: the JSON object of `bench --json`.

mod error;
mod histogram;
mod logs;
mod process;
mod reply;
mod report;
mod request;
mod run;
mod target;

pub use error::LoadError;
pub use histogram::Histogram;
pub use logs::{LogOptions, LogReport, log_lines};
pub use process::{clock_ticks_per_sec, cpu_ticks, cpu_time, proc_status_kib};
pub use report::{Errors, Latencies, LogLines, Report, RssKib, Summary};
pub use request::Call;
pub use run::{Load, Options, Progress};
pub use target::Target;
