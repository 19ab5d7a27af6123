//! The command line of a plugin that takes one setting of its own beside the listen
//! flags (`--dir DIR` for a log or secrets directory): the whole parse, its usage and
//! `--help` text included, so that such a `main` holds no flag loop of its own.

use std::ffi::OsString;

use super::ListenArgs;
use crate::args::{ArgsError, Flags};

/// A flag of the program's own that takes a value, read beside the listen flags by
/// [`ListenArgs::parse_with`].
///
/// ```
/// use docker_plugin_sdk::transport::{ListenArgs, ValueFlag};
///
/// const DIR: ValueFlag = ValueFlag {
///     flag: "--dir",
///     value: "DIR",
///     help: "where the files go",
///     default: "/logs",
/// };
///
/// let (listen, dir) = ListenArgs::parse_with("filelog", &DIR, ["--dir=/srv/logs", "--tcp",
///     "127.0.0.1:0", "--spec-dir", "/tmp"]).unwrap();
/// assert_eq!((listen.name.as_str(), dir.as_str()), ("filelog", "/srv/logs"));
/// assert_eq!(listen.tcp.as_deref(), Some("127.0.0.1:0"));
///
/// let (_, dir) = ListenArgs::parse_with("filelog", &DIR, ["--name", "logs"]).unwrap();
/// assert_eq!(dir, "/logs");
///
/// let help = ListenArgs::parse_with("filelog", &DIR, ["--help"]).unwrap_err().to_string();
/// assert!(help.starts_with("usage: filelog [--dir DIR] [--name NAME]"), "{help}");
/// assert!(help.contains("\n  --dir DIR             where the files go (default /logs)\n"));
/// ```
///
/// In `main` (the process's arguments; `--help` and mistakes end the process as a
/// command-line tool does):
///
/// ```no_run
/// # use docker_plugin_sdk::transport::{ListenArgs, ValueFlag};
/// # const DIR: ValueFlag = ValueFlag { flag: "--dir", value: "DIR", help: "", default: "/logs" };
/// let (listen, dir) = ListenArgs::from_env_with("filelog", &DIR)
///     .unwrap_or_else(|err| err.exit("filelog"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueFlag {
    /// The flag: `--dir`.
    pub flag: &'static str,
    /// What its value is called in the usage: `DIR`.
    pub value: &'static str,
    /// What it sets, for `--help` (the default is added after it).
    pub help: &'static str,
    /// Its value when the flag is not given.
    pub default: &'static str,
}

impl ValueFlag {
    /// The usage and `--help` text of `program` taking this flag and the listen flags.
    pub fn usage(&self, program: &str) -> String {
        let flag = format!("{} {}", self.flag, self.value);
        format!(
            "usage: {program} [{flag}] {}\n\n  {flag:<22}{} (default {})\n{}",
            ListenArgs::USAGE,
            self.help,
            self.default,
            ListenArgs::HELP
        )
    }
}

impl ListenArgs {
    /// Reads `args` (without the program name): the listen flags, plugin name
    /// `program` by default, and `own`, whose value (or default) comes second. Every
    /// other flag is [`ArgsError::Unknown`]; `--help` is [`ArgsError::Help`] with
    /// [`ValueFlag::usage`].
    pub fn parse_with<A: Into<OsString>>(
        program: &str,
        own: &ValueFlag,
        args: impl IntoIterator<Item = A>,
    ) -> Result<(Self, String), ArgsError> {
        Self::read(program, own, Flags::new(args, own.usage(program)))
    }

    /// [`ListenArgs::parse_with`] on the process's arguments.
    pub fn from_env_with(program: &str, own: &ValueFlag) -> Result<(Self, String), ArgsError> {
        Self::read(program, own, Flags::from_env(own.usage(program)))
    }

    fn read(program: &str, own: &ValueFlag, mut flags: Flags) -> Result<(Self, String), ArgsError> {
        let mut listen = Self::new(program);
        let mut value = own.default.to_owned();
        while let Some(flag) = flags.next_flag()? {
            if flag == own.flag {
                value = flags.value()?;
            } else {
                listen.parse_flag(&mut flags)?;
            }
        }
        listen.check()?;
        Ok((listen, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: ValueFlag = ValueFlag {
        flag: "--dir",
        value: "DIR",
        help: "the directory of secret files",
        default: "/secrets",
    };

    fn parse(args: &[&str]) -> Result<(ListenArgs, String), ArgsError> {
        ListenArgs::parse_with("dirsecrets", &DIR, args)
    }

    #[test]
    fn the_own_flag_and_the_listen_flags_are_read_in_any_order() {
        let (listen, dir) =
            parse(&["--socket-dir", "/tmp/p", "--dir", "/srv/s", "--name=s"]).unwrap();
        assert_eq!(dir, "/srv/s");
        assert_eq!(listen.name, "s");
        assert_eq!(
            listen.socket_dir.as_deref(),
            Some(std::path::Path::new("/tmp/p"))
        );
        let (listen, dir) = parse(&[]).unwrap();
        assert_eq!(
            (listen, dir.as_str()),
            (ListenArgs::new("dirsecrets"), "/secrets")
        );
    }

    #[test]
    fn mistakes_are_the_listen_flags_mistakes() {
        assert_eq!(
            parse(&["--dir"]).unwrap_err().to_string(),
            "--dir needs a value: --dir VALUE or --dir=VALUE"
        );
        assert_eq!(
            parse(&["--dri", "/x"]).unwrap_err().to_string(),
            "unknown flag --dri (see --help)"
        );
        assert_eq!(
            parse(&["--tcp", "127.0.0.1:0"]).unwrap_err().to_string(),
            "--tcp needs --spec-dir: dockerd finds TCP plugins through a .spec file"
        );
    }

    #[test]
    fn help_is_the_usage_with_the_own_flag_first() {
        let ArgsError::Help(usage) = parse(&["-h"]).unwrap_err() else {
            panic!("not help");
        };
        assert_eq!(
            usage,
            format!(
                "usage: dirsecrets [--dir DIR] {}\n\n  \
                 --dir DIR             the directory of secret files (default /secrets)\n{}",
                ListenArgs::USAGE,
                ListenArgs::HELP
            )
        );
    }
}
