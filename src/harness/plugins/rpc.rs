//! The calls themselves, as dockerd's `pkg/plugins` client makes them: `POST /Method`
//! with dockerd's headers and a Go-encoded body (`{…}\n`, or nothing for methods
//! without arguments) on a kept-alive connection (see [`Client`]); connection errors
//! retried with backoff 1 s·2ⁿ while elapsed + backoff < deadline (30 s in dockerd, so
//! 1, 2, 4, 8 s), HTTP answers never retried; each method's timeout and error key as
//! its declaration ([`Method`]) gives them. A retry after the request was written
//! sends an **empty body**, as dockerd's does: it rebuilds the request from the
//! `bytes.Buffer` the first attempt drained. A streaming call (`Client.Stream`, for
//! ReadLogs) is retried the same way.
//! Checked against moby v20.10.24 `pkg/plugins/client.go` (`callWithRetry`, `backoff`,
//! `abort`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use crate::client::{Client, ClientError, RawResponse, encode_method_request, encode_request};
use crate::harness::calls::{CallLog, CallRecord};
use crate::harness::error::HarnessError;
use crate::protocol::Method;

/// dockerd's retry of connection errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Give up once elapsed time plus the next backoff reaches this (dockerd: 30 s).
    pub deadline: Duration,
    /// The first backoff (dockerd: 1 s), doubled after each attempt.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(30),
            first_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retry at all: what dockerd does when listing plugins (`GetAll`).
    pub fn none() -> Self {
        Self {
            deadline: Duration::ZERO,
            first_backoff: Duration::ZERO,
        }
    }

    /// The backoff before retry number `retries` (0-based), doubling up to the deadline.
    pub fn backoff(&self, retries: u32) -> Duration {
        let factor = 1u32.checked_shl(retries.min(31)).unwrap_or(u32::MAX);
        self.first_backoff.saturating_mul(factor).min(self.deadline)
    }

    /// Whether to give up instead of sleeping `backoff` more.
    pub fn abort(&self, start: Instant, backoff: Duration) -> bool {
        backoff + start.elapsed() >= self.deadline
    }

    /// dockerd's retry with a 5 s deadline and a 100 ms first backoff (dockerd: 30 s
    /// and 1 s): a plugin that starts late is still found, a missing one fails fast.
    ///
    /// ```
    /// use std::time::Duration;
    /// use docker_plugin_sdk::harness::RetryPolicy;
    ///
    /// let fast = RetryPolicy::fast();
    /// assert_eq!(fast.deadline, Duration::from_secs(5));
    /// assert_eq!(fast.backoff(0), Duration::from_millis(100));
    /// assert_eq!(fast.backoff(2), Duration::from_millis(400));
    /// ```
    pub fn fast() -> Self {
        Self {
            deadline: Duration::from_secs(5),
            first_backoff: Duration::from_millis(100),
        }
    }
}

/// A plugin's client in the engine: retries, timeouts and the call log.
#[derive(Debug, Clone)]
pub struct PluginRpc {
    name: String,
    client: Client,
    retry: RetryPolicy,
    log: CallLog,
    max_timeout: Option<Duration>,
}

impl PluginRpc {
    pub(crate) fn new(name: &str, client: Client, retry: RetryPolicy, log: CallLog) -> Self {
        Self {
            name: name.to_owned(),
            client,
            retry,
            log,
            max_timeout: None,
        }
    }

