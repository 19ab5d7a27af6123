//! Golden wire formats, walked from the method declarations: for every method a
//! subsystem declares (`volume::visit_methods`, `network::visit_methods`, `authz::visit_methods`, `logging::visit_methods`, …), its documented request and response
//! files must exist in `tests/golden/<subsystem>/` (`<method>.request*.json`,
//! `<method>.response*.json`), and each must decode into the method's declared type
//! and encode back to the same JSON. A declared method without its files, or a file
//! no declared method owns, fails the test. A body a real dockerd sent
//! (`*.dockerd.json`) must come back byte for byte, as Go's encoder wrote it (the
//! JSON and `\n`). See `tests/golden/*/README.md`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use docker_plugin_sdk::protocol::{self, Empty, Method, MethodVisitor, RequestBody};
use docker_plugin_sdk::volume::*;
use docker_plugin_sdk::{authz, ipam, logging, network, secrets};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes `text` as `T` and encodes it again.
fn round_trip<T: Serialize + DeserializeOwned>(text: &str) -> Result<Value, String> {
    let typed: T = serde_json::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Decodes `text` as `T` and encodes it again as Go's `json.Encoder` would: the
/// bytes and the final `\n`.
fn re_encoded<T: Serialize + DeserializeOwned>(text: &str) -> Result<String, String> {
    let typed: T = serde_json::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_string(&typed)
        .map(|json| json + "\n")
        .map_err(|e| e.to_string())
}

/// What the SDK sends for a documented body: no `"Err": ""` (nor IPAM's
/// `"Error": ""`) on success, no empty `Status`, and Go's `null` maps read as empty
/// ones.
fn normalize(value: &mut Value) {
    if let Value::Object(map) = value {
        for key in ["Err", "Error"] {
            if map.get(key).is_some_and(|e| e == "") {
                map.remove(key);
            }
        }
        if map
            .get("Status")
            .is_some_and(|s| s.as_object().is_some_and(|o| o.is_empty()))
        {
            map.remove("Status");
        }
        if map.get("Opts").is_some_and(Value::is_null) {
            map.insert("Opts".into(), Value::Object(Default::default()));
        }
        map.values_mut().for_each(normalize);
    } else if let Value::Array(items) = value {
        items.iter_mut().for_each(normalize);
    }
}

/// Checks one subsystem's golden directory against its declared methods.
struct Golden {
    dir: &'static str,
    /// Every `.json` file of the directory, removed as a method claims it.
    unclaimed: BTreeSet<String>,
    checked: usize,
    failures: Vec<String>,
}

impl Golden {
    fn new(dir: &'static str) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(dir);
        let unclaimed = fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".json"))
            .collect();
        Self {
            dir,
            unclaimed,
            checked: 0,
            failures: Vec::new(),
        }
    }

    /// Round-trips every file of `method`'s `kind` (`request` or `response`) as `T`;
    /// at least one must exist.
    fn check<T: Serialize + DeserializeOwned>(&mut self, method: &str, kind: &str) {
        let prefix = format!("{method}.{kind}.");
        let files: Vec<String> = self
            .unclaimed
            .iter()
            .filter(|name| name.starts_with(&prefix) || **name == format!("{method}.{kind}.json"))
            .cloned()
            .collect();
        if files.is_empty() {
            self.failures.push(format!(
                "{}: no {method}.{kind}.json for a declared method",
                self.dir
            ));
        }
        for name in files {
            self.unclaimed.remove(&name);
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden")
                .join(self.dir)
                .join(&name);
            let text = fs::read_to_string(&path).unwrap();
            if name.ends_with(".dockerd.json") {
                match re_encoded::<T>(&text) {
                    Ok(bytes) if bytes == text => {}
                    Ok(bytes) => self
                        .failures
                        .push(format!("{name}: encoded {bytes:?}, dockerd sent {text:?}")),
                    Err(err) => self
                        .failures
                        .push(format!("{name}: does not decode: {err}")),
                }
            }
            let mut expected: Value = serde_json::from_str(&text).unwrap();
            normalize(&mut expected);
            match round_trip::<T>(&text).map(|mut v| {
                normalize(&mut v);
                v
            }) {
                Ok(actual) if actual == expected => self.checked += 1,
                Ok(actual) => self
                    .failures
                    .push(format!("{name}: encoded {actual}, want {expected}")),
                Err(err) => self
                    .failures
                    .push(format!("{name}: does not decode: {err}")),
            }
        }
    }

    fn finish(self) -> (usize, Vec<String>) {
        let mut failures = self.failures;
        for name in self.unclaimed {
            failures.push(format!(
                "{}/{name}: no declared method owns this file",
                self.dir
            ));
        }
        (self.checked, failures)
    }
}

