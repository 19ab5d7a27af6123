//! JSON as dockerd's Go code writes and reads it (Go 1.19 `encoding/json`, the Go of
//! dockerd 20.10.24), for the client only: the server keeps serde's exact, fast
//! decoding of requests and Docker's exact key case in what it writes.
//!
//! - Writing: [`encode`] is `json.NewEncoder(&buf).Encode(args)` (moby v20.10.24
//!   `pkg/plugins/client.go` `Call`): the JSON and `\n`, `<`, `>`, `&`, U+2028 and
//!   U+2029 escaped as `\u003c`…, backspace and form feed as `\u0008` and `\u000c`.
//!   Map keys come sorted from the wire types themselves (`protocol::go_map`).
//! - Reading: [`decode_first`] is `json.NewDecoder(body).Decode(&ret)`: only the first
//!   JSON value is read (what follows is ignored), `null` leaves the reply empty, and
//!   keys match struct fields as Go matches them: the exact name first, else the first
//!   field equal to it under case folding (`{"mountpoint": "/x"}` is `Mountpoint`, and
//!   Go's folding also makes `ſ` an `s` and the Kelvin sign `K` a `k`). Keys of maps
//!   (`Status`) are kept as they are. [`decode_whole`] is `json.Unmarshal`, which the
//!   client uses for the error body of a non-200 reply: the body must be one value.
//!
//! One difference remains: a key given twice in one object (`{"Name":"a","name":"b"}`)
//! is a decoding error here, where Go keeps the last one.

use std::fmt;
use std::io;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Serialize};
use serde_json::ser::{CharEscape, Formatter};

/// `json.NewEncoder(&buf).Encode(value)`: Go's bytes, and the `\n` its encoder ends with.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut serializer)?;
    out.push(b'\n');
    Ok(out)
}

/// `json.NewDecoder(body).Decode(&reply)`: the first JSON value, keys folded as Go
/// folds them; `null` is the empty reply (`{}`).
pub(crate) fn decode_first<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    let mut json = serde_json::Deserializer::from_slice(body);
    match Option::<T>::deserialize(Fold(&mut json))? {
        Some(value) => Ok(value),
        None => T::deserialize(Fold(&mut serde_json::Deserializer::from_slice(b"{}"))),
    }
}

/// `json.Unmarshal(body, &reply)`: like [`decode_first`], but the body must hold one
/// JSON value and nothing else.
pub(crate) fn decode_whole<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let value = T::deserialize(Fold(&mut json))?;
    json.end()?;
    Ok(value)
}

/// Go's escaping of strings, on serde_json's compact output.
struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        // Go 1.19 writes only `\"`, `\\`, `\n`, `\r` and `\t` in short form.
        let text: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::Backspace => b"\\u0008",
            CharEscape::FormFeed => b"\\u000c",
            CharEscape::AsciiControl(byte) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let code = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ];
                return writer.write_all(&code);
            }
        };
        writer.write_all(text)
    }
}

/// Whether object key `key` names struct field `field` under Go's folding
/// (`encoding/json` `foldFunc`: ASCII case, plus `ſ` for `s` and `K` for `k`; the
/// field names of the wire types are ASCII).
fn go_fold_eq(field: &str, key: &str) -> bool {
    let mut keys = key.chars();
    for f in field.chars() {
        let Some(k) = keys.next() else { return false };
        let same = f.eq_ignore_ascii_case(&k)
            || (f.eq_ignore_ascii_case(&'s') && k == '\u{17f}')
            || (f.eq_ignore_ascii_case(&'k') && k == '\u{212a}');
        if !same {
            return false;
        }
    }
    keys.next().is_none()
}

/// The field a key names, as Go picks it: the exact name, else the first folded match.
fn field_for<'a>(key: &'a str, fields: &'static [&'static str]) -> &'a str {
    if fields.contains(&key) {
        return key;
    }
    fields
        .iter()
        .find(|field| go_fold_eq(field, key))
        .map_or(key, |field| field)
}

/// A deserializer that hands struct fields the key Go would have matched.
struct Fold<D>(D);

/// What a [`Fold`] wraps around a visitor: the struct's fields, empty for anything
/// that is not a struct.
struct FoldVisitor<V> {
    inner: V,
    fields: &'static [&'static str],
}

