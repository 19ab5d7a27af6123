//! Latencies in bounded memory: an HDR-style log-linear histogram (64 buckets per
//! power of two, so a percentile is within 1/64 ≈ 1.6% of the true value), in
//! nanoseconds up to 2³⁷ ns (about 137 s; longer calls land in the last bucket, and
//! the exact maximum is kept aside).

use std::time::Duration;

/// Sub-buckets per power of two: 2^6.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below 2·SUB are counted exactly.
const LINEAR: u64 = 2 * SUB;
/// The largest power of two counted: 2^37 ns.
const TOP_BIT: u32 = 37;
const BUCKETS: usize = (LINEAR + (TOP_BIT - SUB_BITS) as u64 * SUB) as usize;

/// A latency histogram.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u32]>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

fn index(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    let bit = 63 - ns.leading_zeros();
    if bit > TOP_BIT {
        return BUCKETS - 1;
    }
    let shift = bit - SUB_BITS;
    let mantissa = ns >> shift; // in SUB..2·SUB
    (LINEAR + u64::from(bit - SUB_BITS - 1) * SUB + (mantissa - SUB)) as usize
}

/// The middle of bucket `i`'s range, in ns.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let octave = (i - LINEAR) / SUB;
    let mantissa = SUB + (i - LINEAR) % SUB;
    let shift = octave + 1;
    (mantissa << shift) + (1 << shift) / 2
}

impl Histogram {
    /// Counts one latency.
    ///
    /// ```
    /// use docker_plugin_sdk::load::Histogram;
    /// use std::time::Duration;
    /// let mut h = Histogram::default();
    /// for us in 1..=100 {
    ///     h.record(Duration::from_micros(us));
    /// }
    /// let p50 = h.percentile(50.0).as_secs_f64() * 1e6;
    /// assert!((49.0..=51.5).contains(&p50), "{p50}");
    /// assert_eq!(h.max(), Duration::from_micros(100));
    /// ```
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let i = index(ns);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The longest latency, exactly.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// The latency `p` percent of the calls took at most (0 when nothing was
    /// counted); never more than [`max`](Self::max).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((p.clamp(0.0, 100.0) / 100.0 * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return Duration::from_nanos(value(i).min(self.max));
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_their_precision() {
        for ns in [
            0u64,
            1,
            127,
            128,
            129,
            1000,
            12_345,
            999_999,
            1 << 30,
            (1 << 37) - 1,
        ] {
            let v = value(index(ns));
            let err = (v as f64 - ns as f64).abs() / (ns.max(1) as f64);
            assert!(err <= 1.0 / SUB as f64, "{ns} -> {v}");
        }
        assert_eq!(index((1 << 38) + 5), BUCKETS - 1);
        assert!(index((1 << 37) + 5) < BUCKETS);
    }

    #[test]
    fn percentiles_and_merge() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for i in 0..990 {
            a.record(Duration::from_nanos(100 + i % 10));
        }
        for _ in 0..10 {
            b.record(Duration::from_millis(5));
        }
        a.merge(&b);
        assert_eq!(a.count(), 1000);
        assert!(a.percentile(99.0) < Duration::from_micros(1));
        let p999 = a.percentile(99.9);
        assert!(p999 > Duration::from_micros(4900) && p999 <= Duration::from_millis(5));
        assert_eq!(a.max(), Duration::from_millis(5));
        assert_eq!(Histogram::default().percentile(50.0), Duration::ZERO);
    }
}
