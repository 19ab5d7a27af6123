//! Strategies shared by the wire types: Go-shaped text, maps, JSON values, addresses
//! and times, with the edge cases Go's encoder produces.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use docker_plugin_sdk::network::{Cidr, MacAddress};
use docker_plugin_sdk::protocol::Timestamp;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Any text: empty, plain names, what JSON escapes, and arbitrary Unicode.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9][a-z0-9_.-]{0,15}",
        "[\"\\\\/\n\t\u{0}\u{1f}\u{7f}é€😀 <>&]{1,8}",
        any::<String>(),
    ]
}

/// Text that is never empty (fields Go always sends and the SDK requires).
pub fn name() -> impl Strategy<Value = String> {
    text().prop_filter("empty", |s| !s.is_empty())
}

/// A `map[string]string`.
pub fn string_map() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(text(), text(), 0..4)
}

/// A `map[string]string` kept sorted.
pub fn sorted_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(text(), text(), 0..4)
}

/// A `[]string`.
pub fn strings() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..4)
}

/// A Go `map[string]string` as `encoding/json` writes it: `null` when nil (empty).
pub fn go_string_map<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    let object: Map<String, Value> = map
        .into_iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    if object.is_empty() {
        Value::Null
    } else {
        Value::Object(object)
    }
}

/// The same map, `{}` when empty (a map dockerd always makes).
pub fn object<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Object(
        map.into_iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Go's `[]byte`: standard base64 with padding.
pub fn base64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

/// Bytes: empty, short, and some long enough to need every base64 padding.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 1..5),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// A JSON number as Go's `interface{}` holds one after decoding, and large integers.
fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        Just(Number::from(u64::MAX)),
        Just(Number::from(i64::MIN)),
        (-1_000_000i64..1_000_000).prop_filter_map("exact", |n| Number::from_f64(n as f64 / 8.0)),
        // Any finite float: Go writes the shortest text that reads back to it.
        any::<f64>().prop_filter_map("not finite", Number::from_f64),
    ]
}

/// Any JSON value (the `interface{}` of options and operational data).
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A `map[string]interface{}`.
pub fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(text(), json(), 0..4).prop_map(|m| m.into_iter().collect())
}

pub fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        // Not v4-mapped: Go writes ::ffff:a.b.c.d as a.b.c.d.
        any::<u128>()
            .prop_map(Ipv6Addr::from)
            .prop_filter("v4-mapped", |a| a.to_ipv4_mapped().is_none())
            .prop_map(IpAddr::V6),
    ]
}

pub fn cidr() -> impl Strategy<Value = Cidr> {
    ip().prop_flat_map(|ip| {
        let max = if ip.is_ipv4() { 32u8 } else { 128 };
        (Just(ip), 0..=max)
    })
    .prop_map(|(ip, len)| Cidr::new(ip, len).expect("a valid prefix length"))
}

pub fn mac() -> impl Strategy<Value = MacAddress> {
    any::<[u8; 6]>().prop_map(MacAddress::new)
}

/// Go's `String()` of an optional address: `""` for none.
pub fn or_empty(value: Option<impl ToString>) -> Value {
    Value::String(value.map(|v| v.to_string()).unwrap_or_default())
}

/// A time as Go's `time.Time.MarshalJSON` writes it (RFC 3339 with nanoseconds, the
/// fraction's trailing zeros dropped, `Z` or an offset), and its text: any year Go
/// can write, Go's zero time, and offsets east and west.
pub fn timestamp() -> impl Strategy<Value = (Timestamp, String)> {
    let written = (
        0u32..=9999,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        prop_oneof![
            Just(0u32),
            0u32..1_000_000_000,
            (0u32..1000).prop_map(|n| n * 1_000_000)
        ],
        prop_oneof![
            Just(None),
            (-(23i32 * 60 + 59)..=(23 * 60 + 59)).prop_map(Some)
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, nanos, offset)| {
            let mut text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if nanos != 0 {
                let digits = format!("{nanos:09}");
                text.push('.');
                text.push_str(digits.trim_end_matches('0'));
            }
            match offset {
                None | Some(0) => text.push('Z'),
                Some(minutes) => {
                    let sign = if minutes < 0 { '-' } else { '+' };
                    let m = minutes.unsigned_abs();
                    text.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
                }
            }
            text
        });
    prop_oneof![Just("0001-01-01T00:00:00Z".to_owned()), written].prop_map(|text| {
        let time: Timestamp = text.parse().expect("Go's RFC 3339");
        (time, text)
    })
}
