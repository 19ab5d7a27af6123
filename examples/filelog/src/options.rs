//! The `--log-opt` options filelog takes, typed with the options derive: the size at
//! which a file is rotated and how many files are kept, worded and defaulted as
//! Docker's own drivers (moby v20.10.24 daemon/logger/jsonfilelog/jsonfilelog.go for
//! the words and the units, daemon/logger/local/config.go for the defaults).
//!
//! dockerd does not validate a plugin's options (moby v20.10.24
//! daemon/logger/factory.go `ValidateLogOpts`: a plugin has no validator), so a bad
//! value or an unknown key is refused here, at StartLogging, and `docker run` prints
//! the message. The keys dockerd itself reads (`mode`, `max-buffer-size`, the
//! `cache-*` keys of its local cache, which it also adds on its own) reach the plugin
//! too: `Info::options` passes them over.

use std::fmt;
use std::str::FromStr;

use docker_plugin_sdk::DriverOptions;

/// filelog's options.
#[derive(Debug, Clone, PartialEq, Eq, DriverOptions)]
pub struct FileLogOptions {
    /// The size at which a file is rotated: bytes, or a number with k, m or g (1000s).
    #[opt(
        rename = "max-size",
        default = "20m",
        expect = "a positive size such as 10m (k, m, g: 1000s of bytes)"
    )]
    pub max_size: Size,
    /// How many files are kept, the one written to included.
    #[opt(
        rename = "max-file",
        default = "5",
        parse_with = file_count,
        expect = "a whole number of files, 1 or more"
    )]
    pub max_file: u32,
}

/// `max-file`: at least the file written to.
fn file_count(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(0) => Err("max-file cannot be less than 1".into()),
        Ok(count) => Ok(count),
        Err(err) => Err(err.to_string()),
    }
}

/// A size in bytes, written as Docker's `max-size`: `1024`, `10k`, `10m`, `1g`,
/// decimal (go-units `FromHumanSize`, which json-file uses: `10m` is 10,000,000 bytes),
/// with an optional `b`/`B` after the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix('b').unwrap_or(&lower);
        let (digits, unit) = match lower.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            Some((at, _)) => lower.split_at(at),
            None => (lower, ""),
        };
        if digits.is_empty() {
            return Err("no number".into());
        }
        let factor: u64 = match unit.trim() {
            "" => 1,
            "k" => 1_000,
            "m" => 1_000_000,
            "g" => 1_000_000_000,
            other => return Err(format!("unknown unit `{other}`")),
        };
        let number: u64 = digits.parse().map_err(|_| "too large".to_string())?;
        match number.checked_mul(factor) {
            Some(0) => Err("max-size must be a positive number".into()),
            Some(bytes) => Ok(Size(bytes)),
            None => Err("too large".into()),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docker_plugin_sdk::logging::Info;

    /// The options of a container started with `pairs` as its `--log-opt`s.
    fn parse(pairs: &[(&str, &str)]) -> Result<FileLogOptions, String> {
        let mut info = Info::default();
        for (key, value) in pairs {
            info.config.insert(key.to_string(), value.to_string());
        }
        info.options::<FileLogOptions>()
            .map_err(|err| err.to_string())
    }

    #[test]
    fn defaults_are_the_local_drivers() {
        let options = parse(&[]).unwrap();
        assert_eq!((options.max_size, options.max_file), (Size(20_000_000), 5));
    }

    #[test]
    fn sizes_read_as_dockers_max_size() {
        for (text, bytes) in [
            ("1024", 1024),
            ("10k", 10_000),
            ("10m", 10_000_000),
            ("10M", 10_000_000),
            ("2g", 2_000_000_000),
            ("3kb", 3_000),
            ("4 MB", 4_000_000),
        ] {
            assert_eq!(text.parse::<Size>(), Ok(Size(bytes)), "{text}");
        }
        let options = parse(&[("max-size", "10m"), ("max-file", "3")]).unwrap();
        assert_eq!((options.max_size, options.max_file), (Size(10_000_000), 3));
    }

    #[test]
    fn bad_values_are_refused_with_what_they_must_be() {
        assert_eq!(
            parse(&[("max-size", "10x"), ("max-file", "0")]).unwrap_err(),
            "invalid options: \
             option `max-size` must be a positive size such as 10m (k, m, g: 1000s of bytes), \
             got `10x`: unknown unit `x`; \
             option `max-file` must be a whole number of files, 1 or more, got `0`: \
             max-file cannot be less than 1"
        );
        assert_eq!("-1".parse::<Size>(), Err("no number".into()));
        assert_eq!("m".parse::<Size>(), Err("no number".into()));
        assert_eq!(
            "99999999999999999999".parse::<Size>(),
            Err("too large".into())
        );
        assert_eq!("20000000000g".parse::<Size>(), Err("too large".into()));
        assert_eq!(
            parse(&[("max-size", "0")]).unwrap_err(),
            "invalid options: \
             option `max-size` must be a positive size such as 10m (k, m, g: 1000s of bytes), \
             got `0`: max-size must be a positive number"
        );
    }

    #[test]
    fn unknown_keys_are_refused_but_dockerds_own_are_passed_over() {
        assert_eq!(
            parse(&[("max-sise", "1m")]).unwrap_err(),
            "invalid options: unknown option `max-sise` (valid options: max-size, max-file)"
        );
        let options = parse(&[
            ("cache-disabled", "false"),
            ("cache-max-size", "20m"),
            ("cache-max-file", "5"),
            ("cache-compress", "true"),
            ("mode", "non-blocking"),
            ("max-buffer-size", "4m"),
            ("max-file", "2"),
        ])
        .unwrap();
        assert_eq!(options.max_file, 2);
    }
}
