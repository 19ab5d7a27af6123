//! A tiny command-line flag reader for plugin binaries, so that each one does not
//! hand-roll the same loop (and so that plugin binaries stay small: no clap).
//!
//! [`Flags`] yields flags one by one (`--flag value` and `--flag=value`, `-h`/`--help`);
//! the binary matches the ones it knows and asks for their values. Every mistake is an
//! [`ArgsError`] that names the flag and the fix, and [`ArgsError::report`] turns it
//! into what a command-line tool does: the usage on stdout and exit code 0 for
//! `--help`, `program: message` on stderr and exit code 2 otherwise. The listen flags
//! every plugin shares (`--name`, `--socket-dir`, `--tcp`, `--systemd`, …) are
//! [`ListenArgs`](crate::transport::ListenArgs), built on it.
//!
//! ```
//! use docker_plugin_sdk::args::{ArgsError, Flags};
//!
//! fn parse(args: &[&str]) -> Result<(String, bool), ArgsError> {
//!     let mut root = "/var/lib/myplugin".to_owned();
//!     let mut verbose = false;
//!     let mut flags = Flags::new(args, "usage: myplugin [--root DIR] [--verbose]");
//!     while let Some(flag) = flags.next_flag()? {
//!         match flag.as_str() {
//!             "--root" => root = flags.value()?,
//!             "--verbose" => verbose = true,
//!             _ => return Err(flags.unknown()),
//!         }
//!     }
//!     Ok((root, verbose))
//! }
//!
//! assert_eq!(parse(&["--root=/srv", "--verbose"]).unwrap(), ("/srv".to_owned(), true));
//! assert_eq!(
//!     parse(&["--root"]).unwrap_err().to_string(),
//!     "--root needs a value: --root VALUE or --root=VALUE"
//! );
//! assert_eq!(
//!     parse(&["--verbos"]).unwrap_err().to_string(),
//!     "unknown flag --verbos (see --help)"
//! );
//! ```
//!
//! In `main`, with `std::env::args`:
//!
//! ```no_run
//! # use docker_plugin_sdk::args::{ArgsError, Flags};
//! # fn parse(flags: &mut Flags) -> Result<(), ArgsError> { Ok(()) }
//! fn main() -> std::process::ExitCode {
//!     let mut flags = Flags::from_env("usage: myplugin [--root DIR]");
//!     if let Err(err) = parse(&mut flags) {
//!         return err.report("myplugin"); // usage and 0 for --help, else the error and 2
//!     }
//!     // ...
//! #   std::process::ExitCode::SUCCESS
//! }
//! ```

use std::ffi::OsString;
use std::iter::Peekable;
use std::process::ExitCode;
use std::str::FromStr;

/// A command line that is not what the program takes, or a request for its usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// `-h` or `--help`: not a mistake; the message is the usage.
    #[error("{0}")]
    Help(String),
    /// A flag the program does not know.
    #[error("unknown flag {flag} (see --help)")]
    Unknown {
        /// The flag as given.
        flag: String,
    },
    /// An argument that is not a flag.
    #[error("unexpected argument `{arg}`: this program takes flags only (see --help)")]
    Positional {
        /// The argument.
        arg: String,
    },
    /// An argument that is not valid UTF-8.
    #[error("argument `{arg}` is not valid UTF-8")]
    NotUnicode {
        /// The argument, lossily decoded.
        arg: String,
    },
    /// A flag given without its value.
    #[error("{flag} needs a value: {flag} VALUE or {flag}=VALUE")]
    MissingValue {
        /// The flag.
        flag: String,
    },
    /// A switch given a value (`--systemd=yes`).
    #[error("{flag} takes no value, got `{value}`: write just {flag}")]
    UnexpectedValue {
        /// The flag.
        flag: String,
        /// The value given.
        value: String,
    },
    /// A value that does not parse.
    #[error("{flag} {value}: expected {expected}")]
    Invalid {
        /// The flag.
        flag: String,
        /// The value given.
        value: String,
        /// What it should be, e.g. `octal permissions such as 660`.
        expected: String,
    },
    /// A required flag was not given.
    #[error("{flag} is required (see --help)")]
    Required {
        /// The flag.
        flag: String,
    },
    /// A flag that needs another one.
    #[error("{flag} needs {needs}: {why}")]
    Requires {
        /// The flag given.
        flag: String,
        /// The flag it needs.
        needs: String,
        /// Why.
        why: String,
    },
    /// Two flags that exclude each other.
    #[error("{flag} and {other} cannot be used together: {why}")]
    Conflict {
        /// One flag.
        flag: String,
        /// The other.
        other: String,
        /// Why, or which to choose.
        why: String,
    },
    /// A flag this program does not support, although others do.
    #[error("{flag} is not supported: {why}")]
    Unsupported {
        /// The flag.
        flag: String,
        /// Why, and what to do instead.
        why: String,
    },
}

