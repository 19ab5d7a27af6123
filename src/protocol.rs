//! What every plugin endpoint shares on the wire: media types, `Accept` negotiation,
//! the `{"Err": "..."}` convention, the activation handshake, the JSON quirks of
//! Go's encoder that requests and replies must tolerate, and the [`Method`]
//! declaration every subsystem writes once per endpoint.
//!
//! Facts checked against a real dockerd 20.10 (see `shared/protocol.md`, section 2):
//! dockerd sends `Accept: application/vnd.docker.plugins.v1.2+json`, no `Content-Type`,
//! and bodies such as `{"Name":"v1"}\n`, `{}\n` or nothing at all. It never checks the
//! reply's `Content-Type`, matches keys case-insensitively and ignores unknown keys.
//! Times travel as RFC 3339 text that Go must parse: [`Timestamp`].

mod flat;
mod timestamp;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use http::HeaderValue;
use http::header::{ACCEPT, HeaderMap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) use flat::plain_prefix_len;
pub use timestamp::{ParseTimestampError, Timestamp};

/// The media type of plugin API version 1 (the one Docker's documentation names).
pub const MEDIA_TYPE_V1: &str = "application/vnd.docker.plugins.v1+json";
/// Version 1.1 (what go-plugins-helpers answers with).
pub const MEDIA_TYPE_V1_1: &str = "application/vnd.docker.plugins.v1.1+json";
/// Version 1.2 (what dockerd sends in `Accept`).
pub const MEDIA_TYPE_V1_2: &str = "application/vnd.docker.plugins.v1.2+json";

/// Where dockerd reads an error from a `200 OK` reply (moby v20.10.24
/// `pkg/plugins/client.go` and each subsystem's proxy). A non-200 reply is always an
/// error, read from its `Err` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKey {
    /// `{"Err": "..."}`: volume, network, logging, secrets, metrics.
    Err,
    /// `{"Error": "..."}`: IPAM (`libnetwork/ipams/remote/api`); an `Err` there counts
    /// as success.
    Error,
    /// None: authz reads only `Allow` and `Msg` from a 200 reply.
    Ignored,
}

impl ErrorKey {
    /// The JSON key, or `None` for [`ErrorKey::Ignored`].
    pub const fn key(self) -> Option<&'static str> {
        match self {
            Self::Err => Some("Err"),
            Self::Error => Some("Error"),
            Self::Ignored => None,
        }
    }
}

/// What dockerd sends as the body of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// The request encoded by Go's `json.Encoder`: the JSON and a `\n`.
    Json,
    /// Nothing: methods called without arguments (`Plugin.Activate`,
    /// `NetworkDriver.GetCapabilities`, …).
    Empty,
}

/// A request type of some plugin method: what dockerd sends, decoded by the server and
/// encoded by the client.
pub trait WireRequest: Serialize + DeserializeOwned + Send + 'static {
    /// What the call is about (a volume name, a network ID), recorded as the `name`
    /// field of the call's `tracing` span.
    fn subject(&self) -> Option<&str> {
        None
    }
}

impl WireRequest for Empty {}

/// One plugin endpoint, declared once: its name, its request and response types and
/// how dockerd calls it. The server's route, the client's call, the harness's timeouts
/// and the golden tests all come from this declaration (design principle 2), so client
/// and server cannot disagree.
///
/// ```
/// use std::time::Duration;
/// use docker_plugin_sdk::protocol::Method;
/// use docker_plugin_sdk::volume;
///
/// assert_eq!(volume::Mount::NAME, "VolumeDriver.Mount");
/// assert_eq!(volume::Mount::TIMEOUT, Some(Duration::from_secs(120)));
/// assert!(volume::Capabilities::OPTIONAL && !volume::Mount::OPTIONAL);
/// ```
pub trait Method: Send + Sync + 'static {
    /// What dockerd puts after the `/` of the path: `VolumeDriver.Create`.
    const NAME: &'static str;
    /// What dockerd sends.
    type Request: WireRequest;
    /// What the plugin answers on success (for a streaming method, one frame of the
    /// reply).
    type Response: Serialize + DeserializeOwned + Send + 'static;
    /// dockerd's client timeout for the call; `None`: it waits for ever.
    const TIMEOUT: Option<Duration> = None;
    /// Whether dockerd takes a 404 as "not implemented" and falls back to a default.
    const OPTIONAL: bool = false;
    /// Where dockerd reads an error from a `200 OK` reply.
    const ERROR_KEY: ErrorKey = ErrorKey::Err;
    /// What dockerd sends as the body.
    const REQUEST_BODY: RequestBody = RequestBody::Json;
    /// Whether the reply carries a secret (`SecretProvider.GetSecret`): the
    /// [`client`](crate::client) then never puts the reply's body, nor a decoder's
    /// message about it, into an error.
    const REDACT_REPLY: bool = false;
    /// This declaration as a value, for lists of methods.
    const SPEC: MethodSpec = MethodSpec {
        name: Self::NAME,
        timeout: Self::TIMEOUT,
        optional: Self::OPTIONAL,
        error_key: Self::ERROR_KEY,
        request_body: Self::REQUEST_BODY,
    };
}

