//! The `-o key=value` options of `docker volume create -d sshfs`, as vieux/sshfs takes
//! them: `sshcmd` (required), `port`, `password`, and every other key passed on to
//! sshfs as `-o key=value` (`IdentityFile=/root/.ssh/id_ed25519`, `reconnect`,
//! `allow_other`, …), plus `password_file`, the safe way to give a password.
//!
//! The plugin's own keys are a typed struct with `#[derive(DriverOptions)]`; the rest
//! is split off first ([`VolumeOptions::parse`]), so a malformed `sshcmd` or port is
//! refused at create with the expected form, while sshfs options stay open-ended as
//! in vieux/sshfs (sshfs itself rejects what it does not know, at the first Mount,
//! and that error reaches `docker run` word for word).
//!
//! The password is a [`Secret`]: `Debug` and `Display` print `********`, a bad value is
//! never echoed, and [`VolumeOptions::status`] says only how the volume authenticates.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use docker_plugin_sdk::DriverOptions;
use docker_plugin_sdk::options::{OptionsError, Secret};
use serde::{Deserialize, Serialize};

/// The plugin's own options (the rest go to sshfs).
#[derive(Debug, DriverOptions)]
pub struct Options {
    /// The remote directory, `user@host:/path`.
    #[opt(expect = "the remote directory as user@host:/path (e.g. root@10.0.0.5:/srv/data)")]
    pub sshcmd: SshCmd,
    /// The SSH server's port.
    #[opt(default = "22")]
    pub port: u16,
    /// The password (visible to whoever runs `docker volume create`: prefer
    /// password_file or a key).
    pub password: Option<Secret<String>>,
    /// A file in the plugin's `sshkey` mount holding the password.
    #[opt(expect = "a file name in the sshkey mount (e.g. sshfs-password)")]
    pub password_file: Option<FileName>,
}

/// `[user@]host:[path]`: where sshfs mounts from. `host` may be an IPv6 address in
/// brackets (`[::1]`); an empty path is the user's home directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SshCmd {
    /// The user, when given.
    pub user: Option<String>,
    /// The host name or address (without brackets).
    pub host: String,
    /// The remote path (may be empty).
    pub path: String,
}

impl FromStr for SshCmd {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.starts_with('-') {
            // sshfs would read it as one of its own flags.
            return Err("it must not start with `-`".into());
        }
        if text.chars().any(char::is_control) || text.contains(' ') {
            return Err("no spaces or control characters".into());
        }
        let (user, rest) = match text.split_once('@') {
            Some((user, _)) if user.contains(':') => {
                // `user:password@host` is not ssh's syntax, and it would be shown.
                return Err(
                    "no `:` in the user: give a password with -o password_file=NAME".into(),
                );
            }
            Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
            Some(_) => return Err("the user before `@` is empty".into()),
            None => (None, text),
        };
        let (host, path) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or("no `]` after the IPv6 address")?;
            let path = after
                .strip_prefix(':')
                .ok_or("no `:` between host and path")?;
            (host, path)
        } else {
            rest.split_once(':').ok_or("no `:` between host and path")?
        };
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        Ok(Self {
            user,
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for SshCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.path)
        } else {
            write!(f, "{}:{}", self.host, self.path)
        }
    }
}

