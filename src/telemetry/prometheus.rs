//! The Prometheus text exposition format (version 0.0.4), written by hand: four metric
//! families do not need a client library. Names follow Prometheus' conventions
//! (`_total` counters, a `_seconds` histogram); the label value is escaped as the
//! format requires (`\\`, `\"`, `\n`).

use std::fmt::Write;

use super::{BUCKETS, MethodMetrics};

/// The `Content-Type` of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the metrics; `ready` adds the readiness gauge when the plugin has one.
pub(crate) fn render(methods: &[MethodMetrics], unknown: u64, ready: Option<bool>) -> String {
    let mut out = String::with_capacity(256 + methods.len() * 1536);
    family(
        &mut out,
        "docker_plugin_calls_total",
        "counter",
        "Calls answered, by method.",
        methods,
        |m| m.calls,
    );
    family(
        &mut out,
        "docker_plugin_call_errors_total",
        "counter",
        "Calls answered with an error (a status other than 200), by method.",
        methods,
        |m| m.errors,
    );
    family(
        &mut out,
        "docker_plugin_calls_abandoned_total",
        "counter",
        "Calls whose client closed the connection before the reply, by method.",
        methods,
        |m| m.abandoned,
    );
    header(
        &mut out,
        "docker_plugin_call_duration_seconds",
        "histogram",
        "How long calls took, from the request head to the reply head, by method.",
    );
    for m in methods {
        let method = escape(&m.method);
        for (bound, count) in BUCKETS.iter().zip(&m.latency.buckets) {
            let _ = writeln!(
                out,
                "docker_plugin_call_duration_seconds_bucket{{method=\"{method}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "docker_plugin_call_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {}",
            m.latency.count
        );
        let _ = writeln!(
            out,
            "docker_plugin_call_duration_seconds_sum{{method=\"{method}\"}} {}",
            m.latency.sum.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "docker_plugin_call_duration_seconds_count{{method=\"{method}\"}} {}",
            m.latency.count
        );
    }
    header(
        &mut out,
        "docker_plugin_unknown_calls_total",
        "counter",
        "Requests for a path the plugin does not serve.",
    );
    let _ = writeln!(out, "docker_plugin_unknown_calls_total {unknown}");
    if let Some(ready) = ready {
        header(
            &mut out,
            "docker_plugin_ready",
            "gauge",
            "1 when calls reach the driver, 0 while the plugin reports it is not ready.",
        );
        let _ = writeln!(out, "docker_plugin_ready {}", u8::from(ready));
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    methods: &[MethodMetrics],
    value: impl Fn(&MethodMetrics) -> u64,
) {
    header(out, name, kind, help);
    for m in methods {
        let _ = writeln!(
            out,
            "{name}{{method=\"{}\"}} {}",
            escape(&m.method),
            value(m)
        );
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
