//! Support code the macros expand to. Not a public API: it may change at any time.

use std::fmt::Display;
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

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

/// Logs to stderr (`RUST_LOG`, default `info`; colours only on a terminal), then runs
/// `body` on a current-thread runtime.
pub fn run_main<F>(body: F) -> ExitCode
where
    F: Future,
    F::Output: MainOutput,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A subscriber set earlier (by a test, say) wins; that is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(body).report(),
        Err(err) => {
            eprintln!("error: cannot start the tokio runtime: {err}");
            ExitCode::FAILURE
        }
    }
}
