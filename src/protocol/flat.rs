//! A shortcut for the request bodies dockerd sends most: a compact JSON object whose
//! values are all strings without escapes, or `null` (`{"Name":"v1"}`,
//! `{"Name":"v1","ID":"…"}`, `{"Name":"v1","Opts":null}`), as Go's `json.Encoder` writes
//! them (moby v20.10.24 `pkg/plugins/client.go` encodes every request with it).
//!
//! Such a body is handed to the request type's `Deserialize` as a map of borrowed
//! strings, without serde_json's general parser (a third of a trivial call's decoding
//! work). It must decode to exactly what serde_json decodes: so it takes only what it
//! can hand over exactly as serde_json would (a string as a borrowed `&str`, `null` as
//! unit or none), and anything else (another shape, an escape, a number, a type that
//! asks for something else) is `None`, and the body goes to serde_json, whose value or
//! error is then the answer. An error is never made here.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, Visitor};

/// `body` decoded as `T`, when it is a flat object of plain strings and nulls that `T`
/// accepts as such; `None`: let serde_json decode it.
pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    if body.first() != Some(&b'{') {
        return None;
    }
    // Checked once, rather than string by string: serde_json refuses a body that is
    // not UTF-8 wherever the bytes are.
    let text = std::str::from_utf8(body).ok()?;
    let mut object = Object {
        text,
        at: 1,
        closed: false,
    };
    let value = T::deserialize(&mut object).ok()?;
    // What serde_json checks after the value: the object was read up to its `}`, and
    // nothing follows it.
    (object.closed && object.at == body.len()).then_some(value)
}

/// The length of the longest prefix of `bytes` in which JSON escapes no character (a
/// control character, `"` or `\\`): where a string without escapes ends. Eight bytes
/// at a time, as serde_json's own scan does.
pub(crate) fn plain_prefix_len(bytes: &[u8]) -> usize {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        // `chunks_exact(8)` gives 8 bytes; the zeros, never used, would count as found.
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let found = escaped_bytes(word);
        if found != 0 {
            // The lowest flag is exact (a flag above it may be a borrow's).
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = words.remainder();
    at + rest
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .unwrap_or(rest.len())
}

/// The high bit of each byte of `word` that JSON escapes (and maybe of bytes after
/// the first such byte).
fn escaped_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    control | zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')))
}

/// Why this shortcut gave up; never shown (serde_json decodes the body again).
#[derive(Debug)]
struct GiveUp;

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a flat object of plain strings")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<M: std::fmt::Display>(_msg: M) -> Self {
        GiveUp
    }
}

/// `deserialize_*` methods that give up: what serde_json would not read from such a
/// value, or would read in a way this shortcut does not repeat.
macro_rules! give_up {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, GiveUp> {
                Err(GiveUp)
            }
        )*
    };
}

/// The same for the methods that take more than a visitor (`and_structs`: with
/// `deserialize_struct`, for a value that is not an object).
macro_rules! give_up_on_the_rest {
    (and_structs) => {
        give_up_on_the_rest!();

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, GiveUp> {
            Err(GiveUp)
        }
    };
    () => {
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _visitor: V,
        ) -> Result<V::Value, GiveUp> {
            Err(GiveUp)
        }

        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            _len: usize,
            _visitor: V,
        ) -> Result<V::Value, GiveUp> {
            Err(GiveUp)
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            _visitor: V,
        ) -> Result<V::Value, GiveUp> {
            Err(GiveUp)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _variants: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, GiveUp> {
            Err(GiveUp)
        }
    };
}

/// The object, read from `at` (just past its `{`).
struct Object<'de> {
    text: &'de str,
    at: usize,
    /// Its `}` was read.
    closed: bool,
}

