//! `input.BindMounts`: the host paths a container create asks to bind, as
//! opa-docker-authz lists them (its `main.go`, `listBindMounts`), so that its policies
//! on bind sources run unchanged. Both `HostConfig.Binds` (`/src:/dst[:ro]`; only
//! entries starting with `/`, read-only only when the third part is exactly `ro`) and
//! `HostConfig.Mounts` of `Type: "bind"`; each with `Resolved`, its path with symlinks
//! and `..` resolved on the plugin's filesystem (Go's `filepath.EvalSymlinks`, then
//! `Clean`), or `""` when that fails.

use serde::Serialize;
use serde_json::{Map, Value};

/// One bind mount, with opa-docker-authz's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindMount {
    /// The host path as given.
    pub source: String,
    /// Whether it is mounted read-only.
    pub read_only: bool,
    /// `source` resolved (symlinks, `..`); `""` when it cannot be (it does not exist).
    pub resolved: String,
}

/// The bind mounts of a container create body (blocking: resolving reads the disk).
pub fn bind_mounts(body: &Map<String, Value>) -> Vec<BindMount> {
    let mut mounts = Vec::new();
    if let Some(host_config) = body.get("HostConfig").and_then(Value::as_object) {
        if let Some(binds) = host_config.get("Binds").and_then(Value::as_array) {
            for bind in binds.iter().filter_map(Value::as_str) {
                if !bind.starts_with('/') {
                    continue; // a named volume
                }
                let parts: Vec<&str> = bind.split(':').collect();
                let read_only = parts.len() == 3 && parts[2] == "ro";
                mounts.push(unresolved(parts[0], read_only));
            }
        }
        if let Some(list) = host_config.get("Mounts").and_then(Value::as_array) {
            for mount in list.iter().filter_map(Value::as_object) {
                let kind = mount.get("Type").and_then(Value::as_str);
                let source = mount.get("Source").and_then(Value::as_str);
                if let (Some("bind"), Some(source)) = (kind, source) {
                    let read_only = mount.get("ReadOnly").and_then(Value::as_bool) == Some(true);
                    mounts.push(unresolved(source, read_only));
                }
            }
        }
    }
    for mount in &mut mounts {
        mount.resolved = std::fs::canonicalize(&mount.source)
            .map(|path| path.display().to_string())
            .unwrap_or_default();
    }
    mounts
}

fn unresolved(source: &str, read_only: bool) -> BindMount {
    BindMount {
        source: source.to_owned(),
        read_only,
        resolved: String::new(),
    }
}

#[cfg(test)]
mod tests {
    //! opa-docker-authz's `TestListBindMounts`, case by case.

    use super::*;

    fn mounts(body: &str) -> Vec<(String, bool, String)> {
        let body: Map<String, Value> = serde_json::from_str(body).unwrap();
        bind_mounts(&body)
            .into_iter()
            .map(|m| (m.source, m.read_only, m.resolved))
            .collect()
    }

    fn mount(source: &str, read_only: bool, resolved: &str) -> (String, bool, String) {
        (source.into(), read_only, resolved.into())
    }

    #[test]
    fn binds_starting_with_a_slash_are_listed_named_volumes_are_not() {
        assert_eq!(
            mounts(r#"{"HostConfig": {"Binds": ["/var:/home", "volume:/var/lib/app:ro"]}}"#),
            [mount("/var", false, "/var")]
        );
    }

    #[test]
    fn only_a_third_part_of_exactly_ro_is_read_only() {
        assert_eq!(
            mounts(
                r#"{"HostConfig": {"Binds": ["/var:/home:ro", "/var/lib:/mnt:rw", "/etc:/e:ro,z"]}}"#
            ),
            [
                mount("/var", true, "/var"),
                mount("/var/lib", false, "/var/lib"),
                mount("/etc", false, "/etc")
            ]
        );
    }

    #[test]
    fn dot_dots_and_symlinks_are_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir(&target).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dotdot = format!("{}/../../../../../../../", dir.path().display());
        let body = serde_json::json!({"HostConfig": {"Binds": [
            format!("{}:/host", link.display()),
            format!("{dotdot}:/host"),
        ]}});
        assert_eq!(
            mounts(&body.to_string()),
            [
                mount(
                    &link.display().to_string(),
                    false,
                    &target.display().to_string()
                ),
                mount(&dotdot, false, "/"),
            ]
        );
    }

    #[test]
    fn a_source_that_does_not_exist_resolves_to_nothing() {
        assert_eq!(
            mounts(r#"{"HostConfig": {"Binds": ["/no/such/dir:/d"]}}"#),
            [mount("/no/such/dir", false, "")]
        );
    }

    #[test]
    fn no_binds_null_binds_and_empty_binds_are_none() {
        for body in [
            r#"{"HostConfig": {}}"#,
            r#"{"HostConfig": {"Binds": null}}"#,
            r#"{"HostConfig": {"Binds": []}}"#,
            r#"{}"#,
        ] {
            assert_eq!(mounts(body), [], "{body}");
        }
    }

    #[test]
    fn mounts_of_type_bind_are_listed_with_their_read_only_flag() {
        assert_eq!(
            mounts(
                r#"{"HostConfig": {"Mounts": [
                    {"Source": "/var", "Target": "/mnt", "Type": "bind", "ReadOnly": true},
                    {"Source": "/home", "Target": "/home", "Type": "bind"},
                    {"Source": "vol", "Target": "/vol", "Type": "volume"},
                    {"Source1": "/etc", "Target": "/etc", "Type": "bind"}
                ]}}"#
            ),
            [mount("/var", true, "/var"), mount("/home", false, "/home")]
        );
    }

    #[test]
    fn binds_come_before_mounts_and_a_null_mount_list_is_ignored() {
        assert_eq!(
            mounts(
                r#"{"HostConfig": {"Binds": ["/var:/mnt/var:ro", "/home:/home"], "Mounts": null}}"#
            ),
            [mount("/var", true, "/var"), mount("/home", false, "/home")]
        );
    }
}
