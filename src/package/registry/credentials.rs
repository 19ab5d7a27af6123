//! Registry credentials: the ones `docker login` stored (`~/.docker/config.json`'s
//! `auths`, its `credsStore` and `credHelpers` programs, identity tokens), or a user
//! name with the password read from standard input (`--username U
//! --password-stdin`, as `docker login --password-stdin`).
//!
//! The config file is read by the `docker_credential` crate, which runs credential
//! helpers (`docker-credential-NAME get`) as the docker CLI does. The keys looked up
//! are the ones `docker login` writes: Docker Hub's is `IndexServer` of moby
//! v20.10.24's `registry/config.go`, another registry's its `host[:port]` (the docker
//! CLI's `cli/config/credentials/file_store.go` also matches an `https://` form).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use docker_credential::{CredentialRetrievalError, DockerCredential};

use super::reference::DOCKER_HUB_ALIASES;
use crate::package::PackageError;

/// The key `docker login` stores Docker Hub's credentials under in
/// `~/.docker/config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// How to log in to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or access token), sent to the token service with
    /// HTTP basic authentication, or to the registry itself when it asks for basic.
    Password {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
    /// An identity token (`docker login` to a registry with OAuth2), exchanged for
    /// a bearer token with the `refresh_token` grant.
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .finish_non_exhaustive(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(..)"),
        }
    }
}

/// `$DOCKER_CONFIG`, else `~/.docker`: where `docker login` keeps `config.json`.
pub fn docker_config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))
}

impl Credentials {
    /// A user name and password.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Password {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The credentials `docker login` stored for `registry` (see
    /// [`from_docker_config_dir`](Self::from_docker_config_dir)) in
    /// [`docker_config_dir`].
    pub fn from_docker_config(registry: &str) -> Result<Option<Self>, PackageError> {
        match docker_config_dir() {
            Some(dir) => Self::from_docker_config_dir(&dir, registry),
            None => Ok(None),
        }
    }

    /// The credentials for `registry` in `DIR/config.json`, under the first of
    /// [`credential_keys`] that has some: from its credential helper
    /// (`credHelpers.KEY`), its identity token, its `auth`, or the `credsStore`.
    /// `None` when there is no file or nothing for this registry; an error when a
    /// helper fails or an entry does not decode.
    pub fn from_docker_config_dir(
        dir: &Path,
        registry: &str,
    ) -> Result<Option<Self>, PackageError> {
        let path = dir.join("config.json");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PackageError::io(&path, e)),
        };
        for key in credential_keys(registry) {
            // Helpers are found on PATH; the config's location is the crate's
            // business only through this reader.
            match docker_credential::get_credential_from_reader(&text[..], &key) {
                Ok(DockerCredential::UsernamePassword(username, password)) => {
                    return Ok(Some(Credentials::Password { username, password }));
                }
                Ok(DockerCredential::IdentityToken(token)) => {
                    return Ok(Some(Credentials::IdentityToken(token)));
                }
                Err(CredentialRetrievalError::NoCredentialConfigured) => continue,
                // The helper's "not found" answer (docker-credential-helpers'
                // `ErrCredentialsNotFound`): try the next key.
                Err(CredentialRetrievalError::HelperFailure { stdout, stderr, .. })
                    if stdout.contains("credentials not found")
                        || stderr.contains("credentials not found") =>
                {
                    continue;
                }
                Err(e) => {
                    return Err(PackageError::Registry(format!(
                        "reading the login for {registry} from {}: {} (run `docker login {registry}` again, \
                         or pass --username and --password-stdin)",
                        path.display(),
                        describe(&e)
                    )));
                }
            }
        }
        Ok(None)
    }

    /// `username` with the password read from `input` to its end, without the line
    /// breaks that end it: what `--password-stdin` reads.
    pub fn with_password_from(username: String, mut input: impl Read) -> std::io::Result<Self> {
        let mut password = String::new();
        input.read_to_string(&mut password)?;
        Ok(Credentials::Password {
            username,
            password: password.trim_end_matches(['\n', '\r']).to_owned(),
        })
    }

    /// The `Authorization` header value for HTTP Basic authentication, when these
    /// are a user name and password.
    pub(super) fn basic(&self) -> Option<String> {
        match self {
            Credentials::Password { username, password } => {
                let raw = format!("{username}:{password}");
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            Credentials::IdentityToken(_) => None,
        }
    }
}

/// `docker_credential`'s errors, with the helper's own words.
fn describe(e: &CredentialRetrievalError) -> String {
    match e {
        CredentialRetrievalError::HelperFailure {
            helper,
            stdout,
            stderr,
        } => format!(
            "{helper} failed: {}",
            [stderr.trim(), stdout.trim()]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("no message")
        ),
        CredentialRetrievalError::HelperCommunicationError => {
            "its credential helper (docker-credential-NAME) could not be run: is it on PATH?".into()
        }
        other => other.to_string(),
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
    use crate::package::registry::{DOCKER_HUB, Reference};

    fn config(dir: &Path, json: &str) {
        std::fs::write(dir.join("config.json"), json).expect("write");
    }

    #[test]
    fn credentials_come_from_docker_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = base64::engine::general_purpose::STANDARD.encode("me:secret");
        config(
            dir.path(),
            &format!(r#"{{"auths":{{"r.example:5000":{{"auth":"{auth}"}}}}}}"#),
        );
        let found = Credentials::from_docker_config_dir(dir.path(), "r.example:5000")
            .expect("read")
            .expect("found");
        assert_eq!(found, Credentials::password("me", "secret"));
        assert!(
            Credentials::from_docker_config_dir(dir.path(), "other.example")
                .expect("read")
                .is_none()
        );
        assert!(!format!("{found:?}").contains("secret"));
        assert_eq!(found.basic(), Some(format!("Basic {auth}")));
        let none = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            Credentials::from_docker_config_dir(none.path(), "r.example").expect("no file"),
            None
        );
    }

    #[test]
    fn identity_tokens_and_credential_helpers_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        config(
            dir.path(),
            r#"{"auths":{"r.example":{"identitytoken":"refresh-me"}}}"#,
        );
        assert_eq!(
            Credentials::from_docker_config_dir(dir.path(), "r.example").expect("read"),
            Some(Credentials::IdentityToken("refresh-me".into()))
        );
        // A helper that is not on PATH is an error naming the fix.
        config(
            dir.path(),
            r#"{"credHelpers":{"r.example":"dps-missing-helper"}}"#,
        );
        let err = Credentials::from_docker_config_dir(dir.path(), "r.example")
            .expect_err("no such helper")
            .to_string();
        assert_eq!(
            err,
            format!(
                "registry: reading the login for r.example from {}: its credential helper (docker-credential-NAME) \
                 could not be run: is it on PATH? (run `docker login r.example` again, or pass --username and --password-stdin)",
                dir.path().join("config.json").display()
            )
        );
    }

    #[test]
    fn a_password_from_stdin_loses_its_line_break() {
        let c = Credentials::with_password_from("me".into(), &b"s3cret\r\n"[..]).expect("read");
        assert_eq!(c, Credentials::password("me", "s3cret"));
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
        config(
            dir.path(),
            &format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#),
        );
        let r: Reference = "docker.io/me/p:1".parse().expect("hub");
        let found = Credentials::from_docker_config_dir(dir.path(), &r.registry)
            .expect("read")
            .expect("found");
        assert_eq!(found, Credentials::password("hubber", "tok"));
        assert!(
            Credentials::from_docker_config_dir(dir.path(), "ghcr.io")
                .expect("read")
                .is_none()
        );
    }
}
