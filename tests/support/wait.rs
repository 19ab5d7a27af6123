//! Waiting for what happens asynchronously: a line a plugin printed (the harness and
//! dockerd read a plugin's output in a task of their own, so it reaches
//! `plugins().logs()` or dockerd's log some time after the plugin wrote it), a file
//! another process writes, a process that starts or goes, a container's task.
//!
//! One deadline for all of them, [`PATIENCE`], generous on purpose: CI runs the test
//! binaries in three lanes beside fuzzing and builds on two cores, with heavy disk I/O,
//! where what takes 50 ms on a quiet machine has taken seconds. A wait ends as soon
//! as its condition holds, so the deadline costs only a test that fails anyway.
//! Nothing here measures time: a bound that is the point of a test (a drain that must
//! end before dockerd's SIGKILL, say) is written in that test.

use std::time::{Duration, Instant};

/// How long a wait goes on before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How often the condition is checked.
const EVERY: Duration = Duration::from_millis(50);

/// Polls `probe` until it gives `Some` (its value), blocking the thread; `Err` naming
/// `what` after [`PATIENCE`].
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(ended) = look(what, start, &mut probe) {
            return ended;
        }
        std::thread::sleep(EVERY);
    }
}

/// Polls `probe` until it gives `Some` (its value), sleeping on the runtime between
/// checks (the tasks of a current-thread runtime go on meanwhile); `Err` naming `what`
/// after [`PATIENCE`].
pub async fn wait_for_async<T>(
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(ended) = look(what, start, &mut probe) {
            return ended;
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// One look of a wait begun at `start`: `Some` once it ends, with `probe`'s value or,
/// past [`PATIENCE`], the error naming `what`; `None` to look again.
fn look<T>(
    what: &str,
    start: Instant,
    probe: &mut impl FnMut() -> Option<T>,
) -> Option<Result<T, String>> {
    match probe() {
        Some(found) => Some(Ok(found)),
        None if start.elapsed() > PATIENCE => Some(Err(format!("{what}: not within {PATIENCE:?}"))),
        None => None,
    }
}
