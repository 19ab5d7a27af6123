//! A managed plugin's settings: what `docker plugin set` changes, kept beside the
//! config as dockerd keeps them (moby v20.10.24 `api/types/plugin.go`
//! `PluginSettings`, `plugin/v2/plugin.go` `InitEmptySettings` and `Set`,
//! `plugin/v2/settable.go` `updateSettingsEnv`).
//!
//! dockerd starts a plugin with `PATH` plus [`Settings::env`], the entrypoint plus
//! [`Settings::args`], the devices of [`Settings::devices`] and the mounts of the
//! *config* (`plugin/v2/plugin_linux.go` `InitSpec`). The settings are made from the
//! config once, when the plugin is created, and never again: after `docker plugin
//! upgrade` the new config's env, args and devices are not applied.
//!
//! A mount's `source` and a device's `path` are shared by the config and the settings
//! (moby copies the structs, whose fields are pointers, and `Set` writes through the
//! pointer): setting one changes both, so `docker plugin inspect` shows the new
//! source under `Config.Mounts` and `Settings.Mounts`.
//!
//! ```
//! use docker_plugin_sdk::managed::config::PluginConfig;
//! use docker_plugin_sdk::managed::settings::Settings;
//!
//! let mut config = PluginConfig::from_json(br#"{
//!     "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"}],
//!     "mounts": [{"name": "log", "source": "/var/log", "destination": "/log"}]
//! }"#)?;
//! let mut settings = Settings::new(&config);
//! // dockerd applies the arguments before the failing one.
//! let err = settings.set(&mut config, ["DEBUG=2", "log.source=/tmp"]).unwrap_err();
//! assert_eq!(err.to_string(), r#""log.source" is not settable"#);
//! assert_eq!(settings.env, ["DEBUG=2"]);
//! // The config keeps the bundle's value.
//! assert_eq!(config.env[0].value.as_deref(), Some("0"));
//! # Ok::<(), docker_plugin_sdk::managed::config::ConfigError>(())
//! ```

use serde::Serialize;

use super::config::set::{ARGS_FIELDS, DEVICE_FIELDS, ENV_FIELDS, MOUNT_FIELDS, Setting};
use super::config::{ConfigError, Device, Mount, PluginConfig};

/// What `docker plugin set` changed, beside the config (moby's `PluginSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// The arguments after the entrypoint (`Settings.Args`).
    pub args: Vec<String>,
    /// The devices the plugin gets (`Settings.Devices`).
    pub devices: Vec<Device>,
    /// `NAME=value` for each env entry with a value (`Settings.Env`).
    pub env: Vec<String>,
    /// The config's mounts as they were at create (`Settings.Mounts`).
    pub mounts: Vec<Mount>,
}

impl Settings {
    /// The settings of a plugin created with `config` (moby's `InitEmptySettings`):
    /// its mounts, devices and args, and `NAME=value` for every env entry with a
    /// value.
    pub fn new(config: &PluginConfig) -> Self {
        Self {
            args: config.args.value.clone(),
            devices: config.linux.devices.clone(),
            env: config
                .env
                .iter()
                .filter_map(|e| e.value.as_ref().map(|v| format!("{}={v}", e.name)))
                .collect(),
            mounts: config.mounts.clone(),
        }
    }

    /// Applies `docker plugin set` arguments, `<name>[.<field>][=<value>]`, as moby's
    /// `Plugin.Set`: all arguments are parsed first (a malformed one changes
    /// nothing), then names are looked up in the config's env, mounts, devices and
    /// args, in that order, and applied one after the other; the first that fails
    /// stops the loop, **keeping those before it**. Errors are dockerd's, word for
    /// word (see [`ConfigError`]). dockerd also refuses any `set` while the plugin is
    /// enabled; that is the plugin's state, checked by the caller.
    pub fn set<I, S>(&mut self, config: &mut PluginConfig, args: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for setting in Setting::parse_all(args)? {
            self.apply(config, setting)?;
        }
        Ok(())
    }

    fn apply(&mut self, config: &mut PluginConfig, mut s: Setting) -> Result<(), ConfigError> {
        if let Some(env) = config.env.iter().find(|e| e.name == s.name) {
            s.check(ENV_FIELDS, &env.settable)?;
            self.update_env(&s.name, &s.value);
            return Ok(());
        }
        if let Some(i) = config.mounts.iter().position(|m| m.name == s.name) {
            s.check(MOUNT_FIELDS, &config.mounts[i].settable)?;
            let Some(source) = config.mounts[i].source.as_mut() else {
                return Err(ConfigError::NoMountSource { name: s.name });
            };
            source.clone_from(&s.value);
            if let Some(mount) = self.mounts.get_mut(i) {
                mount.source = Some(s.value);
            }
            return Ok(());
        }
        if let Some(i) = config.linux.devices.iter().position(|d| d.name == s.name) {
            s.check(DEVICE_FIELDS, &config.linux.devices[i].settable)?;
            let Some(path) = config.linux.devices[i].path.as_mut() else {
                return Err(ConfigError::NoDevicePath { name: s.name });
            };
            path.clone_from(&s.value);
            if let Some(device) = self.devices.get_mut(i) {
                device.path = Some(s.value);
            }
            return Ok(());
        }
        if config.args.name == s.name {
            s.check(ARGS_FIELDS, &config.args.settable)?;
            self.args = s.value.split(' ').map(str::to_owned).collect();
            return Ok(());
        }
        Err(ConfigError::SettingNotFound { name: s.name })
    }

