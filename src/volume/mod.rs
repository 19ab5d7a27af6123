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
//!         tokio::fs::create_dir_all(format!("/tmp/vols/{}", req.name)).await?;
//!         Ok(())
//!     }
//!     async fn remove(&self, req: RemoveRequest) -> Result<()> {
//!         Ok(tokio::fs::remove_dir_all(format!("/tmp/vols/{}", req.name)).await?)
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
mod encode;
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
    call_timeout: None,
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
/// required; an error becomes the `Err` dockerd shows to the user (and is logged at
/// debug: dockerd asks Get about volumes that do not exist before every Create).
///
/// # How dockerd calls it: the contract
///
/// - **Concurrently**: Get, List, Path and Mount arrive at the same time (a `docker
///   volume ls` while a container starts). Take no lock across an `.await` that
///   waits on something slow, and do not block the runtime's threads: use
///   `tokio::fs` and `tokio::process`, or `tokio::task::spawn_blocking` for code that
///   blocks (a `mount` syscall).
/// - **Never cancelled by the SDK**: a method runs to its end even when dockerd stops
///   waiting. dockerd's deadlines are 2 minutes for Create and Mount and 1 minute for
///   the others (moby v20.10.24 `volume/drivers/proxy.go`), and 30 s for every call of
///   a managed plugin enabled with `docker plugin enable` (its `--timeout`; after
///   `docker plugin install` or a daemon restart it runs with no timeout at all, moby
///   v20.10.24 `plugin/manager_linux.go`, `pluginPostStart`); when one passes, dockerd closes the connection, tells
///   the user the call failed, and the method's result is logged and dropped. Only
///   [`Plugin::call_timeout`](crate::Plugin::call_timeout), off by default, cancels a
///   method (its future is dropped at the `.await` it is parked on).
/// - **Again**: so every method must be idempotent. dockerd retries calls that failed
///   to connect, the user retries what dockerd reported failed (and may have
///   finished here), and dockerd calls Create after *any* error from Get, not only
///   "no such volume" (moby v20.10.24 `volume/service/store.go`): Create must never
///   clobber a volume that exists, Remove must accept one already gone.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Creates the volume `req.name` with the user's `-o` options in `req.opts`.
    /// dockerd calls [`get`](Driver::get) first and creates when Get fails, for any
    /// reason: a volume that exists must be left as it is.
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
        .route_encoded(
            Mount,
            &driver,
            |d, r| async move { d.mount(r).await },
            encode::mount,
        )
        .route(Unmount, &driver, |d, r| async move {
            d.unmount(r).await.map(|()| Empty {})
        })
        .route_encoded(
            Path,
            &driver,
            |d, r| async move { d.path(r).await },
            encode::path_reply,
        )
        .route_encoded(
            Get,
            &driver,
            |d, r| async move { d.get(r).await },
            encode::get,
        )
        .route_encoded(
            List,
            &driver,
            |d, _| async move { d.list().await },
            encode::list,
        )
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
