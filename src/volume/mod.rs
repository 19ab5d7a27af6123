//! Volume plugins (`VolumeDriver`): the trait a driver implements and its wire types.
//!
//! dockerd calls a volume driver for `docker volume create/ls/inspect/rm` and for every
//! container that mounts one of its volumes. Implement [`Driver`] and register it with
//! [`Plugin::volume`](crate::Plugin::volume):
//!
//! ```no_run
//! use std::path::PathBuf;
//! use docker_plugin_sdk::{async_trait, Plugin, Result, Error};
//! use docker_plugin_sdk::volume::{self, *};
//!
//! struct Tmp;
//!
//! #[async_trait]
//! impl volume::Driver for Tmp {
//!     async fn create(&self, req: CreateRequest) -> Result<()> {
//!         std::fs::create_dir_all(format!("/tmp/vols/{}", req.name))?;
//!         Ok(())
//!     }
//!     async fn remove(&self, req: RemoveRequest) -> Result<()> {
//!         Ok(std::fs::remove_dir_all(format!("/tmp/vols/{}", req.name))?)
//!     }
//!     async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
//!         Ok(MountResponse { mountpoint: PathBuf::from(format!("/tmp/vols/{}", req.name)) })
//!     }
//!     async fn unmount(&self, _req: UnmountRequest) -> Result<()> { Ok(()) }
//!     async fn path(&self, req: PathRequest) -> Result<PathResponse> {
//!         Ok(PathResponse { mountpoint: PathBuf::from(format!("/tmp/vols/{}", req.name)) })
//!     }
//!     async fn get(&self, req: GetRequest) -> Result<GetResponse> {
//!         Ok(GetResponse { volume: Volume::new(req.name) })
//!     }
//!     async fn list(&self) -> Result<ListResponse> { Ok(ListResponse::default()) }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     Plugin::new().volume(Tmp).serve_unix("tmpvol").await?;
//!     Ok(())
//! }
//! ```
//!
//! How dockerd drives a volume driver (seen on dockerd 20.10): `docker volume create -d P
//! -o a=b v1` calls Activate, Capabilities, Get(v1), then Create(v1, {a: b}); `ls` calls
//! List; `inspect` calls Get; `rm` calls Get then Remove; `docker run -v v1:/x` calls
//! Mount with a fresh 64-hex ID before the container starts and Unmount with the same ID
//! after it exits.

mod dir;
mod methods;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;

pub use dir::volume_dir;
pub use methods::*;
pub use wire::*;

use crate::dispatch::Subsystem;
use crate::error::{Error, Result};
use crate::protocol::{Empty, Method};

/// A volume driver. Every method except [`capabilities`](Driver::capabilities) is
/// required; an error becomes the `Err` dockerd shows to the user.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Creates the volume `req.name` with the user's `-o` options in `req.opts`.
    /// dockerd calls [`get`](Driver::get) first and only creates what does not exist.
    async fn create(&self, req: CreateRequest) -> Result<()>;

    /// Deletes the volume. dockerd refuses `docker volume rm` itself while a container
    /// uses the volume.
    async fn remove(&self, req: RemoveRequest) -> Result<()>;

    /// Makes the volume available on the host and returns where. Called once per
    /// container start with a new `req.id`.
    async fn mount(&self, req: MountRequest) -> Result<MountResponse>;

    /// The container that mounted with `req.id` stopped using the volume.
    async fn unmount(&self, req: UnmountRequest) -> Result<()>;

    /// Where the volume is mounted (empty if it is not).
    async fn path(&self, req: PathRequest) -> Result<PathResponse>;

    /// Describes one volume; an error means "no such volume".
    async fn get(&self, req: GetRequest) -> Result<GetResponse>;

    /// Lists every volume.
    async fn list(&self) -> Result<ListResponse>;

    /// The driver's scope. Optional: by default it answers "not implemented" (HTTP 404)
    /// and dockerd takes scope `local`.
    async fn capabilities(&self) -> Result<CapabilitiesResponse> {
        Err(Error::not_implemented(Capabilities::NAME))
    }
}

/// The routes of a volume driver: one per declared method.
pub(crate) fn subsystem<D: Driver>(driver: D) -> Subsystem {
    let driver = Arc::new(driver);
    Subsystem::new(&SUBSYSTEM)
        .route(Create, &driver, |d, r| async move {
            d.create(r).await.map(|()| Empty {})
        })
        .route(Remove, &driver, |d, r| async move {
            d.remove(r).await.map(|()| Empty {})
        })
        .route(Mount, &driver, |d, r| async move { d.mount(r).await })
        .route(Unmount, &driver, |d, r| async move {
            d.unmount(r).await.map(|()| Empty {})
        })
        .route(Path, &driver, |d, r| async move { d.path(r).await })
        .route(Get, &driver, |d, r| async move { d.get(r).await })
        .route(List, &driver, |d, _| async move { d.list().await })
        .route(Capabilities, &driver, |d, _| async move {
            d.capabilities().await
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[async_trait]
    impl Driver for Nothing {
        async fn create(&self, _: CreateRequest) -> Result<()> {
            Ok(())
        }
        async fn remove(&self, _: RemoveRequest) -> Result<()> {
            Ok(())
        }
        async fn mount(&self, _: MountRequest) -> Result<MountResponse> {
            Ok(MountResponse::default())
        }
        async fn unmount(&self, _: UnmountRequest) -> Result<()> {
            Ok(())
        }
        async fn path(&self, _: PathRequest) -> Result<PathResponse> {
            Ok(PathResponse::default())
        }
        async fn get(&self, _: GetRequest) -> Result<GetResponse> {
            Ok(GetResponse::default())
        }
        async fn list(&self) -> Result<ListResponse> {
            Ok(ListResponse::default())
        }
    }

    #[test]
    fn the_server_routes_exactly_the_declared_methods() {
        let served = subsystem(Nothing).method_names();
        let declared: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(served, declared);
    }
}
