//! Keeps the runtime listening while a careless driver blocks a worker thread.
//!
//! A tokio multi-thread runtime has one I/O driver, polled by whichever worker parks
//! on it; the other idle workers sleep on a condition variable. When the worker that
//! held the driver wakes up to run a call and that call blocks its thread (a
//! `std::thread::sleep`, a blocking `mount`), nobody polls the driver: the other
//! workers sleep on, and every other call (a `docker volume ls` while a container
//! starts) waits for the blocking one. Spawning a task from outside the runtime wakes
//! a sleeping worker, which then parks on the free driver and serves the other calls.
//!
//! So a watchdog thread looks at the workers a few times per second: when one has been
//! running, without parking, since the last look while another sleeps, it spawns an
//! empty task. The workers only store a counter when they park and unpark (no clock,
//! nothing per call). The watchdog looks every 10 ms while a worker runs and every
//! 100 ms while all sleep, so an idle plugin wakes ten times a second.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How often the watchdog looks while a worker runs.
const BUSY_LOOK: Duration = Duration::from_millis(10);
/// How often it looks while every worker sleeps.
const IDLE_LOOK: Duration = Duration::from_millis(100);

/// What the workers tell the watchdog: per worker, the count of its parks and unparks
/// (odd while it runs).
pub(super) struct Workers {
    states: Box<[AtomicU64]>,
    /// The next free entry of `states`, handed out at a worker's first park or unpark.
    next: AtomicUsize,
    stopped: AtomicBool,
}

thread_local! {
    /// This thread's entry in `Workers::states`, and its count of parks and unparks.
    static ENTRY: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
}

impl Workers {
    pub(super) fn new(workers: usize) -> Arc<Self> {
        Arc::new(Self {
            states: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        })
    }

    /// Called by a worker when it parks (`running` false) or unparks (true): one store.
    pub(super) fn event(&self, running: bool) {
        let (index, count) = ENTRY
            .get()
            .unwrap_or_else(|| (self.next.fetch_add(1, Ordering::Relaxed), 0));
        // The next count that is odd while running, even while parked.
        let next = count + 1;
        let count = if (next % 2 == 1) == running {
            next
        } else {
            next + 1
        };
        ENTRY.set(Some((index, count)));
        if let Some(state) = self.states.get(index) {
            state.store(count, Ordering::Relaxed);
        }
    }

    /// Ends [`watch`].
    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// One look, given the states of the previous one: whether a worker has been
    /// running since then while another sleeps, and whether any runs.
    fn look(&self, seen: &mut [u64]) -> (bool, bool) {
        let (mut stuck, mut sleeping, mut running) = (false, false, false);
        for (state, seen) in self.states.iter().zip(seen.iter_mut()) {
            let now = state.load(Ordering::Relaxed);
            if now % 2 == 1 {
                running = true;
                stuck |= now == *seen;
            } else {
                sleeping = true;
            }
            *seen = now;
        }
        (stuck && sleeping, running)
    }
}

/// The watchdog's loop, on a thread of its own until [`Workers::stop`].
pub(super) fn watch(workers: Arc<Workers>, runtime: tokio::runtime::Handle) {
    let mut seen = vec![0; workers.states.len()];
    let mut pause = IDLE_LOOK;
    while !workers.stopped.load(Ordering::Relaxed) {
        std::thread::sleep(pause);
        let (stuck, running) = workers.look(&mut seen);
        if stuck {
            // Wakes a sleeping worker, which then parks on the I/O driver.
            drop(runtime.spawn(async {}));
        }
        pause = if running { BUSY_LOOK } else { IDLE_LOOK };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_running_since_the_last_look_while_another_sleeps_is_stuck() {
        let workers = Workers::new(2);
        let mut seen = vec![0; 2];
        let other = std::thread::scope(|scope| {
            scope.spawn(|| {
                workers.event(true);
                workers.event(false);
                workers.event(true); // running
            });
            scope.spawn(|| workers.event(false)).join()
        });
        other.unwrap();
        assert_eq!(
            workers.look(&mut seen),
            (false, true),
            "running, first look"
        );
        assert_eq!(workers.look(&mut seen), (true, true), "still running");
    }

    #[test]
    fn the_count_is_odd_exactly_while_running() {
        let workers = Workers::new(1);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for running in [false, true, true, false, false, true] {
                    workers.event(running);
                    let state = workers.states[0].load(Ordering::Relaxed);
                    assert_eq!(state % 2 == 1, running, "{state}");
                }
            });
        });
    }
}
