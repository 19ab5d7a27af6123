//! The servers under test, each run as a child of the benchmark binary: the bare
//! hyper server, the SDK serving a trivial volume driver (in the three setups), and an
//! SDK log driver that counts lines; and the handle that stops a child.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docker_plugin_sdk::logging::{self, Info, Logs};
use docker_plugin_sdk::telemetry::CallMetrics;
use docker_plugin_sdk::transport::{Listener, UnixSocket};
use docker_plugin_sdk::volume::{self, Volume};
use docker_plugin_sdk::{Plugin, Result as SdkResult, async_trait};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// The SDK's replies to the bench's requests; the bare server answers the same bytes.
const GET_REPLY: &[u8] = br#"{"Volume":{"Name":"v1","Mountpoint":"/srv/vols/v1"}}"#;
const LIST_REPLY: &[u8] = br#"{"Volumes":[{"Name":"v1","Mountpoint":"/srv/vols/v1"},{"Name":"v2","Mountpoint":"/srv/vols/v2"}]}"#;

/// The endpoint loaded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    List,
}

impl Method {
    pub fn from_env() -> Self {
        match std::env::var("BENCH_METHOD").as_deref() {
            Ok("list") => Self::List,
            _ => Self::Get,
        }
    }

    /// The request body, as JSON (the load tool sends it as dockerd does, with its
    /// `\n`); `None`: `{}`.
    pub fn json(self) -> Option<&'static str> {
        match self {
            Self::Get => Some(r#"{"Name":"v1"}"#),
            Self::List => None,
        }
    }

    pub fn reply(self) -> &'static [u8] {
        match self {
            Self::Get => GET_REPLY,
            Self::List => LIST_REPLY,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "VolumeDriver.Get",
            Self::List => "VolumeDriver.List",
        }
    }
}

/// Where the servers run: see the module documentation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Setup {
    Plain,
    Multi,
    Main,
}

impl Setup {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "plain" => Some(Self::Plain),
            "multi" => Some(Self::Multi),
            "main" => Some(Self::Main),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Multi => "multi",
            Self::Main => "main",
        }
    }
}

/// Runs a server child on its setup's runtime: current-thread for `plain`, the
/// multi-thread one `#[tokio::main]` gives otherwise (the `main` setup's SDK server is
/// started by `run_main` instead, as the SDK's macro does).
pub fn child(setup: Setup, server: impl Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match setup {
        Setup::Plain => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Setup::Multi | Setup::Main => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let result = match runtime {
        Ok(runtime) => runtime.block_on(server),
        Err(err) => Err(format!("runtime: {err}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("serve bench server: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A bare hyper server: one fixed body, whatever the request. It reads the request
/// body, as any server answering a POST must.
pub async fn bare(socket: PathBuf) -> Result<(), String> {
    let reply = Bytes::from_static(Method::from_env().reply());
    let listener = tokio::net::UnixListener::bind(&socket).map_err(|e| format!("bind: {e}"))?;
    loop {
        let (io, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        let reply = reply.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let reply = reply.clone();
                async move {
                    let _ = request.into_body().collect().await;
                    let mut response = hyper::Response::new(Full::new(reply));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static(MEDIA_TYPE),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    }
}

/// A volume driver that does nothing but answer.
struct Trivial;

#[async_trait]
impl volume::Driver for Trivial {
    async fn create(&self, _req: volume::CreateRequest) -> SdkResult<()> {
        Ok(())
    }
    async fn remove(&self, _req: volume::RemoveRequest) -> SdkResult<()> {
        Ok(())
    }
    async fn mount(&self, req: volume::MountRequest) -> SdkResult<volume::MountResponse> {
        Ok(volume::MountResponse::new(format!(
            "/srv/vols/{}",
            req.name
        )))
    }
    async fn unmount(&self, _req: volume::UnmountRequest) -> SdkResult<()> {
        Ok(())
    }
    async fn path(&self, req: volume::PathRequest) -> SdkResult<volume::PathResponse> {
        Ok(volume::PathResponse::new(format!("/srv/vols/{}", req.name)))
    }
    async fn get(&self, req: volume::GetRequest) -> SdkResult<volume::GetResponse> {
        let mountpoint = format!("/srv/vols/{}", req.name);
        Ok(volume::GetResponse {
            volume: Volume::new(req.name).mountpoint(mountpoint),
        })
    }
    async fn list(&self) -> SdkResult<volume::ListResponse> {
        Ok(volume::ListResponse {
            volumes: vec![
                Volume::new("v1").mountpoint("/srv/vols/v1"),
                Volume::new("v2").mountpoint("/srv/vols/v2"),
            ],
        })
    }
}

/// The SDK serving [`Trivial`] at `socket` (`DIR/NAME.sock`) until SIGTERM. In the
/// `main` setup it runs as a real plugin does: with its call metrics kept and served
/// (on `DIR/NAME-metrics.sock`).
pub async fn sdk(socket: PathBuf, setup: Setup) -> Result<(), String> {
    let (listener, dir, name) = bind(&socket)?;
    let plugin = Plugin::new().volume(Trivial);
    let server = if setup == Setup::Main {
        let metrics = CallMetrics::new();
        let endpoint = UnixSocket::new(format!("{name}-metrics"))
            .dir(dir)
            .bind()
            .map_err(|e| e.to_string())?;
        plugin
            .call_metrics(&metrics)
            .server(listener)
            .metrics(endpoint, &metrics)
    } else {
        plugin.server(listener)
    };
    server.run().await.map_err(|e| e.to_string())
}

/// The SDK's listener at `socket` (`DIR/NAME.sock`), with DIR and NAME.
fn bind(socket: &std::path::Path) -> Result<(Listener, &std::path::Path, &str), String> {
    let dir = socket.parent().ok_or("socket path has no directory")?;
    let name = socket
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("socket path has no name")?;
    let listener = UnixSocket::new(name)
        .dir(dir)
        .bind()
        .map_err(|e| e.to_string())?;
    Ok((listener, dir, name))
}

/// A log driver that counts the lines it gets: the FIFO decode and the SDK's buffer are
/// what is measured.
struct CountingLog(Arc<AtomicU64>);

#[async_trait]
impl logging::Driver for CountingLog {
    async fn consume(&self, _info: Info, mut logs: Logs) -> SdkResult<()> {
        while logs.next().await.is_some() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The SDK serving [`CountingLog`] at `socket` until SIGTERM, as `#[main]` runs it.
pub async fn log_driver(socket: PathBuf) -> Result<(), String> {
    let (listener, _, _) = bind(&socket)?;
    Plugin::new()
        .logging(CountingLog(Arc::default()))
        .server(listener)
        .run()
        .await
        .map_err(|e| e.to_string())
}

/// Starts `exe ARGS` and waits until `socket` exists (the SDK binds under a temporary
/// name and renames it into place): then it listens, and nothing has connected yet.
pub fn spawn_listening(
    exe: &std::path::Path,
    args: &[&std::ffi::OsStr],
    socket: &std::path::Path,
) -> Result<(Server, Instant), String> {
    let started = Instant::now();
    let mut command = std::process::Command::new(exe);
    let child = crate::priority::at_server_priority(&mut command)
        .args(args)
        // The `main` setup's subscriber logs at its default level, `info` (formatted
        // and written, to nowhere: not into the report).
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", exe.display()))?;
    let mut server = Server(child);
    while !socket.exists() {
        if let Ok(Some(status)) = server.0.try_wait() {
            return Err(format!("the server exited: {status}"));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err("the server did not listen within 10 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((server, started))
}

/// A server child, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
