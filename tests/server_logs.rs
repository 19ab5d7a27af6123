//! What the server logs, and at which level. An error a driver returns is normal flow
//! for dockerd (it probes with Get before every Create), and a refused request is the
//! client's problem: both are logged at debug, the rejections with the HTTP method and
//! path. Warnings and errors are for the SDK's own failures: a panic, an expired
//! deadline. A secret's value is never in them, nor in a `Debug` output or an
//! error.

mod support;

use std::time::Duration;

use docker_plugin_sdk::secrets;
use support::logs::Logs;
use support::server::{Recorder, TestServer};
use support::vault::{DB_PASSWORD, TOKEN_PREFIX, request, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Level;

/// The lines at `level` or louder.
fn at_least(logs: &Logs, level: Level) -> Vec<String> {
    let levels: &[&str] = match level {
        Level::ERROR => &["ERROR"],
        Level::WARN => &["ERROR", "WARN"],
        _ => &["ERROR", "WARN", "INFO"],
    };
    logs.text()
        .lines()
        .filter(|line| levels.iter().any(|l| line.trim_start().starts_with(l)))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn driver_errors_are_debug_and_name_the_call() {
    let (logs, _guard) = Logs::capture(Level::DEBUG);
    let s = TestServer::start(Recorder::default(), |p| p).await;
    // dockerd's probe before a Create, and a failing Create.
    s.client
        .call_raw("VolumeDriver.Get", "{\"Name\":\"missing\"}\n")
        .await
        .unwrap();
    s.client
        .call_raw("VolumeDriver.Create", "{\"Name\":\"fail\"}\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let failed = logs.lines_with("call failed");
    assert_eq!(failed.len(), 2, "{}", logs.text());
    assert!(failed[0].starts_with("DEBUG"), "{failed:?}");
    assert!(
        failed[0].contains(r#"method="VolumeDriver.Get" name="missing""#)
            && failed[0].contains("no such volume"),
        "{failed:?}"
    );
    assert!(failed[1].contains("the backend is on fire"), "{failed:?}");
    assert_eq!(at_least(&logs, Level::WARN), Vec::<String>::new());
}

#[tokio::test]
async fn rejections_are_debug_with_the_http_method_and_path() {
    let (logs, _guard) = Logs::capture(Level::DEBUG);
    let s = TestServer::start(Recorder::default(), |p| p.body_limit(64)).await;
    let big = format!("{{\"Name\":\"{}\"}}", "x".repeat(100));
    for (raw, status) in [
        ("GET /VolumeDriver.List HTTP/1.1\r\n\r\n".to_owned(), 405),
        (
            "POST /VolumeDriver.List HTTP/1.1\r\nAccept: text/html\r\nContent-Length: 0\r\n\r\n"
                .to_owned(),
            406,
        ),
        (
            format!(
                "POST /VolumeDriver.Get HTTP/1.1\r\nContent-Length: {}\r\n\r\n{big}",
                big.len()
            ),
            413,
        ),
        (
            "POST /VolumeDriver.Get HTTP/1.1\r\nContent-Length: 2\r\n\r\n{x".to_owned(),
            400,
        ),
        (
            "POST /VolumeDriver.Get HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_owned(),
            400,
        ),
        (
            "POST /VolumeDriver.Nope HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_owned(),
            404,
        ),
    ] {
        let raw = raw.replacen(
            "HTTP/1.1\r\n",
            "HTTP/1.1\r\nHost: p\r\nConnection: close\r\n",
            1,
        );
        let before = logs.text().len();
        let mut stream = tokio::net::UnixStream::connect(&s.socket).await.unwrap();
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{raw:?}: {answer}"
        );
        let path = raw.split(' ').nth(1).unwrap();
        let needle = format!("path=\"{path}\" status={status}");
        let text = logs.text();
        let refused: Vec<&str> = text[before..]
            .lines()
            .filter(|line| line.contains(&needle))
            .collect();
        assert_eq!(refused.len(), 1, "{raw:?}:\n{}", logs.text());
        assert!(
            refused[0].starts_with("DEBUG") && refused[0].contains("refused:"),
            "{refused:?}"
        );
        let http_method = raw.split(' ').next().unwrap();
        assert!(
            refused[0].contains(&format!("http_method={http_method}")),
            "{refused:?}"
        );
    }
    s.shutdown().await.unwrap();
    assert_eq!(at_least(&logs, Level::WARN), Vec::<String>::new());
}

#[tokio::test]
async fn panics_and_expired_deadlines_are_the_sdks_to_report_loudly() {
    let (logs, _guard) = Logs::capture(Level::DEBUG);
    let s = TestServer::start(Recorder::default(), |p| {
        p.call_timeout(Duration::from_millis(50))
    })
    .await;
    s.client
        .call_raw("VolumeDriver.Remove", "{\"Name\":\"panic\"}\n")
        .await
        .unwrap();
    let id = "b87d7442095999a92b65b3d9691e697b61713829cc0ffd1bb72e4ccd51aa4d6c";
    s.client
        .call_raw(
            "VolumeDriver.Mount",
            format!("{{\"Name\":\"slow\",\"ID\":\"{id}\"}}\n"),
        )
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let loud = at_least(&logs, Level::WARN);
    assert_eq!(loud.len(), 2, "{loud:#?}");
    assert!(
        loud[0].starts_with("ERROR") && loud[0].contains("driver panicked"),
        "{loud:?}"
    );
    assert!(
        loud[1].starts_with(" WARN")
            && loud[1].contains("VolumeDriver.Mount did not finish within 50 ms"),
        "{loud:?}"
    );
}

#[tokio::test]
async fn secret_values_never_reach_the_logs_the_debug_output_or_the_errors() {
    let (logs, _guard) = Logs::capture(Level::TRACE);
    let (s, _) = serve().await;
    let mut seen = Vec::new();
    for (name, task) in [
        ("db-password", "t1"),
        ("token", "t2"),
        ("huge", "t3"),
        ("nope", "t4"),
    ] {
        match s
            .client
            .call::<secrets::GetSecret>(&request(name, task))
            .await
        {
            Ok(reply) => seen.push(format!("{reply:?} {:?}", reply.value)),
            Err(err) => seen.push(format!("{err} {err:?}")),
        }
    }
    s.shutdown().await.unwrap();
    let text = logs.text();
    // The calls were logged, by secret name.
    assert!(text.contains(r#"name="db-password""#), "{text}");
    assert!(text.contains("answering"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    // The huge value was refused with a warning naming its size.
    assert!(
        text.contains("GetSecret: the value is 512000 bytes"),
        "{text}"
    );
    let base64_of = |v: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(v)
    };
    let all = format!("{text}\n{}", seen.join("\n"));
    for secret in [
        DB_PASSWORD.to_owned(),
        base64_of(DB_PASSWORD),
        TOKEN_PREFIX.to_owned(),
        base64_of("tok3n-for-t2"),
        "hhhhhhhh".to_owned(),
    ] {
        assert!(!all.contains(&secret), "{secret:?} leaked:\n{all}");
    }
    assert_eq!(
        seen[0],
        "GetSecretResponse { value: <redacted>, do_not_reuse: false } <redacted>"
    );
}
