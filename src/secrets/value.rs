//! [`SecretValue`]: the bytes of a secret, kept out of every log line, `Debug` output
//! and error message, and zeroed when dropped. On the wire it is Go's `[]byte`: base64
//! text (the standard alphabet, padded), as `encoding/json` writes and reads it
//! (moby v20.10.24 `vendor/github.com/docker/swarmkit/manager/drivers/secrets.go`,
//! `SecretsProviderResponse.Value`).

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// What a value's `Debug` and `Display` show instead of its bytes.
pub const REDACTED: &str = "<redacted>";

/// The largest value swarm accepts is one byte less than this: swarmkit refuses a
/// value that is empty or of 500 KiB or more (moby v20.10.24
/// `vendor/github.com/docker/swarmkit/api/validation/secrets.go`
/// `ValidateSecretPayload`), and then skips the task's secret.
pub const MAX_VALUE_LEN: usize = 500 * 1024;

/// Go's `base64.StdEncoding` as `encoding/json` decodes `[]byte`: padded, and lenient
/// about the unused bits of the last character (Go does not check them).
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// The value of a secret: bytes that never show.
///
/// `Debug` and `Display` print `<redacted>`, so a value inside a request, a reply or a
/// `tracing` field cannot leak into a log; [`expose`](SecretValue::expose) is the one
/// way to the bytes. The bytes, and the base64 text made from them when the value is
/// sent, are zeroed when dropped (the copies the HTTP layer makes of the reply body
/// are not).
///
/// ```
/// use docker_plugin_sdk::secrets::SecretValue;
///
/// let value = SecretValue::from("s3cr3t");
/// assert_eq!(format!("{value:?} {value}"), "<redacted> <redacted>");
/// assert_eq!(value.expose(), b"s3cr3t");
/// assert_eq!(serde_json::to_string(&value).unwrap(), r#""czNjcjN0""#); // base64
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// A value holding `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The bytes of the secret. Keep them out of logs and error messages.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty (swarm refuses an empty value).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Why swarm would refuse this value, if it would: empty, or [`MAX_VALUE_LEN`]
    /// bytes or more. The message names the size, never the bytes.
    pub fn check_size(&self) -> Result<(), String> {
        match self.len() {
            0 => Err("the value is empty: swarm needs at least 1 byte".to_owned()),
            n if n >= MAX_VALUE_LEN => Err(format!(
                "the value is {n} bytes: swarm takes less than {MAX_VALUE_LEN} bytes (500 KiB)"
            )),
            _ => Ok(()),
        }
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<&[u8]> for SecretValue {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }
}

impl From<String> for SecretValue {
    fn from(text: String) -> Self {
        Self::new(text.into_bytes())
    }
}

impl From<&str> for SecretValue {
    fn from(text: &str) -> Self {
        Self::new(text.as_bytes().to_vec())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(GO_STD.encode(self.expose()));
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Base64Visitor)
    }
}

/// Reads Go's `[]byte`: base64 text, or `null` (a nil slice: an empty value).
struct Base64Visitor;

impl<'de> Visitor<'de> for Base64Visitor {
    type Value = SecretValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the secret's bytes as base64 text")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SecretValue, E> {
        // Go's decoder skips line breaks inside base64 text.
        let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
        let result = if text.contains(['\r', '\n']) {
            let joined: Zeroizing<String> =
                Zeroizing::new(text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect());
            GO_STD.decode_vec(joined.as_bytes(), &mut bytes)
        } else {
            GO_STD.decode_vec(text, &mut bytes)
        };
        match result {
            Ok(()) => Ok(SecretValue(bytes)),
            // The decoder's own message names the offending byte: keep it out.
            Err(_) => Err(E::custom(
                "the secret's value is not base64 text (Go's []byte): the details are \
                 withheld, the text is a secret",
            )),
        }
    }

    fn visit_string<E: de::Error>(self, mut text: String) -> Result<SecretValue, E> {
        let value = self.visit_str(&text);
        text.zeroize();
        value
    }

    fn visit_unit<E: de::Error>(self) -> Result<SecretValue, E> {
        Ok(SecretValue::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<SecretValue, E> {
        Ok(SecretValue::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<SecretValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_gos_base64() {
        // What Go's encoding/json writes for []byte("hello, swarm\n").
        let value = SecretValue::from("hello, swarm\n");
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#""aGVsbG8sIHN3YXJtCg==""#
        );
        let back: SecretValue = serde_json::from_str(r#""aGVsbG8sIHN3YXJtCg==""#).unwrap();
        assert_eq!(back.expose(), b"hello, swarm\n");
        let null: SecretValue = serde_json::from_str("null").unwrap();
        assert!(null.is_empty());
        // Go accepts unused trailing bits and line breaks.
        let lenient: SecretValue = serde_json::from_str(r#""aGk=""#).unwrap();
        assert_eq!(lenient.expose(), b"hi");
        let lenient: SecretValue = serde_json::from_str(r#""aGl=""#).unwrap();
        assert_eq!(lenient.expose(), b"hi");
        let wrapped: SecretValue = serde_json::from_str(r#""aGVs\nbG8=""#).unwrap();
        assert_eq!(wrapped.expose(), b"hello");
    }

    #[test]
    fn a_bad_value_fails_without_showing_it() {
        let err = serde_json::from_str::<SecretValue>(r#""p@ssw0rd!""#).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("p@ssw0rd"), "{text}");
        assert!(
            text.starts_with(
                "the secret's value is not base64 text (Go's []byte): the details are \
                 withheld, the text is a secret"
            ),
            "{text}"
        );
    }

    #[test]
    fn sizes_swarm_refuses_are_named_without_the_bytes() {
        assert_eq!(
            SecretValue::default().check_size().unwrap_err(),
            "the value is empty: swarm needs at least 1 byte"
        );
        assert_eq!(
            SecretValue::new(vec![b'x'; MAX_VALUE_LEN])
                .check_size()
                .unwrap_err(),
            "the value is 512000 bytes: swarm takes less than 512000 bytes (500 KiB)"
        );
        SecretValue::new(vec![b'x'; MAX_VALUE_LEN - 1])
            .check_size()
            .unwrap();
    }
}
