//! Typed driver options: Docker's `-o key=value` map (`Opts` of a volume Create,
//! `Options` of a network) as a struct.
//!
//! Derive `DriverOptions` (`#[derive(DriverOptions)]`, feature `macros`) or implement
//! the trait by hand. Parsing collects every problem at once (unknown keys, missing
//! required keys, values that do not parse) into one [`OptionsError`], whose message
//! is what `docker volume create` shows the user: returning it from a driver with `?`
//! is all it takes.
//!
//! Each error says in words what a value must be: "option `mode` must be octal
//! permissions such as 0750, got `0980`: digits 0 to 7 only", never a Rust type name.
//! The derive words std types itself; for a type of your own, or a parser of your own
//! (`#[opt(parse_with = octal, expect = "octal permissions such as 0750")]`), you give
//! the words with `expect`.
//!
//! Secrets are [`Secret`]s: their `Debug` and `Display` print `********`, a bad value
//! is reported without echoing it, and [`DriverOptions::to_status`] leaves them out,
//! so they never reach a log line or a volume's `Status`.
//!
//! ```
//! use std::collections::HashMap;
//! use docker_plugin_sdk::options::{DriverOptions, OptionInfo, OptionsError, Secret};
//!
//! // What the derive writes for you, by hand:
//! #[derive(Debug)]
//! struct Opts { port: u16, password: Option<Secret<String>> }
//!
//! impl DriverOptions for Opts {
//!     const OPTIONS: &'static [OptionInfo] = &[
//!         OptionInfo { key: "port", required: false, default: Some("22"), secret: false, doc: "" },
//!         OptionInfo { key: "password", required: false, default: None, secret: true, doc: "" },
//!     ];
//!     fn from_options<'a>(
//!         options: impl IntoIterator<Item = (&'a str, &'a str)>,
//!     ) -> Result<Self, OptionsError> {
//!         let mut p = docker_plugin_sdk::options::Parser::new(Self::OPTIONS, options);
//!         let port = p.parse_or("port", "a number", "22");
//!         let password = p.parse_optional("password", "a string");
//!         p.finish()?;
//!         Ok(Self { port: port.unwrap_or_default(), password: password.flatten() })
//!     }
//!     fn to_status(&self) -> Vec<(&'static str, String)> {
//!         vec![("port", self.port.to_string())]
//!     }
//! }
//!
//! let opts = HashMap::from([("port".to_string(), "ab".to_string()), ("prot".into(), "1".into())]);
//! let err = Opts::from_map(&opts).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid options: unknown option `prot` (valid options: port, password); \
//!      option `port` must be a number, got `ab`: invalid digit found in string"
//! );
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

/// A struct built from Docker's `-o key=value` options.
pub trait DriverOptions: Sized {
    /// Every option, in declaration order.
    const OPTIONS: &'static [OptionInfo];

    /// Parses `options`; every problem is reported at once.
    fn from_options<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, OptionsError>;

    /// Parses the options map of a request (`CreateRequest::opts`).
    fn from_map<S: std::hash::BuildHasher>(
        options: &HashMap<String, String, S>,
    ) -> Result<Self, OptionsError> {
        Self::from_options(options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The options as `(key, value)` pairs for a volume's `Status`, secrets left out
    /// and unset optional values skipped.
    fn to_status(&self) -> Vec<(&'static str, String)>;

    /// [`to_status`](Self::to_status) as a JSON-ready map.
    fn status_map(&self) -> BTreeMap<String, serde_json::Value> {
        self.to_status()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
            .collect()
    }

    /// A help text listing every option: key, required or default, secret, doc.
    fn help() -> String {
        let mut out = String::new();
        for info in Self::OPTIONS {
            out.push_str("  -o ");
            out.push_str(info.key);
            out.push_str("=…");
            if info.required {
                out.push_str("  (required)");
            } else if let Some(default) = info.default {
                out.push_str(&format!("  (default {default})"));
            }
            if info.secret {
                out.push_str("  (secret)");
            }
            if !info.doc.is_empty() {
                out.push_str("  ");
                out.push_str(info.doc);
            }
            out.push('\n');
        }
        out
    }
}

/// One option of a [`DriverOptions`] struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionInfo {
    /// The key users write: `-o key=value`.
    pub key: &'static str,
    /// Whether it must be given.
    pub required: bool,
    /// The default, as text, when it has one.
    pub default: Option<&'static str>,
    /// Whether its value is a secret.
    pub secret: bool,
    /// Its doc comment's first line.
    pub doc: &'static str,
}

/// Everything wrong with a set of options; its message lists each problem, separated
/// by `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid options: {}", self.problems.join("; "))]
pub struct OptionsError {
    /// One message per problem, in order: unknown keys, missing keys, bad values.
    pub problems: Vec<String>,
    /// The unknown keys.
    pub unknown: Vec<String>,
    /// The required keys not given.
    pub missing: Vec<&'static str>,
}

/// A secret option value: never printed by `Debug` or `Display`.
///
/// ```
/// use docker_plugin_sdk::options::Secret;
/// let password: Secret<String> = "hunter2".parse().unwrap();
/// assert_eq!(format!("{password:?} {password}"), "Secret(********) ********");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl<T: FromStr> FromStr for Secret<T> {
    type Err = T::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Secret)
    }
}

