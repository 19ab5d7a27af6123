//! opa-docker-authz's own policies, unchanged (`testdata/opa-docker-authz/`), on the
//! input this plugin builds: the cases of its `main_test.go` `TestEvaluate`, with the
//! same expected decisions (except a missing policy file, which opa-docker-authz
//! allows and this plugin denies), and more cases of its example policy.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::input::{document, tests::request};
use crate::policy::{Options, Policy, Verdict};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/opa-docker-authz")
        .join(name)
}

fn policy(name: &str) -> Policy {
    Policy::load(&testdata(name), &Options::default()).unwrap()
}

/// Whether `policy` allows `method uri` with `headers` and `body`, as
/// opa-docker-authz's `evaluate` returns it.
fn allowed(policy: &Policy, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> bool {
    let input = document(&request(method, uri, headers, body)).unwrap();
    policy.evaluate(input) == Verdict::Allow
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn policy_file_ok_with_get_method() {
    let policy = policy("default_allow.rego");
    assert!(allowed(
        &policy,
        "GET",
        "/v1.23/containers/json",
        &[("Authz-User", "alice")],
        ""
    ));
}

#[test]
fn container_create_allowed_for_user_alice() {
    let headers = [JSON, ("Authz-User", "alice")];
    let body = r#"{"Image": "busybox"}"#;
    assert!(allowed(
        &policy("example.rego"),
        "POST",
        "/v1.47/containers/create",
        &headers,
        body
    ));
}

#[test]
fn container_create_not_allowed_for_readonly_user_bob() {
    let headers = [JSON, ("Authz-User", "bob")];
    let body = r#"{"Image": "busybox"}"#;
    assert!(!allowed(
        &policy("example.rego"),
        "POST",
        "/v1.23/containers/create",
        &headers,
        body
    ));
}

#[test]
fn a_get_without_a_known_user_is_not_allowed() {
    assert!(!allowed(&policy("example.rego"), "GET", "", &[], ""));
    assert!(allowed(
        &policy("example.rego"),
        "GET",
        "/v1.41/info",
        &[("Authz-User", "bob")],
        ""
    ));
}

#[test]
fn the_v0_policy_does_not_compile() {
    // opa-docker-authz: "expectedError: true". It is v0 syntax, and even as v0 it
    // refers to a rule it does not define.
    for v0 in [false, true] {
        let options = Options {
            v0,
            ..Options::default()
        };
        let err = Policy::load(&testdata("v0.rego"), &options).unwrap_err();
        assert!(err.to_string().contains("does not compile"), "{err}");
    }
}

#[test]
fn seccomp_unconfined_is_refused_even_to_alice() {
    let headers = [JSON, ("Authz-User", "alice")];
    let body = json!({"Image": "busybox", "HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}});
    let policy = policy("example.rego");
    assert!(!allowed(
        &policy,
        "POST",
        "/v1.41/containers/create",
        &headers,
        &body.to_string()
    ));
    let body = json!({"Image": "busybox", "HostConfig": {"SecurityOpt": ["no-new-privileges"]}});
    assert!(allowed(
        &policy,
        "POST",
        "/v1.41/containers/create",
        &headers,
        &body.to_string()
    ));
}

#[test]
fn prod_containers_must_be_on_the_prod_network() {
    let headers = [JSON, ("Authz-User", "alice")];
    let policy = policy("example.rego");
    let create = |network: &str| {
        json!({
            "Image": "busybox",
            "Labels": {"com.example/deployment": "prod"},
            "HostConfig": {"NetworkMode": network}
        })
        .to_string()
    };
    let uri = "/v1.41/containers/create";
    assert!(!allowed(&policy, "POST", uri, &headers, &create("bridge")));
    assert!(allowed(
        &policy,
        "POST",
        uri,
        &headers,
        &create("prod-network")
    ));
    // As with opa-docker-authz: `input.Path` has the query, which the example's
    // glob does not expect, so `docker run --name web` escapes the rule.
    let named = "/v1.41/containers/create?name=web";
    assert!(allowed(&policy, "POST", named, &headers, &create("bridge")));
}

#[test]
fn the_packaged_default_policy_refuses_privileged_and_root_binds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/default.rego");
    let policy = Policy::load(&path, &Options::default()).unwrap();
    let uri = "/v1.41/containers/create";
    let create = |host_config: serde_json::Value| {
        json!({"Image": "busybox", "HostConfig": host_config}).to_string()
    };
    assert!(allowed(&policy, "POST", uri, &[JSON], &create(json!({}))));
    assert!(allowed(&policy, "GET", "/v1.41/volumes", &[], ""));
    assert!(!allowed(
        &policy,
        "POST",
        uri,
        &[JSON],
        &create(json!({"Privileged": true}))
    ));
    let root = create(json!({"Binds": ["/etc/../:/host"]}));
    assert!(!allowed(&policy, "POST", uri, &[JSON], &root));
    let etc = create(json!({"Binds": ["/etc:/host-etc:ro"]}));
    assert!(allowed(&policy, "POST", uri, &[JSON], &etc));
}
