//! The exact JSON of the `VolumeDriver` protocol (Docker's `plugins_volume.md`, checked
//! against dockerd 20.10). Requests are what dockerd sends; replies are what the driver
//! returns on success (on failure the server sends `{"Err": "..."}` instead, see
//! [`crate::Error`]).
//!
//! Fields dockerd always sends (`Name`, `ID`) are required; maps and lists accept Go's
//! `null`; empty reply fields are omitted, as Docker's own drivers omit them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::protocol::WireRequest;
use crate::protocol::null_as_default;

/// `/VolumeDriver.Create`: create a volume (`docker volume create -d DRIVER -o k=v NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// The volume name.
    #[serde(rename = "Name")]
    pub name: String,
    /// The `-o key=value` options; empty when none were given (dockerd sends `null`,
    /// and so does this type when empty: moby v20.10.24 `volume/drivers/proxy.go`
    /// passes Go's nil map).
    #[serde(
        rename = "Opts",
        default,
        deserialize_with = "null_as_default",
        serialize_with = "empty_as_null"
    )]
    pub opts: HashMap<String, String>,
}

/// Go's encoding of a nil map: `null` when empty.
fn empty_as_null<S: serde::Serializer>(
    map: &HashMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if map.is_empty() {
        serializer.serialize_none()
    } else {
        map.serialize(serializer)
    }
}

/// `/VolumeDriver.Remove`: delete a volume (`docker volume rm`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveRequest {
    /// The volume name.
    #[serde(rename = "Name")]
    pub name: String,
}

/// `/VolumeDriver.Mount`: make the volume available for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRequest {
    /// The volume name.
    #[serde(rename = "Name")]
    pub name: String,
    /// A unique ID per mount (64 hex digits), the same in the matching Unmount. The same ID
    /// may be mounted more than once (`docker cp`): count mounts per ID.
    #[serde(rename = "ID")]
    pub id: String,
}

/// The reply to Mount: where the volume is on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MountResponse {
    /// The host path dockerd bind-mounts into the container.
    #[serde(rename = "Mountpoint", default)]
    pub mountpoint: PathBuf,
}

impl MountResponse {
    /// A reply pointing dockerd at `mountpoint`.
    pub fn new(mountpoint: impl Into<PathBuf>) -> Self {
        Self {
            mountpoint: mountpoint.into(),
        }
    }
}

/// `/VolumeDriver.Unmount`: the container with this mount ID no longer uses the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmountRequest {
    /// The volume name.
    #[serde(rename = "Name")]
    pub name: String,
    /// The ID given to the matching Mount.
    #[serde(rename = "ID")]
    pub id: String,
}

/// `/VolumeDriver.Path`: where the volume is mounted, if it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRequest {
    /// The volume name.
    #[serde(rename = "Name")]
    pub name: String,
}

/// The reply to Path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PathResponse {
    /// The host path, or empty when the volume is not mounted.
    #[serde(rename = "Mountpoint", default, skip_serializing_if = "path_is_empty")]
    pub mountpoint: PathBuf,
}

impl PathResponse {
    /// A reply for a volume mounted at `mountpoint`.
    pub fn new(mountpoint: impl Into<PathBuf>) -> Self {
        Self {
            mountpoint: mountpoint.into(),
        }
    }

    /// The reply for a volume that is not mounted (no `Mountpoint`).
    pub fn not_mounted() -> Self {
        Self::default()
    }
}

/// `/VolumeDriver.Get`: describe one volume (`docker volume inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRequest {
    /// The volume name.
    #[serde(rename = "Name")]
    pub name: String,
}

/// The reply to Get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GetResponse {
    /// The volume.
    #[serde(rename = "Volume")]
    pub volume: Volume,
}

/// The reply to `/VolumeDriver.List` (`docker volume ls`); the request body is `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListResponse {
    /// Every volume the driver knows.
    #[serde(rename = "Volumes", default, deserialize_with = "null_as_default")]
    pub volumes: Vec<Volume>,
}

