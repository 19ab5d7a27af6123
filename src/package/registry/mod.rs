//! Registries as dockerd speaks to them for plugins: references, logins, TLS,
//! endpoints, authentication, retries; [`pull`](pull::pull) as `docker plugin
//! install` pulls (used by the harness's `Plugins::install`), and the session `push`
//! uploads through.
//!
//! - `reference`: [`Reference`], `[registry/]repository[:tag]` with Docker Hub's
//!   normalization, and dockerd's insecure range (`127.0.0.0/8`);
//! - `credentials`: [`Credentials`], from `docker login`'s config (`auths`,
//!   `credsStore`, `credHelpers`, identity tokens) or `--username`/`--password-stdin`;
//! - `tls`: the system's roots and `/etc/docker/certs.d/HOST/` ([`CERTS_DIR`]);
//! - `auth`: the `401` challenge, basic, and bearer tokens for the scope
//!   `repository(plugin):NAME:ACTIONS` ([`plugin_scope`]);
//! - `session`: endpoints, the `/v2/` ping, authentication, retries ([`Connect`],
//!   [`Transfer`]); `blobs`: the blob and manifest calls;
//! - [`pull`]: manifest, config and layers into a bundle, refusing what dockerd
//!   refuses.
//!
//! Why not a registry crate: `oci-client` (the maintained Rust registry client,
//! formerly `oci-distribution`) can set a custom config media type and stream a
//! blob, but it asks the token service for `repository:NAME:…` with no way to add
//! the `(plugin)` class dockerd sends, which registries that type repositories
//! refuse for plugins; it reads neither `/etc/docker/certs.d` nor `docker login`'s
//! credential helpers, and has no HTTP fallback for dockerd's insecure range. It
//! would also bring an async HTTP stack (reqwest) into a feature that needs none.
//! What is here is small, blocking (ureq), and copies dockerd's behaviour where it
//! matters.

mod auth;
mod blobs;
mod credentials;
pub mod pull;
mod reference;
mod session;
mod tls;

pub use auth::{CLIENT_ID, plugin_scope};
pub use credentials::{Credentials, DOCKER_HUB_AUTH_KEY, credential_keys, docker_config_dir};
pub use reference::{DOCKER_HUB, DOCKER_HUB_ALIASES, Reference};
pub use session::{Connect, Transfer};
pub use tls::{CERTS_DIR, SYSTEM_CA_FILES};

pub(crate) use blobs::BlobSource;
pub(crate) use session::Session;

/// The schema 2 manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A schema 2 manifest list's media type (several architectures under one tag).
pub const MANIFEST_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// The OCI image manifest's media type.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index's media type (the OCI manifest list).
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The config blob's media type: what makes a manifest a plugin.
pub const PLUGIN_CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.plugin.v1+json";
/// The layer's media type.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
