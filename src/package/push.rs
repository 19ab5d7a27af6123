//! `cargo docker-plugin push BUNDLE REF`: a bundle uploaded to a registry in the
//! format `docker plugin install REF` pulls.
//!
//! - One layer, `application/vnd.docker.image.rootfs.diff.tar.gzip`: a reproducible
//!   gzip tar of `rootfs/` with relative entries ([`Archive::of_dir`]).
//! - The config blob, `application/vnd.docker.plugin.v1+json`: the bundle's
//!   [`PluginConfig`] with `rootfs: {"type": "layers", "diff_ids": [...]}`.
//! - The manifest, `application/vnd.docker.distribution.manifest.v2+json`
//!   (schema 2), under the tag.
//!
//! `diff_ids`: dockerd's own `docker plugin push` (still in Docker 28.2) writes the
//! digest of the *compressed* layer there, where the image spec wants the
//! uncompressed tar's. `docker plugin install` accepts both (it locates the layer by
//! the manifest's digest and does not check `diff_ids`; `tests/packager.rs` pushes
//! both forms to a real registry and installs each with a real dockerd). The default
//! here is the image spec's ([`DiffIds::Uncompressed`]); [`DiffIds::Compressed`]
//! mimics dockerd.
//!
//! The registry API is the distribution spec's: blobs are uploaded with `POST
//! /v2/REPO/blobs/uploads/` then a monolithic `PUT …?digest=…` (skipped when `HEAD`
//! finds them), then `PUT /v2/REPO/manifests/TAG`. A `401` is answered as the
//! `WWW-Authenticate` header asks: `Basic` with the credentials, or `Bearer` by
//! getting a token from the realm (anonymously or with the credentials). Registries
//! on `localhost`, `127.0.0.1` or `::1` are spoken to over plain HTTP, as dockerd
//! does; others over HTTPS.
//!
//! ```no_run
//! use docker_plugin_sdk::managed::bundle::Bundle;
//! use docker_plugin_sdk::package::push::{Pusher, Reference};
//!
//! let bundle = Bundle::open("target/docker-plugin/localvol")?;
//! let reference: Reference = "127.0.0.1:5000/test/localvol:1".parse()?;
//! let pushed = Pusher::new().push(&bundle, &reference)?;
//! println!("pushed {reference}@{}", pushed.manifest_digest);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use serde::Serialize;

use super::archive::{Archive, ArchiveOptions, sha256, source_date_epoch};
use super::error::PackageError;
use crate::managed::bundle::Bundle;
use crate::managed::config::{PluginConfig, Rootfs};

/// The manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The config blob's media type: what makes a manifest a plugin.
pub const PLUGIN_CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.plugin.v1+json";
/// The layer's media type.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Docker Hub's registry host, for references without one.
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// The names a reference may give Docker Hub by; all mean [`DOCKER_HUB`].
pub const DOCKER_HUB_ALIASES: &[&str] = &["docker.io", "index.docker.io", DOCKER_HUB];

/// The key `docker login` stores Docker Hub's credentials under in
/// `~/.docker/config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// `[registry/]repository[:tag]`, as `docker plugin install` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`; [`DOCKER_HUB`] for Docker Hub, whichever of
    /// [`DOCKER_HUB_ALIASES`] the reference named it by (or none).
    pub registry: String,
    /// `path/name` (Docker Hub names without a `/` get `library/`).
    pub repository: String,
    /// The tag (default `latest`).
    pub tag: String,
}

