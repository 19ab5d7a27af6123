//! Connections over a real unix socket, seen from the server: a call whose client goes
//! away still runs to its end; slow and silent clients (a body or a head that trickles
//! in, idle connections past their timeout, more connections than the limit, a
//! listener that keeps failing) cannot hold the server; and shutdown's drain fits in
//! dockerd's 10 s between SIGTERM and SIGKILL. (That idle connections are kept for
//! minutes by default is tested on the connection timer, in `server/idle.rs`.) All of
//! them at once, every slot taken: the deadlines free the slots and dockerd's call is
//! answered.

mod support;

use std::time::Duration;

use docker_plugin_sdk::transport::Accept;
use docker_plugin_sdk::{CancellationToken, Plugin};
use support::logs::Logs;
use support::server::{Recorder, TestServer, read_reply, request, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tracing::Level;

const ID: &str = "b87d7442095999a92b65b3d9691e697b61713829cc0ffd1bb72e4ccd51aa4d6c";

fn get(name: &str) -> String {
    request("VolumeDriver.Get", &format!("{{\"Name\":\"{name}\"}}\n"))
}

/// Asks Get on `stream` and expects a 200 (`what` says why it should come).
async fn get_is_answered(stream: &mut UnixStream, name: &str, what: &str) {
    stream.write_all(get(name).as_bytes()).await.unwrap();
    let reply = read_reply(stream).await;
    let reply = reply.unwrap_or_else(|| panic!("{what}: the connection was closed"));
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{what}: {reply}");
}

/// A connection that sent the head of a Get and the first bytes of its body, then
/// nothing.
async fn stalled_body(s: &TestServer) -> UnixStream {
    let mut stream = UnixStream::connect(&s.socket).await.unwrap();
    let whole = get("v1");
    stream
        .write_all(&whole.as_bytes()[..whole.len() - 8])
        .await
        .unwrap();
    stream
}

/// True once the server has closed `stream` (within `within`).
async fn closed_within(stream: &mut UnixStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Sends Mount of `slow` (which waits for `release`) on a connection of its own, and
/// returns the connection once the driver has the call.
async fn slow_mount_started(s: &TestServer) -> UnixStream {
    let mut stream = UnixStream::connect(&s.socket).await.unwrap();
    let body = format!("{{\"Name\":\"slow\",\"ID\":\"{ID}\"}}\n");
    stream
        .write_all(request("VolumeDriver.Mount", &body).as_bytes())
        .await
        .unwrap();
    s.driver.started.notified().await;
    stream
}

#[tokio::test]
async fn a_mount_whose_client_disconnects_still_runs_to_its_end() {
    let (logs, _guard) = Logs::capture(Level::DEBUG);
    let s = TestServer::start(Recorder::default(), |p| p).await;
    let stream = slow_mount_started(&s).await;
    // dockerd's timeout fires: Go closes the connection mid-call.
    drop(stream);
    let detached = "the connection closed before the call finished";
    for _ in 0..200 {
        if logs.text().contains(detached) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The mount finishes (a child process, say) after the client has gone.
    s.driver.release.notify_one();
    let mounted = format!("Mounted slow {ID}");
    wait_for("the mount's side effect", || {
        s.driver.calls().contains(&mounted)
    })
    .await;
    let done = "finished a call whose connection had closed";
    wait_for("its completion logged", || logs.text().contains(done)).await;
    let lines = logs.lines_with("VolumeDriver.Mount");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("name=\"slow\"") && l.contains("call ok")),
        "{lines:#?}"
    );
    assert_eq!(logs.lines_with(detached).len(), 1, "{}", logs.text());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408_at_its_deadline() {
    let s = TestServer::start(Recorder::default(), |p| {
        p.body_read_timeout(Duration::from_millis(200))
    })
    .await;
    let mut stream = stalled_body(&s).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut stream))
        .await
        .expect("no answer to a stalled body")
        .expect("closed without an answer");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.ends_with(
            r#"{"Err":"the VolumeDriver.Get request body did not arrive within 200 ms"}"#
        ),
        "{reply}"
    );
    assert!(
        closed_within(&mut stream, Duration::from_secs(2)).await,
        "the connection stays open"
    );
    assert!(s.driver.calls().is_empty());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_request_head_and_an_idle_connection_are_closed_at_their_own_timeouts() {
    let s = TestServer::start_with(
        Recorder::default(),
        |p| p,
        |server| {
            server
                .header_read_timeout(Duration::from_millis(300))
                .idle_timeout(Duration::from_millis(1500))
        },
    )
    .await;
    let mut idle = UnixStream::connect(&s.socket).await.unwrap();
    let mut slow = UnixStream::connect(&s.socket).await.unwrap();
    slow.write_all(b"POST /VolumeDriver.Get HTTP/1.1\r\nHost: \r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(1)).await,
        "a head that never completes holds its connection"
    );
    get_is_answered(
        &mut idle,
        "v1",
        "a connection idle for less than its timeout",
    )
    .await;
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "a connection idle past its timeout stays open"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn past_the_connection_limit_new_connections_wait_for_a_free_slot() {
    let (logs, _guard) = Logs::capture(Level::WARN);
    let s = TestServer::start_with(
        Recorder::default(),
        |p| p,
        |server| server.max_connections(2),
    )
    .await;
    let mut open = Vec::new();
    for name in ["a", "b"] {
        let mut stream = UnixStream::connect(&s.socket).await.unwrap();
        get_is_answered(&mut stream, name, "under the limit").await;
        open.push(stream);
    }
    let mut third = UnixStream::connect(&s.socket).await.unwrap();
    third.write_all(get("c").as_bytes()).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), read_reply(&mut third)).await;
    assert!(waited.is_err(), "a third connection was served: {waited:?}");
    let warned = logs.lines_with("connection limit reached");
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert!(
        warned[0].contains("2 connections are open") && warned[0].contains("max_connections"),
        "{warned:?}"
    );
    drop(open.pop());
    let reply = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut third))
        .await
        .expect("still waiting after a slot was freed")
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    s.shutdown().await.unwrap();
}

