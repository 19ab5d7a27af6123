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
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use dir::volume_dir;
pub use wire::*;

use crate::dispatch::Subsystem;
use crate::error::{Error, Result};
use crate::protocol::{DEFAULT_BODY_LIMIT, Empty, Method, SubsystemSpec, method_list};

// The methods, each declared once (name, request, response, dockerd's timeout): the
// server's routes below, the client's calls, the harness's timeouts and the golden
// tests all come from these. Timeouts are dockerd's (moby v20.10.24
// `volume/drivers/proxy.go`: `longTimeout` of 2 minutes for Create and Mount,
// `shortTimeout` of 1 minute for the others). Capabilities is the one optional method:
// dockerd takes any error from it, a 404 included, as scope `local`
// (`volume/drivers/extpoint.go`).

/// The value of `Implements` for volume drivers.
pub const IMPLEMENTS: &str = "VolumeDriver";

/// The volume subsystem as dockerd knows it.
pub const SUBSYSTEM: SubsystemSpec = SubsystemSpec {
    implements: IMPLEMENTS,
    body_limit: DEFAULT_BODY_LIMIT,
    methods: METHODS,
};

/// dockerd's timeout for Create and Mount.
const LONG_TIMEOUT: Option<Duration> = Some(Duration::from_secs(120));
/// dockerd's timeout for every other volume call.
const SHORT_TIMEOUT: Option<Duration> = Some(Duration::from_secs(60));

/// `/VolumeDriver.Create` (`docker volume create -d DRIVER`): reply `{}`.
#[derive(Debug, Clone, Copy)]
pub struct Create;

impl Method for Create {
    const NAME: &'static str = "VolumeDriver.Create";
    type Request = CreateRequest;
    type Response = Empty;
    const TIMEOUT: Option<Duration> = LONG_TIMEOUT;
}

/// `/VolumeDriver.Remove` (`docker volume rm`): reply `{}`.
#[derive(Debug, Clone, Copy)]
pub struct Remove;

impl Method for Remove {
    const NAME: &'static str = "VolumeDriver.Remove";
    type Request = RemoveRequest;
    type Response = Empty;
    const TIMEOUT: Option<Duration> = SHORT_TIMEOUT;
}

/// `/VolumeDriver.Mount`, once per container start.
#[derive(Debug, Clone, Copy)]
pub struct Mount;

impl Method for Mount {
    const NAME: &'static str = "VolumeDriver.Mount";
    type Request = MountRequest;
    type Response = MountResponse;
    const TIMEOUT: Option<Duration> = LONG_TIMEOUT;
}

/// `/VolumeDriver.Unmount`, once per container stop: reply `{}`.
#[derive(Debug, Clone, Copy)]
pub struct Unmount;

impl Method for Unmount {
    const NAME: &'static str = "VolumeDriver.Unmount";
    type Request = UnmountRequest;
    type Response = Empty;
    const TIMEOUT: Option<Duration> = SHORT_TIMEOUT;
}

/// `/VolumeDriver.Path`: where a volume is mounted.
#[derive(Debug, Clone, Copy)]
pub struct Path;

impl Method for Path {
    const NAME: &'static str = "VolumeDriver.Path";
    type Request = PathRequest;
    type Response = PathResponse;
    const TIMEOUT: Option<Duration> = SHORT_TIMEOUT;
}

/// `/VolumeDriver.Get` (`docker volume inspect`, and before every use of a volume).
#[derive(Debug, Clone, Copy)]
pub struct Get;

impl Method for Get {
    const NAME: &'static str = "VolumeDriver.Get";
    type Request = GetRequest;
    type Response = GetResponse;
    const TIMEOUT: Option<Duration> = SHORT_TIMEOUT;
}

/// `/VolumeDriver.List` (`docker volume ls`); dockerd sends `{}`.
#[derive(Debug, Clone, Copy)]
pub struct List;

impl Method for List {
    const NAME: &'static str = "VolumeDriver.List";
    type Request = Empty;
    type Response = ListResponse;
    const TIMEOUT: Option<Duration> = SHORT_TIMEOUT;
}

/// `/VolumeDriver.Capabilities`, optional; dockerd sends `{}`.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities;

impl Method for Capabilities {
    const NAME: &'static str = "VolumeDriver.Capabilities";
    type Request = Empty;
    type Response = CapabilitiesResponse;
    const TIMEOUT: Option<Duration> = SHORT_TIMEOUT;
    const OPTIONAL: bool = true;
}

method_list!(
    Create,
    Remove,
    Mount,
    Unmount,
    Path,
    Get,
    List,
    Capabilities
);

/// A volume driver. Every method except [`capabilities`](Driver::capabilities) is
/// required; an error becomes the `Err` dockerd shows to the user.
///
/// What dockerd's way of calling asks of a driver:
///
/// - **Create is idempotent.** dockerd asks [`get`](Driver::get) before a create, and
///   calls `create` after *any* error from it, not only "no such volume": a Get that
///   timed out, a backend briefly down or a reply dockerd could not decode is followed
///   by a Create of a volume that may well exist (moby v20.10.24
///   `volume/service/store.go`, `create`). Creating a volume that exists must
///   succeed and leave its data alone.
/// - **Timeouts.** dockerd gives up on Create and Mount after 2 minutes and on the
///   other calls after 1 minute (moby v20.10.24 `volume/drivers/proxy.go`). A managed
///   plugin enabled with `docker plugin enable` has 30 s for *every* call (its
///   `--timeout`); after `docker plugin install` or a daemon restart it runs with no
///   timeout at all (moby v20.10.24 `plugin/manager_linux.go`, `pluginPostStart`).
///   When a timeout fires, dockerd closes the connection and reports the failure;
///   the user retries, so the next call must cope with whatever the first one left
///   behind.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Creates the volume `req.name` with the user's `-o` options in `req.opts`.
    /// dockerd calls [`get`](Driver::get) first and creates whenever Get failed, for
    /// whatever reason: a volume that already exists is a success, never a second
    /// volume or lost data.
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
