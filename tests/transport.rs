//! Transports and discovery files: unix socket placement, permissions and takeover
//! rules, TCP, and spec files written while serving and removed at shutdown.

mod support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::sync::Arc;

use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::spec::{PluginSpec, SpecFile};
use docker_plugin_sdk::transport::{Listener, UnixSocket};
use docker_plugin_sdk::{CancellationToken, Plugin, ServeError};
use support::server::{Recorder, Shared, TestServer, wait_for};

/// The names in `dir`, sorted.
fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn plugin() -> (Plugin, Arc<Recorder>) {
    let driver = Arc::new(Recorder::default());
    (Plugin::new().volume(Shared(Arc::clone(&driver))), driver)
}

#[tokio::test]
async fn a_missing_socket_dir_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("run/docker/plugins");
    let listener = UnixSocket::new("p").dir(&nested).bind().unwrap();
    assert_eq!(listener.unix_path().unwrap(), nested.join("p.sock"));
    assert_eq!(
        listener.url(),
        format!("unix://{}", nested.join("p.sock").display())
    );
    let (plugin, driver) = plugin();
    let s = TestServer::serve(dir, listener, plugin, driver);
    s.client.activate().await.unwrap();
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn mode_and_group_are_set_before_the_socket_appears() {
    let dir = tempfile::tempdir().unwrap();
    // gid 1 is `daemon` on Debian; by name and by number.
    for group in ["daemon", "1"] {
        let listener = UnixSocket::new("perm")
            .dir(dir.path())
            .mode(0o660)
            .group(group)
            .bind()
            .unwrap();
        let meta = fs::metadata(dir.path().join("perm.sock")).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o660, "group {group}");
        assert_eq!(meta.gid(), 1, "group {group}");
        // No staging file is left next to it: only the lock held while it serves.
        assert_eq!(file_names(dir.path()), [".perm.sock.lock", "perm.sock"]);
        drop(listener);
        assert!(
            file_names(dir.path()).is_empty(),
            "a dropped listener removes the socket it created and its lock"
        );
    }
}

#[test]
fn an_unknown_group_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = UnixSocket::new("g")
        .dir(dir.path())
        .group("no-such-group-dps")
        .bind()
        .unwrap_err();
    assert!(matches!(err, ServeError::UnknownGroup { .. }), "{err}");
    assert!(err.to_string().contains("no-such-group-dps"), "{err}");
    assert!(!dir.path().join("g.sock").exists());
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).unwrap()); // a crashed plugin's socket: nobody listens
    assert!(path.exists());
    let listener = UnixSocket::new("stale").dir(dir.path()).bind().unwrap();
    let (plugin, driver) = plugin();
    let s = TestServer::serve(dir, listener, plugin, driver);
    s.client.activate().await.unwrap();
    s.shutdown().await.unwrap();
    assert!(!path.exists(), "the socket outlived the server");
}

#[tokio::test]
async fn a_live_socket_is_never_stolen() {
    let (plugin, _) = plugin();
    let first = TestServer::start(Recorder::default(), |p| p).await;
    let err = UnixSocket::new("test")
        .dir(first.dir.path())
        .bind()
        .unwrap_err();
    assert!(matches!(err, ServeError::SocketInUse { .. }), "{err}");
    assert!(err.to_string().contains("test.sock"), "{err}");
    // The first server still answers on its socket.
    first.client.activate().await.unwrap();
    drop(plugin);
    first.shutdown().await.unwrap();
}

#[test]
fn a_file_that_is_not_a_socket_is_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.sock");
    fs::write(&path, "precious").unwrap();
    let err = UnixSocket::new("data").dir(dir.path()).bind().unwrap_err();
    assert!(matches!(err, ServeError::NotASocket { .. }), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn bad_names_and_long_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["", "../escape", "a/b", ".hidden"] {
        let err = UnixSocket::new(name).dir(dir.path()).bind().unwrap_err();
        assert!(
            matches!(err, ServeError::InvalidName { .. }),
            "{name:?}: {err}"
        );
    }
    let err = UnixSocket::new("x".repeat(120))
        .dir(dir.path())
        .bind()
        .unwrap_err();
    assert!(matches!(err, ServeError::PathTooLong { .. }), "{err}");
    assert!(err.to_string().contains("107"), "{err}");
}

#[test]
fn a_socket_dir_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    let err = UnixSocket::new("p")
        .dir(file.join("sub"))
        .bind()
        .unwrap_err();
    assert!(
        err.to_string().contains("creating socket directory"),
        "{err}"
    );
}

