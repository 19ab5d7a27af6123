//! The exact JSON of the `VolumeDriver` protocol (Docker's `plugins_volume.md`, checked
//! against dockerd 20.10). Requests are what dockerd sends; replies are what the driver
//! returns on success (on failure the server sends `{"Err": "..."}` instead, see
//! [`crate::Error`]).
//!
//! Fields dockerd always sends (`Name`, `ID`) are required; maps and lists accept Go's
//! `null`; empty reply fields are omitted, as Docker's own drivers omit them. Replies
//! decode as dockerd's Go structs do (moby v20.10.24 `volume/drivers/proxy.go`,
//! `adapter.go`): a missing or `null` field is its empty value, `Scope` is read
//! without regard to case, and `CreatedAt` is a [`Timestamp`], so that no driver can
//! send the text that fails dockerd's whole Get or List.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};

use crate::protocol::{Timestamp, WireRequest, go_map, null_as_default};

/// `/VolumeDriver.Create`: create a volume (`docker volume create -d DRIVER -o k=v NAME`).
///
/// Its `Debug` shows the option keys, never their values: passwords arrive as `-o
/// password=…`.
///
/// ```
/// use docker_plugin_sdk::volume::CreateRequest;
/// let req = CreateRequest {
///     name: "v1".into(),
///     opts: [("password".into(), "hunter2".into())].into(),
/// };
/// assert_eq!(
///     format!("{req:?}"),
///     r#"CreateRequest { name: "v1", opts: {"password": <hidden>} }"#
/// );
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// The volume name.
    #[serde(rename = "Name")]
    pub name: String,
    /// The `-o key=value` options; empty when none were given (dockerd then sends
    /// `null`, and so does the client).
    #[serde(
        rename = "Opts",
        default,
        deserialize_with = "null_as_default",
        serialize_with = "go_map"
    )]
    pub opts: HashMap<String, String>,
}

impl fmt::Debug for CreateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// An option's value, never printed.
        struct Hidden;
        impl fmt::Debug for Hidden {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<hidden>")
            }
        }
        let opts: BTreeMap<&str, Hidden> = self.opts.keys().map(|k| (k.as_str(), Hidden)).collect();
        f.debug_struct("CreateRequest")
            .field("name", &self.name)
            .field("opts", &opts)
            .finish()
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
    #[serde(rename = "Mountpoint", default, deserialize_with = "null_as_default")]
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
    #[serde(
        rename = "Mountpoint",
        default,
        skip_serializing_if = "path_is_empty",
        deserialize_with = "null_as_default"
    )]
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
    /// The volume. dockerd reads a reply without one (missing or `null`) as "no such
    /// volume"; decoded, that is a volume without a name.
    #[serde(rename = "Volume", default, deserialize_with = "null_as_default")]
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
    #[serde(rename = "Name", default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Where it is mounted on the host; empty when it is not.
    #[serde(
        rename = "Mountpoint",
        default,
        skip_serializing_if = "path_is_empty",
        deserialize_with = "null_as_default"
    )]
    pub mountpoint: PathBuf,
    /// When it was created (see [`Volume::created_at`]). dockerd decodes it as Go's
    /// `time.Time`, and a text it cannot parse fails the whole Get or List: hence a
    /// typed time. Without one, `docker volume inspect` shows `0001-01-01T00:00:00Z`.
    #[serde(rename = "CreatedAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
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

    /// Sets `CreatedAt`, sent as RFC 3339 in UTC as dockerd expects (see
    /// [`Timestamp`]).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use docker_plugin_sdk::volume::Volume;
    /// let v = Volume::new("v").created_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// assert_eq!(
    ///     serde_json::to_string(&v).unwrap(),
    ///     r#"{"Name":"v","CreatedAt":"2023-11-14T22:13:20Z"}"#
    /// );
    /// ```
    pub fn created_at(mut self, time: SystemTime) -> Self {
        self.created_at = Some(time.into());
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
    /// The capabilities; dockerd reads a reply without them as scope `local`.
    #[serde(rename = "Capabilities", default, deserialize_with = "null_as_default")]
    pub capabilities: Capability,
}

/// What the driver can do (go-plugins-helpers calls it `Capability` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Capability {
    /// Whether volumes are local to this host or visible cluster-wide.
    #[serde(rename = "Scope", default)]
    pub scope: Scope,
}

