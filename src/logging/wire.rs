//! The exact JSON of the `LogDriver` methods: what dockerd sends a log driver and what
//! it reads back.
//!
//! Field names and order are moby v20.10.24's (`daemon/logger/proxy.go`: the
//! `logPluginProxy*Request`/`Response` structs; `daemon/logger/loginfo.go`: `Info`;
//! `daemon/logger/logger.go`: `ReadConfig`, `Capability`). dockerd writes every key of
//! `Info` (no `omitempty`), Go's `null` for a nil map or list, and Go's zero time
//! `0001-01-01T00:00:00Z` for an unset `Since`/`Until`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize, Serializer};

use crate::options::{DriverOptions, OptionsError};
use crate::protocol::{Timestamp, WireRequest, null_as_default};

/// What dockerd knows about the container whose logs it sends
/// (moby v20.10.24 `daemon/logger/loginfo.go` `Info`, filled by
/// `daemon/logs.go`/`container/container.go` `StartLogger`).
///
/// ```
/// use docker_plugin_sdk::logging::Info;
///
/// let info: Info = serde_json::from_str(
///     r#"{"Config":{"max-size":"10m"},"ContainerID":"c0ffee","ContainerName":"/web",
///         "ContainerEntrypoint":"sh","ContainerArgs":null,"ContainerImageID":"sha256:ab",
///         "ContainerImageName":"busybox","ContainerCreated":"2026-11-28T07:00:00.5Z",
///         "ContainerEnv":null,"ContainerLabels":null,"LogPath":"","DaemonName":"docker"}"#,
/// ).unwrap();
/// assert_eq!(info.name(), "web");
/// assert_eq!(info.config["max-size"], "10m");
/// assert!(info.container_args.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The `--log-opt` options (and the daemon's `log-opts`, with dockerd's `cache-*`
    /// options for its local cache), unvalidated by dockerd: check them in
    /// [`Driver::validate`](super::Driver::validate). Never nil in dockerd (`{}`
    /// without options: moby v20.10.24 `daemon/logs.go` `mergeAndVerifyLogConfig`).
    #[serde(rename = "Config", default, deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
    /// The container's full ID (64 hex digits).
    #[serde(rename = "ContainerID", default)]
    pub container_id: String,
    /// Its name as dockerd keeps it, **with a leading `/`** (`/web`); see
    /// [`Info::name`].
    #[serde(rename = "ContainerName", default)]
    pub container_name: String,
    /// The program it runs (`Path`).
    #[serde(rename = "ContainerEntrypoint", default)]
    pub container_entrypoint: String,
    /// The program's arguments.
    #[serde(
        rename = "ContainerArgs",
        default,
        deserialize_with = "null_as_default",
        serialize_with = "nil_if_empty_list"
    )]
    pub container_args: Vec<String>,
    /// The image's ID (`sha256:…`).
    #[serde(rename = "ContainerImageID", default)]
    pub container_image_id: String,
    /// The image's name as the user gave it.
    #[serde(rename = "ContainerImageName", default)]
    pub container_image_name: String,
    /// When the container was created.
    #[serde(rename = "ContainerCreated", default = "zero_time")]
    pub container_created: Timestamp,
    /// Its environment, `KEY=value` (secrets passed with `-e` included: keep them out
    /// of logs).
    #[serde(
        rename = "ContainerEnv",
        default,
        deserialize_with = "null_as_default",
        serialize_with = "nil_if_empty_list"
    )]
    pub container_env: Vec<String>,
    /// Its labels.
    #[serde(
        rename = "ContainerLabels",
        default,
        deserialize_with = "null_as_default",
        serialize_with = "nil_if_empty_map"
    )]
    pub container_labels: BTreeMap<String, String>,
    /// Always `""` for a plugin (only dockerd's own `json-file` driver has a path).
    #[serde(rename = "LogPath", default)]
    pub log_path: String,
    /// `docker`.
    #[serde(rename = "DaemonName", default)]
    pub daemon_name: String,
}

impl Default for Info {
    fn default() -> Self {
        Self {
            config: BTreeMap::new(),
            container_id: String::new(),
            container_name: String::new(),
            container_entrypoint: String::new(),
            container_args: Vec::new(),
            container_image_id: String::new(),
            container_image_name: String::new(),
            container_created: zero_time(),
            container_env: Vec::new(),
            container_labels: BTreeMap::new(),
            log_path: String::new(),
            daemon_name: String::new(),
        }
    }
}

