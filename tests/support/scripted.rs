//! A plugin that is not an SDK server: a unix socket answered from a script, byte by
//! byte, recording the exact bytes of every request and the connection it came on. For
//! the tests of what the client (and so the harness) writes and how it copes with a
//! plugin that closes connections, hangs up or answers oddly. It runs on a thread and
//! runtime of its own, as a plugin process would: a test may block its own runtime
//! while the plugin goes on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use docker_plugin_sdk::CancellationToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The connection it came on, numbered from 0 in order of accept.
    pub connection: usize,
    /// The request line and headers, up to and with the blank line.
    pub head: String,
    /// The body.
    pub body: String,
}

impl Seen {
    /// The path of the request line (`/VolumeDriver.Get`).
    pub fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }
}

/// What the script does with a request.
pub enum Answer {
    /// `HTTP/1.1 STATUS` with this body, the connection kept.
    Reply(u16, String),
    /// The same reply, then the connection closed.
    ReplyAndClose(u16, String),
    /// The same reply, then the connection closed after a while.
    ReplyAndCloseAfter(u16, String, std::time::Duration),
    /// The connection closed without a reply.
    HangUp,
    /// No reply, the connection held open.
    Silence,
}

/// The scripted plugin; stops when dropped.
pub struct Scripted {
    pub socket: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Notified each time the server closes a connection.
    pub closed: Arc<Notify>,
    stop: CancellationToken,
}

type Script = dyn Fn(usize, &Seen) -> Answer + Send + Sync;

impl Scripted {
    /// Serves `socket`, answering request number `n` (from 0, over every connection)
    /// with `script(n, request)`.
    pub fn start(
        socket: &Path,
        script: impl Fn(usize, &Seen) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let script: Arc<Script> = Arc::new(script);
        let (seen2, closed2, stop2) = (seen.clone(), closed.clone(), stop.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = UnixListener::from_std(listener).unwrap();
                for connection in 0.. {
                    let (stream, _) = tokio::select! {
                        accepted = listener.accept() => accepted.unwrap(),
                        () = stop2.cancelled() => return,
                    };
                    let (seen, closed, script) = (seen2.clone(), closed2.clone(), script.clone());
                    tokio::spawn(async move {
                        serve(stream, connection, &seen, &*script).await;
                        closed.notify_one();
                    });
                }
            });
        });
        Self {
            socket: socket.to_path_buf(),
            seen,
            closed,
            stop,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(
    mut stream: UnixStream,
    connection: usize,
    seen: &Mutex<Vec<Seen>>,
    script: &Script,
) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buffer, connection).await else {
            return;
        };
        let answer = {
            let mut seen = seen.lock().unwrap();
            seen.push(request.clone());
            script(seen.len() - 1, &request)
        };
        let reply = |status: u16, body: &str| {
            format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        match answer {
            Answer::Reply(status, body) => {
                if stream
                    .write_all(reply(status, &body).as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Answer::ReplyAndClose(status, body) => {
                let _ = stream.write_all(reply(status, &body).as_bytes()).await;
                return;
            }
            Answer::ReplyAndCloseAfter(status, body, after) => {
                let _ = stream.write_all(reply(status, &body).as_bytes()).await;
                tokio::time::sleep(after).await;
                return;
            }
            Answer::HangUp => return,
            Answer::Silence => {
                // Until the client gives up and closes.
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
                return;
            }
        }
    }
}

/// Reads one request (head and `Content-Length` body); `None` at end of stream.
async fn read_request(
    stream: &mut UnixStream,
    buffer: &mut Vec<u8>,
    connection: usize,
) -> Option<Seen> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    buffer.drain(..head_end + length);
    Some(Seen {
        connection,
        head,
        body,
    })
}
