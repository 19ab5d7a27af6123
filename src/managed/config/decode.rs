//! Decoding `config.json` the way dockerd's Go `encoding/json` does.
//!
//! serde matches keys exactly; Go matches a key to a struct field case-insensitively
//! (`propagatedmount` is `PropagatedMount`). So the JSON value is first rewritten,
//! following the shape of [`PluginConfig`](super::PluginConfig) (moby's
//! `api/types/plugin.go`) and the rules of Go's `encoding/json` (`decode.go`):
//!
//! - a key matches a field when it is equal to moby's key under Go's case folding
//!   (ASCII case, plus `ſ` for `s` and the Kelvin sign for `k`); keys matching no
//!   field are dropped, as Go ignores them;
//! - `null` leaves a string, number, bool or object field untouched, empties an
//!   array and clears an optional (pointer) field, as Go does;
//! - when two keys match one field the later one wins; two objects merge (Go decodes
//!   the second into the struct the first filled);
//! - a field no key matched gets Go's zero value (an optional struct stays absent);
//! - a value of the wrong type is an error naming the field (`linux.capabilities`),
//!   where dockerd would answer "json: cannot unmarshal …".
//!
//! The rewritten keys are the ones serde's derived decoders of the config types
//! expect: the kebab-case form of each field's name (`allow-all-devices`), the
//! spelling the packager's TOML uses too (see [the config module](super)). Those
//! decoders refuse unknown keys and require a mount's `destination` and an env's
//! `name`; after this rewrite they see every field and nothing else, so neither rule
//! ever fires for `config.json`. The input is read as [`Json`], which keeps an
//! object's keys in document order, duplicates included (a `serde_json::Value` sorts
//! them), so that "the later key" means what it means to Go.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::ConfigError;

