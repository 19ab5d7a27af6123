//! Golden wire formats: every request and response example of Docker's volume plugin
//! documentation (and bodies a real dockerd sent) decodes into the SDK's type and
//! encodes back to the same JSON. See `tests/golden/volume/README.md`.

use std::fs;
use std::path::Path;

use docker_plugin_sdk::protocol::{ActivateResponse, Empty, ErrorResponse};
use docker_plugin_sdk::volume::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes `text` as `T` and encodes it again.
fn round_trip<T: Serialize + DeserializeOwned>(text: &str) -> Result<Value, String> {
    let typed: T = serde_json::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// What the SDK sends for a documented body: no `"Err": ""` on success, no empty
/// `Status`, and Go's `null` maps read as empty ones.
fn normalize(value: &mut Value) {
    if let Value::Object(map) = value {
        if map.get("Err").is_some_and(|e| e == "") {
            map.remove("Err");
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

/// The wire type of each golden file, by the file name's first two parts.
fn round_trip_file(name: &str, text: &str) -> Option<Result<Value, String>> {
    let mut parts = name.split('.');
    let key = (parts.next()?, parts.next()?);
    Some(match key {
        ("activate", "response") => round_trip::<ActivateResponse>(text),
        ("create", "request") => round_trip::<CreateRequest>(text),
        ("remove", "request") => round_trip::<RemoveRequest>(text),
        ("mount", "request") => round_trip::<MountRequest>(text),
        ("mount", "response") => round_trip::<MountResponse>(text),
        ("unmount", "request") => round_trip::<UnmountRequest>(text),
        ("path", "request") => round_trip::<PathRequest>(text),
        ("path", "response") => round_trip::<PathResponse>(text),
        ("get", "request") => round_trip::<GetRequest>(text),
        ("get", "response") => round_trip::<GetResponse>(text),
        ("list", "request") | ("capabilities", "request") => round_trip::<Empty>(text),
        ("list", "response") => round_trip::<ListResponse>(text),
        ("capabilities", "response") => round_trip::<CapabilitiesResponse>(text),
        // Methods that return nothing answer `{}`, which is the Err-less error body.
        ("create" | "remove" | "unmount", "response") => {
            round_trip::<ErrorResponse>(text).map(|mut v| {
                normalize(&mut v);
                v
            })
        }
        _ => return None,
    })
}

#[test]
fn every_volume_golden_file_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/volume");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let Some(result) = round_trip_file(&name, &text) else {
            failures.push(format!("{name}: no wire type is mapped to this file"));
            continue;
        };
        let mut expected: Value = serde_json::from_str(&text).unwrap();
        normalize(&mut expected);
        match result {
            Ok(actual) if actual == expected => checked += 1,
            Ok(actual) => failures.push(format!("{name}: encoded {actual}, want {expected}")),
            Err(err) => failures.push(format!("{name}: does not decode: {err}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // 8 methods, documented request and response each, plus activation and the
    // bodies dockerd was seen sending.
    assert!(checked >= 20, "only {checked} golden files checked");
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
