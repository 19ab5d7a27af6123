//! `cargo docker-plugin push BUNDLE… REF`: bundles uploaded to a registry in the
//! format `docker plugin install REF` pulls.
//!
//! - One layer, `application/vnd.docker.image.rootfs.diff.tar.gzip`: a reproducible
//!   gzip tar of `rootfs/` with relative entries, written to a temporary file and
//!   streamed from there ([`ArchiveFile`]), never held in memory.
//! - The config blob, `application/vnd.docker.plugin.v1+json`: the bundle's
//!   [`PluginConfig`] with `rootfs: {"type": "layers", "diff_ids": [...]}`.
//! - The manifest, `application/vnd.docker.distribution.manifest.v2+json`
//!   (schema 2), under the tag.
//!
//! **One tag per architecture.** dockerd cannot install a manifest list ("did not
//! find plugin config for specified reference", moby v20.10.24
//! `plugin/backend_linux.go`), so several bundles are never pushed under one tag:
//! with [`Pusher::arch_tags`] each goes to `TAG-ARCH` (`1.0-amd64`, `1.0-arm64`), the
//! architecture read from the bundle's entrypoint ([`bundle_arch`]); without it, more
//! than one bundle is refused.
//!
//! `diff_ids`: dockerd's own `docker plugin push` (still in Docker 28.2) writes the
//! digest of the *compressed* layer there, where the image spec wants the
//! uncompressed tar's. `docker plugin install` accepts both (it locates the layer by
//! the manifest's digest and does not check `diff_ids`; `tests/packager.rs` pushes
//! both forms to a real registry and installs each with a real dockerd). The default
//! here is the image spec's ([`DiffIds::Uncompressed`]); [`DiffIds::Compressed`]
//! mimics dockerd.
//!
//! The registry side (endpoints, TLS, logins, retries) is
//! [`registry`](super::registry).
//!
//! ```no_run
//! use docker_plugin_sdk::managed::bundle::Bundle;
//! use docker_plugin_sdk::package::push::Pusher;
//! use docker_plugin_sdk::package::registry::Reference;
//!
//! let bundle = Bundle::open("target/docker-plugin/localvol")?;
//! let reference: Reference = "127.0.0.1:5000/test/localvol:1".parse()?;
//! let pushed = Pusher::new().push(&bundle, &reference, &mut |_| {})?;
//! println!("pushed {}@{}", pushed.reference, pushed.manifest_digest);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;

use serde::Serialize;

use super::arch::{self, Arch};
use super::archive::{ArchiveFile, ArchiveOptions, sha256, source_date_epoch};
use super::error::PackageError;
use super::registry::{
    BlobSource, Connect, Credentials, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    PLUGIN_CONFIG_MEDIA_TYPE, Reference, Session, Transfer,
};
use crate::managed::bundle::{Bundle, resolve_in_rootfs};
use crate::managed::config::{ConfigError, PluginConfig, Rootfs};

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
    /// Where: the reference given, or its `TAG-ARCH` with [`Pusher::arch_tags`].
    pub reference: Reference,
    /// The architecture of the bundle.
    pub arch: Arch,
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
    connect: Connect,
    diff_ids: DiffIds,
    mtime: u64,
    arch_tags: bool,
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

/// The layer's temporary file, removed on drop.
struct LayerFile(PathBuf);

impl Drop for LayerFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The architecture a bundle is built for: its entrypoint's (resolved in the
/// rootfs), else the first ELF file of the rootfs.
pub fn bundle_arch(bundle: &Bundle) -> Result<Arch, PackageError> {
    let rootfs = bundle.rootfs();
    let entry = bundle
        .config()
        .entrypoint
        .first()
        .cloned()
        .unwrap_or_default();
    if let Ok(path) = resolve_in_rootfs(&rootfs, &entry)
        && path.is_file()
        && let Some((machine, is_64)) = arch::elf_header(&path)?
    {
        return Arch::from_elf(machine, is_64).ok_or_else(|| PackageError::Elf {
            path,
            message: format!("e_machine {machine} is no architecture Docker runs plugins on"),
        });
    }
    if let Some(arch) = arch::rootfs_arch(&rootfs)? {
        return Ok(arch);
    }
    Err(PackageError::Elf {
        path: rootfs,
        message:
            "cannot tell the plugin's architecture: its entrypoint is not an ELF file in the rootfs"
                .into(),
    })
}

impl Pusher {
    /// Anonymous (or `docker login`'s stored credentials, see
    /// [`Credentials::from_docker_config`]), uncompressed `diff_ids`, mtime from
    /// `SOURCE_DATE_EPOCH`, the tag as given.
    pub fn new() -> Self {
        Self {
            connect: Connect::default(),
            diff_ids: DiffIds::default(),
            mtime: source_date_epoch(),
            arch_tags: false,
        }
    }

