//! The client speaks as dockerd 20.10 speaks (moby v20.10.24 `pkg/plugins/client.go` on
//! Go 1.19's `net/http`), checked on the bytes a scripted plugin receives: the request
//! bytes Go writes, connections kept alive and reused, a connection the plugin closed
//! replaced, a written request never sent twice, and replies read as Go reads them.

mod support;

use std::time::Duration;

use docker_plugin_sdk::client::{Client, ClientError};
use docker_plugin_sdk::protocol::Empty;
use docker_plugin_sdk::volume::{self, CreateRequest, GetRequest, MountRequest};
use support::scripted::{Answer, Scripted};

fn ok(body: &str) -> Answer {
    Answer::Reply(200, body.to_owned())
}

fn mount() -> MountRequest {
    MountRequest {
        name: "v1".into(),
        id: "id".into(),
    }
}

fn create(opts: &[(&str, &str)]) -> CreateRequest {
    CreateRequest {
        name: "v1".into(),
        opts: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[tokio::test]
async fn requests_are_the_bytes_dockerd_writes_on_one_kept_connection() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |_, request| {
        match request.path() {
            "/Plugin.Activate" => ok(r#"{"Implements":["VolumeDriver"]}"#),
            _ => ok("{}"),
        }
    });
    let client = Client::unix(&plugin.socket);
    client.activate().await.unwrap();
    client.call::<volume::Create>(&create(&[])).await.unwrap();
    client
        .call::<volume::Create>(&create(&[("z", "<&>"), ("a", "1")]))
        .await
        .unwrap();
    // A clone shares the connection, as dockerd's calls share its transport.
    client
        .clone()
        .call::<volume::List>(&Empty {})
        .await
        .unwrap();
    // What Go 1.19 wrote for the same calls (pkg/plugins' request on a unix socket),
    // and what the recorded dockerd sent.
    let head = |length: usize| {
        format!(
            "Host: \r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: {length}\r\n\
             Accept: application/vnd.docker.plugins.v1.2+json\r\n\r\n"
        )
    };
    let create_opts = "{\"Name\":\"v1\",\"Opts\":{\"a\":\"1\",\"z\":\"\\u003c\\u0026\\u003e\"}}\n";
    let expected = [
        (format!("POST /Plugin.Activate HTTP/1.1\r\n{}", head(0)), ""),
        (
            format!("POST /VolumeDriver.Create HTTP/1.1\r\n{}", head(26)),
            "{\"Name\":\"v1\",\"Opts\":null}\n",
        ),
        (
            format!(
                "POST /VolumeDriver.Create HTTP/1.1\r\n{}",
                head(create_opts.len())
            ),
            create_opts,
        ),
        (
            format!("POST /VolumeDriver.List HTTP/1.1\r\n{}", head(3)),
            "{}\n",
        ),
    ];
    let seen = plugin.seen();
    assert_eq!(seen.len(), expected.len(), "{seen:#?}");
    for (seen, (head, body)) in seen.iter().zip(expected) {
        assert_eq!(seen.head, head);
        assert_eq!(seen.body, body);
        assert_eq!(
            seen.connection, 0,
            "a call did not reuse the kept connection"
        );
    }
}

#[tokio::test]
async fn a_kept_connection_the_plugin_closed_is_replaced_by_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |n, _| {
        if n == 0 {
            Answer::ReplyAndClose(200, "{}".into())
        } else {
            ok("{}")
        }
    });
    let client = Client::unix(&plugin.socket);
    client.call::<volume::List>(&Empty {}).await.unwrap();
    plugin.closed.notified().await;
    client.call::<volume::List>(&Empty {}).await.unwrap();
    client.call::<volume::List>(&Empty {}).await.unwrap();
    let connections: Vec<usize> = plugin.seen().iter().map(|s| s.connection).collect();
    assert_eq!(connections, [0, 1, 1]);
}

