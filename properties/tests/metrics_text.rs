//! Property tests of the Prometheus text format (`metrics::Scrape`): every scrape
//! the writer makes reads back the same, and every value reads back to the same bits.
//! Here rather than beside the reader: see this crate's `src/lib.rs`.

use docker_plugin_sdk::metrics::{MetricFamily, MetricKind, Sample, Scrape};
use proptest::prelude::*;

/// Label values and help texts with what must be escaped, and Unicode.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just(' '),
            Just(','),
            Just('='),
            Just('}'),
            Just('é'),
            prop::char::range('a', 'z'),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        (0u32..1000).prop_map(f64::from),
    ]
}

fn labels(extra: Option<&'static str>) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(text(), 0..3).prop_map(move |values| {
        let mut labels: Vec<(String, String)> = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("l{i}"), v))
            .collect();
        if let Some(name) = extra {
            labels.push((name.to_owned(), "0.5".to_owned()));
        }
        labels
    })
}

fn family(index: usize) -> impl Strategy<Value = MetricFamily> {
    let kinds = prop_oneof![
        Just(MetricKind::Counter),
        Just(MetricKind::Gauge),
        Just(MetricKind::Untyped),
        Just(MetricKind::Histogram),
        Just(MetricKind::Summary),
    ];
    // The reader drops a HELP text's leading blanks, as expfmt does.
    let help = text().prop_map(|t| t.trim_start_matches(' ').to_owned());
    (kinds, prop::option::of(help), "[a-z_:]{0,6}").prop_flat_map(move |(kind, help, stem)| {
        let name = format!("f{index}_{stem}");
        let suffixes: Vec<(String, Option<&'static str>)> = match kind {
            MetricKind::Histogram => vec![
                (format!("{name}_bucket"), Some("le")),
                (format!("{name}_sum"), None),
                (format!("{name}_count"), None),
            ],
            MetricKind::Summary => vec![
                (name.clone(), Some("quantile")),
                (format!("{name}_sum"), None),
                (format!("{name}_count"), None),
            ],
            _ => vec![(name.clone(), None)],
        };
        let sample = prop::sample::select(suffixes).prop_flat_map(|(name, extra)| {
            (labels(extra), value(), prop::option::of(any::<i64>())).prop_map(
                move |(labels, value, timestamp_ms)| Sample {
                    name: name.clone(),
                    labels,
                    value,
                    timestamp_ms,
                },
            )
        });
        prop::collection::vec(sample, 0..4).prop_map(move |samples| MetricFamily {
            name: name.clone(),
            help: help.clone(),
            kind,
            samples,
        })
    })
}

fn scrape() -> impl Strategy<Value = Scrape> {
    (0usize..5)
        .prop_flat_map(|n| (0..n).map(family).collect::<Vec<_>>())
        .prop_map(|families| Scrape { families })
}

/// Equal, NaN equal to NaN.
fn same(a: &Scrape, b: &Scrape) -> bool {
    let bits = |s: &Scrape| {
        let mut s = s.clone();
        for sample in s.families.iter_mut().flat_map(|f| &mut f.samples) {
            if sample.value.is_nan() {
                sample.value = 0.5;
                sample.labels.push(("nan".into(), String::new()));
            }
        }
        s
    };
    bits(a) == bits(b)
}

proptest! {
    #[test]
    fn every_scrape_it_writes_reads_back_the_same(scrape in scrape()) {
        let text = scrape.render();
        let back = Scrape::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert!(same(&back, &scrape), "{back:?}\n{scrape:?}\n{text}");
    }

    #[test]
    fn every_value_it_writes_reads_back_to_the_same_bits(v in any::<f64>()) {
        let scrape = Scrape {
            families: vec![MetricFamily {
                name: "x".to_owned(),
                help: None,
                kind: MetricKind::Untyped,
                samples: vec![Sample {
                    name: "x".to_owned(),
                    labels: Vec::new(),
                    value: v,
                    timestamp_ms: None,
                }],
            }],
        };
        let text = scrape.render();
        let back = Scrape::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let read = back.value("x", &[]).unwrap_or(0.5);
        prop_assert!(read.to_bits() == v.to_bits() || (v.is_nan() && read.is_nan()), "{v} {text}");
    }
}
