//! The server core over a real unix socket, spoken to the way dockerd speaks: every
//! volume method, content negotiation, the bodies dockerd sends, and every kind of bad
//! input, each answered with a JSON error while the server keeps serving.

mod support;

use std::time::Duration;

use bytes::Bytes;
use docker_plugin_sdk::client::{Client, ClientError, RawResponse};
use docker_plugin_sdk::protocol::{Empty, MEDIA_TYPE_V1, MEDIA_TYPE_V1_1, MEDIA_TYPE_V1_2};
use docker_plugin_sdk::volume::*;
use http::{Method, Request, StatusCode, header::ACCEPT};
use http_body_util::Full;
use serde_json::{Value, json};
use support::server::{Recorder, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ID: &str = "b87d7442095999a92b65b3d9691e697b61713829cc0ffd1bb72e4ccd51aa4d6c";

async fn server() -> TestServer {
    TestServer::start(Recorder::default(), |p| p).await
}

fn request(method: Method, path: &str, accept: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(accept) = accept {
        builder = builder.header(ACCEPT, accept);
    }
    builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// Asserts a JSON error reply with `status` whose `Err` contains `needle`.
fn assert_err(reply: &RawResponse, status: u16, needle: &str) {
    assert_eq!(reply.status.as_u16(), status, "body: {}", reply.text());
    let body = reply
        .json()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.text()));
    let err = body["Err"]
        .as_str()
        .unwrap_or_else(|| panic!("no Err in {body}"));
    assert!(err.contains(needle), "Err {err:?} lacks {needle:?}");
}