/// A [`Method`]'s declaration as a value (its types left out): what a list of methods
/// holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSpec {
    /// [`Method::NAME`].
    pub name: &'static str,
    /// [`Method::TIMEOUT`].
    pub timeout: Option<Duration>,
    /// [`Method::OPTIONAL`].
    pub optional: bool,
    /// [`Method::ERROR_KEY`].
    pub error_key: ErrorKey,
    /// [`Method::REQUEST_BODY`].
    pub request_body: RequestBody,
}

impl MethodSpec {
    /// The HTTP path dockerd posts to: `/` and the name.
    pub fn path(&self) -> String {
        format!("/{}", self.name)
    }

    /// The name without its subsystem: `Create` for `VolumeDriver.Create`.
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('.').next().unwrap_or(self.name)
    }
}

/// Something done once per declared method, with its types: what walks a subsystem's
/// methods generically (the golden tests, tools).
///
/// ```
/// use docker_plugin_sdk::protocol::{Method, MethodVisitor};
/// use docker_plugin_sdk::volume;
///
/// struct Names(Vec<&'static str>);
/// impl MethodVisitor for Names {
///     fn visit<M: Method>(&mut self) {
///         self.0.push(M::NAME);
///     }
/// }
/// let mut names = Names(Vec::new());
/// volume::visit_methods(&mut names);
/// assert_eq!(names.0.len(), volume::METHODS.len());
/// ```
pub trait MethodVisitor {
    /// Called for method `M`.
    fn visit<M: Method>(&mut self);
}

/// What a subsystem declares once: the `Implements` value that announces it, the
/// default body limit of its calls, and its methods.
#[derive(Debug, Clone, Copy)]
pub struct SubsystemSpec {
    /// The value in `/Plugin.Activate`'s `Implements` (`VolumeDriver`). A managed
    /// plugin announces the same subsystem as the interface type
    /// `docker.<lower case>/1.0`: dockerd lower-cases the one to compare with the other
    /// (moby v20.10.24 `plugin/v2/plugin.go` `FilterByCap`).
    pub implements: &'static str,
    /// The default limit on request bodies (the plugin's own limit wins).
    pub body_limit: usize,
    /// The deadline the SDK puts on each call of this subsystem unless the plugin sets
    /// its own ([`Plugin::call_timeout`](crate::Plugin::call_timeout)): `None` for
    /// every subsystem but authz, whose hung policy would hang every API call.
    pub call_timeout: Option<Duration>,
    /// Every method, in the order of Docker's documentation.
    pub methods: &'static [MethodSpec],
}