impl<'de> Object<'de> {
    /// A string without escapes starting at `at` (its opening quote); `at` moves past
    /// it.
    fn string(&mut self) -> Result<&'de str, GiveUp> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            return Err(GiveUp);
        }
        let start = self.at + 1;
        let len = plain_prefix_len(bytes.get(start..).ok_or(GiveUp)?);
        let end = start + len;
        if bytes.get(end) != Some(&b'"') {
            return Err(GiveUp);
        }
        // Between two quotes: on character boundaries.
        let text = self.text.get(start..end).ok_or(GiveUp)?;
        self.at = end + 1;
        Ok(text)
    }

    /// Reads `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.text.as_bytes().get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }
}

impl<'de> Deserializer<'de> for &mut Object<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        if self.at != 1 {
            return Err(GiveUp); // read once only
        }
        visitor.visit_map(Entries {
            object: self,
            first: true,
        })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        visitor.visit_newtype_struct(self)
    }

    give_up! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_unit deserialize_seq
        deserialize_identifier deserialize_ignored_any
    }
    give_up_on_the_rest!();
}

/// The object's entries, in order.
struct Entries<'a, 'de> {
    object: &'a mut Object<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = GiveUp;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, GiveUp> {
        if self.object.closed {
            return Err(GiveUp);
        }
        if self.object.eat(b'}') {
            self.object.closed = true;
            return Ok(None);
        }
        if !self.first && !self.object.eat(b',') {
            return Err(GiveUp);
        }
        self.first = false;
        let key = self.object.string()?;
        if !self.object.eat(b':') {
            return Err(GiveUp);
        }
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, GiveUp> {
        let rest = self.object.text.as_bytes().get(self.object.at..);
        let rest = rest.unwrap_or_default();
        let value = if rest.starts_with(b"null") {
            self.object.at += 4;
            Plain::Null
        } else {
            Plain::Str(self.object.string()?)
        };
        seed.deserialize(value)
    }
}

/// A key, as serde_json hands over a key without escapes.
struct Key<'de>(&'de str);

impl<'de> Deserializer<'de> for Key<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    give_up! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
    }
    give_up_on_the_rest!(and_structs);
}

/// A value: a string without escapes or `null`, handed over as serde_json hands them.
enum Plain<'de> {
    Str(&'de str),
    Null,
}