impl<V> FoldVisitor<V> {
    fn new(inner: V) -> Self {
        Self { inner, fields: &[] }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(FoldVisitor::new(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Fold<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_unit_struct(name, FoldVisitor::new(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_newtype_struct(name, FoldVisitor::new(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, FoldVisitor::new(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_tuple_struct(name, len, FoldVisitor::new(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = FoldVisitor {
            inner: visitor,
            fields,
        };
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // Go has no enums: the wire's enums are strings, read by their own Deserialize.
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident: $ty:ty)*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<Self::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for FoldVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool: bool visit_i8: i8 visit_i16: i16 visit_i32: i32 visit_i64: i64
        visit_i128: i128 visit_u8: u8 visit_u16: u16 visit_u32: u32 visit_u64: u64
        visit_u128: u128 visit_f32: f32 visit_f64: f64 visit_char: char
        visit_str: &str visit_borrowed_str: &'de str visit_string: String
        visit_bytes: &[u8] visit_borrowed_bytes: &'de [u8] visit_byte_buf: Vec<u8>
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Fold(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Fold(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(FoldSeq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(FoldMap {
            map,
            fields: self.fields,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(data)
    }
}

/// A seed whose value is read through [`Fold`].
struct FoldSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for FoldSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Fold(deserializer))
    }
}

struct FoldSeq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for FoldSeq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(FoldSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// An object: a struct's keys renamed to the fields Go would match, a map's kept.
struct FoldMap<A> {
    map: A,
    fields: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FoldMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if self.fields.is_empty() {
            return self.map.next_key_seed(seed);
        }
        self.map.next_key_seed(FieldSeed {
            seed,
            fields: self.fields,
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(FoldSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// Reads an object key and hands the struct the field name Go would have matched.
struct FieldSeed<S> {
    seed: S,
    fields: &'static [&'static str],
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for FieldSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for FieldSeed<S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<S::Value, E> {
        let field = field_for(key, self.fields);
        self.seed
            .deserialize(de::value::StrDeserializer::<E>::new(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{CapabilitiesResponse, GetResponse, MountResponse, Scope};

    #[test]
    fn keys_match_fields_as_go_matches_them() {
        let mount: MountResponse = decode_first(br#"{"mountpoint": "/x"}"#).unwrap();
        assert_eq!(mount.mountpoint.to_str(), Some("/x"));
        let get: GetResponse = decode_first(
            br#"{"VOLUME": {"name": "v", "MountPoint": "/m", "createdAT": "2023-11-14T22:13:20Z",
                 "status": {"mountpoint": 1}}}"#,
        )
        .unwrap();
        assert_eq!(get.volume.name, "v");
        assert_eq!(get.volume.mountpoint.to_str(), Some("/m"));
        assert!(get.volume.created_at.is_some());
        // Keys of a map are data, not fields: kept as sent.
        assert_eq!(get.volume.status["mountpoint"], 1);
        // Go's folding: the long s and the Kelvin sign.
        let caps: CapabilitiesResponse =
            decode_first("{\"capabilitie\u{17f}\": {\"\u{17f}cope\": \"GLOBAL\"}}".as_bytes())
                .unwrap();
        assert_eq!(caps.capabilities.scope, Scope::Global);
        assert!(go_fold_eq("Key", "\u{212a}EY"));
        assert!(!go_fold_eq("Name", "Nam"));
        assert!(!go_fold_eq("Name", "Names"));
    }

    #[test]
    fn an_exact_name_wins_over_a_folded_one() {
        // Go 1.19: `{"ab":"1","AB":"2"}` into `struct { Ab, AB string }` is {Ab:1 AB:2}.
        #[derive(serde::Deserialize)]
        struct Two {
            #[serde(rename = "Ab", default)]
            first: String,
            #[serde(rename = "AB", default)]
            second: String,
        }
        let two: Two = decode_first(br#"{"ab":"1","AB":"2"}"#).unwrap();
        assert_eq!((two.first.as_str(), two.second.as_str()), ("1", "2"));
    }

    #[test]
    fn only_the_first_value_is_read() {
        let mount: MountResponse = decode_first(b"{\"Mountpoint\":\"/x\"}\n{garbage").unwrap();
        assert_eq!(mount.mountpoint.to_str(), Some("/x"));
        assert!(decode_whole::<MountResponse>(b"{\"Mountpoint\":\"/x\"} x").is_err());
        let empty: MountResponse = decode_first(b"null").unwrap();
        assert_eq!(empty, MountResponse::default());
    }

    #[test]
    fn an_empty_body_is_an_eof_error_as_in_go() {
        for body in [&b""[..], b"  \n"] {
            let err = decode_first::<MountResponse>(body).unwrap_err();
            assert!(err.is_eof(), "{err}");
        }
    }

    #[test]
    fn encoding_writes_go_bytes() {
        let body = encode(&serde_json::json!({"k": "<a&b>\u{8}\u{c}\u{1b}\n\u{2028}/é"})).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"k\":\"\\u003ca\\u0026b\\u003e\\u0008\\u000c\\u001b\\n\\u2028/é\"}\n"
        );
    }
}