impl ArgsError {
    /// The exit code: 0 for [`ArgsError::Help`], 2 (a usage error) otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ArgsError::Help(_) => 0,
            _ => 2,
        }
    }

    /// Prints the usage on stdout (for `--help`) or `program: message` on stderr, and
    /// returns the exit code for `main`.
    ///
    /// ```
    /// use docker_plugin_sdk::args::ArgsError;
    /// let err = ArgsError::Required { flag: "--root".into() };
    /// assert_eq!(err.report("myplugin"), std::process::ExitCode::from(2));
    /// ```
    pub fn report(&self, program: &str) -> ExitCode {
        match self {
            ArgsError::Help(usage) => println!("{usage}"),
            err => eprintln!("{program}: {err}"),
        }
        ExitCode::from(self.exit_code())
    }

    /// [`ArgsError::report`], then exits the process: for `main` before anything
    /// runs that needs cleaning up (like clap's `Error::exit`).
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::args::{ArgsError, Flags};
    /// # fn parse_args() -> Result<String, ArgsError> { Ok(String::new()) }
    /// let root = parse_args().unwrap_or_else(|err| err.exit("myplugin"));
    /// ```
    pub fn exit(&self, program: &str) -> ! {
        self.report(program);
        std::process::exit(i32::from(self.exit_code()))
    }
}

/// The flags of a command line, one at a time; see the [module docs](self).
#[derive(Debug)]
pub struct Flags {
    args: Peekable<std::vec::IntoIter<OsString>>,
    /// The flag [`Flags::next_flag`] returned last.
    flag: String,
    /// Its `=value`, until taken.
    inline: Option<String>,
    usage: String,
}

impl Flags {
    /// The process's arguments (without the program name); `usage` is what `--help`
    /// shows.
    pub fn from_env(usage: impl Into<String>) -> Self {
        Self::new(std::env::args_os().skip(1), usage)
    }

    /// The arguments `args` (without the program name).
    pub fn new<A: Into<OsString>>(
        args: impl IntoIterator<Item = A>,
        usage: impl Into<String>,
    ) -> Self {
        Self {
            args: args
                .into_iter()
                .map(Into::into)
                .collect::<Vec<_>>()
                .into_iter()
                .peekable(),
            flag: String::new(),
            inline: None,
            usage: usage.into(),
        }
    }