impl SubsystemSpec {
    /// The method named `name` (`VolumeDriver.Mount`), if the subsystem has it.
    pub fn method(&self, name: &str) -> Option<&'static MethodSpec> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// The default limit on request bodies: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Declares a subsystem's list of methods once: the `METHODS` list of their
/// [`MethodSpec`]s and `visit_methods`, which hands each method's type to a
/// [`MethodVisitor`].
macro_rules! method_list {
    ($($method:ident),+ $(,)?) => {
        /// Every method of this subsystem, in the order of Docker's documentation.
        pub const METHODS: &[$crate::protocol::MethodSpec] =
            &[$(<$method as $crate::protocol::Method>::SPEC),+];

        /// Calls `visitor` once for each method of [`METHODS`], with its type.
        pub fn visit_methods<V: $crate::protocol::MethodVisitor>(visitor: &mut V) {
            $(visitor.visit::<$method>();)+
        }
    };
}
pub(crate) use method_list;

/// Declares one method of a subsystem whose path is `SUBSYSTEM.Name`: a unit struct
/// and its [`Method`] impl; more associated items (`const OPTIONAL: bool = true;`)
/// follow the types.
macro_rules! declare_method {
    ($subsystem:literal, $(#[$doc:meta])* $name:ident, $request:ty, $response:ty $(, $($item:item)*)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $crate::protocol::Method for $name {
            const NAME: &'static str = concat!($subsystem, ".", stringify!($name));
            type Request = $request;
            type Response = $response;
            $($($item)*)?
        }
    };
}
pub(crate) use declare_method;

/// `/Plugin.Activate`, the handshake every legacy plugin answers with the subsystems it
/// implements. dockerd sends it with an empty body and no timeout; managed plugins are
/// never sent it (moby v20.10.24 `pkg/plugins/plugins.go`).
#[derive(Debug, Clone, Copy)]
pub struct Activate;

impl Method for Activate {
    const NAME: &'static str = "Plugin.Activate";
    type Request = Empty;
    type Response = ActivateResponse;
    const REQUEST_BODY: RequestBody = RequestBody::Empty;
}

method_list!(Activate);

static V1: HeaderValue = HeaderValue::from_static(MEDIA_TYPE_V1);
static V1_1: HeaderValue = HeaderValue::from_static(MEDIA_TYPE_V1_1);
static V1_2: HeaderValue = HeaderValue::from_static(MEDIA_TYPE_V1_2);

/// Chooses the reply's `Content-Type` from the request's `Accept` header.
///
/// Every JSON type is served: a missing `Accept`, `*/*`, `application/*`,
/// `application/json`, any `+json` type, and every plugin media type
/// `application/vnd.docker.plugins.v*` (a future version from dockerd must not disable
/// every plugin). The reply carries the plugin version the client asked for: v1, v1.1
/// or v1.2, v1.2 (the newest this SDK speaks) for a later one, and v1 when it named
/// none. `None` only when every type the client named is clearly not JSON (`text/html`)
/// or refused with `q=0`: it is answered with 406.
///
/// ```
/// use docker_plugin_sdk::protocol::{negotiate, MEDIA_TYPE_V1_2};
/// use http::{HeaderMap, HeaderValue, header::ACCEPT};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_TYPE_V1_2));
/// assert_eq!(negotiate(&headers).unwrap(), MEDIA_TYPE_V1_2);
/// headers.insert(ACCEPT, HeaderValue::from_static("application/vnd.docker.plugins.v1.3+json"));
/// assert_eq!(negotiate(&headers).unwrap(), MEDIA_TYPE_V1_2);
/// headers.insert(ACCEPT, HeaderValue::from_static("text/html"));
/// assert!(negotiate(&headers).is_none());
/// ```
pub fn negotiate(headers: &HeaderMap) -> Option<&'static HeaderValue> {
    // The common case, dockerd's exact header first (the loop below answers the same
    // for it), with one lookup and one comparison.
    if headers
        .get(ACCEPT)
        .is_some_and(|value| value.as_bytes() == MEDIA_TYPE_V1_2.as_bytes())
    {
        return Some(&V1_2);
    }
    let mut values = headers.get_all(ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return Some(&V1);
    }
    let mut later_version = None;
    let mut fallback = None;
    let mut refused = false;
    for value in values {
        // The common case, dockerd's exact header, costs one comparison.
        if value.as_bytes() == MEDIA_TYPE_V1_2.as_bytes() {
            return Some(&V1_2);
        }
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            if parts.any(|p| is_zero_quality(p.trim())) {
                refused = true;
                continue;
            }
            match media.as_str() {
                MEDIA_TYPE_V1_2 => return Some(&V1_2),
                MEDIA_TYPE_V1_1 => return Some(&V1_1),
                MEDIA_TYPE_V1 | "application/json" | "application/*" | "*/*" | "" => {
                    fallback = Some(&V1)
                }
                m if m.starts_with(PLUGIN_MEDIA_TYPE_PREFIX) => later_version = Some(&V1_2),
                m if m.ends_with("+json") => fallback = Some(&V1),
                // Something that is not a media type at all is no refusal either.
                m if m.contains('/') => refused = true,
                _ => {}
            }
        }
    }
    match later_version.or(fallback) {
        Some(content_type) => Some(content_type),
        None if refused => None,
        None => Some(&V1),
    }
}

