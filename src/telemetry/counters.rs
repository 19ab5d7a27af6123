//! One method's counters, kept with relaxed atomics on every call's path: a call
//! costs two clock reads and four atomic adds (calls, errors when it failed, the
//! latency sum and one histogram bucket), with no lock and no allocation.
//!
//! The counters are kept in a few copies ([`SHARDS`]), each on cache lines of its own,
//! and a thread adds to its own copy: with one copy, every call on a multi-thread
//! runtime moved the counters' cache line from the core that counted the last call to
//! its own, a cost `benches/serve/` measures in its `main` setup. Reading sums the
//! copies.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The latency histogram's upper bounds, in seconds (Prometheus' `le`): from 100 µs, a
/// trivial call, up to 2 minutes, dockerd's longest deadline for a volume call (moby
/// v20.10.24 `volume/drivers/proxy.go`).
pub const BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    30.0, 60.0, 120.0,
];

/// The same bounds in nanoseconds, for the per-call comparison.
const BUCKETS_NS: [u64; 17] = {
    let mut ns = [0u64; 17];
    let mut i = 0;
    while i < BUCKETS.len() {
        ns[i] = (BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    ns
};

/// How many copies of each method's counters are kept: threads are spread over them
/// in the order they first count a call (a plugin's runtime has a worker per core, at
/// least two).
const SHARDS: usize = 4;

/// The counters of one method.
#[derive(Debug)]
pub(crate) struct MethodCounters {
    pub(crate) name: String,
    shards: Box<[Shard; SHARDS]>,
}

/// One copy of a method's counters, alone on its cache lines (128 bytes: two lines,
/// as a core's adjacent-line prefetch pairs them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    calls: AtomicU64,
    errors: AtomicU64,
    abandoned: AtomicU64,
    sum_ns: AtomicU64,
    /// Calls per bucket (not cumulative); the last one counts those above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
}

/// This thread's copy of the counters.
fn shard_index() -> usize {
    /// The next thread's copy.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
    }
    INDEX.with(|index| {
        index.get().unwrap_or_else(|| {
            let next = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            index.set(Some(next));
            next
        })
    })
}

impl MethodCounters {
    pub(crate) fn new(name: String) -> Self {
        Self {
            name,
            shards: Box::default(),
        }
    }

    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// One answered call: its latency, and whether it failed (any status but 200).
    pub(crate) fn record(&self, elapsed: Duration, failed: bool) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NS
            .iter()
            .position(|bound| ns <= *bound)
            .unwrap_or(BUCKETS_NS.len());
        let shard = self.shard();
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.sum_ns.fetch_add(ns, Ordering::Relaxed);
        if failed {
            shard.errors.fetch_add(1, Ordering::Relaxed);
        }
        shard.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call whose client went away before its reply.
    pub(crate) fn record_abandoned(&self) {
        self.shard().abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// The sum of one counter over the copies.
    fn total(&self, counter: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|shard| counter(shard).load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    pub(crate) fn snapshot(&self) -> super::MethodMetrics {
        let mut cumulative = 0;
        let mut buckets = [0; BUCKETS.len()];
        for (i, count) in buckets.iter_mut().enumerate() {
            cumulative += self.total(|shard| &shard.buckets[i]);
            *count = cumulative;
        }
        let above = self.total(|shard| &shard.buckets[BUCKETS.len()]);
        super::MethodMetrics {
            method: self.name.clone(),
            // Read after the buckets: a call recorded meanwhile may be in `calls` and
            // not yet in a bucket, never the other way round, so `count` (the buckets'
            // total, as Prometheus wants it) is used for the histogram.
            calls: self.total(|shard| &shard.calls),
            errors: self.total(|shard| &shard.errors),
            abandoned: self.total(|shard| &shard.abandoned),
            latency: super::Histogram {
                buckets,
                count: cumulative + above,
                sum: Duration::from_nanos(self.total(|shard| &shard.sum_ns)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_lands_in_the_first_bucket_whose_bound_it_does_not_exceed() {
        let counters = MethodCounters::new("M".into());
        counters.record(Duration::from_micros(100), false); // le 0.0001 exactly
        counters.record(Duration::from_micros(101), true); // le 0.00025
        counters.record(Duration::from_secs(200), false); // above every bound
        let m = counters.snapshot();
        assert_eq!((m.calls, m.errors, m.abandoned), (3, 1, 0));
        assert_eq!(m.latency.buckets[0], 1);
        assert_eq!(m.latency.buckets[1], 2);
        assert_eq!(m.latency.buckets[BUCKETS.len() - 1], 2);
        assert_eq!(m.latency.count, 3);
        assert_eq!(
            m.latency.sum,
            Duration::from_micros(201) + Duration::from_secs(200)
        );
    }

    #[test]
    fn calls_counted_on_several_threads_are_summed() {
        let counters = MethodCounters::new("M".into());
        std::thread::scope(|scope| {
            for _ in 0..2 * SHARDS {
                scope.spawn(|| {
                    counters.record(Duration::from_micros(100), false);
                    counters.record(Duration::from_millis(1), true);
                    counters.record_abandoned();
                });
            }
        });
        let m = counters.snapshot();
        let threads = 2 * SHARDS as u64;
        assert_eq!(
            (m.calls, m.errors, m.abandoned),
            (2 * threads, threads, threads)
        );
        assert_eq!(m.latency.buckets[0], threads);
        assert_eq!(m.latency.buckets[3], 2 * threads);
        assert_eq!(m.latency.count, 2 * threads);
        assert_eq!(m.latency.sum, Duration::from_micros(1100) * threads as u32);
    }
}
