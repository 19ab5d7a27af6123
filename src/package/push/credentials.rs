//! Registry credentials: the ones `docker login` stored in `~/.docker/config.json`,
//! or a user name with the password read from standard input (`cargo docker-plugin
//! push --username U --password-stdin`, as `docker login --password-stdin`).
//!
//! Only credentials stored in the file itself (`auths.KEY.auth`, base64 of
//! `user:password`) are read; credential helpers (`credsStore`, `credHelpers`) are not
//! consulted. The keys looked up are the ones `docker login` writes: Docker Hub's is
//! `IndexServer` of moby v20.10.24's `registry/config.go`, another registry's its
//! `host[:port]` (the docker CLI's `cli/config/credentials/file_store.go` also
//! matches an `https://` form).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;

use super::reference::DOCKER_HUB_ALIASES;

/// The key `docker login` stores Docker Hub's credentials under in
/// `~/.docker/config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A registry user name and password (or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The credentials `docker login` stored for `registry` in
    /// `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), when stored
    /// there in the file itself (`auths.KEY.auth` for the first of
    /// [`credential_keys`] present, e.g. `https://index.docker.io/v1/` for Docker
    /// Hub; credential helpers are not consulted).
    pub fn from_docker_config(registry: &str) -> Option<Self> {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))?;
        Self::from_docker_config_dir(&dir, registry)
    }

    /// [`from_docker_config`](Self::from_docker_config) with `DIR/config.json`.
    pub fn from_docker_config_dir(dir: &Path, registry: &str) -> Option<Self> {
        let text = std::fs::read(dir.join("config.json")).ok()?;
        let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
        let auths = config.get("auths")?.as_object()?;
        let auth = credential_keys(registry)
            .iter()
            .find_map(|k| auths.get(k))?
            .get("auth")?
            .as_str()?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        Some(Self {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    /// `username` with the password read from `input` to its end, without the line
    /// breaks that end it: what `--password-stdin` reads.
    pub fn with_password_from(username: String, mut input: impl Read) -> std::io::Result<Self> {
        let mut password = String::new();
        input.read_to_string(&mut password)?;
        Ok(Self {
            username,
            password: password.trim_end_matches(['\n', '\r']).to_owned(),
        })
    }

    /// The `Authorization` header value for HTTP Basic authentication.
    pub(super) fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The keys of `auths` in `~/.docker/config.json` that may hold the credentials
/// for `registry`, the one `docker login` writes first: for Docker Hub (any of
/// [`DOCKER_HUB_ALIASES`]) [`DOCKER_HUB_AUTH_KEY`], then its other names; for
/// another registry `host[:port]`, then `https://host[:port]`.
pub fn credential_keys(registry: &str) -> Vec<String> {
    if DOCKER_HUB_ALIASES.contains(&registry) {
        std::iter::once(DOCKER_HUB_AUTH_KEY)
            .chain(DOCKER_HUB_ALIASES.iter().copied())
            .map(str::to_owned)
            .collect()
    } else {
        vec![registry.to_owned(), format!("https://{registry}")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::push::{DOCKER_HUB, Reference};

    #[test]
    fn credentials_come_from_docker_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = base64::engine::general_purpose::STANDARD.encode("me:secret");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths":{{"r.example:5000":{{"auth":"{auth}"}}}}}}"#),
        )
        .expect("write");
        let found =
            Credentials::from_docker_config_dir(dir.path(), "r.example:5000").expect("found");
        assert_eq!(found.username, "me");
        assert_eq!(found.password, "secret");
        assert!(Credentials::from_docker_config_dir(dir.path(), "other.example").is_none());
        assert!(!format!("{found:?}").contains("secret"));
        assert_eq!(found.basic(), format!("Basic {auth}"));
    }

    #[test]
    fn a_password_from_stdin_loses_its_line_break() {
        let c = Credentials::with_password_from("me".into(), &b"s3cret\r\n"[..]).expect("read");
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "s3cret"));
    }

    #[test]
    fn docker_hub_credentials_are_under_docker_logins_key() {
        assert_eq!(
            credential_keys(DOCKER_HUB)[0],
            "https://index.docker.io/v1/"
        );
        assert_eq!(credential_keys("docker.io")[0], DOCKER_HUB_AUTH_KEY);
        assert_eq!(
            credential_keys("r.example:5000"),
            ["r.example:5000", "https://r.example:5000"]
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = base64::engine::general_purpose::STANDARD.encode("hubber:tok");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#),
        )
        .expect("write");
        let r: Reference = "docker.io/me/p:1".parse().expect("hub");
        let found = Credentials::from_docker_config_dir(dir.path(), &r.registry).expect("found");
        assert_eq!(found.username, "hubber");
        assert!(Credentials::from_docker_config_dir(dir.path(), "docker.io").is_some());
        assert!(Credentials::from_docker_config_dir(dir.path(), "ghcr.io").is_none());
    }
}
