//! The log driver: each container's lines forwarded to a TCP receiver, one line per
//! `\n`, as fast as the receiver reads them, and no faster.
//!
//! That is the point of the example: the forwarder does nothing about a slow or
//! stopped receiver. It blocks on its socket (or retries its connection), and the
//! SDK's buffer and [`Overflow`](docker_plugin_sdk::logging::Overflow) policy keep
//! dockerd's FIFO read, so the container never blocks; what could not be kept is
//! counted. When a container's logging ends, its counts are logged (what the SDK
//! received, what was forwarded, dropped, spilled, and what was still waiting when
//! StopLogging's flush timeout gave up on the receiver), also when the forwarder is
//! cancelled mid-write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use docker_plugin_sdk::logging::{self, Entry, Info, Logs};
use docker_plugin_sdk::{DriverOptions, Result, async_trait};
use futures_util::StreamExt;
use futures_util::stream::ReadyChunks;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How many ready lines are written before a flush.
const BATCH: usize = 256;

/// How long to wait before connecting again to a receiver that is down.
const RECONNECT: Duration = Duration::from_millis(200);

/// The `--log-opt`s slowsink takes.
#[derive(Debug, DriverOptions)]
pub struct SinkOptions {
    /// Where this container's lines go (default: the plugin's `--address`).
    pub address: Option<SocketAddr>,
}

/// Forwards every container's lines to a TCP receiver.
#[derive(Debug)]
pub struct SlowSink {
    address: SocketAddr,
    forwarded: Arc<AtomicU64>,
}

impl SlowSink {
    /// Lines go to `address` unless a container's `--log-opt address=` says otherwise.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            forwarded: Arc::default(),
        }
    }

    /// The lines forwarded so far, every container's.
    pub fn forwarded(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.forwarded)
    }
}

#[async_trait]
impl logging::Driver for SlowSink {
    async fn validate(&self, info: &Info) -> Result<()> {
        info.options::<SinkOptions>()?;
        Ok(())
    }

    async fn consume(&self, info: Info, logs: Logs) -> Result<()> {
        let options: SinkOptions = info.options()?;
        let address = options.address.unwrap_or(self.address);
        let mut session = Session {
            container: info.name().to_owned(),
            lines: logs.ready_chunks(BATCH),
            forwarded: 0,
            total: Arc::clone(&self.forwarded),
        };
        let mut connection: Option<TcpStream> = None;
        while let Some(batch) = session.lines.next().await {
            let mut pending = lines_of(&batch);
            while !pending.is_empty() {
                let stream = match &mut connection {
                    Some(stream) => stream,
                    None => match TcpStream::connect(address).await {
                        Ok(stream) => connection.insert(stream),
                        Err(err) => {
                            tracing::debug!(%address, %err, "receiver down; retrying");
                            tokio::time::sleep(RECONNECT).await;
                            continue;
                        }
                    },
                };
                if let Err(err) = send(stream, &mut pending, &mut session).await {
                    // What is left goes to a new connection, from the start of the
                    // line the old one got part of.
                    tracing::warn!(%address, %err, "receiver went away; reconnecting");
                    connection = None;
                    tokio::time::sleep(RECONNECT).await;
                }
            }
        }
        Ok(())
    }
}

/// The lines of `batch`, each with its `\n`, in one buffer.
fn lines_of(batch: &[Entry]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(batch.iter().map(|e| e.line.len() + 1).sum());
    for entry in batch {
        buf.extend_from_slice(&entry.line);
        buf.push(b'\n');
    }
    buf
}

/// Writes `pending` to `stream`, counting each line as forwarded once its `\n` is in
/// the socket: exact even when StopLogging's flush timeout cancels the write half-way
/// (a write either took its bytes or none). On an error, `pending` keeps what is left
/// from the start of the line being written, for a new connection.
async fn send(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    session: &mut Session,
) -> std::io::Result<()> {
    // The bytes of `pending`'s first line this connection already took.
    let mut offset = 0;
    while offset < pending.len() {
        let n = match stream.write(&pending[offset..]).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => n,
        };
        let end = offset + n;
        let lines = pending[offset..end].iter().filter(|b| **b == b'\n').count();
        session.add_forwarded(lines as u64);
        let complete = pending[..end]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        pending.drain(..complete);
        offset = end - complete;
    }
    pending.clear();
    Ok(())
}

/// One container's forwarding; its counts are logged when it ends, however it ends.
struct Session {
    container: String,
    lines: ReadyChunks<Logs>,
    forwarded: u64,
    total: Arc<AtomicU64>,
}

impl Session {
    fn add_forwarded(&mut self, n: u64) {
        self.forwarded += n;
        self.total.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let counts = self.lines.get_ref().counters();
        let dropped = counts.dropped_oldest + counts.dropped_newest;
        // Taken from the SDK but neither forwarded nor dropped: the batch being written
        // and what was still buffered when StopLogging's flush timeout cancelled us.
        let unsent = counts.received.saturating_sub(self.forwarded + dropped);
        tracing::info!(
            container = %self.container,
            received = counts.received,
            forwarded = self.forwarded,
            dropped,
            dropped_oldest = counts.dropped_oldest,
            dropped_newest = counts.dropped_newest,
            spilled = counts.spilled,
            unsent,
            "slowsink: logging ended"
        );
    }
}
