//! An in-process plugin server on a temp unix socket, and a volume driver that records
//! its calls and misbehaves on request, for the HTTP-level tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::transport::{Listener, UnixSocket};
use docker_plugin_sdk::volume::*;
use docker_plugin_sdk::{
    CancellationToken, Error, Plugin, Result, ServeError, Server, async_trait,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A driver that records every call. Volume names steer it: `panic` panics, `fail`
/// fails, `slow` blocks Mount until [`Recorder::release`] is notified (and records
/// `Mounted slow ID` when it gets there).
#[derive(Default)]
pub struct Recorder {
    pub calls: Mutex<Vec<String>>,
    /// Notified when a `slow` mount has started.
    pub started: Notify,
    /// Lets a `slow` mount finish.
    pub release: Notify,
    /// Whether Capabilities is implemented (answers `global`).
    pub capabilities: bool,
}

impl Recorder {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn misbehave(&self, name: &str) -> Result<()> {
        match name {
            "panic" => panic!("driver bug on purpose"),
            "fail" => Err(Error::new("the backend is on fire")),
            _ => Ok(()),
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// Lets tests keep a handle on the driver they registered.
pub struct Shared(pub Arc<Recorder>);

#[async_trait]
impl Driver for Shared {
    async fn create(&self, req: CreateRequest) -> Result<()> {
        let mut opts: Vec<_> = req.opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        opts.sort();
        self.0
            .record(format!("Create {} [{}]", req.name, opts.join(",")));
        self.0.misbehave(&req.name)
    }
    async fn remove(&self, req: RemoveRequest) -> Result<()> {
        self.0.record(format!("Remove {}", req.name));
        self.0.misbehave(&req.name)
    }
    async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
        self.0.record(format!("Mount {} {}", req.name, req.id));
        if req.name == "slow" {
            self.0.started.notify_one();
            self.0.release.notified().await;
            self.0.record(format!("Mounted {} {}", req.name, req.id));
        }
        self.0.misbehave(&req.name)?;
        Ok(MountResponse::new(format!("/mnt/{}", req.name)))
    }
    async fn unmount(&self, req: UnmountRequest) -> Result<()> {
        self.0.record(format!("Unmount {} {}", req.name, req.id));
        self.0.misbehave(&req.name)
    }
    async fn path(&self, req: PathRequest) -> Result<PathResponse> {
        self.0.record(format!("Path {}", req.name));
        self.0.misbehave(&req.name)?;
        Ok(PathResponse::new(format!("/mnt/{}", req.name)))
    }
    async fn get(&self, req: GetRequest) -> Result<GetResponse> {
        self.0.record(format!("Get {}", req.name));
        self.0.misbehave(&req.name)?;
        if req.name == "missing" {
            return Err(Error::new("no such volume"));
        }
        Ok(GetResponse {
            volume: Volume::new(req.name).status("answer", 42),
        })
    }
    async fn list(&self) -> Result<ListResponse> {
        self.0.record("List".into());
        Ok(ListResponse {
            volumes: vec![Volume::new("a").mountpoint("/mnt/a"), Volume::new("b")],
        })
    }
    async fn capabilities(&self) -> Result<CapabilitiesResponse> {
        self.0.record("Capabilities".into());
        if self.0.capabilities {
            Ok(CapabilitiesResponse::scope(Scope::Global))
        } else {
            Err(Error::not_implemented("VolumeDriver.Capabilities"))
        }
    }
}

/// A plugin served in this process on `DIR/test.sock`.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<(), ServeError>>,
    pub client: Client,
    pub driver: Arc<Recorder>,
}

impl TestServer {
    /// Serves a [`Recorder`] with the plugin settings `configure` applies.
    pub async fn start(recorder: Recorder, configure: impl FnOnce(Plugin) -> Plugin) -> Self {
        Self::start_with(recorder, configure, |server| server).await
    }

    /// Serves a [`Recorder`] with the plugin settings `configure` applies and the
    /// server settings `server` applies.
    pub async fn start_with(
        recorder: Recorder,
        configure: impl FnOnce(Plugin) -> Plugin,
        server: impl FnOnce(Server) -> Server,
    ) -> Self {
        let driver = Arc::new(recorder);
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixSocket::new("test").dir(dir.path()).bind().unwrap();
        let plugin = configure(Plugin::new().volume(Shared(Arc::clone(&driver))));
        Self::serve_with(dir, listener, plugin, driver, server)
    }

    pub fn serve(
        dir: tempfile::TempDir,
        listener: Listener,
        plugin: Plugin,
        driver: Arc<Recorder>,
    ) -> Self {
        Self::serve_with(dir, listener, plugin, driver, |server| server)
    }

    fn serve_with(
        dir: tempfile::TempDir,
        listener: Listener,
        plugin: Plugin,
        driver: Arc<Recorder>,
        server: impl FnOnce(Server) -> Server,
    ) -> Self {
        let socket = listener.unix_path().unwrap().to_path_buf();
        let stop = CancellationToken::new();
        let server = server(plugin.server(listener)).shutdown_on(stop.clone());
        let task = tokio::spawn(server.run());
        let client = Client::unix(&socket);
        Self {
            dir,
            socket,
            stop,
            task,
            client,
            driver,
        }
    }

    /// Stops the server and returns what `run` returned.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.stop.cancel();
        self.task.await.unwrap()
    }
}

/// Waits until `condition` holds, checking every 10 ms; panics after 5 s.
pub async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

/// A request as dockerd writes it (head and body in one write).
pub fn request(method: &str, body: &str) -> String {
    format!(
        "POST /{method} HTTP/1.1\r\nHost: \r\nUser-Agent: Go-http-client/1.1\r\n\
         Content-Length: {}\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\
         Accept-Encoding: gzip\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one reply (head and a body of `Content-Length`), or `None` at EOF.
pub async fn read_reply(stream: &mut tokio::net::UnixStream) -> Option<String> {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return Some(String::from_utf8_lossy(&buf[..end + 4 + length]).into_owned());
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::io::AsyncReadExt::read(stream, &mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
