//! A line receiver on loopback TCP that can be paused: the sink slowsink forwards to,
//! for its tests.
//!
//! Paused, it stops reading its connections: the kernel's socket buffers fill, the
//! forwarder's writes block, and the SDK's buffer and overflow policy are what keeps
//! the container running. Resumed, it reads on. It counts the complete lines it read
//! and keeps the last one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running receiver; dropping it stops accepting (open connections end with the
/// runtime).
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    read: Arc<Read>,
    accept: tokio::task::JoinHandle<()>,
}

/// What the receiver read.
#[derive(Debug, Default)]
struct Read {
    lines: AtomicU64,
    last: Mutex<Vec<u8>>,
}

impl Receiver {
    /// Listens on `addr` (port 0: any free port), reading unless paused.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (paused, _) = watch::channel(false);
        let read = Arc::new(Read::default());
        let accept = tokio::spawn(accept_loop(listener, paused.subscribe(), Arc::clone(&read)));
        Ok(Self {
            addr,
            paused,
            read,
            accept,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops reading (connections stay open, their buffers fill).
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Reads again.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// The complete lines read so far.
    pub fn lines(&self) -> u64 {
        self.read.lines.load(Ordering::Relaxed)
    }

    /// The last complete line read, without its `\n`.
    pub fn last_line(&self) -> Vec<u8> {
        self.read
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until `n` lines were read, up to `timeout`; the count then.
    pub async fn wait_for_lines(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.lines() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.lines()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, paused: watch::Receiver<bool>, read: Arc<Read>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(read_lines(stream, paused.clone(), Arc::clone(&read)));
            }
            Err(err) => {
                tracing::warn!(%err, "receiver: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads `stream` while not paused, counting `\n`s and keeping the last line.
async fn read_lines(mut stream: TcpStream, mut paused: watch::Receiver<bool>, read: Arc<Read>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut line = Vec::new();
    loop {
        if paused.wait_for(|paused| !paused).await.is_err() {
            return;
        }
        tokio::select! {
            got = stream.read(&mut buf) => match got {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    for piece in buf[..n].split_inclusive(|b| *b == b'\n') {
                        match piece.strip_suffix(b"\n") {
                            Some(end) => {
                                line.extend_from_slice(end);
                                *read.last.lock().unwrap_or_else(|p| p.into_inner()) =
                                    std::mem::take(&mut line);
                                read.lines.fetch_add(1, Ordering::Relaxed);
                            }
                            None => line.extend_from_slice(piece),
                        }
                    }
                }
            },
            // Paused while waiting for data: stop reading at once.
            _ = paused.wait_for(|paused| *paused) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_paused_receiver_reads_nothing_until_resumed() {
        let receiver = Receiver::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut conn = TcpStream::connect(receiver.addr()).await.unwrap();
        conn.write_all(b"one\ntwo\n").await.unwrap();
        assert_eq!(receiver.wait_for_lines(2, Duration::from_secs(5)).await, 2);
        receiver.pause();
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.write_all(b"three\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(receiver.lines(), 2);
        receiver.resume();
        assert_eq!(receiver.wait_for_lines(3, Duration::from_secs(5)).await, 3);
        assert_eq!(receiver.last_line(), b"three");
    }
}