/// A JSON value whose objects keep their keys in document order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Number(n) => Json::Number(n),
            Value::String(s) => Json::String(s),
            Value::Array(items) => Json::Array(items.into_iter().map(Json::from).collect()),
            Value::Object(map) => {
                Json::Object(map.into_iter().map(|(k, v)| (k, Json::from(v))).collect())
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number JSON cannot represent"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

/// The JSON shape of one field.
enum Kind {
    /// A Go `string`.
    Str,
    /// A Go `*string`: a string or `null`.
    OptStr,
    /// A Go `bool`.
    Bool,
    /// A Go `uint32`.
    U32,
    /// A Go slice.
    Seq(&'static Kind),
    /// A Go struct.
    Obj(&'static [Field]),
    /// A Go pointer to a struct: `null` or no key leaves it absent.
    OptObj(&'static [Field]),
}

/// A struct field: moby's JSON key, and how messages name it (in camelCase).
struct Field {
    key: &'static str,
    name: &'static str,
    kind: Kind,
}

const fn field(key: &'static str, name: &'static str, kind: Kind) -> Field {
    Field { key, name, kind }
}

impl Field {
    /// The key serde's derived decoder expects: the kebab-case form of the name
    /// messages use (`allowAllDevices` is `allow-all-devices`, `diff_ids` stays).
    fn serde_key(&self) -> String {
        let mut out = String::with_capacity(self.name.len() + 4);
        for c in self.name.chars() {
            if c.is_ascii_uppercase() {
                out.push('-');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

const INTERFACE: &[Field] = &[
    field("Types", "types", Kind::Seq(&Kind::Str)),
    field("Socket", "socket", Kind::Str),
    field("ProtocolScheme", "protocolScheme", Kind::Str),
];

const USER: &[Field] = &[
    field("UID", "uid", Kind::U32),
    field("GID", "gid", Kind::U32),
];

const NETWORK: &[Field] = &[field("Type", "type", Kind::Str)];

const DEVICE: &[Field] = &[
    field("Name", "name", Kind::Str),
    field("Description", "description", Kind::Str),
    field("Settable", "settable", Kind::Seq(&Kind::Str)),
    field("Path", "path", Kind::OptStr),
];

const LINUX: &[Field] = &[
    field("Capabilities", "capabilities", Kind::Seq(&Kind::Str)),
    field("AllowAllDevices", "allowAllDevices", Kind::Bool),
    field("Devices", "devices", Kind::Seq(&Kind::Obj(DEVICE))),
];

const MOUNT: &[Field] = &[
    field("Name", "name", Kind::Str),
    field("Description", "description", Kind::Str),
    field("Settable", "settable", Kind::Seq(&Kind::Str)),
    field("Source", "source", Kind::OptStr),
    field("Destination", "destination", Kind::Str),
    field("Type", "type", Kind::Str),
    field("Options", "options", Kind::Seq(&Kind::Str)),
];

const ENV: &[Field] = &[
    field("Name", "name", Kind::Str),
    field("Description", "description", Kind::Str),
    field("Settable", "settable", Kind::Seq(&Kind::Str)),
    field("Value", "value", Kind::OptStr),
];

const ARGS: &[Field] = &[
    field("Name", "name", Kind::Str),
    field("Description", "description", Kind::Str),
    field("Settable", "settable", Kind::Seq(&Kind::Str)),
    field("Value", "value", Kind::Seq(&Kind::Str)),
];

const ROOTFS: &[Field] = &[
    field("type", "type", Kind::Str),
    field("diff_ids", "diff_ids", Kind::Seq(&Kind::Str)),
];

const CONFIG: &[Field] = &[
    field("DockerVersion", "dockerVersion", Kind::Str),
    field("Description", "description", Kind::Str),
    field("Documentation", "documentation", Kind::Str),
    field("Interface", "interface", Kind::Obj(INTERFACE)),
    field("Entrypoint", "entrypoint", Kind::Seq(&Kind::Str)),
    field("WorkDir", "workDir", Kind::Str),
    field("User", "user", Kind::Obj(USER)),
    field("Network", "network", Kind::Obj(NETWORK)),
    field("Linux", "linux", Kind::Obj(LINUX)),
    field("PropagatedMount", "propagatedMount", Kind::Str),
    field("IpcHost", "ipcHost", Kind::Bool),
    field("PidHost", "pidHost", Kind::Bool),
    field("Mounts", "mounts", Kind::Seq(&Kind::Obj(MOUNT))),
    field("Env", "env", Kind::Seq(&Kind::Obj(ENV))),
    field("Args", "args", Kind::Obj(ARGS)),
    field("rootfs", "rootfs", Kind::OptObj(ROOTFS)),
];

/// Rewrites a decoded `config.json` with the keys serde expects (see the module
/// docs).
pub(super) fn normalize_config(value: Json) -> Result<Value, ConfigError> {
    match value {
        Json::Object(entries) => Ok(Value::Object(normalize_object(
            entries,
            CONFIG,
            "",
            Map::new(),
        )?)),
        other => Err(type_error("", "a JSON object", &other)),
    }
}

/// Decodes the keys of `input` into `out` (what an earlier duplicate key of the same
/// struct left, or nothing), then gives every field still missing its zero value.
fn normalize_object(
    input: Vec<(String, Json)>,
    fields: &'static [Field],
    path: &str,
    mut out: Map<String, Value>,
) -> Result<Map<String, Value>, ConfigError> {
    for (key, value) in input {
        // Go prefers an exact match, then a case-folded one; the keys of one struct
        // differ under folding, so the first folded match is the only one.
        let Some(field) = fields.iter().find(|f| go_fold_eq(&key, f.key)) else {
            continue;
        };
        let path = join(path, field.name);
        let serde_key = field.serde_key();
        let existing = out.remove(&serde_key);
        if let Some(decoded) = normalize_value(value, &field.kind, existing, &path)? {
            out.insert(serde_key, decoded);
        }
    }
    fill_zero(&mut out, fields);
    Ok(out)
}

/// Gives every field of `fields` missing from `out` its zero value.
fn fill_zero(out: &mut Map<String, Value>, fields: &'static [Field]) {
    for field in fields {
        if let Some(zero) = zero(&field.kind) {
            out.entry(field.serde_key()).or_insert(zero);
        }
    }
}

/// Decodes `value` for a field of `kind` over what an earlier duplicate key left
/// (`existing`); `None` leaves the field absent (its zero value, or no struct).
fn normalize_value(
    value: Json,
    kind: &'static Kind,
    existing: Option<Value>,
    path: &str,
) -> Result<Option<Value>, ConfigError> {
    Ok(Some(match (kind, value) {
        (Kind::Seq(_), Json::Null) => Value::Array(Vec::new()),
        (Kind::OptStr, Json::Null) => Value::Null,
        // A pointer to a struct: `null` clears it.
        (Kind::OptObj(_), Json::Null) => return Ok(None),
        // Go leaves a string, bool, number or struct as it was.
        (_, Json::Null) => return Ok(existing),
        (Kind::Str | Kind::OptStr, Json::String(s)) => Value::String(s),
        (Kind::Bool, Json::Bool(b)) => Value::Bool(b),
        (Kind::U32, Json::Number(n)) if n.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)) => {
            Value::Number(n)
        }
        (Kind::Seq(elem), Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let path = format!("{path}[{i}]");
                // Go decodes `null` into a fresh element as its zero value.
                let item = normalize_value(item, elem, None, &path)?
                    .or_else(|| zero(elem))
                    .unwrap_or(Value::Null);
                out.push(item);
            }
            Value::Array(out)
        }
        (Kind::Obj(fields) | Kind::OptObj(fields), Json::Object(entries)) => {
            let earlier = match existing {
                Some(Value::Object(earlier)) => earlier,
                _ => Map::new(),
            };
            Value::Object(normalize_object(entries, fields, path, earlier)?)
        }
        (kind, other) => return Err(type_error(path, expected(kind), &other)),
    }))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn expected(kind: &Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::OptStr => "a string or null",
        Kind::Bool => "true or false",
        Kind::U32 => "a whole number from 0 to 4294967295",
        Kind::Seq(Kind::Str) => "an array of strings",
        Kind::Seq(_) => "an array of objects",
        Kind::Obj(_) | Kind::OptObj(_) => "an object",
    }
}

/// Go's zero value for a field or element of `kind`; `None` for a pointer to a
/// struct, which stays absent.
fn zero(kind: &Kind) -> Option<Value> {
    Some(match kind {
        Kind::Str => Value::String(String::new()),
        Kind::OptStr => Value::Null,
        Kind::Bool => Value::Bool(false),
        Kind::U32 => Value::from(0u32),
        Kind::Seq(_) => Value::Array(Vec::new()),
        Kind::Obj(fields) => {
            let mut out = Map::new();
            fill_zero(&mut out, fields);
            Value::Object(out)
        }
        Kind::OptObj(_) => return None,
    })
}

fn type_error(path: &str, expected: &'static str, found: &Json) -> ConfigError {
    let found = match found {
        Json::Null => "null".to_owned(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("the string {}…", super::go_quote(&head))
        }
        Json::String(s) => format!("the string {}", super::go_quote(s)),
        Json::Array(_) => "an array".to_owned(),
        Json::Object(_) => "an object".to_owned(),
    };
    let path = if path.is_empty() { "(top level)" } else { path };
    ConfigError::Type {
        path: path.to_owned(),
        expected,
        found,
    }
}

/// Go's `encoding/json` key matching: equal under Unicode simple case folding. For
/// our ASCII field names that is ASCII case-insensitivity, plus `ſ` (U+017F) folding
/// to `s` and the Kelvin sign (U+212A) to `k`.
fn go_fold_eq(key: &str, field: &str) -> bool {
    let mut key = key.chars();
    let mut field = field.chars();
    loop {
        match (key.next(), field.next()) {
            (None, None) => return true,
            (Some(k), Some(f)) => {
                let same = k.eq_ignore_ascii_case(&f)
                    || (k == '\u{17f}' && f.eq_ignore_ascii_case(&'s'))
                    || (k == '\u{212a}' && f.eq_ignore_ascii_case(&'k'));
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}
