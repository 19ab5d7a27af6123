//! The secrets SDK over a real unix socket, spoken to as swarmkit's dispatcher speaks
//! (moby v20.10.24 `vendor/github.com/docker/swarmkit/manager/drivers/secrets.go`):
//! every key of the request arrives typed, the value leaves as Go's base64 `[]byte`
//! with `DoNotReuse`, a value swarm would refuse is answered with an error naming its
//! size. That no value reaches a log line is in `tests/server_logs.rs`.

mod support;

use std::collections::BTreeMap;

use docker_plugin_sdk::client::ClientError;
use docker_plugin_sdk::secrets::*;
use support::vault::{DB_PASSWORD, request, serve};

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