    /// moby's `updateSettingsEnv`: replaces `NAME=…`, or appends it.
    fn update_env(&mut self, name: &str, value: &str) {
        let entry = format!("{name}={value}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(name))
        {
            Some(existing) => *existing = entry,
            None => self.env.push(entry),
        }
    }

    /// The settings as `docker plugin inspect --format '{{json .Settings}}'` prints
    /// them: Go's field order and its `null` for absent lists and values (a mount's
    /// or device's `Settable` without entries, a `Source` or `Path` that is absent).
    ///
    /// ```
    /// use docker_plugin_sdk::managed::config::PluginConfig;
    /// use docker_plugin_sdk::managed::settings::Settings;
    ///
    /// let config = PluginConfig::from_json(br#"{"env": [{"name": "A", "value": "1"}]}"#)?;
    /// assert_eq!(
    ///     Settings::new(&config).to_docker_json(),
    ///     r#"{"Args":[],"Devices":[],"Env":["A=1"],"Mounts":[]}"#
    /// );
    /// # Ok::<(), docker_plugin_sdk::managed::config::ConfigError>(())
    /// ```
    pub fn to_docker_json(&self) -> String {
        let view = SettingsView {
            args: &self.args,
            devices: self.devices.iter().map(DeviceView::from).collect(),
            env: &self.env,
            mounts: self.mounts.iter().map(MountView::from).collect(),
        };
        serde_json::to_string(&view).unwrap_or_default()
    }
}

/// Go's nil slice: `null` when empty.
fn nil_if_empty(list: &[String]) -> Option<&[String]> {
    (!list.is_empty()).then_some(list)
}

#[derive(Serialize)]
struct SettingsView<'a> {
    #[serde(rename = "Args")]
    args: &'a [String],
    #[serde(rename = "Devices")]
    devices: Vec<DeviceView<'a>>,
    #[serde(rename = "Env")]
    env: &'a [String],
    #[serde(rename = "Mounts")]
    mounts: Vec<MountView<'a>>,
}

/// moby's `PluginDevice`, fields in Go's order.
#[derive(Serialize)]
struct DeviceView<'a> {
    #[serde(rename = "Description")]
    description: &'a str,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Path")]
    path: Option<&'a str>,
    #[serde(rename = "Settable")]
    settable: Option<&'a [String]>,
}

impl<'a> From<&'a Device> for DeviceView<'a> {
    fn from(d: &'a Device) -> Self {
        Self {
            description: &d.description,
            name: &d.name,
            path: d.path.as_deref(),
            settable: nil_if_empty(&d.settable),
        }
    }
}

/// moby's `PluginMount`, fields in Go's order.
#[derive(Serialize)]
struct MountView<'a> {
    #[serde(rename = "Description")]
    description: &'a str,
    #[serde(rename = "Destination")]
    destination: &'a str,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Options")]
    options: Option<&'a [String]>,
    #[serde(rename = "Settable")]
    settable: Option<&'a [String]>,
    #[serde(rename = "Source")]
    source: Option<&'a str>,
    #[serde(rename = "Type")]
    r#type: &'a str,
}

impl<'a> From<&'a Mount> for MountView<'a> {
    fn from(m: &'a Mount) -> Self {
        Self {
            description: &m.description,
            destination: &m.destination,
            name: &m.name,
            options: nil_if_empty(&m.options),
            settable: nil_if_empty(&m.settable),
            source: m.source.as_deref(),
            r#type: &m.r#type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PluginConfig {
        PluginConfig::from_json(
            br#"{
            "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"},
                    {"name": "EMPTY", "settable": ["value"]}],
            "args": {"name": "args", "settable": ["value"], "value": ["--a"]},
            "mounts": [{"name": "state", "settable": ["source"], "source": "/srv", "destination": "/state"}],
            "linux": {"devices": [{"name": "fuse", "settable": ["path"], "path": "/dev/fuse"}]}
        }"#,
        )
        .unwrap()
    }

    #[test]
    fn settings_start_as_moby_initializes_them() {
        let s = Settings::new(&config());
        assert_eq!(s.env, ["DEBUG=0"]);
        assert_eq!(s.args, ["--a"]);
        assert_eq!(s.mounts[0].source.as_deref(), Some("/srv"));
        assert_eq!(s.devices[0].path.as_deref(), Some("/dev/fuse"));
    }

    #[test]
    fn set_applies_what_comes_before_a_failure_and_shares_sources_with_the_config() {
        let mut c = config();
        let mut s = Settings::new(&c);
        s.set(
            &mut c,
            ["EMPTY=x", "args=-v --b", "state=/other", "fuse=/dev/null"],
        )
        .unwrap();
        assert_eq!(s.env, ["DEBUG=0", "EMPTY=x"]);
        assert_eq!(s.args, ["-v", "--b"]);
        assert_eq!(c.args.value, ["--a"], "the config's args are kept");
        assert_eq!(c.mounts[0].source.as_deref(), Some("/other"));
        assert_eq!(s.mounts[0].source.as_deref(), Some("/other"));
        assert_eq!(c.linux.devices[0].path.as_deref(), Some("/dev/null"));
        assert_eq!(s.devices[0].path.as_deref(), Some("/dev/null"));

        let err = s.set(&mut c, ["DEBUG=3", "NOPE=1", "EMPTY=y"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"setting "NOPE" not found in the plugin configuration"#
        );
        assert_eq!(s.env, ["DEBUG=3", "EMPTY=x"]);
        // A malformed argument changes nothing at all.
        let err = s.set(&mut c, ["DEBUG=4", "=x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid format, must be <name>[.<field>][=<value>]"
        );
        assert_eq!(s.env[0], "DEBUG=3");
    }
}
