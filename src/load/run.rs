//! The load generator: `connections` tasks, each with one call in flight at a time
//! over a keep-alive HTTP/1.1 connection of its own (or a new connection per call),
//! for a given time. Connections outlive a run, so that a warmup and the runs after
//! it (or the benchmark's turns) reuse them as dockerd's pooled connections are
//! reused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::reply::{Connection, err_message};
use super::{Call, Histogram, LoadError, Report, Target};

/// How often the progress callback is called.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How long a task waits after a failed connect before it tries again (a plugin
/// that is down is not hammered).
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// How a load is made.
#[derive(Debug, Clone)]
pub struct Options {
    /// Calls in flight at once: one per connection.
    pub connections: usize,
    /// Open a new connection for every call (and close it after the reply), as a
    /// client without keep-alive does.
    pub new_connection_per_call: bool,
    /// A call without its reply after this long fails as a timeout (and its
    /// connection is closed, as Go closes it). `None`: wait for ever.
    pub timeout: Option<Duration>,
    /// Calls per second over all the connections, each making its share at even
    /// intervals (the connections' turns spread over an interval), instead of the
    /// next call as soon as the last is answered. A call is never sent before it is
    /// due, so the load never exceeds the rate. A connection whose reply comes late
    /// sends its next call at once; one more than an interval and 5 ms behind skips
    /// the calls it missed rather than sending them in a burst (the report's calls/s
    /// says what the plugin kept up with). A latency still counts from the request's
    /// write. tokio's timer counts milliseconds: calls due in the same millisecond go
    /// out together. `None`: as fast as the plugin answers.
    pub rate: Option<f64>,
}

impl Default for Options {
    /// One keep-alive connection, a 30 s timeout.
    fn default() -> Self {
        Self {
            connections: 1,
            new_connection_per_call: false,
            timeout: Some(Duration::from_secs(30)),
            rate: None,
        }
    }
}

/// Where a run stands, given to the progress callback.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed: Duration,
    /// The run's length.
    pub duration: Duration,
    /// Calls made so far.
    pub calls: u64,
    /// Calls failed so far.
    pub errors: u64,
}