#[tokio::test]
async fn unix_spec_file_is_written_while_serving_and_removed_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("etc/docker/plugins");
    let listener = UnixSocket::new("specced")
        .dir(dir.path().join("run"))
        .bind()
        .unwrap();
    let url = listener.url();
    let stop = CancellationToken::new();
    let (plugin, _) = plugin();
    let task = tokio::spawn(
        plugin
            .server(listener)
            .spec_file(SpecFile::url("specced", url.clone()).dir(&specs))
            .shutdown_on(stop.clone())
            .run(),
    );
    let spec = specs.join("specced.spec");
    wait_for("the spec file", || spec.exists()).await;
    assert_eq!(fs::read_to_string(&spec).unwrap(), format!("{url}\n"));
    // dockerd reads the URL and connects to it.
    let client = Client::from_url(fs::read_to_string(&spec).unwrap().trim()).unwrap();
    client.activate().await.unwrap();
    stop.cancel();
    task.await.unwrap().unwrap();
    assert!(!spec.exists(), "spec file left behind");
}

#[tokio::test]
async fn tcp_with_a_json_spec_file() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::tcp("127.0.0.1:0").unwrap();
    let addr = listener.tcp_addr().unwrap();
    assert_eq!(listener.url(), format!("tcp://{addr}"));
    let spec = SpecFile::json(
        "tcpplugin",
        PluginSpec {
            addr: listener.url(),
            ..Default::default()
        },
    )
    .dir(dir.path());
    let stop = CancellationToken::new();
    let (plugin, driver) = plugin();
    let task = tokio::spawn(
        plugin
            .server(listener)
            .spec_file(spec)
            .shutdown_on(stop.clone())
            .run(),
    );
    let path = dir.path().join("tcpplugin.json");
    wait_for("the spec file", || path.exists()).await;
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        written,
        serde_json::json!({"Name": "tcpplugin", "Addr": format!("tcp://{addr}")})
    );
    let client = Client::tcp(addr);
    assert_eq!(
        client.activate().await.unwrap().implements,
        ["VolumeDriver"]
    );
    client
        .call::<docker_plugin_sdk::volume::List>(&docker_plugin_sdk::protocol::Empty {})
        .await
        .unwrap();
    assert_eq!(driver.calls(), ["List"]);
    stop.cancel();
    task.await.unwrap().unwrap();
    assert!(!path.exists());
}

#[tokio::test]
async fn a_spec_file_replaced_by_someone_else_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::tcp("127.0.0.1:0").unwrap();
    let url = listener.url();
    let stop = CancellationToken::new();
    let (plugin, _) = plugin();
    let task = tokio::spawn(
        plugin
            .server(listener)
            .spec_file(SpecFile::url("shared", url).dir(dir.path()))
            .shutdown_on(stop.clone())
            .run(),
    );
    let path = dir.path().join("shared.spec");
    wait_for("the spec file", || path.exists()).await;
    fs::write(&path, "tcp://127.0.0.1:1\n").unwrap(); // a newer instance took over
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "tcp://127.0.0.1:1\n");
}

#[tokio::test]
async fn a_spec_file_without_scheme_fails_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixSocket::new("noscheme").dir(dir.path()).bind().unwrap();
    let (plugin, _) = plugin();
    let err = plugin
        .server(listener)
        .spec_file(SpecFile::url("noscheme", "/run/x.sock").dir(dir.path()))
        .shutdown_on(CancellationToken::new())
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no scheme"), "{err}");
    assert!(
        !dir.path().join("noscheme.sock").exists(),
        "socket left after a failed start"
    );
}

/// Connections handed over through a channel: an `Accept` that is no socket at all.
struct Handed(tokio::sync::mpsc::Receiver<tokio::io::DuplexStream>);

impl docker_plugin_sdk::transport::Accept for Handed {
    type Io = tokio::io::DuplexStream;
    type Handshake = std::future::Ready<std::io::Result<Self::Io>>;

    fn url(&self) -> String {
        "memory://test".to_owned()
    }

    fn poll_accept(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<Self::Handshake>> {
        self.0.poll_recv(cx).map(|io| match io {
            Some(io) => Ok(std::future::ready(Ok(io))),
            None => Err(std::io::Error::other("no more connections")),
        })
    }
}

#[tokio::test]
async fn any_accept_is_served_as_a_socket_is() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (plugin, driver) = plugin();
    let (hand, handed) = tokio::sync::mpsc::channel(1);
    let stop = CancellationToken::new();
    let server = plugin.server(Handed(handed)).shutdown_on(stop.clone());
    assert_eq!(server.url(), "memory://test");
    let task = tokio::spawn(server.run());
    let (mut client, server_side) = tokio::io::duplex(4096);
    hand.send(server_side).await.unwrap();
    client
        .write_all(
            b"POST /VolumeDriver.List HTTP/1.1\r\nHost: plugin\r\nContent-Length: 3\r\n\
              Connection: close\r\n\r\n{}\n",
        )
        .await
        .unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.ends_with(r#"{"Volumes":[{"Name":"a","Mountpoint":"/mnt/a"},{"Name":"b"}]}"#),
        "{reply}"
    );
    assert_eq!(driver.calls(), ["List"]);
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// Whether `nobody` (no supplementary groups) can connect to `socket`, tried by a real
/// process run with `setpriv` (util-linux) and perl's `IO::Socket::UNIX`.
fn nobody_can_connect(socket: &std::path::Path) -> bool {
    let status = std::process::Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "perl",
            "-MIO::Socket::UNIX",
            "-e",
            "IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 13",
        ])
        .arg(socket)
        .status()
        .expect("running setpriv (util-linux) and perl");
    match status.code() {
        Some(0) => true,
        Some(13) => false,
        _ => panic!("setpriv failed: {status}"),
    }
}