/// Sends raw bytes on a fresh connection and returns everything the server answers.
async fn raw_exchange(socket: &std::path::Path, bytes: &[u8]) -> String {
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn activate_lists_the_registered_subsystems() {
    let s = server().await;
    let reply = s.client.call_raw("Plugin.Activate", "").await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type.as_deref(), Some(MEDIA_TYPE_V1_2));
    assert_eq!(
        reply.json().unwrap(),
        json!({"Implements": ["VolumeDriver"]})
    );
    assert_eq!(
        s.client.activate().await.unwrap().implements,
        ["VolumeDriver"]
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn accept_v1_v1_1_v1_2_or_none_is_answered_in_kind() {
    let s = server().await;
    for (accept, expected) in [
        (None, MEDIA_TYPE_V1),
        (Some(MEDIA_TYPE_V1), MEDIA_TYPE_V1),
        (Some(MEDIA_TYPE_V1_1), MEDIA_TYPE_V1_1),
        (Some(MEDIA_TYPE_V1_2), MEDIA_TYPE_V1_2),
        (Some("application/json"), MEDIA_TYPE_V1),
        (Some("*/*"), MEDIA_TYPE_V1),
        // A later dockerd must not find every plugin refusing it.
        (
            Some("application/vnd.docker.plugins.v1.3+json"),
            MEDIA_TYPE_V1_2,
        ),
    ] {
        let reply = s
            .client
            .send(request(Method::POST, "/VolumeDriver.List", accept, "{}\n"))
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "Accept {accept:?}");
        assert_eq!(
            reply.content_type.as_deref(),
            Some(expected),
            "Accept {accept:?}"
        );
    }
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_volume_method_speaks_dockers_json() {
    let s = server().await;
    let c = &s.client;
    let call = |method: &'static str, body: String| async move {
        let reply = c.call_raw(method, body).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{method}: {}", reply.text());
        reply.json().unwrap()
    };
    let create = json!({"Name": "v1", "Opts": {"size": "1G", "mode": "0750"}});
    assert_eq!(
        call("VolumeDriver.Create", format!("{create}\n")).await,
        json!({})
    );
    let mount = json!({"Name": "v1", "ID": ID});
    assert_eq!(
        call("VolumeDriver.Mount", format!("{mount}\n")).await,
        json!({"Mountpoint": "/mnt/v1"})
    );
    assert_eq!(
        call("VolumeDriver.Path", "{\"Name\":\"v1\"}\n".into()).await,
        json!({"Mountpoint": "/mnt/v1"})
    );
    assert_eq!(
        call("VolumeDriver.Unmount", format!("{mount}\n")).await,
        json!({})
    );
    assert_eq!(
        call("VolumeDriver.Get", "{\"Name\":\"v1\"}\n".into()).await,
        json!({"Volume": {"Name": "v1", "Status": {"answer": 42}}})
    );
    assert_eq!(
        call("VolumeDriver.List", "{}\n".into()).await,
        json!({"Volumes": [{"Name": "a", "Mountpoint": "/mnt/a"}, {"Name": "b"}]})
    );
    assert_eq!(
        call("VolumeDriver.Remove", "{\"Name\":\"v1\"}\n".into()).await,
        json!({})
    );
    assert_eq!(
        s.driver.calls(),
        [
            "Create v1 [mode=0750,size=1G]".to_string(),
            format!("Mount v1 {ID}"),
            "Path v1".into(),
            format!("Unmount v1 {ID}"),
            "Get v1".into(),
            "List".into(),
            "Remove v1".into(),
        ]
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn typed_client_round_trips_every_method() {
    let s = TestServer::start(
        Recorder {
            capabilities: true,
            ..Default::default()
        },
        |p| p,
    )
    .await;
    let v = &s.client;
    v.call::<Create>(&CreateRequest {
        name: "t".into(),
        opts: Default::default(),
    })
    .await
    .unwrap();
    let mount = v
        .call::<Mount>(&MountRequest {
            name: "t".into(),
            id: ID.into(),
        })
        .await
        .unwrap();
    assert_eq!(mount.mountpoint.to_str(), Some("/mnt/t"));
    v.call::<Unmount>(&UnmountRequest {
        name: "t".into(),
        id: ID.into(),
    })
    .await
    .unwrap();
    assert_eq!(
        v.call::<Path>(&PathRequest { name: "t".into() })
            .await
            .unwrap()
            .mountpoint
            .to_str(),
        Some("/mnt/t")
    );
    assert_eq!(
        v.call::<Get>(&GetRequest { name: "t".into() })
            .await
            .unwrap()
            .volume
            .name,
        "t"
    );
    assert_eq!(v.call::<List>(&Empty {}).await.unwrap().volumes.len(), 2);
    assert_eq!(
        v.call::<Capabilities>(&Empty {})
            .await
            .unwrap()
            .capabilities
            .scope,
        Scope::Global
    );
    v.call::<Remove>(&RemoveRequest { name: "t".into() })
        .await
        .unwrap();
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn empty_null_and_newline_bodies_mean_no_arguments() {
    let s = server().await;
    for body in ["", "null", "null\n", "{}", "{}\n", " \n"] {
        let reply = s.client.call_raw("VolumeDriver.List", body).await.unwrap();
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "body {body:?}: {}",
            reply.text()
        );
        let reply = s.client.call_raw("Plugin.Activate", body).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "activate body {body:?}");
    }
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn null_opts_and_unknown_fields_are_accepted() {
    let s = server().await;
    let reply = s
        .client
        .call_raw(
            "VolumeDriver.Create",
            "{\"Name\":\"v\",\"Opts\":null,\"Future\":[1]}\n",
        )
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(s.driver.calls(), ["Create v []"]);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn capabilities_is_not_implemented_by_default() {
    let s = server().await;
    let reply = s
        .client
        .call_raw("VolumeDriver.Capabilities", "{}\n")
        .await
        .unwrap();
    assert_err(&reply, 404, "VolumeDriver.Capabilities");
    let err = s.client.call::<Capabilities>(&Empty {}).await.unwrap_err();
    assert!(err.is_not_implemented(), "{err}");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn driver_errors_become_err_with_status_500() {
    let s = server().await;
    let reply = s
        .client
        .call_raw("VolumeDriver.Create", "{\"Name\":\"fail\"}\n")
        .await
        .unwrap();
    assert_err(&reply, 500, "the backend is on fire");
    let err = s
        .client
        .call::<Get>(&GetRequest {
            name: "missing".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Plugin { status: 500, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no such volume"), "{err}");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_json_is_a_400_and_the_server_keeps_serving() {
    let s = server().await;
    for (body, needle) in [
        (
            "{\"Name\":",
            "malformed JSON in VolumeDriver.Create request",
        ),
        ("[1,2]", "malformed JSON"),
        ("{\"Name\": 7}", "invalid type"),
        ("{\"Opts\":{}}", "missing field `Name`"),
        ("{\"Name\":\"x\",\"Opts\":{\"a\":1}}", "invalid type"),
    ] {
        let reply = s
            .client
            .call_raw("VolumeDriver.Create", body)
            .await
            .unwrap();
        assert_err(&reply, 400, needle);
    }
    let reply = s
        .client
        .call_raw("VolumeDriver.Mount", "{\"Name\":\"v\"}")
        .await
        .unwrap();
    assert_err(&reply, 400, "missing field `ID`");
    assert!(
        s.driver.calls().is_empty(),
        "the driver saw a malformed request"
    );
    assert!(s.client.activate().await.is_ok());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let s = TestServer::start(Recorder::default(), |p| p.body_limit(64)).await;
    let big = format!("{{\"Name\":\"{}\"}}", "x".repeat(100));
    let reply = s
        .client
        .call_raw("VolumeDriver.Create", big.clone())
        .await
        .unwrap();
    assert_err(&reply, 413, "larger than the 64-byte limit");
    // Without Content-Length (chunked): the limit is enforced while reading.
    let chunked = format!(
        "POST /VolumeDriver.Create HTTP/1.1\r\nHost: plugin\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let answer = raw_exchange(&s.socket, chunked.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"Err\""), "{answer}");
    // Small bodies still work.
    let reply = s
        .client
        .call_raw("VolumeDriver.Create", "{\"Name\":\"ok\"}")
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(s.driver.calls(), ["Create ok []"]);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_default_body_limit_is_one_mebibyte() {
    let s = server().await;
    let under = format!(
        "{{\"Name\":\"v\",\"Opts\":{{\"k\":\"{}\"}}}}",
        "x".repeat(1000 * 1000)
    );
    let reply = s
        .client
        .call_raw("VolumeDriver.Create", under)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let over = format!(
        "{{\"Name\":\"v\",\"Opts\":{{\"k\":\"{}\"}}}}",
        "x".repeat(1024 * 1024)
    );
    let reply = s
        .client
        .call_raw("VolumeDriver.Create", over)
        .await
        .unwrap();
    assert_err(&reply, 413, "1048576-byte limit");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_endpoints_are_a_json_404() {
    let s = server().await;
    for path in [
        "NetworkDriver.CreateNetwork",
        "VolumeDriver.Frobnicate",
        "",
        "a/b/c",
    ] {
        let reply = s.client.call_raw(path, "{}").await.unwrap();
        assert_err(&reply, 404, "unknown endpoint");
    }
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn unacceptable_accept_is_406_and_other_methods_405() {
    let s = server().await;
    let reply = s
        .client
        .send(request(
            Method::POST,
            "/VolumeDriver.List",
            Some("text/html"),
            "{}",
        ))
        .await
        .unwrap();
    assert_err(&reply, 406, "text/html");
    let reply = s
        .client
        .send(request(
            Method::GET,
            "/VolumeDriver.List",
            Some(MEDIA_TYPE_V1_2),
            "",
        ))
        .await
        .unwrap();
    assert_err(&reply, 405, "POST");
    let reply = s
        .client
        .send(request(Method::GET, "/Plugin.Activate", None, ""))
        .await
        .unwrap();
    assert_err(&reply, 405, "POST");
    let answer = raw_exchange(
        &s.socket,
        b"GET /VolumeDriver.List HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer.to_lowercase().contains("\r\nallow: post\r\n"),
        "{answer}"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_empty_body_names_what_the_call_needs() {
    let s = server().await;
    for (method, field) in [
        ("VolumeDriver.Create", "Name"),
        ("VolumeDriver.Mount", "Name"),
    ] {
        for body in ["", "\n", "null"] {
            let reply = s.client.call_raw(method, body).await.unwrap();
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
            assert_eq!(
                reply.json().unwrap()["Err"],
                format!(
                    "empty body in {method} request: this call needs a JSON body with `{field}`"
                ),
                "{method} {body:?}"
            );
        }
    }
    assert!(s.driver.calls().is_empty());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_panicking_driver_gets_a_500_and_the_server_keeps_serving() {
    let s = server().await;
    for _ in 0..3 {
        let reply = s
            .client
            .call_raw("VolumeDriver.Remove", "{\"Name\":\"panic\"}")
            .await
            .unwrap();
        assert_err(
            &reply,
            500,
            "panicked in VolumeDriver.Remove: driver bug on purpose",
        );
    }
    let reply = s
        .client
        .call_raw("VolumeDriver.Remove", "{\"Name\":\"fine\"}")
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_call_over_its_deadline_is_an_error() {
    let s = TestServer::start(Recorder::default(), |p| {
        p.call_timeout(Duration::from_millis(50))
    })
    .await;
    let body = format!("{{\"Name\":\"slow\",\"ID\":\"{ID}\"}}");
    let reply = s.client.call_raw("VolumeDriver.Mount", body).await.unwrap();
    assert_err(&reply, 500, "did not finish within 50 ms");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn keep_alive_connections_serve_many_calls() {
    let s = server().await;
    let one = "POST /VolumeDriver.Get HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: 14\r\n\r\n{\"Name\":\"v1\"}\n";
    let last = one.replace("Host: plugin\r\n", "Host: plugin\r\nConnection: close\r\n");
    let answer = raw_exchange(&s.socket, format!("{one}{one}{last}").as_bytes()).await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 3, "{answer}");
    assert_eq!(s.driver.calls().len(), 3);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_in_flight_calls_then_removes_the_socket() {
    let s = server().await;
    let client = s.client.clone();
    let body = format!("{{\"Name\":\"slow\",\"ID\":\"{ID}\"}}\n");
    let call = tokio::spawn(async move { client.call_raw("VolumeDriver.Mount", body).await });
    s.driver.started.notified().await;
    s.stop.cancel();
    // The listener is closed: new connections fail while the call is still running.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = Client::unix(&s.socket).activate().await;
    assert!(
        matches!(refused, Err(ClientError::Connect { .. })),
        "{refused:?}"
    );
    s.driver.release.notify_one();
    let reply = call.await.unwrap().unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json().unwrap(), json!({"Mountpoint": "/mnt/slow"}));
    s.task.await.unwrap().unwrap();
    assert!(!s.socket.exists(), "socket left behind");
}

#[tokio::test]
async fn drain_timeout_bounds_shutdown() {
    let recorder = std::sync::Arc::new(Recorder::default());
    let dir = tempfile::tempdir().unwrap();
    let listener = docker_plugin_sdk::transport::UnixSocket::new("t")
        .dir(dir.path())
        .bind()
        .unwrap();
    let socket = listener.unix_path().unwrap().to_path_buf();
    let stop = docker_plugin_sdk::CancellationToken::new();
    let server = docker_plugin_sdk::Plugin::new()
        .volume(support::server::Shared(recorder.clone()))
        .server(listener)
        .shutdown_on(stop.clone())
        .drain_timeout(Duration::from_millis(200));
    let task = tokio::spawn(server.run());
    let client = Client::unix(&socket);
    let call = tokio::spawn(async move {
        client
            .call_raw(
                "VolumeDriver.Mount",
                format!("{{\"Name\":\"slow\",\"ID\":\"{ID}\"}}"),
            )
            .await
    });
    recorder.started.notified().await;
    stop.cancel();
    // Never released: shutdown gives up on the call after the drain timeout.
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        call.await.unwrap().is_err(),
        "the abandoned call got a reply"
    );
    assert!(!socket.exists());
}

#[tokio::test]
async fn error_bodies_carry_the_negotiated_media_type() {
    let s = server().await;
    let reply = s
        .client
        .send(request(
            Method::POST,
            "/VolumeDriver.Get",
            Some(MEDIA_TYPE_V1_1),
            "{\"Name\":\"fail\"}",
        ))
        .await
        .unwrap();
    assert_err(&reply, 500, "on fire");
    assert_eq!(reply.content_type.as_deref(), Some(MEDIA_TYPE_V1_1));
    let body: Value = reply.json().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "only Err: {body}");
    s.shutdown().await.unwrap();
}
