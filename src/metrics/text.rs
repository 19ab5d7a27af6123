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

use std::fmt::{self, Write};

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
    /// Reads a text in the Prometheus text format (version 0.0.4).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut reader = Reader::default();
        for (index, line) in text.lines().enumerate() {
            reader.line(line).map_err(|message| ParseError {
                line: index + 1,
                message,
            })?;
        }
        Ok(reader.scrape)
    }

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

    /// The scrape in the text format, which [`Scrape::parse`] reads back as it is
    /// (but for a HELP text's leading blanks, which the format cannot keep).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for family in &self.families {
            if let Some(help) = &family.help {
                let _ = writeln!(out, "# HELP {} {}", family.name, escape(help, false));
            }
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
            for sample in &family.samples {
                out.push_str(&sample.name);
                if !sample.labels.is_empty() {
                    out.push('{');
                    for (i, (name, value)) in sample.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{name}=\"{}\"", escape(value, true));
                    }
                    out.push('}');
                }
                let _ = write!(out, " {}", GoFloat(sample.value));
                if let Some(ts) = sample.timestamp_ms {
                    let _ = write!(out, " {ts}");
                }
                out.push('\n');
            }
        }
        out
    }
}

/// A value as the text format writes it: `NaN`, `+Inf`, `-Inf`, or a number that
/// reads back to the same bits.
struct GoFloat(f64);

impl fmt::Display for GoFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else if v == 0.0 || (1e-4..1e15).contains(&v.abs()) {
            write!(f, "{v}")
        } else {
            write!(f, "{v:e}")
        }
    }
}

/// Escapes a label value (`\\`, `\"`, `\n`) or a help text (`\\`, `\n`).
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// The reader's state between lines.
#[derive(Default)]
struct Reader {
    scrape: Scrape,
    /// Whether each family (by index) had its `# TYPE` line.
    typed: Vec<bool>,
}

impl Reader {
    fn line(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            return Ok(());
        }
        if let Some(comment) = line.strip_prefix('#') {
            return self.comment(comment);
        }
        self.sample(line)
    }

    /// `# HELP name text`, `# TYPE name type`; any other comment is skipped.
    fn comment(&mut self, comment: &str) -> Result<(), String> {
        let mut cursor = Cursor::new(comment);
        if !cursor.blanks() {
            return Ok(());
        }
        let keyword = cursor.word();
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(());
        }
        if !cursor.blanks() {
            return Err(format!("expected a metric name after `# {keyword}`"));
        }
        let name = cursor.metric_name()?;
        let blank = cursor.blanks();
        let rest = cursor.rest();
        if !blank && !rest.is_empty() {
            return Err(format!(
                "expected a blank after the metric name `{name}`, got `{rest}`"
            ));
        }
        let index = self.family_named(name);
        let family = &mut self.scrape.families[index];
        if keyword == "HELP" {
            if family.help.is_some() {
                return Err(format!("second HELP line for metric name `{name}`"));
            }
            family.help = Some(unescape_help(rest)?);
            return Ok(());
        }
        let word = rest.trim_end_matches([' ', '\t']);
        let kind = MetricKind::parse(word).ok_or_else(|| {
            format!(
                "unknown metric type `{word}` for `{name}`: expected counter, gauge, \
                 histogram, summary or untyped"
            )
        })?;
        if self.typed[index] {
            return Err(format!("second TYPE line for metric name `{name}`"));
        }
        if !family.samples.is_empty() {
            return Err(format!(
                "TYPE line for `{name}` after its samples: it must come before them"
            ));
        }
        family.kind = kind;
        self.typed[index] = true;
        Ok(())
    }

    fn sample(&mut self, line: &str) -> Result<(), String> {
        let mut cursor = Cursor::new(line);
        let name = cursor.metric_name()?.to_owned();
        cursor.blanks();
        let mut labels: Vec<(String, String)> = Vec::new();
        if cursor.eat('{') {
            loop {
                cursor.blanks();
                if cursor.eat('}') {
                    break;
                }
                let label = cursor.label_name()?.to_owned();
                cursor.blanks();
                if !cursor.eat('=') {
                    return Err(format!("expected `=` after label name `{label}`"));
                }
                cursor.blanks();
                let value = cursor.quoted(&label)?;
                if labels.iter().any(|(n, _)| *n == label) {
                    return Err(format!("label `{label}` appears twice in `{name}`"));
                }
                labels.push((label, value));
                cursor.blanks();
                if cursor.eat(',') {
                    continue;
                }
                if cursor.eat('}') {
                    break;
                }
                return Err(format!(
                    "expected `,` or `}}` after the value of label `{}`",
                    labels[labels.len() - 1].0
                ));
            }
            cursor.blanks();
        }
        let value_text = cursor.word();
        if value_text.is_empty() {
            return Err(format!("expected a value for `{name}`"));
        }
        let value = parse_float(value_text).ok_or_else(|| {
            format!("`{value_text}` is not a value (a number, NaN, +Inf or -Inf) for `{name}`")
        })?;
        let timestamp_ms = if cursor.blanks() && !cursor.rest().is_empty() {
            let text = cursor.word();
            Some(text.parse::<i64>().map_err(|_| {
                format!("`{text}` is not a timestamp (milliseconds, an integer) for `{name}`")
            })?)
        } else {
            None
        };
        cursor.blanks();
        if !cursor.rest().is_empty() {
            return Err(format!(
                "unexpected `{}` after the sample `{name}`",
                cursor.rest()
            ));
        }
        let index = self.family_of(&name);
        let family = &mut self.scrape.families[index];
        family.check(&name, &labels)?;
        family.samples.push(Sample {
            name,
            labels,
            value,
            timestamp_ms,
        });
        Ok(())
    }

    /// The family named `name`, made untyped if it is new.
    fn family_named(&mut self, name: &str) -> usize {
        if let Some(i) = self.scrape.families.iter().position(|f| f.name == name) {
            return i;
        }
        self.scrape.families.push(MetricFamily {
            name: name.to_owned(),
            help: None,
            kind: MetricKind::Untyped,
            samples: Vec::new(),
        });
        self.typed.push(false);
        self.scrape.families.len() - 1
    }

    /// The family a sample named `name` belongs to: its own name's, or the histogram
    /// or summary its suffix points to.
    fn family_of(&mut self, name: &str) -> usize {
        let owner = self.scrape.families.iter().position(|f| {
            f.name == name
                || f.kind
                    .suffixes()
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix).is_some_and(|base| base == f.name))
        });
        owner.unwrap_or_else(|| self.family_named(name))
    }
}