    /// Logs in with these credentials.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.connect.credentials = Some(credentials);
        self
    }

    /// How to reach the registry (TLS, plain HTTP, retries, login).
    pub fn connect(mut self, connect: Connect) -> Self {
        self.connect = connect;
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

    /// `--arch-tags`: push to `TAG-ARCH` (e.g. `1.0-arm64`), the architecture read
    /// from the bundle.
    pub fn arch_tags(mut self, yes: bool) -> Self {
        self.arch_tags = yes;
        self
    }

    /// The layer (written to `layer`) and config blob of `bundle`, without
    /// uploading anything.
    pub fn prepare(
        &self,
        bundle: &Bundle,
        layer: &std::path::Path,
    ) -> Result<(ArchiveFile, PluginConfig, Vec<u8>), PackageError> {
        bundle.validate()?;
        let archive = ArchiveFile::write_dir(
            &bundle.rootfs(),
            &ArchiveOptions { mtime: self.mtime },
            layer,
            &mut |_| {},
        )?;
        let mut config = bundle.config().clone();
        let diff_id = match self.diff_ids {
            DiffIds::Uncompressed => archive.diff_id.clone(),
            DiffIds::Compressed => archive.digest.clone(),
        };
        config.rootfs = Some(Rootfs {
            r#type: "layers".into(),
            diff_ids: vec![diff_id],
        });
        let blob = serde_json::to_vec(&config).map_err(ConfigError::from)?;
        Ok((archive, config, blob))
    }

    /// Where `bundle` goes: `reference`, or its `TAG-ARCH`.
    pub fn destination(
        &self,
        bundle: &Bundle,
        reference: &Reference,
    ) -> Result<(Reference, Arch), PackageError> {
        let arch = bundle_arch(bundle)?;
        let reference = if self.arch_tags {
            reference.with_tag(&format!("{}{}", reference.tag, arch.tag_suffix()))?
        } else {
            reference.clone()
        };
        Ok((reference, arch))
    }

    /// Uploads the layer, the config blob and the manifest of `bundle` to
    /// `reference` (or `TAG-ARCH`); `notify` hears of each blob (exists, bytes
    /// sent, retries).
    pub fn push(
        &self,
        bundle: &Bundle,
        reference: &Reference,
        notify: &mut dyn FnMut(Transfer),
    ) -> Result<Pushed, PackageError> {
        let (reference, arch) = self.destination(bundle, reference)?;
        let layer_path = LayerFile(std::env::temp_dir().join(format!(
            "dps-layer-{}-{}.tar.gz",
            std::process::id(),
            sha256(bundle.dir().as_os_str().as_encoded_bytes())
                .get(7..23)
                .unwrap_or_default()
        )));
        let (layer, config, blob) = self.prepare(bundle, &layer_path.0)?;
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
                size: layer.size,
                digest: &layer.digest,
            }],
        };
        let manifest = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| PackageError::Registry(format!("encoding the manifest: {e}")))?;
        let manifest_digest = sha256(&manifest);

        let mut session = Session::open(&reference, &self.connect, "pull,push", notify)?;
        session.upload_blob(&layer.digest, BlobSource::File(&layer.path, layer.size))?;
        session.upload_blob(&config_digest, BlobSource::Bytes(&blob))?;
        session.put_manifest(&reference.tag, MANIFEST_MEDIA_TYPE, &manifest)?;
        Ok(Pushed {
            arch,
            manifest_digest,
            config_digest,
            layer_digest: layer.digest.clone(),
            layer_size: layer.size,
            config,
            reference,
        })
    }

    /// Pushes each bundle: more than one needs [`arch_tags`](Self::arch_tags) (one
    /// tag per architecture; a manifest list is what dockerd cannot install) and
    /// distinct architectures. Checked before anything is uploaded.
    pub fn push_all(
        &self,
        bundles: &[Bundle],
        reference: &Reference,
        notify: &mut dyn FnMut(Transfer),
    ) -> Result<Vec<Pushed>, PackageError> {
        if bundles.len() > 1 && !self.arch_tags {
            return Err(PackageError::Reference {
                reference: reference.to_string(),
                reason: format!(
                    "{} bundles under one tag would need a manifest list, which `docker plugin install` cannot install \
                     (\"did not find plugin config for specified reference\"): pass --arch-tags to push each to TAG-ARCH",
                    bundles.len()
                ),
            });
        }
        let mut seen: Vec<(Arch, &Bundle)> = Vec::new();
        for bundle in bundles {
            let arch = bundle_arch(bundle)?;
            if let Some((_, other)) = seen.iter().find(|(a, _)| *a == arch) {
                return Err(PackageError::Reference {
                    reference: reference.to_string(),
                    reason: format!(
                        "{} and {} are both built for {arch}: one bundle per architecture",
                        other.dir().display(),
                        bundle.dir().display()
                    ),
                });
            }
            seen.push((arch, bundle));
        }
        bundles
            .iter()
            .map(|bundle| self.push(bundle, reference, notify))
            .collect()
    }
}

#[cfg(test)]
mod tests;
