//! A reply as received ([`RawResponse`]), and how dockerd reads one (moby v20.10.24
//! `pkg/plugins/client.go` `callWithRetry` and `Call`, and each subsystem's proxy):
//!
//! - a non-200 status is an error: `json.Unmarshal` of the body into `{Err string}`,
//!   its `Err` when not empty, else the whole body;
//! - a 200 is decoded with `json.NewDecoder(body).Decode`: an empty body fails with
//!   `EOF`, keys match case-insensitively, only the first JSON value is read
//!   ([`go_json`](super::go_json));
//! - the proxy then fails on a non-empty error key (`Err`, or `Error` for IPAM; authz
//!   reads none).
//!
//! The reply of a method declared with [`Method::REDACT_REPLY`] (GetSecret) carries a
//! secret: its body, and the decoder's words about it, stay out of the errors.

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::ClientError;
use super::go_json;
use crate::protocol::{ErrorKey, ErrorResponse, Method, null_as_default};

/// A reply as received, for tests that look at status, headers and bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The reply's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl RawResponse {
    /// The body as text (lossily decoded).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
    }

    /// Interprets the reply to `method` the way dockerd does: a non-200 status or a
    /// non-empty `Err` is an error, anything else is decoded as `T`.
    pub fn decode<T: DeserializeOwned>(self, method: &str) -> Result<T, ClientError> {
        decode_reply(method, ErrorKey::Err, false, self)
    }

    /// Interprets the reply to method `M` the way dockerd does: a non-200 status is an
    /// error (its `Err`, or the body), a 200 with an empty body is dockerd's `EOF`
    /// error, and so is a 200 whose error key (`Err`, or `Error` for IPAM) is not
    /// empty; anything else is decoded as `M::Response`, keys matched without regard
    /// to case as Go matches them. When `M`'s reply is a secret
    /// ([`Method::REDACT_REPLY`]) no error shows the body.
    pub fn decode_as<M: Method>(self) -> Result<M::Response, ClientError> {
        decode_reply(M::NAME, M::ERROR_KEY, M::REDACT_REPLY, self)
    }
}

/// What an error shows instead of a body that may hold a secret.
const REDACTED_BODY: &str = "<redacted: the reply may hold a secret>";

/// `{"Error": "..."}`, where IPAM replies carry their error.
#[derive(Deserialize)]
struct IpamError {
    #[serde(rename = "Error", default, deserialize_with = "null_as_default")]
    error: String,
}