impl Info {
    /// The container's name without dockerd's leading `/` (`web` for `/web`).
    pub fn name(&self) -> &str {
        self.container_name
            .strip_prefix('/')
            .unwrap_or(&self.container_name)
    }

    /// The `--log-opt` options meant for the driver: [`Info::config`] without those
    /// dockerd handles itself, `mode`, `max-buffer-size` (moby v20.10.24
    /// `daemon/logger/factory.go` `builtInLogOpts`) and every `cache-*` option of its
    /// local cache (`daemon/logger/loggerutils/cache/local_cache.go`).
    pub fn driver_options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.config
            .iter()
            .filter(|(key, _)| !is_dockerd_option(key))
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// The driver's options, typed: [`Info::driver_options`] parsed as `T`. Its error
    /// lists every problem at once; returned from
    /// [`Driver::validate`](super::Driver::validate), it is what `docker run` prints.
    ///
    /// ```
    /// use docker_plugin_sdk::logging::Info;
    /// use docker_plugin_sdk::options::{DriverOptions, OptionInfo, OptionsError, Parser};
    ///
    /// #[derive(Debug)]
    /// struct Opts { max_file: u32 }
    /// impl DriverOptions for Opts {
    ///     const OPTIONS: &'static [OptionInfo] = &[
    ///         OptionInfo { key: "max-file", required: false, default: Some("1"), secret: false, doc: "" },
    ///     ];
    ///     fn from_options<'a>(options: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, OptionsError> {
    ///         let mut p = Parser::new(Self::OPTIONS, options);
    ///         let max_file = p.parse_or("max-file", "a whole number", "1");
    ///         p.finish()?;
    ///         Ok(Self { max_file: max_file.unwrap_or(1) })
    ///     }
    ///     fn to_status(&self) -> Vec<(&'static str, String)> { Vec::new() }
    /// }
    ///
    /// let mut info = Info::default();
    /// info.config.insert("max-file".into(), "3".into());
    /// info.config.insert("mode".into(), "non-blocking".into()); // dockerd's, skipped
    /// assert_eq!(info.options::<Opts>().unwrap().max_file, 3);
    /// info.config.insert("max-size".into(), "1m".into());
    /// assert_eq!(
    ///     info.options::<Opts>().unwrap_err().to_string(),
    ///     "invalid options: unknown option `max-size` (valid options: max-file)"
    /// );
    /// ```
    pub fn options<T: DriverOptions>(&self) -> Result<T, OptionsError> {
        T::from_options(self.driver_options())
    }

    /// The first 12 digits of the container's ID, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        self.container_id.get(..12).unwrap_or(&self.container_id)
    }
}

/// `/LogDriver.StartLogging`: start reading the FIFO `file` for the container `info`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StartLoggingRequest {
    /// The FIFO dockerd created, as the plugin sees it: `/run/docker/logging/<64 hex>`
    /// (for a managed plugin, inside its rootfs; for a legacy one, on the host).
    #[serde(rename = "File", default)]
    pub file: String,
    /// The container.
    #[serde(rename = "Info", default)]
    pub info: Info,
}

impl WireRequest for StartLoggingRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.info.container_id)
    }
}

/// `/LogDriver.StopLogging`: the container stopped; release `file`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StopLoggingRequest {
    /// The FIFO named by the matching StartLogging.
    #[serde(rename = "File", default)]
    pub file: String,
}

impl WireRequest for StopLoggingRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.file)
    }
}

/// What a log driver can do besides receiving logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capability {
    /// Whether it serves `/LogDriver.ReadLogs` (`docker logs`). Without it dockerd
    /// serves `docker logs` from its own local cache (unless `cache-disabled=true`).
    #[serde(rename = "ReadLogs", default)]
    pub read_logs: bool,
}

/// The reply to `/LogDriver.Capabilities` (`{"Cap":{"ReadLogs":true}}`; dockerd
/// ignores every error of this call and then assumes no capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    /// The capabilities.
    #[serde(rename = "Cap", default)]
    pub cap: Capability,
}

/// `/LogDriver.ReadLogs`: `docker logs` for the container `info`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadLogsRequest {
    /// The container, as at its StartLogging.
    #[serde(rename = "Info", default)]
    pub info: Info,
    /// What to read.
    #[serde(rename = "Config", default)]
    pub config: ReadConfig,
}

impl WireRequest for ReadLogsRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.info.container_id)
    }
}

