//! Support code the macros expand to. Not a public API: it may change at any time.
//!
//! `#[docker_plugin_sdk::main]` is `run_main`: logging set up the way dockerd shows a
//! plugin's output, a multi-thread runtime whose I/O keeps going while a careless
//! driver blocks a worker (`stall`), and the exit code.

mod stall;

use std::fmt::Display;
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

/// What `async fn main` may return under `#[docker_plugin_sdk::main]`.
pub trait MainOutput {
    /// The process's exit code; an error is printed to stderr first.
    fn report(self) -> ExitCode;
}

impl MainOutput for () {
    fn report(self) -> ExitCode {
        ExitCode::SUCCESS
    }
}

impl MainOutput for ExitCode {
    fn report(self) -> ExitCode {
        self
    }
}

impl<E: Display> MainOutput for Result<(), E> {
    fn report(self) -> ExitCode {
        match self {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Sets up logging ([`init_logging`]), then runs `body` on a multi-thread runtime.
///
/// dockerd calls a plugin concurrently (a `docker volume ls` while a container starts):
/// with several workers (at least two, even on one CPU) and the `stall` watchdog, a
/// driver call that blocks its thread (a careless `std::fs` or `mount`) does not stall
/// every other call and the signal handling. When `body` returns, the runtime is shut
/// down without waiting for blocking tasks or calls still running (the drain has had
/// its time).
pub fn run_main<F>(body: F) -> ExitCode
where
    F: Future,
    F::Output: MainOutput,
{
    init_logging();
    let workers = std::thread::available_parallelism()
        .map_or(MIN_WORKERS, |n| n.get())
        .max(MIN_WORKERS);
    let states = stall::Workers::new(workers);
    let (parked, unparked) = (Arc::clone(&states), Arc::clone(&states));
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .on_thread_park(move || parked.event(false))
        .on_thread_unpark(move || unparked.event(true))
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let watchdog = {
                let (states, handle) = (Arc::clone(&states), runtime.handle().clone());
                std::thread::Builder::new()
                    .name("dps-watchdog".into())
                    .spawn(move || stall::watch(states, handle))
            };
            if let Err(err) = &watchdog {
                tracing::warn!(%err, "cannot start the runtime's watchdog thread: a driver call that blocks its thread will stall the others");
            }
            let output = runtime.block_on(body);
            states.stop();
            runtime.shutdown_background();
            output.report()
        }
        Err(err) => {
            eprintln!("error: cannot start the tokio runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The fewest worker threads `run_main` starts.
const MIN_WORKERS: usize = 2;

/// Logs filtered by `RUST_LOG` (default `info`), the way dockerd shows a managed
/// plugin's output: it logs each line of the plugin's stdout at level info and of its
/// stderr at level error, with its own timestamp and `plugin=<id>` (moby v20.10.24
/// `plugin/manager.go` `makeLoggerStreams`). So info and
/// below go to stdout, warnings and errors to stderr, and the lines carry no timestamp
/// and no colour unless both streams are a terminal.
///
/// Without `RUST_LOG`, the filter is the level `info` itself rather than an
/// `EnvFilter` of `info`: the same events, without parsing directives or running the
/// `EnvFilter`'s code at start, which made up part of what a plugin's idle RSS and its
/// exec → first answer cost over a bare hyper server (`benches/serve/`).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::writer::MakeWriterExt;

    let filter = std::env::var_os(EnvFilter::DEFAULT_ENV)
        .map(|_| EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let writer = std::io::stderr
        .with_max_level(tracing::Level::WARN)
        .or_else(std::io::stdout);
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(terminal);
    // A subscriber set earlier (by a test, say) wins; that is fine.
    let _ = match (filter, terminal) {
        (Some(filter), true) => builder.with_env_filter(filter).try_init(),
        (Some(filter), false) => builder.with_env_filter(filter).without_time().try_init(),
        (None, true) => builder.with_max_level(tracing::Level::INFO).try_init(),
        (None, false) => builder
            .with_max_level(tracing::Level::INFO)
            .without_time()
            .try_init(),
    };
}