/// The plugin closes the kept, idle connection while the client's runtime is busy
/// (here: blocked, as the harness is while it restarts a plugin), so the runtime has
/// not seen the EOF when the next call starts: Go's `readLoop` would have, and Go
/// dials again.
#[tokio::test]
async fn a_connection_closed_while_the_client_was_busy_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |n, _| {
        if n == 0 {
            Answer::ReplyAndCloseAfter(200, "{}".into(), Duration::from_millis(100))
        } else {
            ok("{}")
        }
    });
    let client = Client::unix(&plugin.socket);
    client.call::<volume::List>(&Empty {}).await.unwrap();
    // The connection settles, idle and ready for the next request.
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Blocks this runtime: the plugin closes the connection meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    client.call::<volume::List>(&Empty {}).await.unwrap();
    let connections: Vec<usize> = plugin.seen().iter().map(|s| s.connection).collect();
    assert_eq!(connections, [0, 1]);
}

#[tokio::test]
async fn a_request_written_on_a_kept_connection_that_fails_is_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |n, _| {
        if n == 1 { Answer::HangUp } else { ok("{}") }
    });
    let client = Client::unix(&plugin.socket);
    client.call::<volume::List>(&Empty {}).await.unwrap();
    let get = GetRequest { name: "v1".into() };
    let err = client.call::<volume::Get>(&get).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Http { written: true, .. }),
        "{err:?}"
    );
    assert!(err.is_transport() && err.was_written());
    // Go does not replay a POST: the plugin saw the Get once, on the kept connection.
    let seen = plugin.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[1].connection, 0);
    // The next call dials again.
    client.call::<volume::List>(&Empty {}).await.unwrap();
    assert_eq!(plugin.seen()[2].connection, 1);
}

/// A process started while the client holds a connection (the harness restarting a
/// plugin mid-call) inherits none of its descriptors: once the client drops the
/// connection, the plugin sees it closed although that process still runs.
#[tokio::test]
async fn a_process_started_meanwhile_inherits_no_connection_of_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |_, _| ok("{}"));
    let client = Client::unix(&plugin.socket);
    client.call::<volume::List>(&Empty {}).await.unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let inherited: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .filter(|p| p.starts_with("socket:"))
        .collect();
    drop(client);
    let closed = tokio::time::timeout(Duration::from_secs(5), plugin.closed.notified()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(inherited, Vec::<String>::new(), "the child holds sockets");
    closed.expect("the plugin never saw the connection close");
}

#[tokio::test]
async fn a_timeout_closes_its_connection_as_go_does() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |n, _| {
        if n == 0 { Answer::Silence } else { ok("{}") }
    });
    let client = Client::unix(&plugin.socket).timeout(Duration::from_millis(200));
    let err = client.call::<volume::Mount>(&mount()).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    // The plugin sees the connection closed; the next call comes on a new one.
    tokio::time::timeout(Duration::from_secs(5), plugin.closed.notified())
        .await
        .expect("the timed-out connection stayed open");
    client.call::<volume::List>(&Empty {}).await.unwrap();
    assert_eq!(plugin.seen()[1].connection, 1);
}

#[tokio::test]
async fn replies_are_read_as_dockerd_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |_, request| {
        match request.path() {
            "/VolumeDriver.Mount" => ok(r#"{"mountpoint":"/x"}"#),
            "/VolumeDriver.Capabilities" => ok(r#"{"Capabilities":{"Scope":"GLOBAL"}}"#),
            "/VolumeDriver.Remove" => ok(""),
            "/VolumeDriver.Get" => ok(r#"{"Volume":{"Name":"v1","CreatedAt":""}}"#),
            _ => ok(r#"{"Volumes":[{"name":"v1","createdat":"2023-11-14T22:13:20Z"}]}"#),
        }
    });
    let client = Client::unix(&plugin.socket);
    let reply = client.call::<volume::Mount>(&mount()).await.unwrap();
    assert_eq!(reply.mountpoint.to_str(), Some("/x"));
    let caps = client
        .call::<volume::Capabilities>(&Empty {})
        .await
        .unwrap();
    assert_eq!(caps.capabilities.scope, volume::Scope::Global);
    let list = client.call::<volume::List>(&Empty {}).await.unwrap();
    assert_eq!(
        list.volumes[0].created_at.unwrap().to_string(),
        "2023-11-14T22:13:20Z"
    );
    let remove = volume::RemoveRequest { name: "v1".into() };
    let err = client.call::<volume::Remove>(&remove).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "VolumeDriver.Remove: the plugin answered 200 OK with an empty body, which dockerd \
         fails with EOF: answer JSON, at least {}"
    );
    let get = GetRequest { name: "v1".into() };
    let err = client.call::<volume::Get>(&get).await.unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
}
