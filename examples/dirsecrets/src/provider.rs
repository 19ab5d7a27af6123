//! The provider: which file a secret comes from, and the per-task values.
//!
//! **Selection rule**, first match wins, every path inside the directory (a path that
//! is absolute, has `..` or would leave it otherwise is refused):
//!
//! 1. the secret's label `dirsecrets.file=PATH`: the file `DIR/PATH`;
//! 2. the label `dirsecrets.env=ENV`: the file `DIR/ENV/NAME` (one directory per
//!    environment, the same secret name in each);
//! 3. else the file `DIR/NAME`, NAME being the secret's name.
//!
//! The file's bytes are the value, as they are. With the label
//! `dirsecrets.per-task=true` the file is a template rendered for the task asking:
//! `${TASK_ID}`, `${TASK_NAME}`, `${SERVICE_NAME}` and `${NODE_ID}` are replaced, and
//! the value is marked `DoNotReuse` (each task gets its own, and swarm asks again for
//! the next task). Errors name the secret and the file, never a value.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use docker_plugin_sdk::secrets::{self, GetSecretRequest, GetSecretResponse, SecretValue};
use docker_plugin_sdk::{Error, Result, async_trait};

/// The label naming the file, relative to the directory.
pub const FILE_LABEL: &str = "dirsecrets.file";
/// The label naming the environment's subdirectory.
pub const ENV_LABEL: &str = "dirsecrets.env";
/// The label asking for a per-task value.
pub const PER_TASK_LABEL: &str = "dirsecrets.per-task";

/// Secrets from the files of one directory.
pub struct DirSecrets {
    dir: PathBuf,
}

impl DirSecrets {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file of the secret `req` asks for (the selection rule).
    fn file_for(&self, req: &GetSecretRequest) -> Result<PathBuf> {
        let name = &req.secret_name;
        let relative = match (
            req.secret_labels.get(FILE_LABEL),
            req.secret_labels.get(ENV_LABEL),
        ) {
            (Some(file), _) => PathBuf::from(file),
            (None, Some(env)) => Path::new(env).join(name),
            (None, None) => PathBuf::from(name),
        };
        let inside = !relative.as_os_str().is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(Error::new(format!(
                "secret {name}: {} is not a path inside {} (no `..`, not absolute): fix \
                 the secret's name or its {FILE_LABEL}/{ENV_LABEL} label",
                relative.display(),
                self.dir.display()
            )));
        }
        Ok(self.dir.join(relative))
    }
}

/// The file rendered for the task: `${TASK_ID}`, `${TASK_NAME}`, `${SERVICE_NAME}`,
/// `${NODE_ID}` replaced.
fn render(template: &[u8], req: &GetSecretRequest) -> SecretValue {
    let mut text = String::from_utf8_lossy(template).into_owned();
    for (key, value) in [
        ("${TASK_ID}", &req.task_id),
        ("${TASK_NAME}", &req.task_name),
        ("${SERVICE_NAME}", &req.service_name),
        ("${NODE_ID}", &req.node_id),
    ] {
        text = text.replace(key, value);
    }
    SecretValue::from(text)
}

#[async_trait]
impl secrets::Provider for DirSecrets {
    async fn get_secret(&self, req: GetSecretRequest) -> Result<GetSecretResponse> {
        let path = self.file_for(&req)?;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => SecretValue::from(bytes),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(Error::new(format!(
                    "secret {}: no file {}: write the value there, or label the secret \
                     {FILE_LABEL}=PATH",
                    req.secret_name,
                    path.display()
                )));
            }
            Err(err) => {
                return Err(Error::new(format!(
                    "secret {}: reading {}: {err}",
                    req.secret_name,
                    path.display()
                )));
            }
        };
        let per_task = req.secret_labels.get(PER_TASK_LABEL).map(String::as_str) == Some("true");
        tracing::info!(secret = %req.secret_name, task = %req.task_id, file = %path.display(), per_task, "serving secret");
        Ok(match per_task {
            true => GetSecretResponse::new(render(bytes.expose(), &req)).do_not_reuse(),
            false => GetSecretResponse::new(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use docker_plugin_sdk::secrets::Provider;

    use super::*;

    fn request(name: &str, labels: &[(&str, &str)]) -> GetSecretRequest {
        GetSecretRequest {
            secret_name: name.into(),
            secret_labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            task_id: "task1".into(),
            task_name: "web.1.task1".into(),
            service_name: "web".into(),
            node_id: "node1".into(),
            ..Default::default()
        }
    }

    fn dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db-password"), b"plain\x00bytes").unwrap();
        std::fs::create_dir(dir.path().join("prod")).unwrap();
        std::fs::write(dir.path().join("prod/db-password"), "prod-pass").unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/web.pem"), "PEM").unwrap();
        std::fs::write(
            dir.path().join("token"),
            "token for ${SERVICE_NAME} task ${TASK_ID} (${TASK_NAME}) on ${NODE_ID}",
        )
        .unwrap();
        dir
    }

    async fn get(dir: &Path, req: GetSecretRequest) -> Result<GetSecretResponse> {
        DirSecrets::new(dir).get_secret(req).await
    }

    #[tokio::test]
    async fn the_file_is_chosen_by_label_then_environment_then_name() {
        let d = dir();
        let by_name = get(d.path(), request("db-password", &[])).await.unwrap();
        assert_eq!(by_name.value.expose(), b"plain\x00bytes");
        assert!(!by_name.do_not_reuse);
        let by_env = get(d.path(), request("db-password", &[(ENV_LABEL, "prod")]))
            .await
            .unwrap();
        assert_eq!(by_env.value.expose(), b"prod-pass");
        let by_file = get(
            d.path(),
            request(
                "whatever",
                &[(FILE_LABEL, "certs/web.pem"), (ENV_LABEL, "prod")],
            ),
        )
        .await
        .unwrap();
        assert_eq!(by_file.value.expose(), b"PEM");
    }

    #[tokio::test]
    async fn a_per_task_secret_is_rendered_for_the_task_and_not_reused() {
        let d = dir();
        let reply = get(d.path(), request("token", &[(PER_TASK_LABEL, "true")]))
            .await
            .unwrap();
        assert!(reply.do_not_reuse);
        assert_eq!(
            reply.value.expose(),
            b"token for web task task1 (web.1.task1) on node1"
        );
        // Without the label the template is served as it is.
        let plain = get(d.path(), request("token", &[])).await.unwrap();
        assert!(
            plain
                .value
                .expose()
                .starts_with(b"token for ${SERVICE_NAME}")
        );
    }

    #[tokio::test]
    async fn errors_name_the_secret_and_the_file_never_a_value() {
        let d = dir();
        let err = get(d.path(), request("missing", &[])).await.unwrap_err();
        assert_eq!(
            err.message(),
            format!(
                "secret missing: no file {}/missing: write the value there, or label the \
                 secret dirsecrets.file=PATH",
                d.path().display()
            )
        );
        for bad in ["../etc/shadow", "/etc/shadow"] {
            let err = get(d.path(), request("x", &[(FILE_LABEL, bad)]))
                .await
                .unwrap_err();
            assert_eq!(
                err.message(),
                format!(
                    "secret x: {bad} is not a path inside {} (no `..`, not absolute): fix \
                     the secret's name or its dirsecrets.file/dirsecrets.env label",
                    d.path().display()
                )
            );
        }
        let err = get(d.path(), request("x", &[(ENV_LABEL, "..")]))
            .await
            .unwrap_err();
        assert!(
            err.message().contains("../x is not a path inside"),
            "{}",
            err.message()
        );
    }
}
