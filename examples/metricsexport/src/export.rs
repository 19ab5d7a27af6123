//! The export loop: scrape the engine's metrics, write the latest scrape to
//! `OUT/engine.prom` and the loop's own counts to `OUT/metricsexport.prom`, each file
//! replaced atomically (written beside it, then renamed), so a reader never sees half
//! a file. A failed scrape is counted and logged; the last good `engine.prom` stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use docker_plugin_sdk::metrics::{EngineMetrics, MetricFamily, MetricKind, Sample, Scrape};

/// The file holding the engine's latest scrape.
pub const ENGINE_FILE: &str = "engine.prom";
/// The file holding the exporter's own counts.
pub const OWN_FILE: &str = "metricsexport.prom";

/// Scrapes one endpoint into one directory.
pub struct Exporter {
    engine: EngineMetrics,
    out: PathBuf,
    scrapes: AtomicU64,
    errors: AtomicU64,
}

impl Exporter {
    pub fn new(engine: EngineMetrics, out: PathBuf) -> Self {
        Self {
            engine,
            out,
            scrapes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Scrapes every `interval`, for ever.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        loop {
            self.tick().await;
            tokio::time::sleep(interval).await;
        }
    }

    /// One scrape and its files.
    pub async fn tick(&self) {
        match self.engine.scrape().await {
            Ok(scrape) => {
                self.scrapes.fetch_add(1, Ordering::Relaxed);
                if let Err(err) =
                    write_atomically(&self.out.join(ENGINE_FILE), &scrape.render()).await
                {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%err, "writing the scrape");
                }
            }
            Err(err) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%err, "scrape failed");
            }
        }
        if let Err(err) = write_atomically(&self.out.join(OWN_FILE), &self.own().render()).await {
            tracing::warn!(%err, "writing the exporter's counts");
        }
    }

    /// The exporter's own counts, in the text format.
    pub fn own(&self) -> Scrape {
        let counter = |name: &str, help: &str, value: u64| MetricFamily {
            name: name.to_owned(),
            help: Some(help.to_owned()),
            kind: MetricKind::Counter,
            samples: vec![Sample {
                name: name.to_owned(),
                labels: Vec::new(),
                value: value as f64,
                timestamp_ms: None,
            }],
        };
        Scrape {
            families: vec![
                counter(
                    "metricsexport_scrapes_total",
                    "Scrapes of the engine's metrics that succeeded.",
                    self.scrapes.load(Ordering::Relaxed),
                ),
                counter(
                    "metricsexport_scrape_errors_total",
                    "Scrapes that failed (endpoint unreachable, bad reply, file not written).",
                    self.errors.load(Ordering::Relaxed),
                ),
            ],
        }
    }
}

/// Writes `text` to `path` through a temporary file beside it and a rename.
async fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    tokio::fs::write(&temp, text).await?;
    tokio::fs::rename(&temp, path).await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    use super::*;

    /// An endpoint answering each scrape with the next of `replies`.
    fn endpoint(path: &Path, replies: Vec<&'static str>) {
        let listener = UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            for body in replies {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await.unwrap();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(reply.as_bytes()).await.unwrap();
            }
        });
    }

    fn read(dir: &Path, file: &str) -> Scrape {
        Scrape::parse(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_scrape_is_re_exported_and_failures_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("metrics.sock");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        endpoint(
            &socket,
            vec![
                "# TYPE engine_daemon_container_actions_seconds histogram\n\
                 engine_daemon_container_actions_seconds_count{action=\"start\"} 3\n",
                "garbage{ 1\n",
            ],
        );
        let exporter = Exporter::new(EngineMetrics::at(&socket), out.clone());
        exporter.tick().await;
        let engine = read(&out, ENGINE_FILE);
        assert_eq!(
            engine.value(
                "engine_daemon_container_actions_seconds_count",
                &[("action", "start")]
            ),
            Some(3.0)
        );
        // A reply that is not the text format: counted, the last good file kept.
        exporter.tick().await;
        // The endpoint is gone: counted too.
        exporter.tick().await;
        let own = read(&out, OWN_FILE);
        assert_eq!(own.value("metricsexport_scrapes_total", &[]), Some(1.0));
        assert_eq!(
            own.value("metricsexport_scrape_errors_total", &[]),
            Some(2.0)
        );
        assert_eq!(read(&out, ENGINE_FILE), engine);
        // Nothing half-written is left beside the files.
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [ENGINE_FILE, OWN_FILE]);
    }
}
