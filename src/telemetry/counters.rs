//! One method's counters, kept with relaxed atomics on every call's path: a call
//! costs two clock reads and four atomic adds (calls, errors when it failed, the
//! latency sum and one histogram bucket), with no lock and no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// The counters of one method.
#[derive(Debug)]
pub(crate) struct MethodCounters {
    pub(crate) name: String,
    calls: AtomicU64,
    errors: AtomicU64,
    abandoned: AtomicU64,
    sum_ns: AtomicU64,
    /// Calls per bucket (not cumulative); the last one counts those above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
}

impl MethodCounters {
    pub(crate) fn new(name: String) -> Self {
        Self {
            name,
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// One answered call: its latency, and whether it failed (any status but 200).
    pub(crate) fn record(&self, elapsed: Duration, failed: bool) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NS
            .iter()
            .position(|bound| ns <= *bound)
            .unwrap_or(BUCKETS_NS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call whose client went away before its reply.
    pub(crate) fn record_abandoned(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> super::MethodMetrics {
        let mut cumulative = 0;
        let mut buckets = [0; BUCKETS.len()];
        for (count, bucket) in buckets.iter_mut().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            *count = cumulative;
        }
        let above = self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        super::MethodMetrics {
            method: self.name.clone(),
            // Read after the buckets: a call recorded meanwhile may be in `calls` and
            // not yet in a bucket, never the other way round, so `count` (the buckets'
            // total, as Prometheus wants it) is used for the histogram.
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
            latency: super::Histogram {
                buckets,
                count: cumulative + above,
                sum: Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed)),
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
}
