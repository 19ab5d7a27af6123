//! Dispatch with test subsystems: per-subsystem body limits, and the streaming
//! endpoint (frames in order, the end at shutdown, panics).

use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::{StreamExt, stream};
use http::StatusCode;
use http::header::ACCEPT;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use super::*;
use crate::protocol::{MEDIA_TYPE_V1_2, MethodSpec, WireRequest};

#[derive(Debug, Serialize, Deserialize)]
struct Named {
    #[serde(rename = "Name")]
    name: String,
}

impl WireRequest for Named {}

struct Echo;

impl Method for Echo {
    const NAME: &'static str = "Test.Echo";
    type Request = Named;
    type Response = Named;
}

struct Follow;

impl Method for Follow {
    const NAME: &'static str = "Test.Follow";
    type Request = Named;
    type Response = String;
}

static SMALL: SubsystemSpec = SubsystemSpec {
    implements: "Small",
    body_limit: 32,
    call_timeout: None,
    methods: &[Echo::SPEC],
};

static STREAMS: SubsystemSpec = SubsystemSpec {
    implements: "Streams",
    body_limit: 1024,
    call_timeout: None,
    methods: &[MethodSpec { ..Follow::SPEC }],
};

fn small() -> Subsystem {
    Subsystem::new(&SMALL).route(Echo, &Arc::new(()), |_, r: Named| async move { Ok(r) })
}

/// A stream per volume name: `two` yields two frames and ends, `forever` yields one
/// and never ends, `panic` panics after one, `broken` fails before streaming.
fn streams() -> Subsystem {
    Subsystem::new(&STREAMS).stream(Follow, &Arc::new(()), |_, r: Named| async move {
        let first = stream::iter([Bytes::from_static(b"one\n")]);
        match r.name.as_str() {
            "two" => Ok(first
                .chain(stream::iter([Bytes::from_static(b"two\n")]))
                .boxed()),
            "forever" => Ok(first.chain(stream::pending()).boxed()),
            "panic" => Ok(first
                .chain(stream::poll_fn(|_| panic!("stream bug on purpose")))
                .boxed()),
            _ => Err(Error::new("cannot follow that")),
        }
    })
}

fn request(path: &str, body: &str) -> Request<RequestBody> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header(ACCEPT, MEDIA_TYPE_V1_2)
        .body(RequestBody::Axum(axum::body::Body::from(body.to_owned())))
        .unwrap()
}

async fn call(dispatch: &Dispatch, path: &str, body: &str) -> (StatusCode, String) {
    let reply = dispatch.call(request(path, body)).await.unwrap();
    let status = reply.status();
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn each_subsystem_has_its_default_body_limit_and_the_plugins_wins() {
    let long = r#"{"Name":"a name longer than thirty-two bytes"}"#;
    let dispatch = Dispatch::new(
        vec![small(), streams()],
        CallSettings::default(),
        Telemetry::default(),
    );
    let (status, body) = call(&dispatch, "/Test.Echo", long).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("32-byte limit"), "{body}");
    let (status, _) = call(&dispatch, "/Test.Follow", &long.replace("two", "xx")).await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "within its 1024 bytes"
    );

    let dispatch = Dispatch::new(
        vec![small()],
        CallSettings {
            body_limit: Some(4096),
            ..CallSettings::default()
        },
        Telemetry::default(),
    );
    let (status, body) = call(&dispatch, "/Test.Echo", long).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, long));
}

#[tokio::test]
async fn a_streaming_reply_sends_each_frame_and_ends_with_the_stream() {
    let dispatch = Dispatch::new(
        vec![streams()],
        CallSettings::default(),
        Telemetry::default(),
    );
    let reply = dispatch
        .call(request("/Test.Follow", r#"{"Name":"two"}"#))
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.headers()["content-type"], MEDIA_TYPE_V1_2);
    let mut body = reply.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        let mut data = frame.unwrap().into_data().ok().unwrap();
        frames.push(data.copy_to_bytes(data.remaining()));
    }
    assert_eq!(frames, ["one\n", "two\n"]);
}

#[tokio::test]
async fn a_stream_that_never_ends_ends_when_shutdown_starts() {
    let dispatch = Dispatch::new(
        vec![streams()],
        CallSettings::default(),
        Telemetry::default(),
    );
    let reply = dispatch
        .call(request("/Test.Follow", r#"{"Name":"forever"}"#))
        .await
        .unwrap();
    let mut body = reply.into_body();
    assert!(body.frame().await.is_some(), "the first frame");
    let next = tokio::time::timeout(std::time::Duration::from_millis(50), body.frame()).await;
    assert!(next.is_err(), "the stream waits for more");
    dispatch.begin_shutdown();
    assert!(body.frame().await.is_none(), "and ends at shutdown");
}

#[tokio::test]
async fn a_stream_that_fails_to_start_is_an_error_reply_and_a_panic_ends_it() {
    let dispatch = Dispatch::new(
        vec![streams()],
        CallSettings::default(),
        Telemetry::default(),
    );
    let (status, body) = call(&dispatch, "/Test.Follow", r#"{"Name":"x"}"#).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, r#"{"Err":"cannot follow that"}"#);
    let (status, body) = call(&dispatch, "/Test.Follow", r#"{"Name":"panic"}"#).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "one\n"));
    let (status, body) = call(&dispatch, "/Test.Follow", "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn activation_lists_every_subsystem_once() {
    let dispatch = Dispatch::new(
        vec![small(), streams()],
        CallSettings::default(),
        Telemetry::default(),
    );
    let (status, body) = call(&dispatch, "/Plugin.Activate", "").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"Implements":["Small","Streams"]}"#)
    );
    let (status, body) = call(&dispatch, "/Test.Nope", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_call_clones_the_drivers_arc_once() {
    // Each clone of the driver's `Arc` writes the reference count every call shares;
    // the call's own future holds the one clone a call needs.
    let driver = Arc::new(());
    let subsystem = Subsystem::new(&SMALL).route(Echo, &driver, |driver, _: Named| async move {
        Ok(Named {
            name: Arc::strong_count(&driver).to_string(),
        })
    });
    let dispatch = Dispatch::new(
        vec![subsystem],
        CallSettings::default(),
        Telemetry::default(),
    );
    // Ours, the route's, and the call's.
    let (status, body) = call(&dispatch, "/Test.Echo", r#"{"Name":"x"}"#).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"Name":"3"}"#));
    assert_eq!(Arc::strong_count(&driver), 2, "the call's clone is dropped");
}
