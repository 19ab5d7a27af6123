//! Reading one container's FIFO: opened at StartLogging, read continuously by a task
//! of its own until StopLogging, drained without blocking at the stop.
//!
//! dockerd creates the FIFO and holds it open `O_RDWR` (moby v20.10.24
//! `daemon/logger/plugin_unix.go` `openPluginStream`), so the read end sees **no EOF
//! before StopLogging**: the stop is a signal, and what the FIFO holds then is read
//! with non-blocking reads until it is empty. The path is used as dockerd gives it: a
//! managed plugin sees `/run/docker/logging/<id>` inside its rootfs, where dockerd
//! created it; a legacy plugin sees the host's `/run/docker/logging/<id>`.
//!
//! A malformed frame ends the container's stream (logged, counted), but the task reads
//! on and discards until the stop: a FIFO nobody reads would block the container.

use std::path::Path;
use std::sync::Arc;

use tokio::net::unix::pipe;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::buffer::Queue;
use super::counters::Count;
use super::frame::{FrameDecoder, FrameError};
use super::partial::{Entry, Reassembler};

/// Opens the read end of the FIFO at `path` (non-blocking: dockerd already holds the
/// write end).
pub(crate) fn open(path: &Path) -> std::io::Result<pipe::Receiver> {
    pipe::OpenOptions::new().open_receiver(path)
}

/// What the reading task hands its entries to.
pub(crate) struct Sink {
    pub(crate) queue: Arc<Queue>,
    /// Followers of this container (`docker logs -f`); sent to only when there are.
    pub(crate) live: broadcast::Sender<Entry>,
    pub(crate) max_line: usize,
    /// Names the container in the task's logs.
    pub(crate) name: String,
}

impl Sink {
    async fn deliver(&self, entries: Vec<Entry>) {
        for entry in entries {
            if self.live.receiver_count() > 0 {
                let _ = self.live.send(entry.clone());
            }
            self.queue.push(entry).await;
        }
    }
}

/// Reads `fifo` into `sink` until `stop` (then drains it without blocking), or until
/// the writer closes it. Never stops reading before `stop` while the writer is there.
pub(crate) async fn read(mut fifo: pipe::Receiver, sink: Sink, stop: CancellationToken) {
    let mut decoder = FrameDecoder::new();
    let mut joiner = Reassembler::new(sink.max_line);
    let mut broken = false;
    let mut eof = false;
    while !eof {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            read = decoder.read_some(&mut fifo) => match read {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(container = %sink.name, "reading the log FIFO: {err}: the container's log stream ends");
                    eof = true;
                }
            },
        }
        if !broken {
            broken = !take_frames(&mut decoder, &mut joiner, &sink).await;
        } else {
            decoder = FrameDecoder::new();
        }
    }
    if !eof {
        drain(&mut fifo, &mut decoder, &sink.name, broken);
        if !broken {
            broken = !take_frames(&mut decoder, &mut joiner, &sink).await;
        }
    }
    if !broken {
        if let Err(err) = decoder.finish() {
            report(&sink, &err);
        }
        sink.deliver(joiner.finish()).await;
    }
    sink.queue.close();
    drop(fifo);
}

/// Reads what the FIFO holds now into `decoder` (dropped when `broken`), without
/// waiting for more.
fn drain(fifo: &mut pipe::Receiver, decoder: &mut FrameDecoder, name: &str, broken: bool) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        match fifo.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) if !broken => decoder.extend(&buf[..n]),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(err) => {
                tracing::error!(container = %name, "draining the log FIFO: {err}");
                break;
            }
        }
    }
}

/// Hands every complete frame to the sink; false after a malformed one.
async fn take_frames(decoder: &mut FrameDecoder, joiner: &mut Reassembler, sink: &Sink) -> bool {
    loop {
        match decoder.decode() {
            Ok(Some(entry)) => sink.deliver(joiner.push(entry)).await,
            Ok(None) => return true,
            Err(err) => {
                report(sink, &err);
                let pending = joiner.finish();
                sink.deliver(pending).await;
                sink.queue.close();
                return false;
            }
        }
    }
}

fn report(sink: &Sink, err: &FrameError) {
    sink.queue.counters().add(Count::Malformed, 1);
    tracing::error!(
        container = %sink.name,
        "{err}: the container's log stream ends here; the FIFO is still read (and discarded) until StopLogging so the container never blocks"
    );
}