/// What `docker logs` asked for (moby v20.10.24 `daemon/logger/logger.go` `ReadConfig`,
/// filled by `daemon/logs.go`). dockerd applies none of it to the plugin's reply but
/// `Since`/`Until` (it drops entries before `Since` and stops at the first after
/// `Until`): the driver does `Tail` and `Follow` ([`select`](super::select) and
/// [`ReadContext`](super::ReadContext) help).
///
/// ```
/// use docker_plugin_sdk::logging::ReadConfig;
///
/// let config: ReadConfig = serde_json::from_str(
///     r#"{"Since":"0001-01-01T00:00:00Z","Until":"2026-11-28T08:00:00Z","Tail":2,"Follow":false}"#,
/// ).unwrap();
/// assert_eq!(config.since(), None); // Go's zero time: unset
/// assert!(config.until().is_some());
/// assert_eq!(config.tail(), Some(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadConfig {
    /// Entries at or after this time (`--since`); Go's zero time when unset.
    #[serde(rename = "Since", default = "zero_time")]
    pub since: Timestamp,
    /// Entries at or before this time (`--until`); Go's zero time when unset.
    #[serde(rename = "Until", default = "zero_time")]
    pub until: Timestamp,
    /// `--tail`: `-1` every entry, `0` none, `N` the last N.
    #[serde(rename = "Tail", default = "all_entries")]
    pub tail: i64,
    /// `-f`: keep the stream open and send new entries as they come (always false for
    /// a stopped container).
    #[serde(rename = "Follow", default)]
    pub follow: bool,
}

impl Default for ReadConfig {
    /// Every entry, no time bounds, no follow.
    fn default() -> Self {
        Self {
            since: zero_time(),
            until: zero_time(),
            tail: -1,
            follow: false,
        }
    }
}

impl ReadConfig {
    /// `Since`, unless it is Go's zero time (unset).
    pub fn since(&self) -> Option<SystemTime> {
        set(&self.since)
    }

    /// `Until`, unless it is Go's zero time (unset).
    pub fn until(&self) -> Option<SystemTime> {
        set(&self.until)
    }

    /// How many of the last entries to send: `None` for all (`Tail` negative), else
    /// `Some(n)` (`Some(0)`: none).
    pub fn tail(&self) -> Option<usize> {
        usize::try_from(self.tail).ok()
    }

    /// Whether an entry written at `time` is within `Since` and `Until` (both
    /// inclusive, as dockerd's own check: `Before(Since)` and `After(Until)` drop).
    pub fn includes(&self, time: SystemTime) -> bool {
        self.since().is_none_or(|since| time >= since)
            && self.until().is_none_or(|until| time <= until)
    }
}

/// Go's zero `time.Time`, `0001-01-01T00:00:00Z`: what dockerd sends for an unset time.
pub fn zero_time() -> Timestamp {
    GO_ZERO_TIME
        .parse()
        .unwrap_or_else(|_| Timestamp::from(SystemTime::UNIX_EPOCH))
}

/// Go's zero time as JSON text.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn set(time: &Timestamp) -> Option<SystemTime> {
    (*time != zero_time()).then(|| time.system_time())
}

/// Whether dockerd itself handles the `--log-opt` `key`.
fn is_dockerd_option(key: &str) -> bool {
    matches!(key, "mode" | "max-buffer-size") || key.starts_with("cache-")
}

fn all_entries() -> i64 {
    -1
}

/// Go's `null` for a nil map.
fn nil_if_empty_map<S: Serializer>(
    map: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if map.is_empty() {
        serializer.serialize_none()
    } else {
        map.serialize(serializer)
    }
}

/// Go's `null` for a nil slice.
fn nil_if_empty_list<S: Serializer>(list: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    if list.is_empty() {
        serializer.serialize_none()
    } else {
        list.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_zero_times_mean_unset_and_round_trip() {
        let config = ReadConfig::default();
        assert_eq!(config.since(), None);
        assert_eq!(config.until(), None);
        assert_eq!(config.tail(), None);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            json,
            r#"{"Since":"0001-01-01T00:00:00Z","Until":"0001-01-01T00:00:00Z","Tail":-1,"Follow":false}"#
        );
    }

    #[test]
    fn an_empty_info_is_written_as_dockerd_writes_it() {
        let json = serde_json::to_string(&Info::default()).unwrap();
        assert_eq!(
            json,
            r#"{"Config":{},"ContainerID":"","ContainerName":"","ContainerEntrypoint":"","ContainerArgs":null,"ContainerImageID":"","ContainerImageName":"","ContainerCreated":"0001-01-01T00:00:00Z","ContainerEnv":null,"ContainerLabels":null,"LogPath":"","DaemonName":""}"#
        );
    }
}