impl TryFrom<String> for SshCmd {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<SshCmd> for String {
    fn from(cmd: SshCmd) -> String {
        cmd.to_string()
    }
}

/// One file name, no directory: it is looked up in the `sshkey` mount only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileName(pub String);

impl FromStr for FileName {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() || text == "." || text == ".." || text.contains('/') {
            return Err("one file name, without `/`");
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How sshfs authenticates.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// A key (`-o IdentityFile=…`, or `id_*` in the sshkey mount).
    Key,
    /// A password read from this file of the sshkey mount at every mount.
    PasswordFile(FileName),
    /// A password given at create (kept in the state file, which is the host's
    /// `state` mount: only root reads it).
    Password(#[serde(with = "secret")] Secret<String>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Auth {
    /// How the volume authenticates, in words, secret-free: for Status and logs.
    pub fn describe(&self) -> String {
        match self {
            Auth::Key => "key".into(),
            Auth::PasswordFile(file) => format!("password from file {file}"),
            Auth::Password(_) => "password (hidden)".into(),
        }
    }
}

/// A [`Secret`] stored as its plain text (in the state file only).
mod secret {
    use docker_plugin_sdk::options::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Secret<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// sshfs options the plugin sets itself, refused from the user.
const RESERVED: &[(&str, &str)] = &[
    (
        "password_stdin",
        "the plugin sets it: give the password with -o password_file=NAME or -o password=…",
    ),
    (
        "ssh_command",
        "the plugin runs ssh itself: pass ssh options as -o Option=value",
    ),
];

/// Everything a volume was created with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeOptions {
    /// Where from.
    pub sshcmd: SshCmd,
    /// The SSH port.
    pub port: u16,
    /// How sshfs authenticates.
    pub auth: Auth,
    /// The other options, passed to sshfs as `-o key[=value]`, sorted by key.
    pub sshfs: BTreeMap<String, String>,
}

impl VolumeOptions {
    /// Splits `opts` into the plugin's options (parsed, every problem at once) and the
    /// ones for sshfs.
    pub fn parse(opts: &HashMap<String, String>) -> Result<Self, OptionsError> {
        let own: Vec<&str> = Options::OPTIONS.iter().map(|o| o.key).collect();
        let (mine, mut theirs): (Vec<_>, Vec<_>) =
            opts.iter().partition(|(k, _)| own.contains(&k.as_str()));
        theirs.sort();
        let parsed = Options::from_options(mine.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut problems = Vec::new();
        for (key, value) in &theirs {
            if let Some((_, why)) = RESERVED.iter().find(|(r, _)| r == key) {
                problems.push(format!("option `{key}` cannot be given: {why}"));
            } else if key.contains(',') || value.contains(',') {
                // sshfs splits -o on commas: `a=b,password_stdin` would be two options.
                problems.push(format!(
                    "option `{key}` must not contain `,`: give each sshfs option as its own -o"
                ));
            }
        }
        let (options, mut problems) = match parsed {
            Ok(options) if problems.is_empty() => (options, problems),
            Ok(_) => return Err(error(problems)),
            Err(err) => {
                let mut all = err.problems;
                all.append(&mut problems);
                return Err(error(all));
            }
        };
        let auth = match (options.password, options.password_file) {
            (Some(_), Some(_)) => {
                problems.push(
                    "options `password` and `password_file` exclude each other: keep password_file"
                        .into(),
                );
                return Err(error(problems));
            }
            (Some(password), None) => Auth::Password(password),
            (None, Some(file)) => Auth::PasswordFile(file),
            (None, None) => Auth::Key,
        };
        Ok(Self {
            sshcmd: options.sshcmd,
            port: options.port,
            auth,
            sshfs: theirs
                .into_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The volume's `Status` in `docker volume inspect`: no secret in it.
    pub fn status(&self) -> BTreeMap<String, serde_json::Value> {
        let mut status = BTreeMap::new();
        status.insert("sshcmd".into(), self.sshcmd.to_string().into());
        status.insert("port".into(), self.port.into());
        status.insert("auth".into(), self.auth.describe().into());
        if !self.sshfs.is_empty() {
            status.insert("options".into(), serde_json::json!(self.sshfs));
        }
        status
    }
}

fn error(problems: Vec<String>) -> OptionsError {
    OptionsError {
        problems,
        unknown: Vec::new(),
        missing: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<VolumeOptions, String> {
        let opts = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        VolumeOptions::parse(&opts).map_err(|e| e.to_string())
    }

    #[test]
    fn sshcmd_port_and_the_rest_for_sshfs() {
        let v = parse(&[
            ("sshcmd", "root@10.0.0.5:/srv/x"),
            ("port", "2222"),
            ("IdentityFile", "/root/.ssh/id_ed25519"),
            ("reconnect", ""),
        ])
        .unwrap();
        assert_eq!(v.sshcmd.to_string(), "root@10.0.0.5:/srv/x");
        assert_eq!(v.port, 2222);
        assert_eq!(v.auth, Auth::Key);
        assert_eq!(
            v.sshfs.into_iter().collect::<Vec<_>>(),
            [
                (
                    "IdentityFile".to_owned(),
                    "/root/.ssh/id_ed25519".to_owned()
                ),
                ("reconnect".to_owned(), String::new())
            ]
        );
    }

    #[test]
    fn a_malformed_sshcmd_is_refused_with_the_expected_form() {
        assert_eq!(
            parse(&[("sshcmd", "root@10.0.0.5/srv/x")]).unwrap_err(),
            "invalid options: option `sshcmd` must be the remote directory as user@host:/path \
             (e.g. root@10.0.0.5:/srv/data), got `root@10.0.0.5/srv/x`: no `:` between host and path"
        );
        assert_eq!(
            parse(&[("port", "22")]).unwrap_err(),
            "invalid options: missing required option `sshcmd`"
        );
        assert_eq!(
            parse(&[("sshcmd", "-oProxyCommand=x:/")]).unwrap_err(),
            "invalid options: option `sshcmd` must be the remote directory as user@host:/path \
             (e.g. root@10.0.0.5:/srv/data), got `-oProxyCommand=x:/`: it must not start with `-`"
        );
    }

    #[test]
    fn ipv6_hosts_and_home_directories() {
        let cmd: SshCmd = "me@[::1]:".parse().unwrap();
        assert_eq!((cmd.host.as_str(), cmd.path.as_str()), ("::1", ""));
        assert_eq!(cmd.to_string(), "me@[::1]:");
        let cmd: SshCmd = "host:/data".parse().unwrap();
        assert_eq!(cmd.user, None);
    }

    #[test]
    fn the_password_is_never_shown() {
        let v = parse(&[("sshcmd", "u@h:/"), ("password", "hunter2")]).unwrap();
        let shown = format!("{v:?} {:?}", v.status());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(v.status()["auth"], "password (hidden)");
        let err = parse(&[
            ("sshcmd", "u@h:/"),
            ("password", "hunter2"),
            ("password_file", "f"),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            "invalid options: options `password` and `password_file` exclude each other: keep password_file"
        );
    }

    #[test]
    fn a_password_file_is_one_name_in_the_sshkey_mount() {
        let v = parse(&[("sshcmd", "u@h:/"), ("password_file", "pw")]).unwrap();
        assert_eq!(v.auth, Auth::PasswordFile(FileName("pw".into())));
        assert_eq!(
            parse(&[("sshcmd", "u@h:/"), ("password_file", "../etc/shadow")]).unwrap_err(),
            "invalid options: option `password_file` must be a file name in the sshkey mount \
             (e.g. sshfs-password), got `../etc/shadow`: one file name, without `/`"
        );
    }

    #[test]
    fn options_the_plugin_owns_or_that_smuggle_others_are_refused() {
        assert_eq!(
            parse(&[
                ("sshcmd", "u@h:/"),
                ("password_stdin", ""),
                ("cache", "yes,password_stdin")
            ])
            .unwrap_err(),
            "invalid options: option `cache` must not contain `,`: give each sshfs option as its own -o; \
             option `password_stdin` cannot be given: the plugin sets it: give the password with \
             -o password_file=NAME or -o password=…"
        );
    }

    #[test]
    fn the_state_file_form_round_trips() {
        let v = parse(&[("sshcmd", "u@h:/x"), ("password", "pw")]).unwrap();
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<VolumeOptions>(&json).unwrap(), v);
    }
}