#[test]
fn under_umask_000_an_unprivileged_user_cannot_connect_by_default() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs as root (it runs a child as nobody)"
    );
    let dir = tempfile::tempdir().unwrap();
    // `nobody` may walk to the socket: only the socket's own permissions stop it.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let bound = UnixSocket::new("priv").dir(dir.path()).bind();
    let open = UnixSocket::new("open").dir(dir.path()).mode(0o666).bind();
    nix::sys::stat::umask(old);
    let (_bound, _open) = (bound.unwrap(), open.unwrap());
    let meta = fs::metadata(dir.path().join("priv.sock")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    assert_eq!(meta.gid(), 0, "group root");
    assert!(!nobody_can_connect(&dir.path().join("priv.sock")));
    // The check itself can tell: a socket opened up on purpose lets nobody in.
    assert!(nobody_can_connect(&dir.path().join("open.sock")));
}

#[test]
fn a_relative_socket_dir_becomes_absolute() {
    // A hidden dir in the current directory (the package root under `cargo test`).
    let here = tempfile::Builder::new()
        .prefix(".dps-relative-")
        .tempdir_in(".")
        .unwrap();
    let relative = std::path::Path::new(here.path().file_name().unwrap()).join("run");
    let listener = UnixSocket::new("rel").dir(&relative).bind().unwrap();
    let absolute = std::env::current_dir()
        .unwrap()
        .join(&relative)
        .join("rel.sock");
    assert_eq!(listener.url(), format!("unix://{}", absolute.display()));
    assert_eq!(listener.unix_path().unwrap(), absolute);
}

#[test]
fn the_stale_socket_check_does_not_hang_on_a_live_owner_that_does_not_accept() {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, listen, socket,
    };
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stuck.sock");
    // A live owner that never accepts, its backlog full.
    let owner = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(owner.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    listen(&owner, Backlog::new(0).unwrap()).unwrap();
    let mut queued = Vec::new();
    loop {
        let client = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        match connect(client.as_raw_fd(), &UnixAddr::new(&path).unwrap()) {
            Ok(()) => queued.push(client),
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(queued.len() < 1000, "the backlog never filled");
    }
    let (done, result) = std::sync::mpsc::channel();
    let socket_dir = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = done.send(UnixSocket::new("stuck").dir(socket_dir).bind().map(drop));
    });
    let result = result
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("bind hung on a socket whose owner does not accept");
    let err = result.unwrap_err();
    assert!(matches!(err, ServeError::SocketInUse { .. }), "{err}");
    assert!(path.exists(), "the live owner's socket was replaced");
}

#[test]
fn of_instances_starting_at_once_exactly_one_wins() {
    const INSTANCES: usize = 8;
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let start = Arc::new(std::sync::Barrier::new(INSTANCES));
        let racers: Vec<_> = (0..INSTANCES)
            .map(|_| {
                let (start, dir) = (Arc::clone(&start), dir.path().to_path_buf());
                std::thread::spawn(move || {
                    start.wait();
                    UnixSocket::new("race").dir(dir).bind()
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
        for result in &results {
            if let Err(err) = result {
                assert!(matches!(err, ServeError::SocketInUse { .. }), "{err}");
            }
        }
    }
}

#[tokio::test]
async fn plain_tcp_beyond_loopback_warns_that_any_host_can_call() {
    let (logs, _guard) = support::logs::Logs::capture(tracing::Level::WARN);
    for (addr, warned) in [("127.0.0.1:0", false), ("0.0.0.0:0", true)] {
        let listener = Listener::tcp(addr).unwrap();
        let stop = CancellationToken::new();
        let (plugin, _) = plugin();
        let task = tokio::spawn(plugin.server(listener).shutdown_on(stop.clone()).run());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.cancel();
        task.await.unwrap().unwrap();
        let lines = logs.lines_with("any host that can reach this address can call the plugin");
        assert_eq!(lines.len(), usize::from(warned), "{addr}: {lines:?}");
    }
}