/// A slowloris: the head of a request that never ends (a header padded without end),
/// one byte every 50 ms. Returns how many bytes went in before the server closed the
/// connection, or `None` if it was still open when the bytes ran out.
async fn slowloris(mut stream: UnixStream) -> Option<usize> {
    let mut head = b"POST /VolumeDriver.Get HTTP/1.1\r\nHost: \r\nX-Pad: ".to_vec();
    head.resize(head.len() + 400, b'a');
    for (sent, byte) in head.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(sent);
        }
        let mut probe = [0u8; 1];
        let probed = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut probe));
        if let Ok(Ok(0) | Err(_)) = probed.await {
            return Some(sent + 1);
        }
    }
    None
}

#[tokio::test]
async fn silent_slow_header_and_slow_body_clients_at_the_cap_give_way_to_a_real_call() {
    // Every slot taken by a client that will not finish: two silent connections, a
    // slowloris that keeps sending its head a byte at a time past the head deadline,
    // and a body that stalls.
    let s = TestServer::start_with(
        Recorder::default(),
        |p| p.body_read_timeout(Duration::from_millis(300)),
        |server| {
            server
                .header_read_timeout(Duration::from_millis(300))
                .idle_timeout(Duration::from_millis(1500))
                .max_connections(4)
        },
    )
    .await;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(UnixStream::connect(&s.socket).await.unwrap());
    }
    let loris = tokio::spawn(slowloris(UnixStream::connect(&s.socket).await.unwrap()));
    let mut stalled = stalled_body(&s).await;
    // dockerd's call, on a fifth connection: it waits for a slot, and gets one once the
    // deadlines have closed the slow clients.
    let mut dockerd = UnixStream::connect(&s.socket).await.unwrap();
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        get_is_answered(
            &mut dockerd,
            "real",
            "a call behind clients that never finish",
        ),
    )
    .await;
    assert!(answered.is_ok(), "the slow clients held every slot");
    // The slowloris was closed while it still sent bytes: a head that trickles in does
    // not push its deadline back (300 ms is 6 of its bytes; 400 are never sent).
    let sent = tokio::time::timeout(Duration::from_secs(30), loris)
        .await
        .expect("hang guard")
        .unwrap();
    assert!(
        sent.is_some_and(|n| n < 100),
        "the slowloris was not closed in time: {sent:?}"
    );
    let reply = read_reply(&mut stalled)
        .await
        .expect("no 408 to the stalled body");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    // The silent ones go at the idle timeout.
    for mut stream in silent {
        assert!(
            closed_within(&mut stream, Duration::from_secs(5)).await,
            "a silent connection stays open"
        );
    }
    assert_eq!(s.driver.calls(), ["Get real"]);
    s.shutdown().await.unwrap();
}

/// A listener whose every accept fails, as one out of file descriptors does.
struct Failing;

impl Accept for Failing {
    type Io = tokio::io::DuplexStream;
    type Handshake = std::future::Ready<std::io::Result<Self::Io>>;

    fn url(&self) -> String {
        "memory://failing".to_owned()
    }

    fn poll_accept(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<Self::Handshake>> {
        std::task::Poll::Ready(Err(std::io::Error::other("Too many open files")))
    }
}

#[tokio::test]
async fn accept_errors_are_logged_at_most_every_ten_seconds() {
    let (logs, _guard) = Logs::capture(Level::WARN);
    let stop = CancellationToken::new();
    let server = Plugin::new()
        .volume(support::server::Shared(Default::default()))
        .server(Failing)
        .shutdown_on(stop.clone());
    let task = tokio::spawn(server.run());
    // A second of errors, one every 50 ms.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    let lines = logs.lines_with("accept failed");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("Too many open files"), "{lines:?}");
}

#[tokio::test]
async fn by_default_the_drain_ends_before_dockerds_sigkill() {
    let s = TestServer::start(Recorder::default(), |p| p).await;
    let _stream = slow_mount_started(&s).await;
    // SIGTERM, with a call that never ends.
    let start = std::time::Instant::now();
    s.stop.cancel();
    s.task.await.unwrap().unwrap();
    let drained = start.elapsed();
    assert!(
        drained >= Duration::from_secs(7) && drained < Duration::from_millis(9500),
        "drained for {drained:?}; dockerd sends SIGKILL 10 s after SIGTERM"
    );
}
