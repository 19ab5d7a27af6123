//! The Rego `input` document, built exactly as opa-docker-authz builds it (its
//! `main.go`, `makeInput`), so that its policies run here unchanged:
//!
//! | key | value |
//! |---|---|
//! | `Headers` | `RequestHeaders` as sent (`null` when there are none) |
//! | `Path` | `RequestUri` as sent: path **and query**, not decoded |
//! | `PathPlain` | the path, percent-decoded, without the query |
//! | `PathArr` | `PathPlain` split on `/` (`["", "v1.41", "containers", "create"]`) |
//! | `Query` | the query as Go's `url.Values`: `{"all": ["1"]}`, `{}` when none |
//! | `Method` | `RequestMethod` |
//! | `Body` | the body parsed as a JSON object when the `Content-Type` header is exactly `application/json`, else `null` |
//! | `User` | `User` (`""` when none) |
//! | `AuthMethod` | `UserAuthNMethod` (`""` when none) |
//! | `BindMounts` | see [`binds`](crate::binds) (`null` when none) |
//!
//! A JSON body that is not an object is an error in opa-docker-authz (which then
//! denies); it is one here too, named.

use std::collections::BTreeMap;

use docker_plugin_sdk::authz::Request;
use serde_json::{Map, Value, json};

use crate::binds::bind_mounts;

/// Why a request has no input document.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The body says it is JSON but is not a JSON object.
    #[error("the request body is not a JSON object: {0}")]
    Body(serde_json::Error),
}

/// The `Body` of the input: the request body as a JSON object, if it is labelled
/// `application/json` (the header name as Go spells it, `Content-Type`) and not empty.
pub fn body(req: &Request) -> Result<Option<Map<String, Value>>, InputError> {
    let json = req
        .headers
        .iter()
        .any(|(name, value)| name == "Content-Type" && value == "application/json");
    let raw = req.body.raw();
    if !json || raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(raw).map_err(InputError::Body)
}

