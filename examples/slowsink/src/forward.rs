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
use tokio::io::{AsyncWriteExt, BufWriter};
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
        let mut connection: Option<BufWriter<TcpStream>> = None;
        while let Some(batch) = session.lines.next().await {
            loop {
                let stream = match &mut connection {
                    Some(stream) => stream,
                    None => match TcpStream::connect(address).await {
                        Ok(stream) => connection.insert(BufWriter::new(stream)),
                        Err(err) => {
                            tracing::debug!(%address, %err, "receiver down; retrying");
                            tokio::time::sleep(RECONNECT).await;
                            continue;
                        }
                    },
                };
                match write_batch(stream, &batch).await {
                    Ok(()) => break,
                    Err(err) => {
                        // The batch is sent again on a new connection (a line may
                        // then arrive twice: at least once, not at most once).
                        tracing::warn!(%address, %err, "receiver went away; reconnecting");
                        connection = None;
                        tokio::time::sleep(RECONNECT).await;
                    }
                }
            }
            session.add_forwarded(batch.len() as u64);
        }
        Ok(())
    }
}

async fn write_batch(stream: &mut BufWriter<TcpStream>, batch: &[Entry]) -> std::io::Result<()> {
    for entry in batch {
        stream.write_all(&entry.line).await?;
        stream.write_all(b"\n").await?;
    }
    stream.flush().await
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