    /// The next flag: `--name` for both `--name x` and `--name=x`; `None` at the end.
    /// `-h`/`--help` is [`ArgsError::Help`], an argument that is not a flag
    /// [`ArgsError::Positional`], and a `=value` given to the previous flag that did
    /// not take it (a switch) [`ArgsError::UnexpectedValue`].
    pub fn next_flag(&mut self) -> Result<Option<String>, ArgsError> {
        if let Some(value) = self.inline.take() {
            return Err(ArgsError::UnexpectedValue {
                flag: self.flag.clone(),
                value,
            });
        }
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        let arg = unicode(arg)?;
        if arg == "-h" || arg == "--help" {
            return Err(ArgsError::Help(self.usage.clone()));
        }
        if !arg.starts_with('-') || arg == "-" {
            return Err(ArgsError::Positional { arg });
        }
        if !arg.starts_with("--") || arg == "--" {
            return Err(ArgsError::Unknown { flag: arg });
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        self.flag.clone_from(&flag);
        self.inline = inline;
        Ok(Some(flag))
    }

    /// The flag [`Flags::next_flag`] returned last.
    pub fn flag(&self) -> &str {
        &self.flag
    }

    /// The value of the current flag: after its `=`, or the next argument. An
    /// argument that starts with `--` is taken for the next flag, not a value (write
    /// `--flag=--value` for such a value).
    pub fn value(&mut self) -> Result<String, ArgsError> {
        if let Some(value) = self.inline.take() {
            return Ok(value);
        }
        let missing = || ArgsError::MissingValue {
            flag: self.flag.clone(),
        };
        match self.args.peek() {
            Some(next) if !next.to_string_lossy().starts_with("--") => {}
            _ => return Err(missing()),
        }
        self.args.next().map_or_else(|| Err(missing()), unicode)
    }

    /// The value of the current flag, parsed with `FromStr`; `expected` says what it
    /// should be in the error (e.g. `a number`).
    pub fn parse<T: FromStr>(&mut self, expected: &str) -> Result<T, ArgsError> {
        self.parse_with(expected, |value| value.parse().ok())
    }

    /// The value of the current flag, parsed by `parse` (`None`: invalid).
    ///
    /// ```
    /// # use docker_plugin_sdk::args::Flags;
    /// let mut flags = Flags::new(["--mode", "999"], "");
    /// flags.next_flag().unwrap();
    /// let err = flags
    ///     .parse_with("octal permissions such as 660", |v| u32::from_str_radix(v, 8).ok())
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "--mode 999: expected octal permissions such as 660");
    /// ```
    pub fn parse_with<T>(
        &mut self,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ArgsError> {
        let value = self.value()?;
        parse(&value).ok_or_else(|| ArgsError::Invalid {
            flag: self.flag.clone(),
            value,
            expected: expected.to_owned(),
        })
    }

    /// The error for the current flag when the program does not know it.
    pub fn unknown(&self) -> ArgsError {
        ArgsError::Unknown {
            flag: self.flag.clone(),
        }
    }
}

fn unicode(arg: OsString) -> Result<String, ArgsError> {
    arg.into_string().map_err(|arg| ArgsError::NotUnicode {
        arg: arg.to_string_lossy().into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `--name VALUE`, `--count N` and the switch `--on`.
    fn parse(args: &[&str]) -> Result<Vec<String>, ArgsError> {
        let mut seen = Vec::new();
        let mut flags = Flags::new(args, "usage: t [--name NAME] [--count N] [--on]");
        while let Some(flag) = flags.next_flag()? {
            match flag.as_str() {
                "--name" => seen.push(format!("name={}", flags.value()?)),
                "--count" => seen.push(format!("count={}", flags.parse::<u8>("a number")?)),
                "--on" => seen.push("on".into()),
                _ => return Err(flags.unknown()),
            }
        }
        Ok(seen)
    }

    fn error(args: &[&str]) -> String {
        parse(args).unwrap_err().to_string()
    }

    #[test]
    fn values_come_after_a_space_or_an_equals_sign() {
        assert_eq!(
            parse(&["--name", "a", "--count=3", "--on", "--name=b=c", "--name="]).unwrap(),
            ["name=a", "count=3", "on", "name=b=c", "name="]
        );
    }

    #[test]
    fn every_mistake_names_the_flag_and_the_fix() {
        assert_eq!(error(&["--nope"]), "unknown flag --nope (see --help)");
        assert_eq!(error(&["-x"]), "unknown flag -x (see --help)");
        assert_eq!(error(&["--"]), "unknown flag -- (see --help)");
        assert_eq!(
            error(&["extra"]),
            "unexpected argument `extra`: this program takes flags only (see --help)"
        );
        assert_eq!(
            error(&["--name"]),
            "--name needs a value: --name VALUE or --name=VALUE"
        );
        assert_eq!(
            error(&["--name", "--on"]),
            "--name needs a value: --name VALUE or --name=VALUE"
        );
        assert_eq!(
            error(&["--on=yes"]),
            "--on takes no value, got `yes`: write just --on"
        );
        assert_eq!(
            error(&["--count", "many"]),
            "--count many: expected a number"
        );
    }

    #[test]
    fn help_is_the_usage_with_exit_code_zero() {
        for help in ["-h", "--help"] {
            let err = parse(&["--on", help, "--nope"]).unwrap_err();
            assert_eq!(err.to_string(), "usage: t [--name NAME] [--count N] [--on]");
            assert_eq!(err.exit_code(), 0);
        }
        assert_eq!(parse(&["--nope"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn arguments_that_are_not_unicode_are_refused() {
        use std::os::unix::ffi::OsStringExt;
        let mut flags = Flags::new([OsString::from_vec(b"--a\xff".to_vec())], "");
        assert_eq!(
            flags.next_flag().unwrap_err().to_string(),
            "argument `--a\u{fffd}` is not valid UTF-8"
        );
    }

    #[test]
    fn the_other_errors_read_as_sentences() {
        let required = ArgsError::Required {
            flag: "--root".into(),
        };
        assert_eq!(required.to_string(), "--root is required (see --help)");
        let requires = ArgsError::Requires {
            flag: "--tcp".into(),
            needs: "--spec-dir".into(),
            why: "dockerd finds TCP plugins through a .spec file".into(),
        };
        assert_eq!(
            requires.to_string(),
            "--tcp needs --spec-dir: dockerd finds TCP plugins through a .spec file"
        );
        let conflict = ArgsError::Conflict {
            flag: "--tcp".into(),
            other: "--systemd".into(),
            why: "systemd passes the socket; choose one".into(),
        };
        assert_eq!(
            conflict.to_string(),
            "--tcp and --systemd cannot be used together: systemd passes the socket; choose one"
        );
        let unsupported = ArgsError::Unsupported {
            flag: "--tcp".into(),
            why: "this plugin listens on a unix socket only".into(),
        };
        assert_eq!(
            unsupported.to_string(),
            "--tcp is not supported: this plugin listens on a unix socket only"
        );
    }
}