impl MetricFamily {
    /// Checks a sample against its family's type: histogram buckets have `le`, summary
    /// quantiles `quantile`, and nothing else lands in either.
    fn check(&self, name: &str, labels: &[(String, String)]) -> Result<(), String> {
        let has = |label: &str| labels.iter().any(|(n, _)| n == label);
        let family = &self.name;
        match self.kind {
            MetricKind::Histogram => {
                if name == format!("{family}_bucket") && !has("le") {
                    return Err(format!(
                        "bucket `{name}` of histogram `{family}` has no `le` label"
                    ));
                }
                if name == family {
                    return Err(format!(
                        "sample `{name}` of histogram `{family}`: expected `{family}_bucket`, \
                         `{family}_sum` or `{family}_count`"
                    ));
                }
            }
            MetricKind::Summary if name == family && !has("quantile") => {
                return Err(format!(
                    "sample `{name}` of summary `{family}` has no `quantile` label"
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Reads a value as Go's `strconv.ParseFloat` does for the text format.
fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// A help text with `\\` and `\n` read back.
fn unescape_help(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            other => {
                return Err(format!(
                    "invalid escape `\\{}` in a HELP text: only `\\\\` and `\\n` are allowed",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

/// A position in a line.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text }
    }

    fn rest(&self) -> &'a str {
        self.rest
    }

    /// Skips spaces and tabs; whether there were any.
    fn blanks(&mut self) -> bool {
        let trimmed = self.rest.trim_start_matches([' ', '\t']);
        let skipped = trimmed.len() != self.rest.len();
        self.rest = trimmed;
        skipped
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// Everything up to the next blank.
    fn word(&mut self) -> &'a str {
        let end = self.rest.find([' ', '\t']).unwrap_or(self.rest.len());
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        word
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    fn metric_name(&mut self) -> Result<&'a str, String> {
        self.name(true)
            .ok_or_else(|| format!("expected a metric name, got `{}`", self.rest))
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn label_name(&mut self) -> Result<&'a str, String> {
        self.name(false)
            .ok_or_else(|| format!("expected a label name, got `{}`", self.rest))
    }

    fn name(&mut self, colons: bool) -> Option<&'a str> {
        let ok = |c: char, first: bool| {
            c.is_ascii_alphabetic()
                || c == '_'
                || (colons && c == ':')
                || (!first && c.is_ascii_digit())
        };
        let mut end = 0;
        for (i, c) in self.rest.char_indices() {
            if !ok(c, i == 0) {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            return None;
        }
        let (name, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(name)
    }

    /// A quoted label value, its escapes (`\\`, `\"`, `\n`) read back.
    fn quoted(&mut self, label: &str) -> Result<String, String> {
        if !self.eat('"') {
            return Err(format!(
                "the value of label `{label}` must be quoted with `\"`"
            ));
        }
        let mut out = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, 'n')) => out.push('\n'),
                    other => {
                        return Err(format!(
                            "invalid escape `\\{}` in the value of label `{label}`: only \
                             `\\\\`, `\\\"` and `\\n` are allowed",
                            other.map(|(_, c)| String::from(c)).unwrap_or_default()
                        ));
                    }
                },
                c => out.push(c),
            }
        }
        Err(format!("the value of label `{label}` has no closing `\"`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What dockerd 20.10.24 served on its metrics socket after one `docker run`.
    const DOCKERD: &str = include_str!("../../tests/fixtures/engine-metrics/dockerd-20.10.24.txt");

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

    #[test]
    fn what_prometheus_allows_reads() {
        let scrape = Scrape::parse(
            "# a comment\n\
             #no space: a comment too\n\
             \n\
             \t metric_without_type 1\n\
             with_labels{ a = \"x,y=z\" , b=\"q\\\"uote\\\\back\\nline\", } 2 1700000000000\n\
             specials{k=\"\"} NaN\n\
             specials{k=\"+\"} +Inf\n\
             specials{k=\"-\"} -Inf\n\
             exp 1.5e-7\n\
             # HELP help_only multi\\nline \\\\ text\n\
             help_only 3\n",
        )
        .unwrap();
        let labels = &scrape.samples("with_labels").next().unwrap();
        assert_eq!(labels.label("a"), Some("x,y=z"));
        assert_eq!(labels.label("b"), Some("q\"uote\\back\nline"));
        assert_eq!(labels.timestamp_ms, Some(1_700_000_000_000));
        assert!(scrape.value("specials", &[("k", "")]).unwrap().is_nan());
        assert_eq!(scrape.value("specials", &[("k", "+")]), Some(f64::INFINITY));
        assert_eq!(scrape.value("exp", &[]), Some(1.5e-7));
        assert_eq!(
            scrape.family("help_only").unwrap().help.as_deref(),
            Some("multi\nline \\ text")
        );
        assert_eq!(
            scrape.family("metric_without_type").unwrap().kind,
            MetricKind::Untyped
        );
    }

    #[test]
    fn what_it_refuses_is_named_with_its_line() {
        let cases = [
            (
                "x{a=b} 1",
                "line 1 of the metrics text: the value of label `a` must be quoted with `\"`",
            ),
            (
                "x 1\ny{a=\"1\" 2",
                "line 2 of the metrics text: expected `,` or `}` after the value of label `a`",
            ),
            (
                "x{a=\"1\",a=\"2\"} 1",
                "line 1 of the metrics text: label `a` appears twice in `x`",
            ),
            (
                "x{a=\"\\t\"} 1",
                "line 1 of the metrics text: invalid escape `\\t` in the value of label `a`: only `\\\\`, `\\\"` and `\\n` are allowed",
            ),
            (
                "x{a=\"open} 1",
                "line 1 of the metrics text: the value of label `a` has no closing `\"`",
            ),
            ("x", "line 1 of the metrics text: expected a value for `x`"),
            (
                "x one",
                "line 1 of the metrics text: `one` is not a value (a number, NaN, +Inf or -Inf) for `x`",
            ),
            (
                "x 1 soon",
                "line 1 of the metrics text: `soon` is not a timestamp (milliseconds, an integer) for `x`",
            ),
            (
                "x 1 2 3",
                "line 1 of the metrics text: unexpected `3` after the sample `x`",
            ),
            (
                "9x 1",
                "line 1 of the metrics text: expected a metric name, got `9x 1`",
            ),
            (
                "# TYPE x histogramm",
                "line 1 of the metrics text: unknown metric type `histogramm` for `x`: expected counter, gauge, histogram, summary or untyped",
            ),
            (
                "# TYPE x gauge\n# TYPE x gauge",
                "line 2 of the metrics text: second TYPE line for metric name `x`",
            ),
            (
                "# HELP x a\n# HELP x b",
                "line 2 of the metrics text: second HELP line for metric name `x`",
            ),
            (
                "x 1\n# TYPE x gauge",
                "line 2 of the metrics text: TYPE line for `x` after its samples: it must come before them",
            ),
            (
                "# TYPE h histogram\nh_bucket 1",
                "line 2 of the metrics text: bucket `h_bucket` of histogram `h` has no `le` label",
            ),
            (
                "# TYPE h histogram\nh 1",
                "line 2 of the metrics text: sample `h` of histogram `h`: expected `h_bucket`, `h_sum` or `h_count`",
            ),
            (
                "# TYPE s summary\ns 1",
                "line 2 of the metrics text: sample `s` of summary `s` has no `quantile` label",
            ),
            (
                "# HELP x bad \\t",
                "line 1 of the metrics text: invalid escape `\\t` in a HELP text: only `\\\\` and `\\n` are allowed",
            ),
        ];
        for (text, expected) in cases {
            let err = Scrape::parse(text).unwrap_err();
            assert_eq!(err.to_string(), expected, "{text:?}");
        }
    }
}
