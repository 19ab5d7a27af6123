//! `docker plugin set`: moby's `Plugin.Set` (`plugin/v2/plugin.go`, now
//! `daemon/pkg/plugin/v2/plugin.go`) and `settable.go`.

use super::{ConfigError, PluginConfig};

/// The fields `docker plugin set` may change, per kind of entry
/// (`allowedSettableFields*` in moby's `plugin/v2/settable.go`).
pub(crate) const ENV_FIELDS: &[&str] = &["value"];
pub(crate) const ARGS_FIELDS: &[&str] = &["value"];
pub(crate) const DEVICE_FIELDS: &[&str] = &["path"];
pub(crate) const MOUNT_FIELDS: &[&str] = &["source"];

/// One `<name>[.<field>][=<value>]` argument (moby's `settable`).
pub(crate) struct Setting {
    pub(crate) name: String,
    pub(crate) field: String,
    pub(crate) value: String,
}

impl Setting {
    /// moby's `newSettable`: the name ends at the first `=`, and a `.` after its
    /// first byte splits off the field at the last `.`.
    pub(crate) fn parse(arg: &str) -> Result<Self, ConfigError> {
        let (name, value) = match arg.find('=') {
            Some(0) => {
                return Err(ConfigError::SetFormat {
                    arg: arg.to_owned(),
                });
            }
            Some(i) => (&arg[..i], &arg[i + 1..]),
            None => (arg, ""),
        };
        let (name, field) = match name.rfind('.') {
            Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
            _ => (name, ""),
        };
        Ok(Self {
            name: name.to_owned(),
            field: field.to_owned(),
            value: value.to_owned(),
        })
    }

    /// moby's `newSettables`: every argument parsed first; one malformed argument
    /// fails them all.
    pub(crate) fn parse_all<I, S>(args: I) -> Result<Vec<Self>, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        args.into_iter()
            .map(|arg| Self::parse(arg.as_ref()))
            .collect()
    }

    /// moby's `prettyName`: `name.field`, or `name` without a field.
    fn pretty_name(&self) -> String {
        if self.field.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.name, self.field)
        }
    }

    /// moby's `isSettable`: without a field, an entry with one settable field
    /// defaults to it; the field must be both allowed for the kind and listed.
    pub(crate) fn check(
        &mut self,
        allowed: &[&str],
        settable: &[String],
    ) -> Result<(), ConfigError> {
        if self.field.is_empty() {
            match settable {
                [only] => self.field.clone_from(only),
                [] => {}
                _ => {
                    return Err(ConfigError::SetMultipleFields {
                        name: self.name.clone(),
                    });
                }
            }
        }
        if allowed.contains(&self.field.as_str()) && settable.contains(&self.field) {
            Ok(())
        } else {
            Err(ConfigError::NotSettable {
                setting: self.pretty_name(),
            })
        }
    }
}

impl PluginConfig {
    /// Applies `docker plugin set` arguments, `<name>[.<field>][=<value>]`: `DEBUG=1`
    /// (an env value), `args=-v --port 80` (args, split at each space),
    /// `state.source=/srv/state` (a mount's source), `fuse.path=/dev/fuse` (a device's
    /// path). Names are looked up in `env`, then `mounts`, then `linux.devices`, then
    /// `args`; the first entry with the name is the one set.
    ///
    /// Mirrors moby's `Plugin.Set`, errors included, word for word: `"x" is not
    /// settable`, `setting "x" not found in the plugin configuration`, `multiple
    /// fields are settable, one must be specified`, `invalid format, must be
    /// <name>[.<field>][=<value>]`, `Plugin config has no mount source` / `device
    /// path`. Two differences: it changes the config itself (dockerd keeps env and
    /// args changes in the plugin's separate settings, with the same effect on the
    /// running plugin), and it is all or nothing: on an error nothing is changed,
    /// where dockerd keeps the arguments before the failing one in memory. dockerd
    /// also refuses any `set` while the plugin is enabled; that is plugin state, not
    /// config, so it is not checked here. [`Settings::set`](crate::managed::settings::Settings::set)
    /// is dockerd's own form: settings beside the config, partial application.
    pub fn set<I, S>(&mut self, args: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let settings = Setting::parse_all(args)?;
        let mut next = self.clone();
        for setting in settings {
            next.apply(setting)?;
        }
        *self = next;
        Ok(())
    }

    fn apply(&mut self, mut s: Setting) -> Result<(), ConfigError> {
        if let Some(env) = self.env.iter_mut().find(|e| e.name == s.name) {
            s.check(ENV_FIELDS, &env.settable)?;
            env.value = Some(s.value);
            return Ok(());
        }
        if let Some(mount) = self.mounts.iter_mut().find(|m| m.name == s.name) {
            s.check(MOUNT_FIELDS, &mount.settable)?;
            let Some(source) = mount.source.as_mut() else {
                return Err(ConfigError::NoMountSource { name: s.name });
            };
            *source = s.value;
            return Ok(());
        }
        if let Some(device) = self.linux.devices.iter_mut().find(|d| d.name == s.name) {
            s.check(DEVICE_FIELDS, &device.settable)?;
            let Some(path) = device.path.as_mut() else {
                return Err(ConfigError::NoDevicePath { name: s.name });
            };
            *path = s.value;
            return Ok(());
        }
        if self.args.name == s.name {
            s.check(ARGS_FIELDS, &self.args.settable)?;
            self.args.value = s.value.split(' ').map(str::to_owned).collect();
            return Ok(());
        }
        Err(ConfigError::SettingNotFound { name: s.name })
    }
}