/// One volume as Get and List describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Volume {
    /// The volume name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Where it is mounted on the host; empty when it is not.
    #[serde(rename = "Mountpoint", default, skip_serializing_if = "path_is_empty")]
    pub mountpoint: PathBuf,
    /// When it was created, in RFC 3339 (see [`Volume::created_at`]).
    #[serde(rename = "CreatedAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Free-form details shown by `docker volume inspect` under `Status`.
    #[serde(
        rename = "Status",
        default,
        skip_serializing_if = "serde_json::Map::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub status: serde_json::Map<String, serde_json::Value>,
}

impl Volume {
    /// A volume with just a name.
    ///
    /// ```
    /// use docker_plugin_sdk::volume::Volume;
    /// let v = Volume::new("data").mountpoint("/srv/data");
    /// assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"Name":"data","Mountpoint":"/srv/data"}"#);
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the mountpoint.
    pub fn mountpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.mountpoint = path.into();
        self
    }

    /// Sets `CreatedAt` from a time, formatted as RFC 3339 in UTC, as dockerd expects.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use docker_plugin_sdk::volume::Volume;
    /// let v = Volume::new("v").created_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// assert_eq!(v.created_at.as_deref(), Some("2023-11-14T22:13:20Z"));
    /// ```
    pub fn created_at(mut self, time: SystemTime) -> Self {
        self.created_at = Some(rfc3339(time));
        self
    }

    /// Adds an entry to `Status`.
    pub fn status(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.status.insert(key.into(), value.into());
        self
    }
}

/// `/VolumeDriver.Capabilities` reply. Optional: a driver that does not implement it gets
/// scope `local` from dockerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CapabilitiesResponse {
    /// The capabilities.
    #[serde(rename = "Capabilities")]
    pub capabilities: Capability,
}

/// What the driver can do (go-plugins-helpers calls it `Capability` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Capability {
    /// Whether volumes are local to this host or visible cluster-wide.
    #[serde(rename = "Scope", default)]
    pub scope: Scope,
}

/// A volume driver's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Volumes exist on this host only (dockerd's default).
    #[default]
    Local,
    /// Volumes are the same on every host of a cluster; dockerd calls Create once.
    Global,
}

impl CapabilitiesResponse {
    /// A reply with this scope.
    pub fn scope(scope: Scope) -> Self {
        Self {
            capabilities: Capability { scope },
        }
    }
}

macro_rules! named_request {
    ($($ty:ty),* $(,)?) => {$(
        impl WireRequest for $ty {
            fn subject(&self) -> Option<&str> {
                Some(&self.name)
            }
        }
    )*};
}
named_request!(
    CreateRequest,
    RemoveRequest,
    MountRequest,
    UnmountRequest,
    PathRequest,
    GetRequest,
);

fn path_is_empty(path: &Path) -> bool {
    path.as_os_str().is_empty()
}

/// Formats a time as RFC 3339 (`2006-01-02T15:04:05Z`), whole seconds, UTC.
fn rfc3339(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_dates() {
        let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn create_accepts_null_and_missing_opts() {
        let with_null: CreateRequest =
            serde_json::from_str(r#"{"Name":"v1","Opts":null}"#).unwrap();
        let missing: CreateRequest = serde_json::from_str(r#"{"Name":"v1"}"#).unwrap();
        assert!(with_null.opts.is_empty() && missing.opts.is_empty());
    }

    #[test]
    fn name_is_required() {
        let err = serde_json::from_str::<MountRequest>(r#"{"ID":"abc"}"#).unwrap_err();
        assert_eq!(err.to_string(), "missing field `Name` at line 1 column 12");
    }

    #[test]
    fn empty_reply_fields_are_omitted() {
        let json = serde_json::to_string(&PathResponse::default()).unwrap();
        assert_eq!(json, "{}");
        let json = serde_json::to_string(&GetResponse {
            volume: Volume::new("v"),
        })
        .unwrap();
        assert_eq!(json, r#"{"Volume":{"Name":"v"}}"#);
    }
}