impl<'de> Deserializer<'de> for Plain<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self {
            Self::Str(text) => visitor.visit_borrowed_str(text),
            Self::Null => visitor.visit_unit(),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_any(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self {
            Self::Str(text) => visitor.visit_borrowed_str(text),
            Self::Null => Err(GiveUp),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self {
            Self::Str(_) => visitor.visit_some(self),
            Self::Null => visitor.visit_none(),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self {
            Self::Str(_) => Err(GiveUp),
            Self::Null => visitor.visit_unit(),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        visitor.visit_newtype_struct(self)
    }

    give_up! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_bytes deserialize_byte_buf
        deserialize_seq deserialize_identifier deserialize_map
    }
    give_up_on_the_rest!(and_structs);
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use serde::Deserialize;

    use super::*;
    use crate::volume::{CreateRequest, GetRequest, MountRequest};

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        #[serde(rename = "Name")]
        name: String,
        #[serde(rename = "Note", default)]
        note: Option<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Lenient {
        #[serde(rename = "Name", default)]
        name: Option<String>,
        #[serde(rename = "Count", default)]
        count: u32,
        #[serde(flatten)]
        rest: BTreeMap<String, serde_json::Value>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Wrapped(GetRequest);

    const BODIES: &[&str] = &[
        r#"{"Name":"v1"}"#,
        r#"{"Name":"v1","ID":"0123abcd"}"#,
        r#"{"ID":"x","Name":"v1"}"#,
        r#"{"Name":"v1","Opts":null}"#,
        r#"{"Name":"v1","Opts":{"a":"b"}}"#,
        r#"{"Name":null}"#,
        r#"{"Name":"v1","Name":"v2"}"#,
        r#"{"Name":"v1","Note":"n"}"#,
        r#"{"Name":"v1","Note":null}"#,
        r#"{"Name":"v1","Other":"o"}"#,
        r#"{"Name":"v1","Count":"3"}"#,
        r#"{"Name":"v1","Count":3}"#,
        r#"{"Name":"a\"b"}"#,
        r#"{"Name":"a\\b"}"#,
        r#"{"Name":"a\u0041"}"#,
        r#"{"Name":"é😀"}"#,
        "{\"Name\":\"a\tb\"}",
        r#"{ "Name":"v1"}"#,
        r#"{"Name" :"v1"}"#,
        r#"{"Name":"v1",}"#,
        r#"{"Name":"v1"}}"#,
        r#"{"Name":"v1"} x"#,
        r#"{"Name":"v1""#,
        r#"{"Name":"v1"#,
        r#"{"Name":nul}"#,
        r#"{"Name":nullx}"#,
        r#"{"Name""v1"}"#,
        r#"{"Name":"v1""ID":"x"}"#,
        r#"{}"#,
        r#"{"#,
        r#"{""#,
        r#"{"":""}"#,
        r#"[]"#,
        r#"{"Name":["v1"]}"#,
    ];

    /// `decode_body` (this shortcut first) and serde_json give the same value, or the
    /// same error.
    fn same_as_serde<T: DeserializeOwned + PartialEq + Debug>() {
        for body in BODIES {
            let ours = crate::protocol::decode_body::<T>(body.as_bytes());
            let serdes = serde_json::from_slice::<T>(body.as_bytes());
            match (ours, serdes) {
                (Ok(ours), Ok(serdes)) => assert_eq!(ours, serdes, "{body}"),
                (Err(ours), Err(serdes)) => {
                    assert_eq!(ours.to_string(), serdes.to_string(), "{body}")
                }
                (ours, serdes) => panic!("{body}: {ours:?} but serde_json: {serdes:?}"),
            }
        }
    }

    #[test]
    fn every_body_decodes_as_serde_json_decodes_it() {
        same_as_serde::<GetRequest>();
        same_as_serde::<MountRequest>();
        same_as_serde::<CreateRequest>();
        same_as_serde::<crate::protocol::Empty>();
        same_as_serde::<Strict>();
        same_as_serde::<Lenient>();
        same_as_serde::<Wrapped>();
        same_as_serde::<Option<GetRequest>>();
        same_as_serde::<HashMap<String, String>>();
        same_as_serde::<HashMap<String, Option<String>>>();
        same_as_serde::<BTreeMap<u32, String>>();
        same_as_serde::<serde_json::Value>();
    }

    #[test]
    fn the_plain_prefix_ends_at_the_first_byte_json_escapes() {
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|i| b"az/.0 \x7f\xc3\xa9"[i % 9]).collect();
            assert_eq!(plain_prefix_len(&plain), len);
            for special in (0..0x20).chain([b'"', b'\\']) {
                for at in 0..len {
                    let mut text = plain.clone();
                    text[at] = special;
                    // Later bytes that JSON escapes too do not move the end.
                    if at + 1 < len {
                        text[at + 1] = b'"';
                    }
                    assert_eq!(plain_prefix_len(&text), at, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn what_dockerd_sends_most_takes_the_shortcut() {
        let get: Option<GetRequest> = decode(br#"{"Name":"v1"}"#);
        assert_eq!(get.unwrap().name, "v1");
        let mount: Option<MountRequest> = decode(br#"{"Name":"v1","ID":"abc"}"#);
        assert_eq!(mount.unwrap().id, "abc");
        let create: Option<CreateRequest> = decode(br#"{"Name":"v1","Opts":null}"#);
        assert!(create.unwrap().opts.is_empty());
        // Left to serde_json.
        assert!(decode::<GetRequest>(br#"{"Name":"a\"b"}"#).is_none());
        assert!(decode::<GetRequest>(br#"{"Name":"v1"} "#).is_none());
        assert!(decode::<CreateRequest>(br#"{"Name":"v1","Opts":{}}"#).is_none());
    }
}
