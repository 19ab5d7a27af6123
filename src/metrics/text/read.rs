//! The reader of the Prometheus text format: [`Scrape::parse`], line by line, as
//! `expfmt`'s `TextParser` reads it.

use super::{MetricFamily, MetricKind, ParseError, Sample, Scrape};

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
