//! The recorder's log driver (`--logging`) is the SDK's in-memory one
//! ([`MemoryLog`](docker_plugin_sdk::harness::testing::MemoryLog): every container's
//! lines kept, served back through ReadLogs with `Tail`, `Since`/`Until` and `Follow`
//! until the container's StopLogging), so that `docker run --log-driver` and `docker
//! logs` work end to end while the middleware records the calls. A ReadLogs reply is
//! frames, not JSON: this module is how the middleware records them, decoded
//! ([`frames_json`]).

use docker_plugin_sdk::logging::FrameDecoder;
use serde_json::{Value, json};

/// A ReadLogs reply's frames as JSON: `[{"source", "line" (text), "bytes"}]`, the time
/// left out (it is the run's own).
pub(crate) fn frames_json(body: &[u8]) -> Value {
    let mut decoder = FrameDecoder::new();
    decoder.extend(body);
    let mut frames = Vec::new();
    loop {
        match decoder.decode() {
            Ok(Some(entry)) => frames.push(json!({
                "source": entry.source,
                "line": String::from_utf8_lossy(&entry.line),
                "bytes": entry.line.len(),
                "partial": entry.partial,
            })),
            Ok(None) => break,
            Err(err) => {
                frames.push(json!({ "error": err.to_string() }));
                break;
            }
        }
    }
    Value::Array(frames)
}