/// A volume driver's scope, sent as `"local"` or `"global"`.
///
/// Read as dockerd reads it (moby v20.10.24 `volume/drivers/adapter.go`
/// `getCapabilities`): lower-cased, and `""`, `null` or an unknown value mean `local`
/// (an unknown value is logged, as dockerd warns of it).
///
/// ```
/// use docker_plugin_sdk::volume::Scope;
/// let scope = |json| serde_json::from_str::<Scope>(json).unwrap();
/// assert_eq!(scope(r#""GLOBAL""#), Scope::Global);
/// assert_eq!(scope(r#""Local""#), Scope::Local);
/// assert_eq!(scope(r#""""#), Scope::Local);
/// assert_eq!(serde_json::to_string(&Scope::Global).unwrap(), r#""global""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Volumes exist on this host only (dockerd's default).
    #[default]
    Local,
    /// Volumes are the same on every host of a cluster; dockerd calls Create once.
    Global,
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        Ok(match text.to_lowercase().as_str() {
            "global" => Scope::Global,
            "local" | "" => Scope::Local,
            other => {
                tracing::warn!(
                    scope = other,
                    "the volume driver answered an invalid scope: local, as dockerd does"
                );
                Scope::Local
            }
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn create_is_encoded_as_dockerd_encodes_it() {
        let none = CreateRequest {
            name: "v1".into(),
            opts: HashMap::new(),
        };
        assert_eq!(
            serde_json::to_string(&none).unwrap(),
            r#"{"Name":"v1","Opts":null}"#
        );
        // Go writes map keys sorted; a HashMap iterates in any order.
        let opts: HashMap<String, String> = ["z", "c", "a", "m", "b"]
            .iter()
            .map(|k| (k.to_string(), k.to_uppercase()))
            .collect();
        let some = CreateRequest {
            name: "v1".into(),
            opts,
        };
        assert_eq!(
            serde_json::to_string(&some).unwrap(),
            r#"{"Name":"v1","Opts":{"a":"A","b":"B","c":"C","m":"M","z":"Z"}}"#
        );
    }

    #[test]
    fn create_debug_shows_option_keys_but_never_values() {
        let req = CreateRequest {
            name: "v1".into(),
            opts: [
                ("password".to_string(), "hunter2".to_string()),
                ("user".to_string(), "alice".to_string()),
            ]
            .into(),
        };
        let debug = format!("{req:?}");
        assert_eq!(
            debug,
            r#"CreateRequest { name: "v1", opts: {"password": <hidden>, "user": <hidden>} }"#
        );
        let pretty = format!("{req:#?}");
        assert!(
            !pretty.contains("hunter2") && !pretty.contains("alice"),
            "{pretty}"
        );
    }

    #[test]
    fn created_at_is_a_time_dockerd_can_parse_or_nothing() {
        let volume: Volume =
            serde_json::from_str(r#"{"Name":"v","CreatedAt":"2023-11-14T23:13:20.5+01:00"}"#)
                .unwrap();
        let created = volume.created_at.unwrap();
        assert_eq!(created.to_string(), "2023-11-14T23:13:20.5+01:00");
        let volume: Volume = serde_json::from_str(r#"{"Name":"v","CreatedAt":null}"#).unwrap();
        assert_eq!(volume.created_at, None);
        // What dockerd's Go decoder refuses, failing the whole Get or List.
        for bad in [r#""""#, r#""yesterday""#, r#""2023-11-14 22:13:20""#, "17"] {
            let json = format!(r#"{{"Volumes":[{{"Name":"v","CreatedAt":{bad}}}]}}"#);
            assert!(
                serde_json::from_str::<ListResponse>(&json).is_err(),
                "{json} decoded"
            );
        }
    }

    #[test]
    fn replies_read_missing_and_null_fields_as_go_zero_values() {
        let get: GetResponse = serde_json::from_str(r#"{"Volume":null}"#).unwrap();
        assert_eq!(get.volume, Volume::default());
        let get: GetResponse = serde_json::from_str("{}").unwrap();
        assert!(get.volume.name.is_empty());
        let volume: Volume =
            serde_json::from_str(r#"{"Name":null,"Mountpoint":null,"Status":null}"#).unwrap();
        assert_eq!(volume, Volume::default());
        let mount: MountResponse = serde_json::from_str(r#"{"Mountpoint":null}"#).unwrap();
        assert!(mount.mountpoint.as_os_str().is_empty());
        for json in ["{}", r#"{"Capabilities":null}"#, r#"{"Capabilities":{}}"#] {
            let caps: CapabilitiesResponse = serde_json::from_str(json).unwrap();
            assert_eq!(caps.capabilities.scope, Scope::Local, "{json}");
        }
    }

    #[test]
    fn scope_is_read_as_dockerd_reads_it() {
        for (json, scope) in [
            (r#""local""#, Scope::Local),
            (r#""Local""#, Scope::Local),
            (r#""global""#, Scope::Global),
            (r#""GLOBAL""#, Scope::Global),
            (r#""""#, Scope::Local),
            ("null", Scope::Local),
            (r#""cluster""#, Scope::Local),
        ] {
            assert_eq!(
                serde_json::from_str::<Scope>(json).unwrap(),
                scope,
                "{json}"
            );
        }
        assert!(serde_json::from_str::<Scope>("1").is_err());
    }
}
