//! `docker plugin install REF`'s pull, as dockerd does it (moby v20.10.24
//! `plugin/backend_linux.go`, `Privileges` and `Pull`; `plugin/fetch_linux.go`): the
//! manifest (asking for every manifest type containerd accepts), the config blob,
//! which must have the plugin media type, and the layers, each checked against its
//! digest and applied in order to `DIR/rootfs`. The result is a bundle directory
//! (`DIR/config.json` + `DIR/rootfs/`) the harness creates a managed plugin from.
//!
//! What dockerd refuses is refused with its words: a tag holding a manifest list (one
//! image for several architectures) or anything whose config is not a plugin config
//! gives "did not find plugin config for specified reference".
//!
//! ```no_run
//! use docker_plugin_sdk::package::registry::pull::pull;
//! use docker_plugin_sdk::package::registry::{Connect, Reference};
//!
//! let reference: Reference = "127.0.0.1:5000/test/localvol:1".parse()?;
//! let pulled = pull(&reference, &Connect::default(), "/tmp/localvol-pulled".as_ref(), &mut |_| {})?;
//! println!("{} asks for {:?}", reference, pulled.bundle.config().privileges());
//! # Ok::<(), docker_plugin_sdk::package::PackageError>(())
//! ```

use std::fs;
use std::io::{self, BufReader, Seek};
use std::path::Path;

use serde::Deserialize;

use super::session::{Connect, Session, Transfer};
use super::{
    LAYER_MEDIA_TYPE, MANIFEST_LIST_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE, PLUGIN_CONFIG_MEDIA_TYPE, Reference,
};
use crate::managed::bundle::{Bundle, CONFIG_FILE, ROOTFS_DIR};
use crate::managed::config::PluginConfig;
use crate::package::PackageError;
use crate::package::archive::{sha256, unpack};

/// The layer media types dockerd applies (`applyLayer`); others are skipped.
pub const LAYER_MEDIA_TYPES: &[&str] = &[
    LAYER_MEDIA_TYPE,
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
];

/// What [`pull`] fetched.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The config blob's digest.
    pub config_digest: String,
    /// The layers' digests, in order.
    pub layers: Vec<String>,
    /// The bundle it wrote: the config blob as `config.json`, the layers applied
    /// to `rootfs/`.
    pub bundle: Bundle,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<Vec<serde_json::Value>>,
}

/// The error dockerd gives for a reference that is not a plugin (moby v20.10.24
/// `plugin/backend_linux.go`).
fn not_a_plugin(reference: &Reference, why: &str) -> PackageError {
    PackageError::Registry(format!(
        "did not find plugin config for specified reference {reference}: {why}"
    ))
}

/// Pulls `reference` into the bundle directory `dir` (created; its `rootfs/`
/// replaced).
pub fn pull(
    reference: &Reference,
    connect: &Connect,
    dir: &Path,
    notify: &mut dyn FnMut(Transfer),
) -> Result<Pulled, PackageError> {
    let mut session = Session::open(reference, connect, "pull", notify)?;
    let accept = [
        MANIFEST_MEDIA_TYPE,
        MANIFEST_LIST_MEDIA_TYPE,
        OCI_MANIFEST_MEDIA_TYPE,
        OCI_INDEX_MEDIA_TYPE,
    ]
    .join(", ");
    let (media_type, bytes) = session.get_manifest(&reference.tag, &accept)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        PackageError::Registry(format!("{reference}: the manifest does not decode: {e}"))
    })?;
    let is_list = [MANIFEST_LIST_MEDIA_TYPE, OCI_INDEX_MEDIA_TYPE]
        .iter()
        .any(|t| *t == media_type || *t == manifest.media_type)
        || manifest.manifests.is_some();
    if is_list {
        return Err(not_a_plugin(
            reference,
            "it is a manifest list (one tag for several architectures), which `docker plugin install` cannot install; \
             push one tag per architecture (cargo docker-plugin push --arch-tags)",
        ));
    }
    let config = match manifest.config {
        Some(c) if c.media_type == PLUGIN_CONFIG_MEDIA_TYPE => c,
        Some(c) => {
            return Err(not_a_plugin(
                reference,
                &format!(
                    "its config is {:?}, not {PLUGIN_CONFIG_MEDIA_TYPE}: an image, not a plugin",
                    c.media_type
                ),
            ));
        }
        None => return Err(not_a_plugin(reference, "its manifest has no config")),
    };
    let mut config_blob = Vec::with_capacity(config.size as usize);
    session.download_blob(&config.digest, &mut config_blob)?;
    let plugin_config = PluginConfig::from_json(&config_blob)?;

    fs::create_dir_all(dir).map_err(|e| PackageError::io(dir, e))?;
    let rootfs = dir.join(ROOTFS_DIR);
    match fs::remove_dir_all(&rootfs) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(PackageError::io(&rootfs, e)),
    }
    fs::create_dir_all(&rootfs).map_err(|e| PackageError::io(&rootfs, e))?;
    let mut layers = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
    {
        let path = dir.join(".layer");
        let mut file = fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| PackageError::io(&path, e))?;
        session.download_blob(&layer.digest, &mut file)?;
        file.rewind().map_err(|e| PackageError::io(&path, e))?;
        unpack(BufReader::new(file), &rootfs).map_err(|e| PackageError::io(&path, e))?;
        fs::remove_file(&path).map_err(|e| PackageError::io(&path, e))?;
        layers.push(layer.digest.clone());
    }
    let config_path = dir.join(CONFIG_FILE);
    let mut json = plugin_config.to_json_pretty()?;
    json.push('\n');
    fs::write(&config_path, json).map_err(|e| PackageError::io(&config_path, e))?;
    Ok(Pulled {
        manifest_digest: sha256(&bytes),
        config_digest: config.digest,
        layers,
        bundle: Bundle::open(dir)?,
    })
}