    /// Caps every call's timeout at `max` (a managed plugin's client timeout, which
    /// dockerd sets from `docker plugin enable --timeout`).
    pub fn with_max_timeout(mut self, max: Duration) -> Self {
        self.max_timeout = Some(max);
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls method `M` with `request` as dockerd does (its body form, its timeout
    /// capped by the plugin's) and decodes the answer as dockerd does.
    pub async fn call<M: Method>(&self, request: &M::Request) -> Result<M::Response, HarnessError> {
        let reply = self.call_raw::<M>(request).await?;
        reply.decode_as::<M>().map_err(|source| HarnessError::Call {
            plugin: self.name.clone(),
            source,
        })
    }

    /// Like [`PluginRpc::call`] without decoding: the answer as received.
    pub async fn call_raw<M: Method>(
        &self,
        request: &M::Request,
    ) -> Result<RawResponse, HarnessError> {
        let body = encode_method_request::<M>(request).map_err(|source| HarnessError::Call {
            plugin: self.name.clone(),
            source,
        })?;
        let timeout = match (M::TIMEOUT, self.max_timeout) {
            (Some(method), Some(max)) => Some(method.min(max)),
            (method, max) => method.or(max),
        };
        self.send(M::NAME, body, timeout, M::REDACT_REPLY).await
    }

    /// Calls the streaming method `M` (`LogDriver.ReadLogs`) as dockerd's
    /// `Client.Stream` does: connection errors retried as for any call (`Stream` goes
    /// through `callWithRetry` too), no timeout (a follow stream lasts), the body
    /// handed over as it arrives; the answered attempt is logged with the response
    /// `"<stream>"`.
    pub async fn stream<M: Method>(
        &self,
        request: &M::Request,
    ) -> Result<crate::client::ReplyStream, HarnessError> {
        let body = encode_request(M::NAME, request).map_err(|source| HarnessError::Call {
            plugin: self.name.clone(),
            source,
        })?;
        let client = &self.client;
        self.with_retry(
            M::NAME,
            body,
            move |body| client.stream_body::<M>(body),
            |_| (Some(200), Value::String("<stream>".into())),
        )
        .await
    }

    /// Sends `body` to `method`, retrying connection errors as dockerd does, and logs
    /// every attempt; a reply that holds a secret (`redact`) is logged as
    /// `"<redacted>"`.
    async fn send(
        &self,
        method: &str,
        body: Bytes,
        timeout: Option<Duration>,
        redact: bool,
    ) -> Result<RawResponse, HarnessError> {
        let client = match timeout {
            Some(timeout) => self.client.clone().timeout(timeout),
            None => self.client.clone(),
        };
        let client = &client;
        self.with_retry(
            method,
            body,
            move |body| client.call_raw(method, body),
            |reply: &RawResponse| {
                let response = match redact {
                    true => Value::String(crate::secrets::REDACTED.to_owned()),
                    false => reply.json().unwrap_or_else(|_| Value::String(reply.text())),
                };
                (Some(reply.status.as_u16()), response)
            },
        )
        .await
    }

    /// dockerd's `callWithRetry` around `attempt`, which sends `body` to `method`:
    /// transport errors retried with backoff until the deadline (the body emptied once
    /// it was written, as dockerd's drained buffer is), anything answered returned.
    /// Every attempt is logged; an answer as `answered` describes it.
    async fn with_retry<T, F: Future<Output = Result<T, ClientError>>>(
        &self,
        method: &str,
        mut body: Bytes,
        attempt: impl Fn(Bytes) -> F,
        answered: impl Fn(&T) -> (Option<u16>, Value),
    ) -> Result<T, HarnessError> {
        let start = Instant::now();
        let mut retries = 0;
        loop {
            let began = Instant::now();
            let request_json = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body).unwrap_or(Value::Null)
            };
            let result = attempt(body.clone()).await;
            let record = |(status, response), error| CallRecord {
                plugin: self.name.clone(),
                method: method.to_owned(),
                request: request_json,
                status,
                response,
                error,
                duration: began.elapsed(),
            };
            let err = match result {
                Ok(answer) => {
                    self.log.push(record(answered(&answer), None));
                    return Ok(answer);
                }
                Err(err) if err.is_transport() => err,
                Err(err) => {
                    self.log
                        .push(record((err.status(), Value::Null), Some(err.to_string())));
                    return Err(HarnessError::Call {
                        plugin: self.name.clone(),
                        source: err,
                    });
                }
            };
            self.log
                .push(record((None, Value::Null), Some(err.to_string())));
            let backoff = self.retry.backoff(retries);
            if self.retry.abort(start, backoff) {
                return Err(HarnessError::Call {
                    plugin: self.name.clone(),
                    source: err,
                });
            }
            retries += 1;
            if err.was_written() {
                // What dockerd's next attempt sends: its buffer is empty now.
                body = Bytes::new();
            }
            tracing::warn!(plugin = %self.name, method, %err, ?backoff, "unable to connect to plugin, retrying");
            tokio::time::sleep(backoff).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_matches_dockerd() {
        let p = RetryPolicy::default();
        let sleeps: Vec<u64> = (0..6).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(sleeps, [1, 2, 4, 8, 16, 30]);
        // Sleeps happen while elapsed + backoff < 30 s: 1+2+4+8 = 15 s, then 15+16 ≥ 30.
        let mut elapsed = Duration::ZERO;
        let mut slept = Vec::new();
        for n in 0.. {
            let b = p.backoff(n);
            if b + elapsed >= p.deadline {
                break;
            }
            slept.push(b.as_secs());
            elapsed += b;
        }
        assert_eq!(slept, [1, 2, 4, 8]);
    }
}
