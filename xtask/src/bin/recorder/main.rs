//! `recorder`: a volume plugin that writes down every call dockerd makes to it, byte for
//! byte, as one JSON line per call. `record_sequences` (beside it) uses it to record the
//! call sequences of a real dockerd into `tests/fixtures/dockerd-sequences/`.
//!
//! ```text
//! sudo cargo run -p xtask --bin recorder -- --name rec --root /tmp/rec --log /tmp/rec.jsonl --capabilities
//! docker volume create -d rec -o a=b v1
//! cat /tmp/rec.jsonl
//! ```
//!
//! The driver ([`volumes`]) keeps each volume as a directory `ROOT/NAME/data` (its `-o`
//! options in `ROOT/NAME/opts.json`), so volumes survive a restart of the plugin. Recording is not
//! done in the driver but in an axum middleware around [`Plugin::into_router`]: it sees
//! `/Plugin.Activate` (answered by the SDK itself), 404s for unimplemented methods, and
//! the exact bytes on the wire.
//!
//! Options:
//!   --name NAME        plugin name: socket DIR/NAME.sock (default recorder)
//!   --socket-dir DIR   socket directory (default /run/docker/plugins)
//!   --root DIR         where volumes live (required)
//!   --log PATH         the JSON-lines file calls are appended to (required)
//!   --capabilities     answer VolumeDriver.Capabilities with scope "local"; without it
//!                      the method is left unimplemented and answers 404
//!   --bare-get         Get and List describe volumes without a Mountpoint, so that
//!                      dockerd has to ask VolumeDriver.Path
//!   --print-env VAR    print `VAR=value` (or `VAR is not set`) on stdout at start,
//!                      repeatable: shows what a managed plugin's environment is (dockerd
//!                      logs a managed plugin's stdout)
//!   --report           print, at start, what the recorder sees of the container it runs
//!                      in (environment, capabilities, namespaces, /dev, /sys, the init
//!                      layer's files, whether it may mount): see [`report`]
//!   --print-path PATH  print whether PATH exists (e.g. /dev/fuse), repeatable
//!   --connect ADDR     print whether a TCP connection to ADDR (`127.0.0.1:8080`) works,
//!                      repeatable: shows which network namespace the plugin is in
//!   --store DIR        keep volumes' content in DIR and bind-mount it under --root on
//!                      Mount, like a FUSE or NFS plugin under its propagated mount
//!   --network          also serve a network driver and an IPAM driver (see [`network`])
//!   --authz            also serve an authorization policy that allows every API call but
//!                      those marked `rec-authz-deny` (see [`authz`])
//!   --logging          also serve a log driver that keeps lines in memory and reads them
//!                      back (see [`logging`]); a ReadLogs reply is recorded as its
//!                      decoded frames
//!
//! Each line of the log is an object with `seq`, `time_unix_ms`, `peer_pid` (the process
//! that connected, from SO_PEERCRED), `http_method`, `path`, `method` (the path without
//! its slash), `request_headers`, `request_body` (exact text), `request` (that body as
//! JSON; `null` when empty, a string when not JSON), `status`, `response_headers`,
//! `response_body` and `response` (likewise).

mod authz;
mod logging;
mod network;
mod report;
mod volumes;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::IncomingStream;
use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::harness::testing::MemoryLog;
use docker_plugin_sdk::transport::{ListenArgs, UnixSocket};
use serde_json::{Value, json};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

/// The largest body the recorder buffers (the SDK's own limit applies after it).
const MAX_RECORDED_BODY: usize = 16 * 1024 * 1024;

struct Args {
    socket: UnixSocket,
    name: String,
    root: PathBuf,
    log: PathBuf,
    capabilities: bool,
    bare_get: bool,
    print_env: Vec<String>,
    report: bool,
    print_paths: Vec<String>,
    connect: Vec<String>,
    store: Option<PathBuf>,
    network: bool,
    authz: bool,
    logging: bool,
}

const USAGE: &str = "usage: recorder --root DIR --log PATH [--name NAME] [--socket-dir DIR] \
                     [--capabilities] [--bare-get] [--print-env VAR]... [--report] \
                     [--print-path PATH]... [--connect ADDR]... [--store DIR] [--network] \
                     [--authz] [--logging]";

fn parse_args() -> Result<Args, ArgsError> {
    let mut listen = ListenArgs::new("recorder");
    let mut root = None;
    let mut log = None;
    let mut capabilities = false;
    let mut bare_get = false;
    let mut print_env = Vec::new();
    let mut report = false;
    let mut print_paths = Vec::new();
    let mut connect = Vec::new();
    let mut store = None;
    let mut network = false;
    let mut authz = false;
    let mut logging = false;
    let mut flags = Flags::from_env(USAGE);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--root" => root = Some(PathBuf::from(flags.value()?)),
            "--log" => log = Some(PathBuf::from(flags.value()?)),
            "--capabilities" => capabilities = true,
            "--bare-get" => bare_get = true,
            "--print-env" => print_env.push(flags.value()?),
            "--report" => report = true,
            "--print-path" => print_paths.push(flags.value()?),
            "--connect" => connect.push(flags.value()?),
            "--store" => store = Some(PathBuf::from(flags.value()?)),
            "--network" => network = true,
            "--authz" => authz = true,
            "--logging" => logging = true,
            // The recorder binds its socket itself, to learn each caller's pid: of the
            // listen flags it takes --name and --socket-dir.
            "--name" | "--socket-dir" => listen.parse_flag(&mut flags)?,
            "--socket-mode" | "--socket-group" | "--tcp" | "--spec-dir" | "--systemd" => {
                return Err(ArgsError::Unsupported {
                    flag,
                    why: "the recorder listens on a plain unix socket only".into(),
                });
            }
            _ => return Err(flags.unknown()),
        }
    }
    let required = |flag: &str| ArgsError::Required { flag: flag.into() };
    Ok(Args {
        socket: listen.unix_socket(),
        name: listen.name,
        root: root.ok_or_else(|| required("--root"))?,
        log: log.ok_or_else(|| required("--log"))?,
        capabilities,
        bare_get,
        print_env,
        report,
        print_paths,
        connect,
        store,
        network,
        authz,
        logging,
    })
}

