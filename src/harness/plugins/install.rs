//! `docker plugin install REF` (with feature `registry`): the plugin pulled from its
//! registry as dockerd pulls it (manifest, plugin config, layers; moby v20.10.24
//! `plugin/backend_linux.go`, `Pull`), its privileges checked against the ones
//! granted (`plugin/manager.go`, `validatePrivileges`: "incorrect privileges"), then
//! created under its name and enabled, as the docker CLI's install does. So a test
//! proves push → install without a daemon.

use super::Plugins;
use crate::harness::error::HarnessError;
use crate::harness::ids::random_id;
use crate::managed::config::Privilege;
use crate::package::registry::{Connect, Reference, pull};

/// How to install: `docker plugin install [--alias NAME] [--grant-all-permissions]
/// [--disable] REF`.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// `--alias`: the local name (default: the reference).
    pub alias: Option<String>,
    /// `--grant-all-permissions`: accept whatever the plugin asks for.
    pub grant_all_permissions: bool,
    /// The privileges granted otherwise (the docker CLI shows them and asks): they
    /// must be the ones the plugin asks for.
    pub granted: Vec<Privilege>,
    /// `--disable`: install without enabling.
    pub disable: bool,
    /// How to reach the registry (TLS, plain HTTP, login).
    pub connect: Connect,
}

impl InstallOptions {
    /// `--grant-all-permissions`.
    pub fn grant_all_permissions() -> Self {
        Self {
            grant_all_permissions: true,
            ..Self::default()
        }
    }
}

/// dockerd's comparison: the same number of privileges and, once both are
/// sorted by name, the same from the second on (its loop starts at 1).
fn privileges_match(required: &[Privilege], granted: &[Privilege]) -> bool {
    if required.len() != granted.len() {
        return false;
    }
    let sorted = |list: &[Privilege]| {
        let mut list = list.to_vec();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    };
    let (a, b) = (sorted(required), sorted(granted));
    a.iter()
        .zip(&b)
        .skip(1)
        .all(|(x, y)| x.name == y.name && x.value == y.value)
}

impl Plugins {
    /// `docker plugin install REF`: pulls, checks the privileges, creates the plugin
    /// as `options.alias` (else `REF`) and enables it (unless `options.disable`).
    /// Returns its ID.
    pub async fn install(
        &self,
        reference: &str,
        options: InstallOptions,
    ) -> Result<String, HarnessError> {
        let parsed: Reference = reference.parse()?;
        let data_root = self.inner.managed.data_root()?.to_path_buf();
        let staging = data_root
            .join("plugins")
            .join(format!("tmp-{}", random_id()));
        let connect = options.connect.clone();
        let dir = staging.clone();
        let pulled =
            tokio::task::spawn_blocking(move || pull::pull(&parsed, &connect, &dir, &mut |_| {}))
                .await
                .map_err(|e| HarnessError::io("pulling", std::io::Error::other(e)));
        let result = async {
            let pulled = pulled??;
            let required = pulled.bundle.config().privileges();
            if !options.grant_all_permissions && !privileges_match(&required, &options.granted) {
                return Err(HarnessError::IncorrectPrivileges { required });
            }
            let name = options.alias.as_deref().unwrap_or(reference);
            let id = self.create(name, &staging).await?;
            if !options.disable {
                self.enable(name).await?;
            }
            Ok(id)
        }
        .await;
        let _ = std::fs::remove_dir_all(&staging);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privilege(name: &str, value: &str) -> Privilege {
        Privilege {
            name: name.into(),
            description: String::new(),
            value: vec![value.into()],
        }
    }

    #[test]
    fn privileges_are_compared_as_dockerd_compares_them() {
        let required = [
            privilege("network", "host"),
            privilege("device", "/dev/fuse"),
        ];
        let granted = [
            privilege("device", "/dev/fuse"),
            privilege("network", "host"),
        ];
        assert!(privileges_match(&required, &granted));
        assert!(!privileges_match(&required, &granted[..1]));
        assert!(!privileges_match(
            &required,
            &[
                privilege("device", "/dev/fuse"),
                privilege("network", "none")
            ]
        ));
        assert!(privileges_match(&[], &[]));
    }
}
