//! The Prometheus text exposition format (version 0.0.4), read strictly and written
//! back: what dockerd serves on its metrics socket (Go's `prometheus/common/expfmt`),
//! what [`telemetry`](crate::telemetry) serves for a plugin.
//!
//! Written here rather than taken from a crate: `prometheus-parse` 0.2.5 splits label
//! sets on `,` and `=` without reading quotes or escapes (a label value holding either
//! comes out wrong) and skips a sample whose value it cannot read without a word;
//! dockerd's `engine_daemon_engine_info` carries free text in its labels. This reader
//! follows `expfmt`'s `TextParser`: every line is read or the scrape fails with the
//! line's number and what was expected there.

//!
//! The types are here; `read.rs` reads a text, `write.rs` writes one.

mod read;
mod write;

/// A metric family's type, from its `# TYPE` line (`untyped` without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`: `_bucket{le=…}`, `_sum` and `_count` samples.
    Histogram,
    /// `summary`: samples with a `quantile` label, `_sum` and `_count`.
    Summary,
    /// `untyped`, or no `# TYPE` line.
    Untyped,
}

impl MetricKind {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" => Self::Untyped,
            _ => return None,
        })
    }

    /// The word of the `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
        }
    }

    /// The suffixes a sample of a family of this kind may add to the family's name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Self::Histogram => &["_bucket", "_sum", "_count"],
            Self::Summary => &["_sum", "_count"],
            _ => &[],
        }
    }
}

/// One sample line: a name, its labels, a value and an optional timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's own name (`engine_daemon_container_actions_seconds_count`).
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value (`NaN`, `+Inf` and `-Inf` included).
    pub value: f64,
    /// Milliseconds since the epoch, when the line has one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the sample has every `(label, value)` pair of `labels`.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(n, v)| self.label(n) == Some(*v))
    }
}

/// A metric family: its name, help, type and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// The family's name (a histogram's name, without `_bucket`).
    pub name: String,
    /// The `# HELP` text, unescaped.
    pub help: Option<String>,
    /// The `# TYPE`.
    pub kind: MetricKind,
    /// The samples, in the order written.
    pub samples: Vec<Sample>,
}

/// A whole scrape: every family, in the order they first appear.
///
/// ```
/// use docker_plugin_sdk::metrics::{MetricKind, Scrape};
///
/// let scrape = Scrape::parse(
///     "# HELP engine_daemon_container_actions_seconds The number of seconds it takes\n\
///      ## TYPE engine_daemon_container_actions_seconds histogram\n\
///      engine_daemon_container_actions_seconds_bucket{action=\"start\",le=\"+Inf\"} 2\n\
///      engine_daemon_container_actions_seconds_sum{action=\"start\"} 0.31\n\
///      engine_daemon_container_actions_seconds_count{action=\"start\"} 2\n",
/// )?;
/// let family = scrape.family("engine_daemon_container_actions_seconds").unwrap();
/// assert_eq!(family.kind, MetricKind::Histogram);
/// assert_eq!(
///     scrape.value("engine_daemon_container_actions_seconds_count", &[("action", "start")]),
///     Some(2.0)
/// );
/// assert_eq!(Scrape::parse(&scrape.render())?, scrape);
/// # Ok::<(), docker_plugin_sdk::metrics::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scrape {
    /// The families.
    pub families: Vec<MetricFamily>,
}

/// Why a text could not be read: the line (from 1) and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the metrics text: {message}")]
pub struct ParseError {
    /// The line, counted from 1.
    pub line: usize,
    /// What was wrong, and what was expected.
    pub message: String,
}

impl Scrape {
    /// The family named `name`.
    pub fn family(&self, name: &str) -> Option<&MetricFamily> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Every sample named `name` (`…_count`, `…_bucket`), whichever family holds it.
    pub fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(move |s| s.name == name)
    }

    /// The value of the first sample named `name` that has all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name)
            .find(|s| s.has_labels(labels))
            .map(|s| s.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What dockerd 20.10.24 served on its metrics socket after one `docker run`.
    const DOCKERD: &str =
        include_str!("../../../tests/fixtures/engine-metrics/dockerd-20.10.24.txt");

    #[test]
    fn a_real_dockerd_scrape_reads_and_writes_back_as_it_was() {
        let scrape = Scrape::parse(DOCKERD).unwrap();
        let actions = scrape
            .family("engine_daemon_container_actions_seconds")
            .unwrap();
        assert_eq!(actions.kind, MetricKind::Histogram);
        assert_eq!(
            actions.help.as_deref(),
            Some("The number of seconds it takes to process each container action")
        );
        assert_eq!(
            scrape.value(
                "engine_daemon_container_actions_seconds_count",
                &[("action", "start")]
            ),
            // dockerd counts one start at boot (moby v20.10.24 `daemon/metrics.go`
            // `init` updates each action with 0), and the `docker run` another.
            Some(2.0)
        );
        let info = scrape.samples("engine_daemon_engine_info").next().unwrap();
        assert_eq!(info.label("version"), Some("20.10.24+dfsg1"));
        assert_eq!(info.label("os"), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(
            scrape.family("go_gc_duration_seconds").unwrap().kind,
            MetricKind::Summary
        );
        let samples: usize = scrape.families.iter().map(|f| f.samples.len()).sum();
        let lines = DOCKERD.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, lines);
        assert_eq!(Scrape::parse(&scrape.render()).unwrap(), scrape);
    }
}