/// The input document of `req` (blocking: bind mount sources are resolved on disk).
pub fn document(req: &Request) -> Result<Value, InputError> {
    let body = body(req)?;
    let binds = body.as_ref().map(bind_mounts).unwrap_or_default();
    let headers: Map<String, Value> = req
        .headers
        .iter()
        .map(|(name, value)| (name.to_owned(), Value::from(value)))
        .collect();
    let mut query: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in &req.query {
        query.entry(key).or_default().push(value);
    }
    Ok(json!({
        // Go encodes a nil map, a nil slice and a nil body as null.
        "Headers": if headers.is_empty() { Value::Null } else { Value::Object(headers) },
        "Path": req.uri,
        "PathPlain": req.path,
        "PathArr": req.path.split('/').collect::<Vec<_>>(),
        "Query": query,
        "Method": req.method.as_str(),
        "Body": body,
        "User": req.user,
        "AuthMethod": req.authn_method,
        "BindMounts": if binds.is_empty() { Value::Null } else { json!(binds) },
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    //! One test per key of the document; `opa_example.rs` runs opa-docker-authz's own
    //! example policy on it.

    use super::*;
    use docker_plugin_sdk::authz::AuthZRequest;

    /// The request dockerd sends for `method uri` with `headers` and `body`.
    pub(crate) fn request(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Request {
        AuthZRequest {
            request_method: method.into(),
            request_uri: uri.into(),
            request_headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            request_body: body.as_bytes().to_vec(),
            ..Default::default()
        }
        .decode()
        .unwrap()
        .0
    }

    fn input(req: &Request) -> Value {
        document(req).unwrap()
    }

    const JSON: (&str, &str) = ("Content-Type", "application/json");

    #[test]
    fn every_key_of_opa_docker_authz_is_there_and_no_other() {
        let doc = input(&request("GET", "/_ping", &[], ""));
        let mut keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "AuthMethod",
                "BindMounts",
                "Body",
                "Headers",
                "Method",
                "Path",
                "PathArr",
                "PathPlain",
                "Query",
                "User"
            ]
        );
    }

    #[test]
    fn headers_are_as_sent_and_null_when_there_are_none() {
        let req = request(
            "GET",
            "/v1.41/info",
            &[
                ("User-Agent", "Docker-Client/20.10.24 (linux)"),
                ("Authz-User", "alice"),
            ],
            "",
        );
        assert_eq!(
            input(&req)["Headers"],
            json!({"User-Agent": "Docker-Client/20.10.24 (linux)", "Authz-User": "alice"})
        );
        assert_eq!(
            input(&request("GET", "/_ping", &[], ""))["Headers"],
            Value::Null
        );
    }

    #[test]
    fn path_is_the_uri_as_sent_with_its_query() {
        let req = request(
            "GET",
            "/v1.41/containers/json?all=1&filters=%7B%7D",
            &[],
            "",
        );
        assert_eq!(
            input(&req)["Path"],
            "/v1.41/containers/json?all=1&filters=%7B%7D"
        );
    }

    #[test]
    fn path_plain_is_the_decoded_path_without_the_query() {
        let req = request("DELETE", "/v1.41/volumes/my%20vol?force=1", &[], "");
        assert_eq!(input(&req)["PathPlain"], "/v1.41/volumes/my vol");
    }

    #[test]
    fn path_arr_is_the_plain_path_split_on_slashes() {
        let req = request("POST", "/v1.41/containers/create?name=web", &[], "");
        assert_eq!(
            input(&req)["PathArr"],
            json!(["", "v1.41", "containers", "create"])
        );
        assert_eq!(
            input(&request("HEAD", "/_ping", &[], ""))["PathArr"],
            json!(["", "_ping"])
        );
    }

    #[test]
    fn query_is_a_map_of_lists_as_gos_url_values() {
        let req = request(
            "GET",
            "/v1.41/images/json?filter=a&all=1&filter=b+c&empty=",
            &[],
            "",
        );
        assert_eq!(
            input(&req)["Query"],
            json!({"all": ["1"], "empty": [""], "filter": ["a", "b c"]})
        );
        assert_eq!(
            input(&request("GET", "/v1.41/info", &[], ""))["Query"],
            json!({})
        );
    }

    #[test]
    fn method_is_the_http_method() {
        assert_eq!(input(&request("HEAD", "/_ping", &[], ""))["Method"], "HEAD");
    }

    #[test]
    fn body_is_the_parsed_object_only_for_exactly_application_json() {
        let body = r#"{"Image": "busybox", "HostConfig": {"Privileged": true}}"#;
        let create = "/v1.41/containers/create";
        assert_eq!(
            input(&request("POST", create, &[JSON], body))["Body"],
            json!({"Image": "busybox", "HostConfig": {"Privileged": true}})
        );
        // As opa-docker-authz: another media type, a parameter or another spelling
        // of the header name leaves the body out.
        for header in [
            ("Content-Type", "text/plain"),
            ("Content-Type", "application/json; charset=utf-8"),
            ("content-type", "application/json"),
        ] {
            assert_eq!(
                input(&request("POST", create, &[header], body))["Body"],
                Value::Null
            );
        }
        // No body (dockerd 20.10 leaves out bodies of 1 MiB or more) is null.
        assert_eq!(
            input(&request("POST", create, &[JSON], ""))["Body"],
            Value::Null
        );
        assert_eq!(
            input(&request("POST", create, &[JSON], "null"))["Body"],
            Value::Null
        );
    }

    #[test]
    fn a_json_body_that_is_not_an_object_is_an_error() {
        let req = request("POST", "/v1.41/build", &[JSON], "[1, 2]");
        assert_eq!(
            document(&req).unwrap_err().to_string(),
            "the request body is not a JSON object: invalid type: sequence, expected a map at line 1 column 0"
        );
    }

    #[test]
    fn user_and_auth_method_are_as_sent_and_empty_when_none() {
        let req = AuthZRequest {
            user: "alice".into(),
            user_authn_method: "TLS".into(),
            request_method: "GET".into(),
            request_uri: "/v1.41/info".into(),
            ..Default::default()
        }
        .decode()
        .unwrap()
        .0;
        assert_eq!(input(&req)["User"], "alice");
        assert_eq!(input(&req)["AuthMethod"], "TLS");
        let anonymous = input(&request("GET", "/v1.41/info", &[], ""));
        assert_eq!(
            (&anonymous["User"], &anonymous["AuthMethod"]),
            (&json!(""), &json!(""))
        );
    }

    #[test]
    fn bind_mounts_are_listed_with_opa_docker_authz_field_names_or_null() {
        let body = r#"{"HostConfig": {"Binds": ["/etc:/host-etc:ro", "data:/data"]}}"#;
        let req = request("POST", "/v1.41/containers/create", &[JSON], body);
        assert_eq!(
            input(&req)["BindMounts"],
            json!([{"Source": "/etc", "ReadOnly": true, "Resolved": "/etc"}])
        );
        let req = request(
            "POST",
            "/v1.41/containers/create",
            &[JSON],
            r#"{"Image": "x"}"#,
        );
        assert_eq!(input(&req)["BindMounts"], Value::Null);
    }
}