impl FromStr for Reference {
    type Err = PackageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| PackageError::Reference {
            reference: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.contains('@') {
            return Err(bad("push takes a tag, not a digest: write host/repo:tag"));
        }
        let (registry, rest) = match s.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                // docker.io/me/p is Docker Hub, spoken to at registry-1.docker.io.
                let registry = if DOCKER_HUB_ALIASES.contains(&first) {
                    DOCKER_HUB
                } else {
                    first
                };
                (registry.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), s.to_owned()),
        };
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
            _ => (rest, "latest".to_owned()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let valid_repo = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        if !valid_repo {
            return Err(bad(
                "the repository must be lower-case letters, digits, `.`, `_`, `-` and `/`, e.g. 127.0.0.1:5000/me/plugin:1",
            ));
        }
        let valid_tag = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid_tag {
            return Err(bad(
                "the tag must be letters, digits, `.`, `_` and `-`, at most 128",
            ));
        }
        Ok(Self {
            registry,
            repository,
            tag,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

impl Reference {
    /// Whether the registry is on loopback (plain HTTP, like dockerd).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => self.registry.as_str(),
        };
        matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
    }
}

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
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker"))
            })?;
        Self::from_docker_config_dir(&dir, registry)
    }

    /// [`from_docker_config`](Self::from_docker_config) with `DIR/config.json`.
    pub fn from_docker_config_dir(dir: &std::path::Path, registry: &str) -> Option<Self> {
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

    fn basic(&self) -> String {
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

/// Which digest goes into the config blob's `rootfs.diff_ids`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiffIds {
    /// The digest of the uncompressed tar, as the image spec defines `diff_ids`.
    #[default]
    Uncompressed,
    /// The digest of the gzipped layer, as dockerd's own `docker plugin push`
    /// writes it (see `Rootfs::diff_ids`).
    Compressed,
}

/// What [`Pusher::push`] uploaded.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest (`REF@DIGEST` pulls exactly this).
    pub manifest_digest: String,
    /// The config blob's digest.
    pub config_digest: String,
    /// The layer's digest.
    pub layer_digest: String,
    /// The layer's compressed size in bytes.
    pub layer_size: u64,
    /// The config blob as pushed.
    pub config: PluginConfig,
}

/// Uploads bundles to registries.
#[derive(Debug, Clone)]
pub struct Pusher {
    credentials: Option<Credentials>,
    diff_ids: DiffIds,
    mtime: u64,
    insecure: bool,
}

impl Default for Pusher {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Serialize)]
struct Descriptor<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    size: u64,
    digest: &'a str,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

impl Pusher {
    /// Anonymous (or `docker login`'s stored credentials, see
    /// [`Credentials::from_docker_config`]), uncompressed `diff_ids`, mtime from
    /// `SOURCE_DATE_EPOCH`.
    pub fn new() -> Self {
        Self {
            credentials: None,
            diff_ids: DiffIds::default(),
            mtime: source_date_epoch(),
            insecure: false,
        }
    }

    /// Logs in with these credentials.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Which digest `rootfs.diff_ids` holds.
    pub fn diff_ids(mut self, diff_ids: DiffIds) -> Self {
        self.diff_ids = diff_ids;
        self
    }

    /// The mtime of the layer's entries.
    pub fn mtime(mut self, secs: u64) -> Self {
        self.mtime = secs;
        self
    }

    /// Plain HTTP for any registry, not only loopback ones.
    pub fn insecure(mut self, yes: bool) -> Self {
        self.insecure = yes;
        self
    }

    /// The layer and config blob of `bundle`, without uploading anything.
    pub fn prepare(
        &self,
        bundle: &Bundle,
    ) -> Result<(Archive, PluginConfig, Vec<u8>), PackageError> {
        bundle.validate()?;
        let layer = Archive::of_dir(&bundle.rootfs(), &ArchiveOptions { mtime: self.mtime })?;
        let mut config = bundle.config().clone();
        let diff_id = match self.diff_ids {
            DiffIds::Uncompressed => layer.diff_id.clone(),
            DiffIds::Compressed => layer.digest.clone(),
        };
        config.rootfs = Some(Rootfs {
            r#type: "layers".into(),
            diff_ids: vec![diff_id],
        });
        let blob =
            serde_json::to_vec(&config).map_err(crate::managed::config::ConfigError::from)?;
        Ok((layer, config, blob))
    }

