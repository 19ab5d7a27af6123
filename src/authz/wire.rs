//! The exact JSON of the two authz calls, as dockerd encodes moby's own structs (moby
//! v20.10.24 `pkg/authorization/api.go`): `RequestUri`, not the documentation's
//! `RequestURI`; headers as a flat `{string: string}` (`RequestHeaders`, not
//! `RequestHeader` of lists); bodies and peer certificates as Go `[]byte`, hence base64
//! (a certificate is the base64 of its PEM text); every key omitted when empty
//! (`omitempty`), `Allow` always present in the reply.
//!
//! These are the types on the wire; a policy sees them decoded into
//! [`Request`](super::Request) and [`Response`](super::Response).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::{WireRequest, null_as_default};

/// The body of `/AuthZPlugin.AuthZReq` and `/AuthZPlugin.AuthZRes`: moby's
/// `authorization.Request`, in its field order. AuthZReq carries the `Request*` keys,
/// AuthZRes the same again and the `Response*` keys.
///
/// `RequestMethod` and `RequestUri` are required (dockerd always sends them): a body
/// without them, such as the empty body of a retried call, is refused with a 400, which
/// dockerd turns into a refusal of the API call.
///
/// ```
/// use docker_plugin_sdk::authz::AuthZRequest;
/// let wire: AuthZRequest = serde_json::from_str(
///     r#"{"RequestMethod":"POST","RequestUri":"/v1.41/volumes/create","RequestBody":"e30K"}"#,
/// ).unwrap();
/// assert_eq!(wire.request_body, b"{}\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthZRequest {
    /// The user dockerd authenticated: the common name of the client's TLS certificate,
    /// or nothing.
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// How `user` was authenticated: `TLS`, or nothing.
    #[serde(
        rename = "UserAuthNMethod",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub user_authn_method: String,
    /// The API call's HTTP method (`GET`, `POST`, `HEAD`, …).
    #[serde(rename = "RequestMethod")]
    pub request_method: String,
    /// The API call's URI as the client sent it: path and query (`/v1.41/containers/json?all=1`).
    #[serde(rename = "RequestUri")]
    pub request_uri: String,
    /// The API call's body: only a JSON one, under 1 MiB with a known length (dockerd
    /// 20.10), and never for a URI ending in `/auth`.
    #[serde(
        rename = "RequestBody",
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::protocol::go_bytes"
    )]
    pub request_body: Vec<u8>,
    /// The API call's headers, one value per name (the last), without `Authorization`,
    /// `X-Registry-Auth` and `X-Registry-Config`.
    #[serde(
        rename = "RequestHeaders",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub request_headers: BTreeMap<String, String>,
    /// The client's TLS certificates, each as its PEM text.
    #[serde(
        rename = "RequestPeerCertificates",
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "go_bytes_list"
    )]
    pub request_peer_certificates: Vec<Vec<u8>>,
    /// AuthZRes: the status dockerd answered with; 0 when its handler never set one
    /// explicitly, or once part of the reply was flushed (streams).
    #[serde(
        rename = "ResponseStatusCode",
        default,
        skip_serializing_if = "is_zero"
    )]
    pub response_status_code: u16,
    /// AuthZRes: the part of a JSON reply not yet flushed to the client.
    #[serde(
        rename = "ResponseBody",
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::protocol::go_bytes"
    )]
    pub response_body: Vec<u8>,
    /// AuthZRes: the reply's headers, one value per name.
    #[serde(
        rename = "ResponseHeaders",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub response_headers: BTreeMap<String, String>,
}

impl WireRequest for AuthZRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.request_uri)
    }
}

fn is_zero(status: &u16) -> bool {
    *status == 0
}

/// The reply to both calls: moby's `authorization.Response`.
///
/// dockerd reads only `Allow` and `Msg` from a 200 reply: an `Err` there is **ignored**
/// (an allow, if `Allow` is true). The SDK never sends `Err` in a 200; a failure is a
/// non-200 reply with `{"Err": …}`, which dockerd turns into a refusal of the API call.
///
/// ```
/// use docker_plugin_sdk::authz::AuthZResponse;
/// let deny = AuthZResponse { allow: false, msg: "no".into(), err: String::new() };
/// assert_eq!(serde_json::to_string(&deny).unwrap(), r#"{"Allow":false,"Msg":"no"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthZResponse {
    /// Whether the API call may go on (AuthZReq) or its reply reach the client
    /// (AuthZRes).
    #[serde(rename = "Allow", default, deserialize_with = "null_as_default")]
    pub allow: bool,
    /// Why: dockerd shows it to the client after "authorization denied by plugin NAME: ".
    #[serde(
        rename = "Msg",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub msg: String,
    /// An error; ignored by dockerd in a 200 reply, read from a non-200 one.
    #[serde(
        rename = "Err",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

/// A list of Go `[]byte`: `[base64, …]`; `null` is empty.
mod go_bytes_list {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        items: &[Vec<u8>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(items.len()))?;
        for item in items {
            seq.serialize_element(&STANDARD.encode(item))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        Option::<Vec<String>>::deserialize(deserializer)?
            .unwrap_or_default()
            .iter()
            .map(|text| crate::protocol::go_bytes::decode(text).map_err(serde::de::Error::custom))
            .collect()
    }
}
