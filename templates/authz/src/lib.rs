//! `{{project-name}}`'s policy: which Engine API calls dockerd may run. dockerd started
//! with `--authorization-plugin={{project-name}}` asks it before every call (AuthZReq);
//! a deny's message reaches the user as `Error response from daemon: authorization
//! denied by plugin {{project-name}}: <message>`.
//!
//! This one refuses privileged containers and host directories bound into containers
//! from outside the allowed ones (`--allow-bind DIR`), and allows every other call. It
//! fails closed: a container create whose body it cannot read (dockerd 20.10 leaves
//! out bodies of 1 MiB or more) is refused, never waved through. Write your rules in
//! [`Policy::decide`]; keep it fast and free of I/O that may hang, as dockerd waits for
//! it on every API call.

use std::path::{Component, Path, PathBuf};

use docker_plugin_sdk::authz::{self, Decision, Request};
use docker_plugin_sdk::{Result, async_trait};
use serde_json::Value;

/// The policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Host directories containers may bind (and what is below them).
    allowed_binds: Vec<PathBuf>,
}

impl Policy {
    /// A policy letting containers bind host paths under `allowed_binds` only.
    pub fn new(allowed_binds: Vec<PathBuf>) -> Self {
        Self { allowed_binds }
    }

    /// The decision on one API call.
    pub fn decide(&self, req: &Request) -> Decision {
        if req.method != "POST" || req.endpoint() != "/containers/create" {
            return Decision::allow();
        }
        let Some(body) = req.body.json() else {
            return Decision::deny(
                "a container create whose body cannot be read (1 MiB or more?) is refused",
            );
        };
        let host_config = &body["HostConfig"];
        if host_config["Privileged"] == true {
            return Decision::deny("privileged containers are not allowed");
        }
        for source in bind_sources(host_config) {
            if !self.allows_bind(source) {
                return Decision::deny(format!(
                    "binding host path {source} is not allowed (allowed: {})",
                    self.allowed_list()
                ));
            }
        }
        Decision::allow()
    }

    /// Whether `source` is one of the allowed directories or below one. The check is
    /// on the path as written: one with `..` is refused rather than resolved.
    fn allows_bind(&self, source: &str) -> bool {
        let path = Path::new(source);
        !path.components().any(|c| c == Component::ParentDir)
            && self.allowed_binds.iter().any(|dir| path.starts_with(dir))
    }

    fn allowed_list(&self) -> String {
        if self.allowed_binds.is_empty() {
            return "none".into();
        }
        let dirs: Vec<String> = self
            .allowed_binds
            .iter()
            .map(|dir| dir.display().to_string())
            .collect();
        dirs.join(", ")
    }
}

/// The host paths a create binds: `Binds` entries `/src:/dst[:opts]` (one not starting
/// with `/` is a named volume) and `Mounts` of type `bind`.
fn bind_sources(host_config: &Value) -> Vec<&str> {
    let binds = host_config["Binds"].as_array().into_iter().flatten();
    let binds = binds
        .filter_map(Value::as_str)
        .filter(|bind| bind.starts_with('/'))
        .map(|bind| bind.split(':').next().unwrap_or(bind));
    let mounts = host_config["Mounts"].as_array().into_iter().flatten();
    let mounts = mounts
        .filter(|mount| mount["Type"] == "bind")
        .filter_map(|mount| mount["Source"].as_str());
    binds.chain(mounts).collect()
}

#[async_trait]
impl authz::Plugin for Policy {
    async fn authorize_request(&self, req: &Request) -> Result<Decision> {
        Ok(self.decide(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docker_plugin_sdk::authz::AuthZRequest;
    use serde_json::json;

    /// A container create as dockerd passes it on: `body` is `None` when dockerd left
    /// it out.
    fn create(body: Option<Value>) -> Request {
        let mut wire = AuthZRequest {
            request_method: "POST".into(),
            request_uri: "/v1.41/containers/create?name=web".into(),
            ..Default::default()
        };
        if let Some(body) = body {
            wire.request_body = body.to_string().into_bytes();
        }
        wire.decode().unwrap().0
    }

    fn policy() -> Policy {
        Policy::new(vec!["/srv/data".into()])
    }

    #[test]
    fn other_calls_are_allowed() {
        let wire = AuthZRequest {
            request_method: "GET".into(),
            request_uri: "/v1.41/volumes".into(),
            ..Default::default()
        };
        assert!(policy().decide(&wire.decode().unwrap().0).allow);
    }

    #[test]
    fn privileged_containers_are_refused() {
        let body = json!({"Image": "busybox", "HostConfig": {"Privileged": true}});
        assert_eq!(
            policy().decide(&create(Some(body))),
            Decision::deny("privileged containers are not allowed")
        );
        let body = json!({"Image": "busybox", "HostConfig": {"Privileged": false}});
        assert!(policy().decide(&create(Some(body))).allow);
    }

    #[test]
    fn binds_are_allowed_only_under_the_allowed_dirs() {
        let binds = |binds: Value| create(Some(json!({"HostConfig": {"Binds": binds}})));
        assert!(
            policy()
                .decide(&binds(json!(["/srv/data/a:/a:ro", "named:/n"])))
                .allow
        );
        assert_eq!(
            policy().decide(&binds(json!(["/srv/data/../../etc:/etc"]))),
            Decision::deny(
                "binding host path /srv/data/../../etc is not allowed (allowed: /srv/data)"
            )
        );
        assert!(!policy().decide(&binds(json!(["/srv/database:/d"]))).allow);
        let mount = json!({"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/"}]}});
        assert_eq!(
            Policy::default().decide(&create(Some(mount))),
            Decision::deny("binding host path / is not allowed (allowed: none)")
        );
    }

    #[test]
    fn a_create_without_its_body_is_refused() {
        assert_eq!(
            policy().decide(&create(None)),
            Decision::deny(
                "a container create whose body cannot be read (1 MiB or more?) is refused"
            )
        );
    }
}
