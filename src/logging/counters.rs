//! What happened to the entries the SDK read: counters per container (read by the
//! driver through [`Logs::counters`](super::Logs::counters)) and for the whole plugin
//! ([`LogCounters`], for the plugin's telemetry). Every entry read is counted once as
//! received and then once as delivered, dropped or spilled (a spilled entry is counted
//! as delivered again when it is replayed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of one container or of the whole plugin.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    delivered: AtomicU64,
    dropped_oldest: AtomicU64,
    dropped_newest: AtomicU64,
    spilled: AtomicU64,
    malformed: AtomicU64,
}

/// One count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Received,
    Delivered,
    DroppedOldest,
    DroppedNewest,
    Spilled,
    Malformed,
}

impl Counters {
    fn counter(&self, count: Count) -> &AtomicU64 {
        match count {
            Count::Received => &self.received,
            Count::Delivered => &self.delivered,
            Count::DroppedOldest => &self.dropped_oldest,
            Count::DroppedNewest => &self.dropped_newest,
            Count::Spilled => &self.spilled,
            Count::Malformed => &self.malformed,
        }
    }

    fn snapshot(&self) -> CounterSnapshot {
        let get = |count| self.counter(count).load(Ordering::Relaxed);
        CounterSnapshot {
            received: get(Count::Received),
            delivered: get(Count::Delivered),
            dropped_oldest: get(Count::DroppedOldest),
            dropped_newest: get(Count::DroppedNewest),
            spilled: get(Count::Spilled),
            malformed: get(Count::Malformed),
        }
    }
}

/// The counters of one container, which also add to the plugin's.
#[derive(Debug, Clone)]
pub(crate) struct ContainerCounters {
    own: Arc<Counters>,
    plugin: LogCounters,
}

impl ContainerCounters {
    pub(crate) fn new(plugin: &LogCounters) -> Self {
        Self {
            own: Arc::default(),
            plugin: plugin.clone(),
        }
    }

    pub(crate) fn add(&self, count: Count, n: u64) {
        self.own.counter(count).fetch_add(n, Ordering::Relaxed);
        self.plugin.0.counter(count).fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CounterSnapshot {
        self.own.snapshot()
    }
}

/// The plugin's log counters, summed over every container: a handle to give to
/// [`Options::counters`](super::Options::counters) and read from the plugin's own
/// telemetry. Clones share the counters.
///
/// ```
/// use docker_plugin_sdk::logging::{LogCounters, Options};
///
/// let counters = LogCounters::new();
/// let options = Options::new().counters(&counters);
/// assert_eq!(counters.snapshot().dropped_newest, 0);
/// assert!(counters.render().contains("docker_plugin_log_entries_dropped_total"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogCounters(Arc<Counters>);

impl LogCounters {
    /// Counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Their values now.
    pub fn snapshot(&self) -> CounterSnapshot {
        self.0.snapshot()
    }

    /// The counters in the Prometheus text format. A plugin that keeps
    /// [call metrics](crate::Plugin::call_metrics) serves them there already, after
    /// the call metrics (`--metrics ADDR` of [`ListenArgs`](crate::transport::ListenArgs)).
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let mut text = String::new();
        let mut counter = |name: &str, help: &str, values: &[(&str, u64)]| {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (labels, value) in values {
                text.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        counter(
            "docker_plugin_log_entries_received_total",
            "Log entries read from dockerd's FIFOs.",
            &[("", s.received)],
        );
        counter(
            "docker_plugin_log_entries_delivered_total",
            "Log entries handed to the driver.",
            &[("", s.delivered)],
        );
        counter(
            "docker_plugin_log_entries_dropped_total",
            "Log entries dropped because the driver's buffer was full.",
            &[
                ("{policy=\"oldest\"}", s.dropped_oldest),
                ("{policy=\"newest\"}", s.dropped_newest),
            ],
        );
        counter(
            "docker_plugin_log_entries_spilled_total",
            "Log entries written to the spill file because the driver's buffer was full.",
            &[("", s.spilled)],
        );
        counter(
            "docker_plugin_log_streams_malformed_total",
            "Log streams that ended on a malformed frame.",
            &[("", s.malformed)],
        );
        text
    }
}

/// Counter values at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CounterSnapshot {
    /// Entries read from the FIFO (whole lines, after reassembly).
    pub received: u64,
    /// Entries handed to the driver's consumer.
    pub delivered: u64,
    /// Entries dropped from the head of a full buffer ([`Overflow::DropOldest`](super::Overflow::DropOldest)).
    pub dropped_oldest: u64,
    /// Entries dropped because the buffer was full ([`Overflow::DropNewest`](super::Overflow::DropNewest),
    /// or a full or failing spill file).
    pub dropped_newest: u64,
    /// Entries written to the spill file ([`Overflow::Spill`](super::Overflow::Spill)).
    pub spilled: u64,
    /// Streams that ended on a malformed frame.
    pub malformed: u64,
}

impl crate::telemetry::Section for LogCounters {
    fn key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    fn render(&self) -> String {
        LogCounters::render(self)
    }
}