// ---------------------------------------------------------------------------------------
// Recording: a middleware that logs each request and its reply.

/// Who connected, from the socket's peer credentials.
#[derive(Clone, Copy, Debug)]
struct Peer {
    pid: Option<i32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        let pid = stream.io().peer_cred().ok().and_then(|cred| cred.pid());
        Peer { pid }
    }
}

struct Recorder {
    file: Mutex<fs::File>,
    seq: AtomicU64,
}

impl Recorder {
    fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Mutex::new(file),
            seq: AtomicU64::new(0),
        })
    }

    fn append(&self, line: &Value) {
        let mut text = line.to_string();
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line, so that a reader never sees half a line.
        if let Err(err) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("recorder: cannot write the log: {err}");
        }
    }
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name.as_str().to_owned())
            .or_insert_with(Vec::new)
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let map: serde_json::Map<String, Value> = map
        .into_iter()
        .map(|(name, mut values)| {
            let value = if values.len() == 1 {
                Value::String(values.remove(0))
            } else {
                json!(values)
            };
            (name, value)
        })
        .collect();
    Value::Object(map)
}

/// A body as JSON: `null` when empty, the parsed value, or the text when it is not JSON.
fn body_json(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn record(State(recorder): State<Arc<Recorder>>, request: Request, next: Next) -> Response {
    let peer_pid = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .and_then(|info| info.0.pid);
    let (parts, body) = request.into_parts();
    let request_body = match axum::body::to_bytes(body, MAX_RECORDED_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("recorder: cannot read a request body: {err}");
            Bytes::new()
        }
    };
    let http_method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let request_headers = headers_json(&parts.headers);
    let response = next
        .run(Request::from_parts(parts, Body::from(request_body.clone())))
        .await;
    let (parts, body) = response.into_parts();
    let response_body = match axum::body::to_bytes(body, MAX_RECORDED_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("recorder: cannot read a response body: {err}");
            Bytes::new()
        }
    };
    let time_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    recorder.append(&json!({
        "seq": recorder.seq.fetch_add(1, Ordering::SeqCst) + 1,
        "time_unix_ms": time_unix_ms,
        "peer_pid": peer_pid,
        "http_method": http_method,
        "path": path,
        "method": path.trim_start_matches('/'),
        "request_headers": request_headers,
        "request_body": String::from_utf8_lossy(&request_body),
        "request": body_json(&request_body),
        "status": parts.status.as_u16(),
        "response_headers": headers_json(&parts.headers),
        "response_body": String::from_utf8_lossy(&response_body),
        "response": if path == "/LogDriver.ReadLogs" && parts.status.is_success() {
            logging::frames_json(&response_body)
        } else {
            body_json(&response_body)
        },
    }));
    Response::from_parts(parts, Body::from(response_body))
}

// ---------------------------------------------------------------------------------------
// Serving.

/// Binds `path`, replacing a socket nothing listens on (left by a killed recorder).
fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    if fs::symlink_metadata(path).is_ok() {
        if StdUnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("something already listens on {}", path.display()),
            ));
        }
        fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("recorder: cannot install signal handlers; stop it with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn run(args: Args) -> io::Result<()> {
    for var in &args.print_env {
        match std::env::var(var) {
            Ok(value) => println!("recorder: {var}={value}"),
            Err(_) => println!("recorder: {var} is not set"),
        }
    }
    if args.report {
        for line in report::lines() {
            println!("recorder: {line}");
        }
    }
    for path in &args.print_paths {
        let state = if fs::symlink_metadata(path).is_ok() {
            "present"
        } else {
            "absent"
        };
        println!("recorder: {path} {state}");
    }
    for addr in &args.connect {
        let timeout = std::time::Duration::from_secs(2);
        let result = addr
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
            .and_then(|addr| std::net::TcpStream::connect_timeout(&addr, timeout));
        match result {
            Ok(_) => println!("recorder: connect {addr} ok"),
            Err(err) => println!("recorder: connect {addr}: {err}"),
        }
    }
    fs::create_dir_all(&args.root)?;
    let recorder = Arc::new(Recorder::open(&args.log)?);
    let driver = volumes::DirVolumes {
        root: args.root.clone(),
        capabilities: args.capabilities,
        bare_get: args.bare_get,
        store: args.store.clone(),
    };
    let mut plugin = Plugin::new().volume(driver);
    if args.network {
        plugin = plugin
            .network(network::RecNetwork::default())
            .ipam(network::RecIpam::default());
    }
    if args.authz {
        plugin = plugin.authz(authz::RecAuthz);
    }
    if args.logging {
        plugin = plugin.logging(MemoryLog::new());
    }
    let router = plugin
        .into_router()
        .layer(middleware::from_fn_with_state(recorder, record));

    let path = args.socket.path();
    let listener = bind(&path)?;
    eprintln!("recorder: {} listening on {}", args.name, path.display());
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await;
    let _ = fs::remove_file(&path);
    eprintln!("recorder: {} stopped", args.name);
    served
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => return err.report("recorder"),
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("recorder: {err}");
            ExitCode::FAILURE
        }
    }
}