impl MethodVisitor for Golden {
    fn visit<M: Method>(&mut self) {
        let method = M::SPEC.short_name().to_ascii_lowercase();
        if M::REQUEST_BODY == RequestBody::Json {
            self.check::<M::Request>(&method, "request");
        }
        self.check::<M::Response>(&method, "response");
    }
}

/// Walks `visit` over the files of `dir`.
fn check_subsystem(dir: &'static str, visit: fn(&mut Golden)) -> usize {
    let mut golden = Golden::new(dir);
    visit(&mut golden);
    let (checked, failures) = golden.finish();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    checked
}

#[test]
fn every_declared_method_has_golden_files_that_round_trip() {
    assert_eq!(check_subsystem("plugin", protocol::visit_methods), 1);
    // 8 methods, documented request and response each (Create's empty reply is
    // documented as `{"Err": ""}`), plus the bodies dockerd was seen sending.
    let volume = check_subsystem("volume", visit_methods);
    assert!(volume >= 19, "only {volume} volume golden files checked");
    // 15 methods, GetCapabilities without a request body: 29 files, and the variants
    // (IPv6 pools, a filled-in interface, a Join without interface, details).
    let network = check_subsystem("network", network::visit_methods);
    assert!(network >= 33, "only {network} network golden files checked");
    // 6 methods, the two Get* without a request body, and the gateway, endpoint, MAC
    // and driver-chosen variants.
    let ipam = check_subsystem("ipam", ipam::visit_methods);
    assert!(ipam >= 13, "only {ipam} IPAM golden files checked");
    // 2 methods, a request and an allow each, plus HEAD /_ping and the denies.
    let authz = check_subsystem("authz", authz::visit_methods);
    assert!(authz >= 7, "only {authz} authz golden files checked");
    // GetSecret: every key, a minimal request, a reusable and a per-task value.
    let secrets = check_subsystem("secrets", secrets::visit_methods);
    assert!(secrets >= 4, "only {secrets} secrets golden files checked");
    // 4 methods, Capabilities without a request body; null maps, no ReadLogs, the
    // follow request and a piece of a split line.
    let logging = check_subsystem("logging", logging::visit_methods);
    assert!(logging >= 11, "only {logging} logging golden files checked");
}

#[test]
fn success_bodies_for_methods_without_a_result_are_empty_objects() {
    assert_eq!(serde_json::to_string(&Empty {}).unwrap(), "{}");
}

#[test]
fn docker_matches_keys_case_insensitively_but_we_send_docker_case() {
    let reply = MountResponse::new("/m");
    assert_eq!(
        serde_json::to_string(&reply).unwrap(),
        r#"{"Mountpoint":"/m"}"#
    );
    let volume = Volume::new("v").mountpoint("/m").status("k", 1);
    assert_eq!(
        serde_json::to_string(&GetResponse { volume }).unwrap(),
        r#"{"Volume":{"Name":"v","Mountpoint":"/m","Status":{"k":1}}}"#
    );
    assert_eq!(
        serde_json::to_string(&CapabilitiesResponse::scope(Scope::Local)).unwrap(),
        r#"{"Capabilities":{"Scope":"local"}}"#
    );
    assert_eq!(
        serde_json::to_string(&PathResponse::not_mounted()).unwrap(),
        "{}"
    );
}

#[test]
fn unknown_fields_are_ignored_and_required_ones_enforced() {
    let req: MountRequest = serde_json::from_str(r#"{"Name":"v","ID":"x","Future":true}"#).unwrap();
    assert_eq!(req.id, "x");
    let err = serde_json::from_str::<MountRequest>(r#"{"Name":"v"}"#).unwrap_err();
    assert!(err.to_string().contains("missing field `ID`"), "{err}");
}
