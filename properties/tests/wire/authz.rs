//! The `AuthZPlugin` types. Go's are moby v20.10.24 `pkg/authorization/api.go`
//! (`omitempty` on every field; `[]byte` as base64; the peer certificates as the
//! base64 of their DER).

use std::collections::BTreeMap;

use docker_plugin_sdk::authz::{AuthZRequest, AuthZResponse};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::Wire;
use super::strategies::{base64, bytes, name, object, text};

/// HTTP header maps as dockerd flattens them: canonical names, values joined.
fn headers() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop_oneof!["[A-Z][a-z]{0,8}(-[A-Z][a-z]{0,8}){0,2}", text()],
        text(),
        0..4,
    )
}

impl Wire for AuthZRequest {
    fn strategy() -> BoxedStrategy<Self> {
        (
            (
                text(),
                text(),
                prop_oneof!["GET|POST|PUT|DELETE|HEAD", name()],
            ),
            prop_oneof!["/v1\\.41/[a-z/]{0,20}(\\?[a-z]=[a-z0-9%]{0,6})?", name()],
            (bytes(), headers()),
            prop::collection::vec(bytes(), 0..3),
            (any::<u16>(), bytes(), headers()),
        )
            .prop_map(
                |(
                    (user, user_authn_method, request_method),
                    request_uri,
                    (request_body, request_headers),
                    request_peer_certificates,
                    (response_status_code, response_body, response_headers),
                )| AuthZRequest {
                    user,
                    user_authn_method,
                    request_method,
                    request_uri,
                    request_body,
                    request_headers,
                    request_peer_certificates,
                    response_status_code,
                    response_body,
                    response_headers,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        let mut go = json!({});
        let mut set = |key: &str, value: Value, present: bool| {
            if present {
                go[key] = value;
            }
        };
        set("User", json!(self.user), !self.user.is_empty());
        set(
            "UserAuthNMethod",
            json!(self.user_authn_method),
            !self.user_authn_method.is_empty(),
        );
        set("RequestMethod", json!(self.request_method), true);
        set("RequestUri", json!(self.request_uri), true);
        set(
            "RequestBody",
            base64(&self.request_body),
            !self.request_body.is_empty(),
        );
        set(
            "RequestHeaders",
            object(&self.request_headers),
            !self.request_headers.is_empty(),
        );
        set(
            "RequestPeerCertificates",
            self.request_peer_certificates
                .iter()
                .map(|der| base64(der))
                .collect(),
            !self.request_peer_certificates.is_empty(),
        );
        set(
            "ResponseStatusCode",
            json!(self.response_status_code),
            self.response_status_code != 0,
        );
        set(
            "ResponseBody",
            base64(&self.response_body),
            !self.response_body.is_empty(),
        );
        set(
            "ResponseHeaders",
            object(&self.response_headers),
            !self.response_headers.is_empty(),
        );
        go
    }
}

impl Wire for AuthZResponse {
    fn strategy() -> BoxedStrategy<Self> {
        (any::<bool>(), text(), text())
            .prop_map(|(allow, msg, err)| AuthZResponse { allow, msg, err })
            .boxed()
    }
    fn go(&self) -> Value {
        let mut go = json!({"Allow": self.allow});
        if !self.msg.is_empty() {
            go["Msg"] = json!(self.msg);
        }
        if !self.err.is_empty() {
            go["Err"] = json!(self.err);
        }
        go
    }
}

proptest! {
    /// dockerd's bodies and certificates are base64 that the SDK reads back to the
    /// same bytes, whatever their length's remainder by three.
    #[test]
    fn go_byte_slices_read_back(body in bytes(), certs in prop::collection::vec(bytes(), 0..3)) {
        let go = json!({
            "RequestMethod": "POST",
            "RequestUri": "/v1.41/containers/create",
            "RequestBody": base64(&body),
            "RequestPeerCertificates": certs.iter().map(|c| base64(c)).collect::<Vec<_>>(),
        });
        let req: AuthZRequest = serde_json::from_value(go).unwrap();
        prop_assert_eq!(req.request_body, body);
        prop_assert_eq!(req.request_peer_certificates, certs);
    }
}