    /// Uploads the layer, the config blob and the manifest of `bundle` to `reference`.
    pub fn push(&self, bundle: &Bundle, reference: &Reference) -> Result<Pushed, PackageError> {
        let (layer, config, blob) = self.prepare(bundle)?;
        let config_digest = sha256(&blob);
        let manifest = Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE,
            config: Descriptor {
                media_type: PLUGIN_CONFIG_MEDIA_TYPE,
                size: blob.len() as u64,
                digest: &config_digest,
            },
            layers: vec![Descriptor {
                media_type: LAYER_MEDIA_TYPE,
                size: layer.gz.len() as u64,
                digest: &layer.digest,
            }],
        };
        let manifest = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| PackageError::Registry(format!("encoding the manifest: {e}")))?;
        let manifest_digest = sha256(&manifest);

        let mut session = Session::new(reference, self.insecure, self.credentials.clone());
        session.upload_blob(&layer.digest, &layer.gz)?;
        session.upload_blob(&config_digest, &blob)?;
        session.put_manifest(&manifest)?;
        Ok(Pushed {
            manifest_digest,
            config_digest,
            layer_digest: layer.digest.clone(),
            layer_size: layer.gz.len() as u64,
            config,
        })
    }
}

/// One push: the agent, the base URL and the authorization that worked.
struct Session<'a> {
    agent: ureq::Agent,
    base: String,
    reference: &'a Reference,
    credentials: Option<Credentials>,
    authorization: Option<String>,
}

type Response = ureq::http::Response<ureq::Body>;

impl<'a> Session<'a> {
    fn new(reference: &'a Reference, insecure: bool, credentials: Option<Credentials>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        let scheme = if insecure || reference.is_loopback() {
            "http"
        } else {
            "https"
        };
        let credentials =
            credentials.or_else(|| Credentials::from_docker_config(&reference.registry));
        Self {
            agent,
            base: format!("{scheme}://{}", reference.registry),
            reference,
            credentials,
            authorization: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.reference.repository)
    }

    /// Sends a request, answering one `401` with what `WWW-Authenticate` asks.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, PackageError> {
        let response = self.send_once(method, url, content_type, body)?;
        if response.status() != 401 {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.authorization = Some(self.authorize(&challenge)?);
        let response = self.send_once(method, url, content_type, body)?;
        if response.status() == 401 {
            return Err(PackageError::Registry(format!(
                "{} refused the credentials for {method} {url} (log in with `docker login {}` or pass --username/--password)",
                self.reference.registry, self.reference.registry
            )));
        }
        Ok(response)
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, PackageError> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        let request = request
            .body(body.to_vec())
            .map_err(|e| PackageError::Registry(format!("{method} {url}: {e}")))?;
        self.agent
            .run(request)
            .map_err(|e| PackageError::Registry(format!("{method} {url}: {e}")))
    }

    fn authorize(&self, challenge: &str) -> Result<String, PackageError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return self
                .credentials
                .as_ref()
                .map(Credentials::basic)
                .ok_or_else(|| {
                    PackageError::Registry(format!(
                        "{} needs a login: run `docker login {}` or pass --username/--password",
                        self.reference.registry, self.reference.registry
                    ))
                });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(PackageError::Registry(format!(
                "{} asks for an unsupported authentication: {challenge:?}",
                self.reference.registry
            )));
        }
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                PackageError::Registry(format!("bearer challenge without realm: {challenge:?}"))
            })?;
        let mut url = format!(
            "{realm}?scope=repository:{}:pull,push",
            self.reference.repository
        );
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            url.push_str("&service=");
            url.push_str(service);
        }
        let mut request = ureq::http::Request::builder().method("GET").uri(&url);
        if let Some(credentials) = &self.credentials {
            request = request.header("Authorization", credentials.basic());
        }
        let request = request
            .body(Vec::new())
            .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        if !status.is_success() {
            return Err(PackageError::Registry(format!(
                "token service {realm} answered {status}: {body}"
            )));
        }
        let token: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| PackageError::Registry(format!("token service {realm}: {e}")))?;
        let token = token
            .get("token")
            .or_else(|| token.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| {
                PackageError::Registry(format!("token service {realm} gave no token"))
            })?;
        Ok(format!("Bearer {token}"))
    }

    fn fail(&self, what: &str, mut response: Response) -> PackageError {
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        PackageError::Registry(format!(
            "{what} on {}: {status} {}",
            self.reference.registry,
            body.trim()
        ))
    }

    fn upload_blob(&mut self, digest: &str, bytes: &[u8]) -> Result<(), PackageError> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("HEAD", &url, None, &[])?;
        if response.status().is_success() {
            return Ok(());
        }
        let url = self.url("blobs/uploads/");
        let response = self.send("POST", &url, None, &[])?;
        if response.status() != 202 {
            return Err(self.fail("starting a blob upload", response));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| PackageError::Registry("blob upload without Location".into()))?;
        let mut location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        };
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str("digest=");
        location.push_str(digest);
        let response = self.send("PUT", &location, Some("application/octet-stream"), bytes)?;
        if response.status() != 201 {
            return Err(self.fail(&format!("uploading blob {digest}"), response));
        }
        Ok(())
    }

    fn put_manifest(&mut self, manifest: &[u8]) -> Result<(), PackageError> {
        let url = self.url(&format!("manifests/{}", self.reference.tag));
        let response = self.send("PUT", &url, Some(MANIFEST_MEDIA_TYPE), manifest)?;
        if response.status() != 201 {
            return Err(self.fail("putting the manifest", response));
        }
        Ok(())
    }
}

