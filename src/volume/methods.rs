//! The `VolumeDriver` methods, each declared once (name, request, response, dockerd's
//! timeout): the server's routes, the client's calls, the harness's timeouts and the
//! golden tests all come from here.
//!
//! Timeouts are dockerd's (moby v20.10.24 `volume/drivers/proxy.go`: `longTimeout` of
//! 2 minutes for Create and Mount, `shortTimeout` of 1 minute for the others).
//! Capabilities is the one optional method: dockerd takes any error from it, a 404
//! included, as scope `local` (`volume/drivers/extpoint.go`).

use std::time::Duration;

use super::wire::*;
use crate::protocol::{DEFAULT_BODY_LIMIT, Empty, Method, SubsystemSpec, method_list};

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