/// Interprets a reply the way dockerd's `pkg/plugins` client and the subsystem's proxy
/// do: `error_key` is where a 200 reply carries an error; `redact`: the body is a
/// secret, kept out of the errors.
pub(super) fn decode_reply<Resp: DeserializeOwned>(
    method: &str,
    error_key: ErrorKey,
    redact: bool,
    reply: RawResponse,
) -> Result<Resp, ClientError> {
    let plugin_error = |message| ClientError::Plugin {
        method: method.to_string(),
        status: reply.status.as_u16(),
        message,
    };
    let decode_error = |source: serde_json::Error| match redact {
        false => ClientError::Decode {
            method: method.to_string(),
            source,
            body: String::from_utf8_lossy(&reply.body).into_owned(),
        },
        true => ClientError::Decode {
            method: method.to_string(),
            source: serde::de::Error::custom(format!(
                "{} at line {} column {}, details withheld",
                match source.classify() {
                    Category::Syntax => "malformed JSON",
                    Category::Eof => "JSON cut short",
                    Category::Data => "a value of the wrong type",
                    Category::Io => "a read error",
                },
                source.line(),
                source.column()
            )),
            body: REDACTED_BODY.to_owned(),
        },
    };
    let body = &reply.body[..];
    if reply.status != StatusCode::OK {
        let message = match go_json::decode_whole::<ErrorResponse>(body) {
            Ok(err) if !err.err.is_empty() => err.err,
            _ if redact => REDACTED_BODY.to_owned(),
            _ => String::from_utf8_lossy(body.trim_ascii()).into_owned(),
        };
        return Err(plugin_error(message));
    }
    if body.trim_ascii().is_empty() {
        return Err(ClientError::EmptyReply {
            method: method.to_string(),
        });
    }
    let error = match error_key {
        ErrorKey::Err => go_json::decode_first::<ErrorResponse>(body).map(|e| e.err),
        ErrorKey::Error => go_json::decode_first::<IpamError>(body).map(|e| e.error),
        ErrorKey::Ignored => Ok(String::new()),
    };
    match error {
        Ok(message) if !message.is_empty() => return Err(plugin_error(message)),
        Ok(_) => {}
        Err(source) => return Err(decode_error(source)),
    }
    go_json::decode_first(body).map_err(decode_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ActivateResponse, Empty};
    use crate::volume::{self, Scope};

    fn reply(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            content_type: None,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn error_status_uses_err_field_or_raw_body() {
        let err = decode_reply::<Empty>("M", ErrorKey::Err, false, reply(500, r#"{"Err":"boom"}"#))
            .unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert!(err.to_string().contains("boom"));
        let err = decode_reply::<Empty>(
            "M",
            ErrorKey::Err,
            false,
            reply(404, "404 page not found\n"),
        )
        .unwrap_err();
        assert!(err.is_not_implemented());
        assert!(err.to_string().contains("404 page not found"));
        // Go's json.Unmarshal: keys folded, and the body must be one value.
        let err = decode_reply::<Empty>("M", ErrorKey::Err, false, reply(500, r#"{"err":"boom"}"#));
        assert_eq!(err.unwrap_err().to_string(), "M: boom (HTTP 500)");
        let err =
            decode_reply::<Empty>("M", ErrorKey::Err, false, reply(500, r#"{"Err":"boom"} x"#));
        assert_eq!(
            err.unwrap_err().to_string(),
            r#"M: {"Err":"boom"} x (HTTP 500)"#
        );
    }

    #[test]
    fn ok_status_with_err_is_an_error() {
        let err = decode_reply::<Empty>("M", ErrorKey::Err, false, reply(200, r#"{"Err":"no"}"#))
            .unwrap_err();
        assert!(matches!(err, ClientError::Plugin { status: 200, .. }));
        let err = decode_reply::<Empty>("M", ErrorKey::Err, false, reply(200, r#"{"ERR":"no"}"#));
        assert!(matches!(err, Err(ClientError::Plugin { status: 200, .. })));
        decode_reply::<Empty>("M", ErrorKey::Err, false, reply(200, r#"{"Err":""}"#)).unwrap();
        // An `Err` Go cannot decode fails the call.
        let err = decode_reply::<Empty>("M", ErrorKey::Err, false, reply(200, r#"{"Err":3}"#));
        assert!(matches!(err, Err(ClientError::Decode { .. })));
    }

    #[test]
    fn an_empty_200_body_is_dockerds_eof_error() {
        for body in ["", "\n", "  "] {
            let err = decode_reply::<Empty>(
                "VolumeDriver.Remove",
                ErrorKey::Err,
                false,
                reply(200, body),
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                "VolumeDriver.Remove: the plugin answered 200 OK with an empty body, which \
                 dockerd fails with EOF: answer JSON, at least {}"
            );
        }
    }

    #[test]
    fn the_error_key_is_the_methods() {
        // IPAM: a 200 `Error` is an error, a 200 `Err` is not.
        let err =
            decode_reply::<Empty>("M", ErrorKey::Error, false, reply(200, r#"{"Error":"no"}"#));
        assert!(matches!(err, Err(ClientError::Plugin { status: 200, .. })));
        decode_reply::<Empty>("M", ErrorKey::Error, false, reply(200, r#"{"Err":"no"}"#)).unwrap();
        // authz: neither.
        decode_reply::<Empty>("M", ErrorKey::Ignored, false, reply(200, r#"{"Err":"no"}"#))
            .unwrap();
        // A non-200 reply is an error whatever the key, read from `Err`.
        let err =
            decode_reply::<Empty>("M", ErrorKey::Error, false, reply(500, r#"{"Err":"boom"}"#));
        assert!(err.unwrap_err().to_string().contains("boom"));
    }

    #[test]
    fn bad_json_reply_is_a_decode_error() {
        let err = decode_reply::<ActivateResponse>("M", ErrorKey::Err, false, reply(200, "{nope"))
            .unwrap_err();
        assert!(matches!(err, ClientError::Decode { .. }));
    }

    #[test]
    fn a_secret_reply_never_shows_in_an_error() {
        use crate::secrets::GetSecret;
        // A value that is not base64, a DoNotReuse of the wrong type, a body cut short,
        // a non-200 body without `Err`: the value is in none of the errors.
        for (status, body) in [
            (200, r#"{"Value":"hunter2!!"}"#),
            (200, r#"{"Value":"aHVudGVyMg==","DoNotReuse":"hunter2"}"#),
            (200, r#"{"Value":"hunter2"#),
            (500, "hunter2"),
        ] {
            let err = reply(status, body).decode_as::<GetSecret>().unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains("aHVudGVyMg"), "{text}");
            assert!(text.contains("<redacted"), "{text}");
        }
        let err = reply(200, r#"{"Value":"hunter2"#)
            .decode_as::<GetSecret>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SecretProvider.GetSecret: the reply is not the expected JSON (JSON cut short at \
             line 1 column 17, details withheld): <redacted: the reply may hold a secret>"
        );
        // An `Err` is the plugin's own words, shown as for any method.
        let err = reply(200, r#"{"Err":"no such secret"}"#)
            .decode_as::<GetSecret>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SecretProvider.GetSecret: no such secret (HTTP 200)"
        );
    }

    #[test]
    fn replies_decode_as_dockerd_decodes_them() {
        let caps = reply(200, r#"{"capabilities":{"scope":"GLOBAL"}}"#)
            .decode_as::<volume::Capabilities>()
            .unwrap();
        assert_eq!(caps.capabilities.scope, Scope::Global);
        let mount = reply(200, r#"{"mountpoint":"/x"}"#)
            .decode_as::<volume::Mount>()
            .unwrap();
        assert_eq!(mount.mountpoint.to_str(), Some("/x"));
        // A CreatedAt Go cannot parse fails the whole Get, as in dockerd.
        let err = reply(200, r#"{"Volume":{"Name":"v","CreatedAt":""}}"#)
            .decode_as::<volume::Get>()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("`` is not a time dockerd can read"),
            "{err}"
        );
    }
}