/// What every version of the plugin media type starts with.
const PLUGIN_MEDIA_TYPE_PREFIX: &str = "application/vnd.docker.plugins.v";

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
    } else if let Some(request) = flat::decode(trimmed) {
        // What dockerd sends most, `{"Name":"v1"}`: the same value, decoded faster.
        Ok(request)
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

/// Serializes a map as Go's `encoding/json` writes the `map[string]string` dockerd
/// holds: keys sorted, and an empty map as `null`, Go's nil map (`"Opts": null` when
/// `docker volume create` got no `-o`: moby v20.10.24 `volume/drivers/proxy.go`).
pub(crate) fn go_map<S, V>(map: &HashMap<String, V>, serializer: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    V: Serialize,
{
    if map.is_empty() {
        serializer.serialize_none()
    } else {
        map.iter().collect::<BTreeMap<_, _>>().serialize(serializer)
    }
}

/// Go's `[]byte` in JSON: standard base64 with padding; `null` is empty.
pub(crate) mod go_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Vec::new()),
            Some(text) => decode(&text).map_err(serde::de::Error::custom),
        }
    }

    /// Decodes one base64 value, saying what was wrong.
    pub(crate) fn decode(text: &str) -> Result<Vec<u8>, String> {
        STANDARD
            .decode(text)
            .map_err(|err| format!("not base64 (Go's []byte): {err}"))
    }
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
    fn negotiation_refuses_only_what_is_clearly_not_json() {
        assert!(negotiate(&accept("text/html")).is_none());
        assert!(negotiate(&accept("text/plain, application/xml")).is_none());
        assert!(negotiate(&accept("application/json;q=0")).is_none());
        assert_eq!(
            negotiate(&accept("not a media type")).unwrap(),
            MEDIA_TYPE_V1
        );
        assert_eq!(
            negotiate(&accept("application/problem+json")).unwrap(),
            MEDIA_TYPE_V1
        );
    }

    #[test]
    fn a_later_plugin_media_type_is_served_as_the_newest_known() {
        for later in [
            "application/vnd.docker.plugins.v1.3+json",
            "application/vnd.docker.plugins.v2+json",
            "text/html, application/vnd.docker.plugins.v1.10+json",
        ] {
            assert_eq!(
                negotiate(&accept(later)).unwrap(),
                MEDIA_TYPE_V1_2,
                "{later}"
            );
        }
    }

    #[test]
    fn bodies_dockerd_sends_decode() {
        assert_eq!(decode_body::<Empty>(b"{}\n").unwrap(), Empty {});
        assert_eq!(decode_body::<Empty>(b"  ").unwrap(), Empty {});
        let err = decode_body::<ErrorResponse>(b"{\"Err\": 3}").unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn numbers_read_back_to_the_float_go_wrote() {
        // Go writes the shortest text that reads back to the float64; without its
        // `float_roundtrip` feature serde_json reads these one bit off (found by
        // `properties/tests/wire`, in a network driver's options).
        for text in ["1.2413373530005972e+61", "1.2062031063206187e-219"] {
            let body = format!(r#"{{"x":{text}}}"#);
            let value: serde_json::Value = decode_body(body.as_bytes()).unwrap();
            let expected: f64 = text.parse().unwrap();
            assert_eq!(
                value["x"].as_f64().unwrap().to_bits(),
                expected.to_bits(),
                "{text}"
            );
        }
    }

    #[test]
    fn null_collections_decode_as_empty() {
        let activate: ActivateResponse = serde_json::from_str(r#"{"Implements":null}"#).unwrap();
        assert!(activate.implements.is_empty());
    }
}
