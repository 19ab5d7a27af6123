//! The writer of the Prometheus text format: [`Scrape::render`], which the reader
//! reads back.

use std::fmt::{self, Write};

use super::Scrape;

impl Scrape {
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
