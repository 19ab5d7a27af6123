//! The recorder's volume driver: each volume a directory `ROOT/NAME/data` (its `-o`
//! options in `ROOT/NAME/opts.json`), so volumes survive a restart of the plugin.
//!
//! With a store (`--store DIR`) it behaves like a plugin that mounts a filesystem
//! (FUSE, NFS) under its propagated mount: a volume's content lives in `DIR/NAME`
//! (created with a file `created-by-recorder`), and Mount bind-mounts it onto
//! `ROOT/NAME/data`, Unmount unmounts it. dockerd (and the harness) see the content
//! on the host only if that mount propagates.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use docker_plugin_sdk::volume::{
    self, CapabilitiesResponse, CreateRequest, GetRequest, GetResponse, ListResponse, MountRequest,
    MountResponse, PathRequest, PathResponse, RemoveRequest, Scope, UnmountRequest, Volume,
};
use docker_plugin_sdk::{Error, Result, async_trait};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use serde_json::json;

pub(crate) struct DirVolumes {
    pub(crate) root: PathBuf,
    pub(crate) capabilities: bool,
    pub(crate) bare_get: bool,
    /// Where volumes' content lives when it is mounted under `root` on Mount.
    pub(crate) store: Option<PathBuf>,
}

impl DirVolumes {
    fn volume_dir(&self, name: &str) -> Result<PathBuf> {
        docker_plugin_sdk::volume::volume_dir(&self.root, name)
    }

    /// The data directory of an existing volume.
    fn existing(&self, name: &str) -> Result<PathBuf> {
        let data = self.volume_dir(name)?.join("data");
        if data.is_dir() {
            Ok(data)
        } else {
            Err(Error::new(format!("no such volume: {name}")))
        }
    }

    fn describe(&self, name: &str) -> Result<Volume> {
        let data = self.existing(name)?;
        let mut volume = Volume::new(name);
        if !self.bare_get {
            volume = volume.mountpoint(data);
        }
        let opts = fs::read(self.volume_dir(name)?.join("opts.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<BTreeMap<String, String>>(&bytes).ok())
            .unwrap_or_default();
        if !opts.is_empty() {
            volume = volume.status("opts", json!(opts));
        }
        Ok(volume)
    }
}

#[async_trait]
impl volume::Driver for DirVolumes {
    async fn create(&self, req: CreateRequest) -> Result<()> {
        let dir = self.volume_dir(&req.name)?;
        fs::create_dir_all(dir.join("data"))?;
        if let Some(store) = &self.store {
            let content = docker_plugin_sdk::volume::volume_dir(store, &req.name)?;
            fs::create_dir_all(&content)?;
            fs::write(content.join("created-by-recorder"), &req.name)?;
        }
        let opts: BTreeMap<_, _> = req.opts.into_iter().collect();
        fs::write(
            dir.join("opts.json"),
            serde_json::to_vec(&opts).unwrap_or_default(),
        )?;
        Ok(())
    }

    async fn remove(&self, req: RemoveRequest) -> Result<()> {
        self.existing(&req.name)?;
        fs::remove_dir_all(self.volume_dir(&req.name)?)?;
        if let Some(store) = &self.store {
            fs::remove_dir_all(docker_plugin_sdk::volume::volume_dir(store, &req.name)?)?;
        }
        Ok(())
    }

    async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
        let data = self.existing(&req.name)?;
        if let Some(store) = &self.store {
            let content = docker_plugin_sdk::volume::volume_dir(store, &req.name)?;
            if !data.join("created-by-recorder").exists() {
                mount(
                    Some(&content),
                    &data,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| Error::new(format!("mounting {}: {e}", data.display())))?;
            }
        }
        Ok(MountResponse::new(data))
    }

    async fn unmount(&self, req: UnmountRequest) -> Result<()> {
        let data = self.existing(&req.name)?;
        if self.store.is_some() && data.join("created-by-recorder").exists() {
            umount2(&data, MntFlags::MNT_DETACH)
                .map_err(|e| Error::new(format!("unmounting {}: {e}", data.display())))?;
        }
        Ok(())
    }

    async fn path(&self, req: PathRequest) -> Result<PathResponse> {
        Ok(PathResponse::new(self.existing(&req.name)?))
    }

    async fn get(&self, req: GetRequest) -> Result<GetResponse> {
        Ok(GetResponse {
            volume: self.describe(&req.name)?,
        })
    }

    async fn list(&self) -> Result<ListResponse> {
        let mut names: Vec<String> = fs::read_dir(&self.root)?
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().join("data").is_dir())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort();
        let volumes = names
            .iter()
            .map(|name| self.describe(name))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListResponse { volumes })
    }

    async fn capabilities(&self) -> Result<CapabilitiesResponse> {
        if self.capabilities {
            Ok(CapabilitiesResponse::scope(Scope::Local))
        } else {
            Err(Error::not_implemented("VolumeDriver.Capabilities"))
        }
    }
}