/// `realm="…",service="…",scope="…"` as pairs.
fn challenge_params(params: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, next)) => (value, next),
                None => (quoted, ""),
            }
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.push((key, value.to_owned()));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_like_docker() {
        let r: Reference = "127.0.0.1:5000/test/localvol:1".parse().expect("ref");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
            ("127.0.0.1:5000", "test/localvol", "1")
        );
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "127.0.0.1:5000/test/localvol:1");
        let r: Reference = "me/plugin".parse().expect("hub");
        assert_eq!(r.registry, DOCKER_HUB);
        assert_eq!(r.repository, "me/plugin");
        assert_eq!(r.tag, "latest");
        assert!(!r.is_loopback());
        let r: Reference = "localvol".parse().expect("official");
        assert_eq!(r.repository, "library/localvol");
        let r: Reference = "localhost:5000/x".parse().expect("localhost");
        assert!(r.is_loopback());
        for bad in ["Me/Plugin", "r.io/a@sha256:00", "r.io/a:b c", "r.io//a"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_challenges_are_split() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#
            ),
            [
                ("realm".to_owned(), "https://auth.example/token".to_owned()),
                ("service".to_owned(), "registry.example".to_owned()),
                ("scope".to_owned(), "repository:a:pull".to_owned()),
            ]
        );
    }

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
    fn the_config_blob_carries_the_layer_diff_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("rootfs/run/docker/plugins")).expect("mkdir");
        std::fs::write(dir.path().join("rootfs/p"), "binary").expect("write");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"entrypoint":["/p"],"interface":{"socket":"p.sock","types":["docker.volumedriver/1.0"]}}"#,
        )
        .expect("write");
        let bundle = Bundle::open(dir.path()).expect("bundle");
        let (layer, config, blob) = Pusher::new().mtime(0).prepare(&bundle).expect("prepare");
        let rootfs = config.rootfs.expect("rootfs");
        assert_eq!(rootfs.r#type, "layers");
        assert_eq!(rootfs.diff_ids, std::slice::from_ref(&layer.diff_id));
        let json: serde_json::Value = serde_json::from_slice(&blob).expect("json");
        assert_eq!(json["rootfs"]["diff_ids"][0], layer.diff_id.as_str());
        assert_eq!(json["Interface"]["Socket"], "p.sock");
        let (_, compressed, _) = Pusher::new()
            .mtime(0)
            .diff_ids(DiffIds::Compressed)
            .prepare(&bundle)
            .expect("prepare");
        assert_eq!(compressed.rootfs.expect("rootfs").diff_ids, [layer.digest]);
    }

    /// A registry that wants a bearer token from its token service, served by one
    /// std-only thread: checks the token flow, the digests of the uploaded blobs, and
    /// the manifest.
    #[test]
    fn bearer_token_flow_against_a_scripted_registry() {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::TcpListener;

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let mut log: Vec<String> = Vec::new();
            let mut manifest = Vec::new();
            for stream in listener.incoming() {
                let mut stream = stream.expect("accept");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                reader.read_line(&mut line).expect("request line");
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let target = parts.next().unwrap_or_default().to_owned();
                let (mut length, mut auth) = (0usize, String::new());
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).expect("header");
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(": ").unwrap_or((header, ""));
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.parse().expect("length"),
                        "authorization" => auth = value.to_owned(),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                log.push(format!("{method} {target}"));
                let (status, headers, reply): (&str, String, String) = if target
                    .starts_with("/token")
                {
                    ("200 OK", String::new(), r#"{"token":"tok123"}"#.to_owned())
                } else if auth != "Bearer tok123" {
                    (
                        "401 Unauthorized",
                        format!(
                            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\",scope=\"repository:test/p:pull\"\r\n"
                        ),
                        String::new(),
                    )
                } else if method == "HEAD" {
                    ("404 Not Found", String::new(), String::new())
                } else if method == "POST" {
                    (
                        "202 Accepted",
                        "Location: /v2/test/p/blobs/uploads/u1?state=x\r\n".to_owned(),
                        String::new(),
                    )
                } else if method == "PUT" && target.contains("/blobs/uploads/") {
                    let digest = target.split("digest=").nth(1).unwrap_or_default();
                    if sha256(&body) == digest && target.contains("state=x&") {
                        ("201 Created", String::new(), String::new())
                    } else {
                        (
                            "400 Bad Request",
                            String::new(),
                            "DIGEST_INVALID".to_owned(),
                        )
                    }
                } else if method == "PUT" && target == "/v2/test/p/manifests/1" {
                    manifest = body;
                    ("201 Created", String::new(), String::new())
                } else {
                    ("404 Not Found", String::new(), String::new())
                };
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .expect("reply");
                if !manifest.is_empty() {
                    return (log, manifest);
                }
            }
            (log, manifest)
        });

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("rootfs")).expect("mkdir");
        std::fs::write(dir.path().join("rootfs/p"), "binary").expect("write");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"entrypoint":["/p"],"interface":{"socket":"p.sock","types":["docker.volumedriver/1.0"]}}"#,
        )
        .expect("write");
        let bundle = Bundle::open(dir.path()).expect("bundle");
        let reference: Reference = format!("127.0.0.1:{port}/test/p:1").parse().expect("ref");
        let pushed = Pusher::new().push(&bundle, &reference).expect("push");
        let (log, manifest) = server.join().expect("server thread");

        // One 401, one token request with the push scope, then everything with it.
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("GET /token"))
                .collect::<Vec<_>>(),
            ["GET /token?scope=repository:test/p:pull,push&service=test-registry"]
        );
        assert_eq!(
            log.iter().filter(|l| l.starts_with("POST")).count(),
            2,
            "{log:?}"
        );
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest");
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], PLUGIN_CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], pushed.config_digest.as_str());
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(
            manifest["layers"][0]["digest"],
            pushed.layer_digest.as_str()
        );
        assert_eq!(manifest["layers"][0]["size"], pushed.layer_size);
    }

    #[test]
    fn docker_hub_names_all_mean_docker_hub() {
        for (reference, repository) in [
            ("docker.io/me/p:1", "me/p"),
            ("index.docker.io/me/p:1", "me/p"),
            ("registry-1.docker.io/me/p:1", "me/p"),
            ("me/p:1", "me/p"),
            ("docker.io/p:1", "library/p"),
            ("index.docker.io/p:1", "library/p"),
            ("registry-1.docker.io/p:1", "library/p"),
            ("p:1", "library/p"),
        ] {
            let r: Reference = reference.parse().expect(reference);
            assert_eq!(
                (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
                (DOCKER_HUB, repository, "1"),
                "{reference}"
            );
        }
        // Other registries keep their name and get no library/.
        let r: Reference = "ghcr.io/p:1".parse().expect("ghcr");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("ghcr.io", "p")
        );
        let r: Reference = "docker.io.example/p".parse().expect("lookalike");
        assert_eq!(r.registry, "docker.io.example");
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
