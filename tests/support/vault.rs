//! A secret provider for the tests: values by secret name, the requests recorded.

use std::sync::{Arc, Mutex};

use docker_plugin_sdk::secrets::{self, GetSecretRequest, GetSecretResponse, MAX_VALUE_LEN};
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{Error, Plugin, Result, async_trait};

use super::server::{Recorder, TestServer};

/// The values the test vault holds: none may appear in a log or an error.
pub const DB_PASSWORD: &str = "correct horse battery staple";
pub const TOKEN_PREFIX: &str = "tok3n-for-";

/// A provider keyed by secret name, recording the requests it gets.
#[derive(Default)]
pub struct Vault {
    pub requests: Mutex<Vec<GetSecretRequest>>,
}

#[async_trait]
impl secrets::Provider for Vault {
    async fn get_secret(&self, req: GetSecretRequest) -> Result<GetSecretResponse> {
        self.requests.lock().unwrap().push(req.clone());
        let reply = match req.secret_name.as_str() {
            "db-password" => GetSecretResponse::new(DB_PASSWORD),
            "token" => {
                GetSecretResponse::new(format!("{TOKEN_PREFIX}{}", req.task_id)).do_not_reuse()
            }
            "empty" => GetSecretResponse::new(""),
            "huge" => GetSecretResponse::new(vec![b'h'; MAX_VALUE_LEN]),
            other => return Err(Error::new(format!("vault: no secret named {other}"))),
        };
        // An author who logs the reply shows no value: its Debug is redacted.
        tracing::info!(?reply, "answering");
        Ok(reply)
    }
}

pub async fn serve() -> (TestServer, Arc<Vault>) {
    let vault = Arc::new(Vault::default());
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixSocket::new("vault").dir(dir.path()).bind().unwrap();
    let plugin = Plugin::new().secrets(Shared(Arc::clone(&vault)));
    let server = TestServer::serve(dir, listener, plugin, Arc::new(Recorder::default()));
    (server, vault)
}

struct Shared(Arc<Vault>);

#[async_trait]
impl secrets::Provider for Shared {
    async fn get_secret(&self, req: GetSecretRequest) -> Result<GetSecretResponse> {
        self.0.get_secret(req).await
    }
}

pub fn request(name: &str, task: &str) -> GetSecretRequest {
    GetSecretRequest {
        secret_name: name.into(),
        service_name: "web".into(),
        task_id: task.into(),
        node_id: "node1".into(),
        ..Default::default()
    }
}