/// A load on one plugin endpoint; its connections stay open between runs.
///
/// ```no_run
/// use docker_plugin_sdk::load::{Call, Load, Options, Target};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), docker_plugin_sdk::load::LoadError> {
/// let target = Target::locate("/run/docker/plugins/localvol.sock")?;
/// let call = Call::new("VolumeDriver.Get", Some(r#"{"Name":"v1"}"#))?;
/// let options = Options { connections: 64, ..Options::default() };
/// let mut load = Load::connect(target, call, options).await?;
/// load.run(Duration::from_secs(1), &mut |_| {}).await?; // warmup
/// let report = load.run(Duration::from_secs(10), &mut |p| eprint!("\r{} calls", p.calls)).await?;
/// println!("{:.0} calls/s, p99 {:?}", report.calls_per_sec(), report.latency.percentile(99.0));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Load {
    target: Target,
    call: Call,
    options: Options,
    request: Bytes,
    idle: Vec<Option<Connection>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl Load {
    /// Checks the endpoint with one call (a plugin that is not there, or that answers
    /// 404, fails here with the reason and its fix), then opens the connections
    /// (none for a new connection per call).
    pub async fn connect(target: Target, call: Call, options: Options) -> Result<Self, LoadError> {
        if options.connections == 0 {
            return Err(LoadError::Options(
                "--connections must be at least 1".to_owned(),
            ));
        }
        check_rate(options.rate)?;
        let request = call.bytes(target.host());
        let connect = |source| LoadError::Connect {
            addr: target.url(),
            source,
        };
        let mut first = Connection::new(target.connect().await.map_err(connect)?);
        let exchange = |message: String| LoadError::Exchange {
            method: call.method().to_owned(),
            addr: target.url(),
            message,
        };
        first
            .stream
            .write_all(&request)
            .await
            .map_err(|e| exchange(format!("write: {e}")))?;
        let probe = first.read_reply();
        let reply = match options.timeout {
            Some(timeout) => tokio::time::timeout(timeout, probe)
                .await
                .map_err(|_| exchange(format!("no reply within {timeout:?}")))?,
            None => probe.await,
        }
        .map_err(exchange)?;
        if reply.status == 404 {
            let body = first.body(&reply);
            return Err(LoadError::Refused {
                method: call.method().to_owned(),
                status: reply.status,
                message: err_message(body)
                    .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned()),
            });
        }
        let mut idle = Vec::with_capacity(options.connections);
        if !options.new_connection_per_call {
            idle.push((!reply.close).then_some(first));
            for _ in 1..options.connections {
                let stream = target.connect().await.map_err(connect)?;
                idle.push(Some(Connection::new(stream)));
            }
        }
        Ok(Self {
            target,
            call,
            options,
            request,
            idle,
        })
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The call made.
    pub fn call(&self) -> &Call {
        &self.call
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Paces the next runs at `rate` calls per second (see [`Options::rate`]), or lets
    /// them call as fast as the plugin answers (`None`), on the connections already
    /// open: a load measured flat out, then at a share of what it reached.
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::load::Load;
    /// # use std::time::Duration;
    /// # async fn run(mut load: Load) -> Result<(), docker_plugin_sdk::load::LoadError> {
    /// let flat_out = load.run(Duration::from_secs(1), &mut |_| {}).await?;
    /// load.set_rate(Some(flat_out.calls_per_sec() / 2.0))?;
    /// let paced = load.run(Duration::from_secs(1), &mut |_| {}).await?;
    /// println!("p99 at half load: {:?}", paced.latency.percentile(99.0));
    /// # Ok(()) }
    /// ```
    pub fn set_rate(&mut self, rate: Option<f64>) -> Result<(), LoadError> {
        check_rate(rate)?;
        self.options.rate = rate;
        Ok(())
    }

    /// Calls for `duration`, on every connection at once; `progress` is called every
    /// 100 ms. The calls in flight at the end are waited for, and count.
    pub async fn run(
        &mut self,
        duration: Duration,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Report, LoadError> {
        let counters = Arc::new(Counters::default());
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = Vec::with_capacity(self.options.connections);
        let connections = self.options.connections;
        for i in 0..connections {
            let pace = self.options.rate.map(|rate| {
                let interval = Duration::from_secs_f64(connections as f64 / rate);
                Pace {
                    interval,
                    next: started + interval.mul_f64(i as f64 / connections as f64),
                }
            });
            let worker = Worker {
                pace,
                target: self.target.clone(),
                request: self.request.clone(),
                timeout: self.options.timeout,
                per_call: self.options.new_connection_per_call,
                conn: self.idle.get_mut(i).and_then(Option::take),
                counters: Arc::clone(&counters),
            };
            tasks.push(tokio::spawn(worker.run(deadline)));
        }
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(PROGRESS_EVERY.min(deadline - now)).await;
            progress(&counters.progress(started.elapsed(), duration));
        }
        let mut report = Report::default();
        for (i, task) in tasks.into_iter().enumerate() {
            let (conn, part) = task
                .await
                .map_err(|e| LoadError::Internal(format!("a connection's task: {e}")))?;
            if let Some(slot) = self.idle.get_mut(i) {
                *slot = conn;
            }
            report.merge(part);
        }
        report.elapsed = started.elapsed();
        progress(&counters.progress(report.elapsed, duration));
        Ok(report)
    }
}

/// A rate must be a positive, finite number of calls per second.
fn check_rate(rate: Option<f64>) -> Result<(), LoadError> {
    match rate {
        Some(rate) if !(rate.is_finite() && rate > 0.0) => Err(LoadError::Options(format!(
            "--rate {rate}: give a positive number of calls per second"
        ))),
        _ => Ok(()),
    }
}

/// What the tasks count as they go, for the progress callback.
#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn progress(&self, elapsed: Duration, duration: Duration) -> Progress {
        Progress {
            elapsed,
            duration,
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// A paced connection's schedule (see [`Options::rate`]).
struct Pace {
    interval: Duration,
    /// When its next call is due.
    next: Instant,
}

impl Pace {
    /// How far behind a connection may fall and still catch up: more than tokio's
    /// timer tick (1 ms), which wakes a pace up to a tick late.
    const CATCH_UP: Duration = Duration::from_millis(5);

    /// Waits until the next call is due, and schedules the one after it: an interval
    /// later, or an interval from now for a connection more than an interval and
    /// [`CATCH_UP`](Self::CATCH_UP) behind (its missed calls are skipped).
    async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next.into()).await;
        } else if now - self.next > self.interval + Self::CATCH_UP {
            self.next = now;
        }
        self.next += self.interval;
    }
}

/// One connection's task.
struct Worker {
    pace: Option<Pace>,
    target: Target,
    request: Bytes,
    timeout: Option<Duration>,
    per_call: bool,
    conn: Option<Connection>,
    counters: Arc<Counters>,
}