/// The parsing engine behind the derive: collects values by key, then problems.
#[derive(Debug)]
pub struct Parser<'a> {
    options: &'static [OptionInfo],
    given: BTreeMap<&'a str, &'a str>,
    problems: Vec<String>,
    unknown: Vec<String>,
    missing: Vec<&'static str>,
}

impl<'a> Parser<'a> {
    /// Starts parsing `given` against `options`; unknown keys are noted at once.
    pub fn new(
        options: &'static [OptionInfo],
        given: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let given: BTreeMap<&str, &str> = given.into_iter().collect();
        let valid: Vec<&str> = options.iter().map(|o| o.key).collect();
        let unknown: Vec<String> = given
            .keys()
            .filter(|k| !valid.contains(k))
            .map(|k| (*k).to_owned())
            .collect();
        let problems = unknown
            .iter()
            .map(|k| {
                if valid.is_empty() {
                    format!("unknown option `{k}` (this driver takes no options)")
                } else {
                    format!("unknown option `{k}` (valid options: {})", valid.join(", "))
                }
            })
            .collect();
        Self {
            options,
            given,
            problems,
            unknown,
            missing: Vec::new(),
        }
    }

    fn info(&self, key: &str) -> Option<&'static OptionInfo> {
        self.options.iter().find(|o| o.key == key)
    }

    fn parse_value<T, E: fmt::Display>(
        &mut self,
        key: &'static str,
        expected: &str,
        value: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match parse(value) {
            Ok(v) => Some(v),
            Err(err) => {
                let secret = self.info(key).is_some_and(|i| i.secret);
                let defaulted = !self.given.contains_key(key);
                self.problems.push(if defaulted {
                    // Not the user's mistake: the driver's own default does not parse.
                    format!(
                        "the driver's default for option `{key}` is invalid (must be {expected}): \
                         {err}; set `-o {key}=…` explicitly, and report this to the plugin's authors"
                    )
                } else if secret {
                    // The parse error itself may quote the input: it is left out too.
                    format!("option `{key}` must be {expected} (value not shown: secret)")
                } else {
                    format!("option `{key}` must be {expected}, got `{value}`: {err}")
                });
                None
            }
        }
    }

    /// A required option: `None` (and a problem noted) when missing or bad.
    /// `expected` says in words what a value must be ("a number", "octal permissions
    /// such as 0750"): the user reads "option `key` must be {expected}, got `…`".
    pub fn parse_required<T: FromStr>(&mut self, key: &'static str, expected: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        self.parse_required_with(key, expected, T::from_str)
    }

    /// An optional option: `Some(None)` when absent, `None` when bad.
    pub fn parse_optional<T: FromStr>(
        &mut self,
        key: &'static str,
        expected: &str,
    ) -> Option<Option<T>>
    where
        T::Err: fmt::Display,
    {
        self.parse_optional_with(key, expected, T::from_str)
    }

    /// An option with a default given as text (parsed the same way).
    pub fn parse_or<T: FromStr>(
        &mut self,
        key: &'static str,
        expected: &str,
        default: &str,
    ) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        self.parse_or_with(key, expected, default, T::from_str)
    }

    /// An option defaulting to `T::default()`.
    pub fn parse_or_default<T: FromStr + Default>(
        &mut self,
        key: &'static str,
        expected: &str,
    ) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        self.parse_or_default_with(key, expected, T::from_str)
    }

    /// [`parse_required`](Self::parse_required) with a parser of your own (what
    /// `#[opt(parse_with = …)]` calls).
    ///
    /// ```
    /// use docker_plugin_sdk::options::{OptionInfo, Parser};
    ///
    /// fn octal(text: &str) -> Result<u32, &'static str> {
    ///     u32::from_str_radix(text, 8).map_err(|_| "not an octal number")
    /// }
    /// const OPTIONS: &[OptionInfo] = &[
    ///     OptionInfo { key: "mode", required: true, default: None, secret: false, doc: "" },
    /// ];
    /// let mut p = Parser::new(OPTIONS, [("mode", "0980")]);
    /// assert_eq!(p.parse_required_with("mode", "octal permissions such as 0750", octal), None);
    /// assert_eq!(
    ///     p.finish().unwrap_err().to_string(),
    ///     "invalid options: option `mode` must be octal permissions such as 0750, \
    ///      got `0980`: not an octal number"
    /// );
    /// ```
    pub fn parse_required_with<T, E: fmt::Display>(
        &mut self,
        key: &'static str,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        self.parse_given(key, expected, parse, |p| {
            p.missing.push(key);
            None
        })
    }

    /// [`parse_optional`](Self::parse_optional) with a parser of your own.
    pub fn parse_optional_with<T, E: fmt::Display>(
        &mut self,
        key: &'static str,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<Option<T>> {
        self.parse_given(key, expected, |v| parse(v).map(Some), |_| Some(None))
    }

    /// [`parse_or`](Self::parse_or) with a parser of your own.
    pub fn parse_or_with<T, E: fmt::Display>(
        &mut self,
        key: &'static str,
        expected: &str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let value = self.given.get(key).copied().unwrap_or(default);
        self.parse_value(key, expected, value, parse)
    }

    /// [`parse_or_default`](Self::parse_or_default) with a parser of your own.
    pub fn parse_or_default_with<T: Default, E: fmt::Display>(
        &mut self,
        key: &'static str,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        self.parse_given(key, expected, parse, |_| Some(T::default()))
    }

    /// `parse` on the value given for `key`, or `absent` when there is none.
    fn parse_given<T, E: fmt::Display>(
        &mut self,
        key: &'static str,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
        absent: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        match self.given.get(key).copied() {
            Some(value) => self.parse_value(key, expected, value, parse),
            None => absent(self),
        }
    }

    /// Every problem found, or `Ok` when there were none.
    pub fn finish(mut self) -> Result<(), OptionsError> {
        if self.problems.is_empty() && self.missing.is_empty() {
            return Ok(());
        }
        let unknown_count = self.unknown.len();
        let missing = self
            .missing
            .iter()
            .map(|k| format!("missing required option `{k}`"));
        let bad: Vec<String> = self.problems.drain(unknown_count..).collect();
        self.problems.extend(missing);
        self.problems.extend(bad);
        Err(OptionsError {
            problems: self.problems,
            unknown: self.unknown,
            missing: self.missing,
        })
    }
}

/// A field whose type has no `FromStr` (and no `#[opt(parse_with = …)]`) does not
/// compile: rustc reports "the trait bound `Remote: FromStr` is not satisfied" at the
/// field's type. (A doc test rather than a `tests/ui` file: rustc's list of the types
/// that do implement `FromStr` changes with every crate in the build.)
///
/// ```compile_fail,E0277
/// use docker_plugin_sdk::DriverOptions;
///
/// struct Remote {
///     host: String,
/// }
///
/// #[derive(DriverOptions)]
/// struct Opts {
///     #[opt(expect = "user@host:/path")]
///     remote: Remote,
/// }
/// ```
#[cfg(all(doctest, feature = "macros"))]
pub struct FieldWithoutFromStr;
