//! The decision log: one JSON line per AuthZReq decision, for audit and for debugging
//! a policy:
//!
//! ```text
//! {"time":"2026-04-14T09:12:03.417Z","user":"","method":"POST","path":"/v1.41/containers/create","allow":false,"reason":"data.docker.authz.allow is undefined"}
//! ```
//!
//! `path` is the URI as sent (with its query), `reason` why the plugin decided so.
//! Request bodies are left out (they may hold secrets: environment variables, registry
//! credentials of a build) unless `--log-bodies` is given; then `body` is the body as
//! the policy saw it, `null` when dockerd sent none. Lines go to stdout (which, for a
//! managed plugin, dockerd copies into its own log) or to a file, appended; one writer
//! task owns the output, so lines never interleave and no request waits on another's
//! write for long (the queue holds 1024 lines). So a decision's line is written after
//! dockerd has its answer: a reader can see it a moment after the API call returned
//! (tests/dockerd_authz.rs waits for it).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use docker_plugin_sdk::authz::{Body, Request};
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Where the decision log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard output (`--decision-log -`, the default).
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

/// One line of the log.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    time: String,
    user: &'a str,
    method: &'a str,
    path: &'a str,
    allow: bool,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
}

/// The sending end of the log; cheap to share.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    lines: mpsc::Sender<String>,
    bodies: bool,
}

impl DecisionLog {
    /// Opens `target` and starts the task writing to it; with `bodies`, lines carry
    /// the request body.
    pub async fn start(target: &Target, bodies: bool) -> std::io::Result<Self> {
        let out: Box<dyn AsyncWrite + Send + Unpin> = match target {
            Target::Stdout => Box::new(tokio::io::stdout()),
            Target::File(path) => Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot open decision log {}: {e}", path.display()),
                        )
                    })?,
            ),
        };
        let (lines, rx) = mpsc::channel(1024);
        tokio::spawn(write_lines(rx, out));
        Ok(Self { lines, bodies })
    }

    /// Records that `req` was allowed (or not) for `reason`.
    pub async fn record(&self, req: &Request, allow: bool, reason: &str) {
        let entry = Entry {
            time: rfc3339(SystemTime::now()),
            user: &req.user,
            method: req.method.as_str(),
            path: &req.uri,
            allow,
            reason,
            body: self.bodies.then(|| body_value(&req.body)),
        };
        let line = match serde_json::to_string(&entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!("cannot encode a decision log line: {e}");
                return;
            }
        };
        if self.lines.send(line).await.is_err() {
            tracing::error!("the decision log writer has stopped; a decision is not logged");
        }
    }
}

/// The body as the log shows it: JSON as parsed, other bytes as text.
fn body_value(body: &Body) -> Value {
    match body {
        Body::Absent => Value::Null,
        Body::Json { value, .. } => value.clone(),
        Body::Bytes(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

async fn write_lines(mut rx: mpsc::Receiver<String>, mut out: Box<dyn AsyncWrite + Send + Unpin>) {
    while let Some(mut line) = rx.recv().await {
        line.push('\n');
        let written = async {
            out.write_all(line.as_bytes()).await?;
            out.flush().await
        };
        if let Err(e) = written.await {
            tracing::error!("cannot write the decision log: {e}");
        }
    }
}

/// `time` as RFC 3339 in UTC with milliseconds: `2026-04-14T09:12:03.417Z`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::input::tests::request;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        let at = |secs: u64, millis: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_776_157_923, 417), "2026-04-14T09:12:03.417Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }

    async fn logged(bodies: bool, req: &Request) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.log");
        let log = DecisionLog::start(&Target::File(path.clone()), bodies)
            .await
            .unwrap();
        log.record(req, false, "data.docker.authz.allow is undefined")
            .await;
        log.record(req, true, "second").await;
        drop(log);
        // The writer drains the queue, then ends.
        let text = loop {
            let text = tokio::fs::read_to_string(&path).await.unwrap();
            if text.lines().count() == 2 {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let first = text.lines().next().unwrap();
        serde_json::from_str(first).unwrap()
    }

    #[tokio::test]
    async fn a_line_names_user_method_path_decision_and_reason_without_the_body() {
        let req = request(
            "POST",
            "/v1.41/containers/create?name=web",
            &[("Content-Type", "application/json")],
            r#"{"Env": ["PASSWORD=secret"]}"#,
        );
        let line = logged(false, &req).await;
        let time = line["time"].as_str().unwrap().to_owned();
        assert_eq!(time.len(), "2026-04-14T09:12:03.417Z".len(), "{time}");
        assert_eq!(
            line,
            serde_json::json!({
                "time": time,
                "user": "",
                "method": "POST",
                "path": "/v1.41/containers/create?name=web",
                "allow": false,
                "reason": "data.docker.authz.allow is undefined",
            })
        );
    }

    #[tokio::test]
    async fn bodies_are_logged_when_asked_null_when_absent() {
        let json = ("Content-Type", "application/json");
        let req = request("POST", "/v1.41/volumes/create", &[json], r#"{"Name": "v"}"#);
        assert_eq!(
            logged(true, &req).await["body"],
            serde_json::json!({"Name": "v"})
        );
        let req = request("POST", "/v1.41/containers/create", &[json], "");
        assert_eq!(logged(true, &req).await["body"], Value::Null);
        assert!(logged(true, &req).await.get("body").is_some());
    }

    #[tokio::test]
    async fn a_log_file_that_cannot_be_opened_says_which() {
        let err = DecisionLog::start(&Target::File("/nonexistent/d.log".into()), false)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot open decision log /nonexistent/d.log: No such file or directory (os error 2)"
        );
    }
}