/// How one call ended.
enum Outcome {
    Ok,
    Failed(Failure, String),
}

#[derive(Clone, Copy)]
enum Failure {
    Connect,
    Io,
    Status,
    Plugin,
    Timeout,
}

impl Worker {
    async fn run(mut self, deadline: Instant) -> (Option<Connection>, Report) {
        let mut report = Report::default();
        let mut latency = Histogram::default();
        while Instant::now() < deadline {
            if let Some(pace) = &mut self.pace {
                pace.wait().await;
                if Instant::now() >= deadline {
                    break;
                }
            }
            let started = Instant::now();
            let outcome = self.call(&mut report, &mut latency, started).await;
            report.calls += 1;
            self.counters.calls.fetch_add(1, Ordering::Relaxed);
            if let Outcome::Failed(kind, message) = outcome {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                let errors = &mut report.errors;
                match kind {
                    Failure::Connect => errors.connect += 1,
                    Failure::Io => errors.io += 1,
                    Failure::Status => errors.status += 1,
                    Failure::Plugin => errors.plugin += 1,
                    Failure::Timeout => errors.timeout += 1,
                }
                report.last_error = Some(message);
                if matches!(kind, Failure::Connect) {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
            }
        }
        report.latency = latency;
        let conn = if self.per_call { None } else { self.conn };
        (conn, report)
    }

    async fn call(
        &mut self,
        report: &mut Report,
        latency: &mut Histogram,
        started: Instant,
    ) -> Outcome {
        let mut conn = match self.conn.take() {
            Some(conn) if !self.per_call => conn,
            _ => match self.target.connect().await {
                Ok(stream) => Connection::new(stream),
                Err(e) => {
                    return Outcome::Failed(
                        Failure::Connect,
                        format!("connecting to {}: {e}", self.target.url()),
                    );
                }
            },
        };
        let exchange = async {
            conn.stream
                .write_all(&self.request)
                .await
                .map_err(|e| format!("write: {e}"))?;
            conn.read_reply().await
        };
        let reply = match self.timeout {
            Some(timeout) => match tokio::time::timeout(timeout, exchange).await {
                Ok(reply) => reply,
                Err(_) => {
                    return Outcome::Failed(
                        Failure::Timeout,
                        format!("no reply within {timeout:?}"),
                    );
                }
            },
            None => exchange.await,
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(message) => return Outcome::Failed(Failure::Io, message),
        };
        latency.record(started.elapsed());
        let body = conn.body(&reply);
        let outcome = match err_message(body) {
            Some(message) => {
                Outcome::Failed(Failure::Plugin, format!("HTTP {}: {message}", reply.status))
            }
            None if reply.status != 200 => Outcome::Failed(
                Failure::Status,
                format!(
                    "HTTP {}: {}",
                    reply.status,
                    String::from_utf8_lossy(body).trim()
                ),
            ),
            None => {
                if report.first_reply.is_none() {
                    report.first_reply = Some(Bytes::copy_from_slice(body));
                }
                Outcome::Ok
            }
        };
        if !reply.close && !self.per_call {
            self.conn = Some(conn);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_pace_on_time_waits_and_one_behind_skips_what_it_missed() {
        let interval = Duration::from_millis(20);
        // Due in the future: it waits, then the next is one interval after.
        let due = Instant::now() + Duration::from_millis(5);
        let mut pace = Pace {
            interval,
            next: due,
        };
        pace.wait().await;
        assert!(Instant::now() >= due);
        assert_eq!(pace.next, due + interval);

        // Half an interval late: the call goes at once and the schedule holds.
        let late = Instant::now() - interval / 2;
        let mut pace = Pace {
            interval,
            next: late,
        };
        assert!(pace.wait().now_or_never().is_some(), "no wait when late");
        assert_eq!(pace.next, late + interval);

        // A short interval, a timer tick behind: it catches up.
        let short = Duration::from_micros(500);
        let tick_late = Instant::now() - Duration::from_millis(2);
        let mut pace = Pace {
            interval: short,
            next: tick_late,
        };
        pace.wait().await;
        assert_eq!(pace.next, tick_late + short);

        // Three intervals behind: the missed calls are skipped, not sent in a burst.
        let mut pace = Pace {
            interval,
            next: Instant::now() - 3 * interval,
        };
        let before = Instant::now();
        assert!(pace.wait().now_or_never().is_some(), "no burst, no wait");
        let after = Instant::now();
        assert!(pace.next >= before + interval && pace.next <= after + interval);
    }
}
