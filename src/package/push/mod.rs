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
//! This module builds those three and orders the uploads; the rest is split by job:
//!
//! - `reference`: [`Reference`], `[registry/]repository[:tag]` with Docker Hub's
//!   normalization;
//! - `credentials`: [`Credentials`], from `docker login`'s config file or
//!   `--username`/`--password-stdin`;
//! - `registry`: the HTTP client (the `401` challenge, `Basic` and `Bearer`
//!   authentication, blob and manifest uploads).
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

use serde::Serialize;

use super::archive::{Archive, ArchiveOptions, sha256, source_date_epoch};
use super::error::PackageError;
use crate::managed::bundle::Bundle;
use crate::managed::config::{ConfigError, PluginConfig, Rootfs};

mod credentials;
mod reference;
mod registry;

pub use credentials::{Credentials, DOCKER_HUB_AUTH_KEY, credential_keys};
pub use reference::{DOCKER_HUB, DOCKER_HUB_ALIASES, Reference};

/// The manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The config blob's media type: what makes a manifest a plugin.
pub const PLUGIN_CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.plugin.v1+json";
/// The layer's media type.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

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
        let blob = serde_json::to_vec(&config).map_err(ConfigError::from)?;
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

        let credentials = self
            .credentials
            .clone()
            .or_else(|| Credentials::from_docker_config(&reference.registry));
        let mut session = registry::Session::new(reference, self.insecure, credentials);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid bundle with a one-file rootfs, in a temporary directory.
    pub(super) fn small_bundle() -> (tempfile::TempDir, Bundle) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("rootfs/run/docker/plugins")).expect("mkdir");
        std::fs::write(dir.path().join("rootfs/p"), "binary").expect("write");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"entrypoint":["/p"],"interface":{"socket":"p.sock","types":["docker.volumedriver/1.0"]}}"#,
        )
        .expect("write");
        let bundle = Bundle::open(dir.path()).expect("bundle");
        (dir, bundle)
    }

    #[test]
    fn the_config_blob_carries_the_layer_diff_id() {
        let (_dir, bundle) = small_bundle();
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
}
