//! `protocol::decode_body` takes a shortcut for the bodies dockerd sends most (a compact
//! object of plain strings and nulls, `{"Name":"v1"}`: src/protocol/flat.rs), and its
//! answer must be serde_json's, value and error alike. Here every declared request type
//! of every subsystem decodes generated bodies near that shape (plain and escaped
//! strings, nulls, numbers, nested values, white space, duplicate and unknown keys,
//! invalid UTF-8, truncated and trailing bytes) both ways, and the two must agree.

use docker_plugin_sdk::protocol::{Method, MethodVisitor, decode_body};
use docker_plugin_sdk::volume as vo;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde::de::DeserializeOwned;

use super::strategies::text;

/// Generated bodies, each decoded as every request type.
const BODIES: u32 = 2048;

/// The field names the request types declare (so that a body often decodes), and a
/// few they don't.
const KEYS: &[&str] = &[
    "Name",
    "ID",
    "Opts",
    "Options",
    "Mountpoint",
    "NetworkID",
    "EndpointID",
    "PoolID",
    "Address",
    "AddressSpace",
    "Pool",
    "SubPool",
    "V6",
    "SecretName",
    "ServiceName",
    "File",
    "ContainerID",
    "Info",
    "Config",
    "Interface",
    "SandboxKey",
    "User",
    "RequestMethod",
    "RequestURI",
    "name",
    "Unknown",
    "",
];

/// serde_json's answer for a body, with `decode_body`'s one documented rule before it:
/// an empty body, all white space or `null` stands for `{}`.
fn serde_json_decodes<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        serde_json::from_slice(b"{}")
    } else {
        serde_json::from_slice(trimmed)
    }
}

/// A JSON value as it may follow a key.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[a-z0-9/._-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        2 => text().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        2 => Just("null".to_owned()),
        1 => Just("\"\\u00e9\\ud83d\\ude00\"".to_owned()),
        1 => Just("\"\\ud800\"".to_owned()),
        1 => Just("\"\\q\"".to_owned()),
        1 => Just("\"a\u{1}b\"".to_owned()),
        1 => prop_oneof![Just("1"), Just("-0.5e3"), Just("true"), Just("false")]
            .prop_map(str::to_owned),
        1 => prop_oneof![Just("{}"), Just("[]"), Just("{\"a\":\"b\"}"), Just("[\"x\",null]")]
            .prop_map(str::to_owned),
    ]
}

/// A body near the shape the shortcut takes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        6 => Just("Name".to_owned()),
        6 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z]{1,6}",
    ];
    let pair = (key, value(), prop_oneof![9 => Just(":"), 1 => Just(" : ")]);
    (
        prop::collection::vec(pair, 0..4),
        prop_oneof![9 => Just(","), 1 => Just(", "), 1 => Just(",,")],
        prop_oneof![9 => Just("{"), 1 => Just(" { "), 1 => Just("[{")],
        prop_oneof![8 => Just("}"), 1 => Just("}\n"), 1 => Just("} x"), 1 => Just("}}"), 1 => Just("")],
        prop_oneof![19 => Just(None), 1 => any::<u8>().prop_map(Some)],
    )
        .prop_map(|(pairs, comma, open, close, stray)| {
            let fields: Vec<String> = pairs
                .iter()
                .map(|(key, value, colon)| format!("\"{key}\"{colon}{value}"))
                .collect();
            let mut body = format!("{open}{}{close}", fields.join(comma)).into_bytes();
            if let Some(byte) = stray {
                // A byte anywhere, invalid UTF-8 among them.
                let at = usize::from(byte) % (body.len() + 1);
                body.insert(at, byte | 0x80);
            }
            body
        })
}

/// Decodes one body as every request type it visits, both ways.
struct Agree<'a> {
    body: &'a [u8],
    disagreements: Vec<String>,
}

impl MethodVisitor for Agree<'_> {
    fn visit<M: Method>(&mut self) {
        let fast = decode_body::<M::Request>(self.body);
        let reference = serde_json_decodes::<M::Request>(self.body);
        let same = match (&fast, &reference) {
            (Ok(fast), Ok(reference)) => {
                serde_json::to_value(fast).ok() == serde_json::to_value(reference).ok()
            }
            (Err(fast), Err(reference)) => fast.to_string() == reference.to_string(),
            _ => false,
        };
        if !same {
            self.disagreements.push(format!(
                "{}: decode_body {:?}, serde_json {:?}",
                M::NAME,
                fast.map(|v| serde_json::to_string(&v).unwrap_or_default()),
                reference.map(|v| serde_json::to_string(&v).unwrap_or_default()),
            ));
        }
    }
}

#[test]
fn the_fast_path_decodes_every_request_as_serde_json_does() {
    let mut runner = TestRunner::new(Config {
        cases: BODIES,
        ..Config::default()
    });
    let outcome = runner.run(&body(), |body| {
        let mut agree = Agree {
            body: &body,
            disagreements: Vec::new(),
        };
        super::visit_every_method(&mut agree);
        prop_assert!(
            agree.disagreements.is_empty(),
            "body {:?}:\n{}",
            String::from_utf8_lossy(&body),
            agree.disagreements.join("\n")
        );
        Ok(())
    });
    if let Err(err) = outcome {
        panic!("{err}");
    }
}

#[test]
fn the_bodies_reach_the_fast_path_and_both_outcomes() {
    // The generator is only worth its cases if many bodies are what dockerd sends (the
    // shortcut's inputs) and many are not: counted over the volume Get request.
    let mut runner = TestRunner::new(Config {
        cases: 512,
        ..Config::default()
    });
    let (mut decoded, mut refused) = (0, 0);
    for _ in 0..512 {
        let body = body()
            .new_tree(&mut runner)
            .map(|tree| tree.current())
            .unwrap_or_default();
        match serde_json_decodes::<vo::GetRequest>(&body) {
            Ok(_) => decoded += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(
        decoded > 50 && refused > 50,
        "decoded {decoded}, refused {refused}"
    );
}
