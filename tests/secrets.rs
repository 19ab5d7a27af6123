//! The secrets SDK over a real unix socket, spoken to as swarmkit's dispatcher speaks
//! (moby v20.10.24 `vendor/github.com/docker/swarmkit/manager/drivers/secrets.go`):
//! every key of the request arrives typed, the value leaves as Go's base64 `[]byte`
//! with `DoNotReuse`, a value swarm would refuse is answered with an error naming its
//! size, and no value ever reaches a log line, a `Debug` output or an error message.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use docker_plugin_sdk::client::ClientError;
use docker_plugin_sdk::secrets::{self, *};
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{Error, Plugin, Result, async_trait};
use support::logs::Logs;
use support::server::{Recorder, TestServer};
use tracing::Level;

/// The values the test vault holds: none may appear in a log or an error.
const DB_PASSWORD: &str = "correct horse battery staple";
const TOKEN_PREFIX: &str = "tok3n-for-";

/// A provider keyed by secret name, recording the requests it gets.
#[derive(Default)]
struct Vault {
    requests: Mutex<Vec<GetSecretRequest>>,
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

async fn serve() -> (TestServer, Arc<Vault>) {
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

fn request(name: &str, task: &str) -> GetSecretRequest {
    GetSecretRequest {
        secret_name: name.into(),
        service_name: "web".into(),
        task_id: task.into(),
        node_id: "node1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_provider_implements_secretprovider_and_gets_every_key_swarm_sends() {
    let (s, vault) = serve().await;
    assert_eq!(
        s.client.activate().await.unwrap().implements,
        ["secretprovider"]
    );
    // The body swarmkit's dispatcher sends for a task of a service with every option
    // (tests/golden/secrets/getsecret.request.json, as Go's encoder writes it).
    let golden = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/secrets/getsecret.request.json"
    ))
    .unwrap();
    let body: serde_json::Value = serde_json::from_str(&golden).unwrap();
    let reply = s
        .client
        .call_raw("SecretProvider.GetSecret", format!("{body}\n"))
        .await
        .unwrap();
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (
            200,
            r#"{"Value":"Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ=="}"#.into()
        )
    );
    let got = vault.requests.lock().unwrap().pop().unwrap();
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        got,
        GetSecretRequest {
            secret_name: "db-password".into(),
            secret_labels: labels(&[("dirsecrets.per-task", "true"), ("env", "prod")]),
            service_hostname: "web-host".into(),
            service_id: "x2d0lq3rbx3pp0xsyq0alkx6m".into(),
            service_name: "web".into(),
            service_labels: labels(&[("tier", "front")]),
            task_id: "8s5emqhnkgo3zv7h3uw2knbh6".into(),
            task_name: "web.1.8s5emqhnkgo3zv7h3uw2knbh6".into(),
            task_image: "busybox:latest".into(),
            node_id: "r4yxwgaagd6pzlwx2sl2ugxm5".into(),
            service_endpoint_spec: Some(EndpointSpec {
                mode: EndpointMode::Dnsrr,
                ports: vec![
                    PortConfig {
                        name: "http".into(),
                        protocol: PortProtocol::Tcp,
                        target_port: 80,
                        published_port: 8080,
                        publish_mode: PublishMode::Ingress,
                    },
                    PortConfig {
                        name: String::new(),
                        protocol: PortProtocol::Udp,
                        target_port: 53,
                        published_port: 5353,
                        publish_mode: PublishMode::Host,
                    },
                ],
            }),
        }
    );
}

#[tokio::test]
async fn a_per_task_value_carries_do_not_reuse_and_decodes_as_dockerd_reads_it() {
    let (s, _) = serve().await;
    let reply = s
        .client
        .call_raw(
            "SecretProvider.GetSecret",
            "{\"SecretName\":\"token\",\"TaskID\":\"t1\"}\n",
        )
        .await
        .unwrap();
    // base64("tok3n-for-t1")
    assert_eq!(
        reply.text(),
        r#"{"Value":"dG9rM24tZm9yLXQx","DoNotReuse":true}"#
    );
    let typed = s
        .client
        .call::<GetSecret>(&request("token", "t2"))
        .await
        .unwrap();
    assert_eq!(typed.value.expose(), b"tok3n-for-t2");
    assert!(typed.do_not_reuse);
    let reusable = s
        .client
        .call::<GetSecret>(&request("db-password", "t3"))
        .await
        .unwrap();
    assert_eq!(reusable.value.expose(), DB_PASSWORD.as_bytes());
    assert!(!reusable.do_not_reuse);
}

#[tokio::test]
async fn a_value_swarm_would_refuse_is_answered_with_an_error_naming_its_size() {
    let (s, _) = serve().await;
    let err = s
        .client
        .call::<GetSecret>(&request("empty", "t1"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "SecretProvider.GetSecret: secret empty: the value is empty: swarm needs at least 1 \
         byte (swarmkit's ValidateSecretPayload would refuse it) (HTTP 500)"
    );
    let err = s
        .client
        .call::<GetSecret>(&request("huge", "t1"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "SecretProvider.GetSecret: secret huge: the value is 512000 bytes: swarm takes less \
         than 512000 bytes (500 KiB) (swarmkit's ValidateSecretPayload would refuse it) \
         (HTTP 500)"
    );
    let err = s
        .client
        .call::<GetSecret>(&request("nope", "t1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Plugin { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "SecretProvider.GetSecret: vault: no secret named nope (HTTP 500)"
    );
}

#[tokio::test]
async fn values_never_reach_the_logs_the_debug_output_or_the_errors() {
    let (logs, _guard) = Logs::capture(Level::TRACE);
    let (s, _) = serve().await;
    let mut seen = Vec::new();
    for (name, task) in [
        ("db-password", "t1"),
        ("token", "t2"),
        ("huge", "t3"),
        ("nope", "t4"),
    ] {
        match s.client.call::<GetSecret>(&request(name, task)).await {
            Ok(reply) => seen.push(format!("{reply:?} {:?}", reply.value)),
            Err(err) => seen.push(format!("{err} {err:?}")),
        }
    }
    s.shutdown().await.unwrap();
    let text = logs.text();
    // The calls were logged, by secret name.
    assert!(text.contains(r#"name="db-password""#), "{text}");
    assert!(text.contains("answering"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    // The huge value was refused with a warning naming its size.
    assert!(
        text.contains("GetSecret: the value is 512000 bytes"),
        "{text}"
    );
    let base64_of = |v: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(v)
    };
    let all = format!("{text}\n{}", seen.join("\n"));
    for secret in [
        DB_PASSWORD.to_owned(),
        base64_of(DB_PASSWORD),
        TOKEN_PREFIX.to_owned(),
        base64_of("tok3n-for-t2"),
        "hhhhhhhh".to_owned(),
    ] {
        assert!(!all.contains(&secret), "{secret:?} leaked:\n{all}");
    }
    assert_eq!(
        seen[0],
        "GetSecretResponse { value: <redacted>, do_not_reuse: false } <redacted>"
    );
}
