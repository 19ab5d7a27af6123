//! Latencies in bounded memory: an HDR-style log-linear histogram (64 buckets per
//! power of two, so a percentile is within 1/64 ≈ 1.6% of the true value), in
//! nanoseconds up to 2³⁷ ns (about 137 s; longer calls land in the last bucket, and
//! the exact maximum is kept aside). It travels as JSON (`bench --json
//! --latency-histogram`) so that runs of separate processes can be merged.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Sub-buckets per power of two: 2^6.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below 2·SUB are counted exactly.
const LINEAR: u64 = 2 * SUB;
/// The largest power of two counted: 2^37 ns.
const TOP_BIT: u32 = 37;
const BUCKETS: usize = (LINEAR + (TOP_BIT - SUB_BITS) as u64 * SUB) as usize;

/// A latency histogram.
#[derive(Clone, PartialEq, Eq)]
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

    /// The counted buckets, in order: each bucket's middle (its latencies are
    /// within 1/64 of it) and how many latencies it holds.
    ///
    /// ```
    /// use docker_plugin_sdk::load::Histogram;
    /// use std::time::Duration;
    /// let mut h = Histogram::default();
    /// h.record(Duration::from_micros(10));
    /// h.record(Duration::from_micros(10));
    /// let buckets: Vec<_> = h.buckets().collect();
    /// assert_eq!(buckets.len(), 1);
    /// assert_eq!(buckets[0].1, 2);
    /// ```
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.counted()
            .map(|(middle, count)| (Duration::from_nanos(middle), count))
    }

    /// The counted buckets: each one's middle in ns, and its count.
    fn counted(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(i, &count)| (value(i), u64::from(count)))
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

/// The JSON form: `{"max_ns": N, "buckets": [[middle_ns, count], ...]}`, the
/// counted buckets only, in order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    max_ns: u64,
    buckets: Vec<(u64, u64)>,
}

impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            max_ns: self.max,
            buckets: self.counted().collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    /// Each `middle_ns` is put back in the bucket it falls in, so a histogram read
    /// back is the one written; a count beyond a bucket's `u32`, or a bucket beyond
    /// `max_ns`'s, is an error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let mut histogram = Histogram {
            max: wire.max_ns,
            ..Histogram::default()
        };
        for (middle, count) in wire.buckets {
            let i = index(middle);
            if i > index(wire.max_ns) {
                return Err(D::Error::custom(format!(
                    "a bucket at {middle} ns is beyond max_ns {}",
                    wire.max_ns
                )));
            }
            let slot = &mut histogram.counts[i];
            *slot = u32::try_from(u64::from(*slot) + count).map_err(|_| {
                D::Error::custom(format!(
                    "{count} latencies at {middle} ns: too many for a bucket"
                ))
            })?;
            histogram.total += count;
        }
        Ok(histogram)
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

    #[test]
    fn every_bucket_middle_falls_in_its_own_bucket() {
        for i in 0..BUCKETS {
            assert_eq!(index(value(i)), i, "bucket {i}");
        }
    }

    #[test]
    fn json_round_trip_keeps_every_count_and_the_max() {
        let mut h = Histogram::default();
        for ns in [5u64, 5, 130, 4_000, 4_001, 1_826_800, 4_046_800, 1 << 40] {
            h.record(Duration::from_nanos(ns));
        }
        let text = serde_json::to_string(&h).unwrap();
        assert!(
            text.starts_with(r#"{"max_ns":1099511627776,"buckets":[[5,2],"#),
            "{text}"
        );
        let back: Histogram = serde_json::from_str(&text).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.count(), 8);
        assert_eq!(back.percentile(99.0), h.percentile(99.0));
        assert_eq!(back.max(), Duration::from_nanos(1 << 40));
        let mut merged = back.clone();
        merged.merge(&h);
        assert_eq!(merged.count(), 16);
    }

    #[test]
    fn bad_json_is_a_clear_error() {
        let over = r#"{"max_ns":10,"buckets":[[5000,1]]}"#;
        let err = serde_json::from_str::<Histogram>(over)
            .unwrap_err()
            .to_string();
        assert!(err.contains("beyond max_ns 10"), "{err}");
        let big = format!(
            r#"{{"max_ns":10,"buckets":[[5,{}]]}}"#,
            u64::from(u32::MAX) + 1
        );
        let err = serde_json::from_str::<Histogram>(&big)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too many for a bucket"), "{err}");
        let unknown = r#"{"max_ns":10,"buckets":[],"p99":3}"#;
        assert!(serde_json::from_str::<Histogram>(unknown).is_err());
    }
}
