//! What every plugin endpoint shares on the wire: media types, `Accept` negotiation,
//! the `{"Err": "..."}` convention, the activation handshake, and the JSON quirks of
//! Go's encoder that requests and replies must tolerate.
//!
//! Facts checked against a real dockerd 20.10 (see `shared/protocol.md`, section 2):
//! dockerd sends `Accept: application/vnd.docker.plugins.v1.2+json`, no `Content-Type`,
//! and bodies such as `{"Name":"v1"}\n`, `{}\n` or nothing at all. It never checks the
//! reply's `Content-Type`, matches keys case-insensitively and ignores unknown keys.

use http::HeaderValue;
use http::header::{ACCEPT, HeaderMap};
use serde::{Deserialize, Deserializer, Serialize};

/// The media type of plugin API version 1 (the one Docker's documentation names).
pub const MEDIA_TYPE_V1: &str = "application/vnd.docker.plugins.v1+json";
/// Version 1.1 (what go-plugins-helpers answers with).
pub const MEDIA_TYPE_V1_1: &str = "application/vnd.docker.plugins.v1.1+json";
/// Version 1.2 (what dockerd sends in `Accept`).
pub const MEDIA_TYPE_V1_2: &str = "application/vnd.docker.plugins.v1.2+json";

/// The path of the activation handshake.
pub const ACTIVATE_PATH: &str = "/Plugin.Activate";

static V1: HeaderValue = HeaderValue::from_static(MEDIA_TYPE_V1);
static V1_1: HeaderValue = HeaderValue::from_static(MEDIA_TYPE_V1_1);
static V1_2: HeaderValue = HeaderValue::from_static(MEDIA_TYPE_V1_2);

/// Chooses the reply's `Content-Type` from the request's `Accept` header.
///
/// A missing `Accept`, `*/*`, `application/*`, `application/json` and the plugin media
/// types v1, v1.1 and v1.2 are accepted; the reply carries the plugin version the client
/// asked for (v1 when it named none). Anything else returns `None`: the client asked
/// for a format this server cannot produce (answered with 406).
///
/// ```
/// use docker_plugin_sdk::protocol::{negotiate, MEDIA_TYPE_V1_2};
/// use http::{HeaderMap, HeaderValue, header::ACCEPT};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_TYPE_V1_2));
/// assert_eq!(negotiate(&headers).unwrap(), MEDIA_TYPE_V1_2);
/// headers.insert(ACCEPT, HeaderValue::from_static("text/html"));
/// assert!(negotiate(&headers).is_none());
/// ```
pub fn negotiate(headers: &HeaderMap) -> Option<&'static HeaderValue> {
    let mut values = headers.get_all(ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return Some(&V1);
    }
    let mut fallback = None;
    for value in values {
        // The common case, dockerd's exact header, costs one comparison.
        if value.as_bytes() == MEDIA_TYPE_V1_2.as_bytes() {
            return Some(&V1_2);
        }
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim();
            if parts.any(|p| is_zero_quality(p.trim())) {
                continue;
            }
            match media.to_ascii_lowercase().as_str() {
                MEDIA_TYPE_V1_2 => return Some(&V1_2),
                MEDIA_TYPE_V1_1 => return Some(&V1_1),
                MEDIA_TYPE_V1 | "application/json" | "application/*" | "*/*" | "" => {
                    fallback = Some(&V1)
                }
                _ => {}
            }
        }
    }
    fallback
}

fn is_zero_quality(param: &str) -> bool {
    param
        .strip_prefix("q=")
        .and_then(|q| q.trim().parse::<f32>().ok())
        .is_some_and(|q| q == 0.0)
}

/// The reply to `/Plugin.Activate`: the subsystems this plugin implements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ActivateResponse {
    /// Values such as `VolumeDriver`, `NetworkDriver`, `IpamDriver`, `authz`.
    #[serde(rename = "Implements", default, deserialize_with = "null_as_default")]
    pub implements: Vec<String>,
}

/// Docker's error body, `{"Err": "..."}`, and the `Err` field of replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ErrorResponse {
    /// The error message; empty means success.
    #[serde(rename = "Err", default, deserialize_with = "null_as_default")]
    pub err: String,
}

/// The empty reply `{}` of methods that return nothing but success.
///
/// dockerd treats a 200 with an empty body as an EOF error, so success is always `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Empty {}

/// Decodes a request body the way the endpoints do: an empty body, all white space or
/// `null` stands for `{}` (dockerd sends no body to methods without arguments).
///
/// ```
/// use docker_plugin_sdk::protocol::{decode_body, Empty};
/// assert_eq!(decode_body::<Empty>(b"").unwrap(), Empty {});
/// assert_eq!(decode_body::<Empty>(b"null\n").unwrap(), Empty {});
/// assert!(decode_body::<Empty>(b"{").is_err());
/// ```
pub fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        serde_json::from_slice(b"{}")
    } else {
        serde_json::from_slice(trimmed)
    }
}

/// Deserializes `null` as the type's default: Go encodes nil maps and slices as `null`
/// (`"Opts": null` from `docker volume create` without `-o`).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn negotiation_follows_the_requested_version() {
        assert_eq!(negotiate(&HeaderMap::new()).unwrap(), MEDIA_TYPE_V1);
        assert_eq!(negotiate(&accept(MEDIA_TYPE_V1)).unwrap(), MEDIA_TYPE_V1);
        assert_eq!(
            negotiate(&accept(MEDIA_TYPE_V1_1)).unwrap(),
            MEDIA_TYPE_V1_1
        );
        assert_eq!(
            negotiate(&accept(MEDIA_TYPE_V1_2)).unwrap(),
            MEDIA_TYPE_V1_2
        );
        assert_eq!(negotiate(&accept("*/*")).unwrap(), MEDIA_TYPE_V1);
        assert_eq!(
            negotiate(&accept(
                "text/html, application/vnd.docker.plugins.v1.1+json;q=0.9"
            ))
            .unwrap(),
            MEDIA_TYPE_V1_1
        );
    }

    #[test]
    fn negotiation_refuses_other_formats() {
        assert!(negotiate(&accept("text/html")).is_none());
        assert!(negotiate(&accept("application/vnd.docker.plugins.v2+json")).is_none());
        assert!(negotiate(&accept("application/json;q=0")).is_none());
    }

    #[test]
    fn bodies_dockerd_sends_decode() {
        assert_eq!(decode_body::<Empty>(b"{}\n").unwrap(), Empty {});
        assert_eq!(decode_body::<Empty>(b"  ").unwrap(), Empty {});
        let err = decode_body::<ErrorResponse>(b"{\"Err\": 3}").unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn null_collections_decode_as_empty() {
        let activate: ActivateResponse = serde_json::from_str(r#"{"Implements":null}"#).unwrap();
        assert!(activate.implements.is_empty());
    }
}
