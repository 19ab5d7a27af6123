//! Every way a request can be refused before a driver sees it, as one typed rejection
//! that knows its HTTP status and its message (in the spirit of axum's
//! `extract::rejection`): a format the client cannot accept (406), a method other
//! than POST (405), an unknown path (404, which dockerd reads as "not implemented"), a
//! body over the limit (413) or unreadable (400), and malformed JSON (400).
//!
//! Each becomes Docker's `{"Err": "..."}` body, so dockerd shows the message to the
//! user.

use http::{HeaderValue, Method, StatusCode};

use super::reply::{Reply, error_reply};
use crate::protocol;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rejection {
    /// The `Accept` header names no format this server produces.
    #[error(
        "cannot answer in any of the accepted formats ({accept}): this plugin speaks {}",
        protocol::MEDIA_TYPE_V1_2
    )]
    NotAcceptable { accept: String },
    /// Plugin endpoints take `POST` only.
    #[error("method {method} is not allowed on {path}: plugin endpoints take POST")]
    MethodNotAllowed { method: Method, path: String },
    /// No method of this plugin has this path.
    #[error("unknown endpoint {path}: this plugin does not implement it")]
    UnknownEndpoint { path: String },
    /// The body is larger than the limit.
    #[error("{method} request body is larger than the {limit}-byte limit")]
    TooLarge { method: &'static str, limit: usize },
    /// The body could not be read (the connection broke mid-body).
    #[error("could not read the {method} request body: {error}")]
    BodyRead { method: &'static str, error: String },
    /// The body is not the JSON the method takes.
    #[error("malformed JSON in {method} request: {error}")]
    MalformedJson {
        method: &'static str,
        error: serde_json::Error,
    },
}

impl Rejection {
    /// The HTTP status of the reply.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::NotAcceptable { .. } => StatusCode::NOT_ACCEPTABLE,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            // dockerd reads a 404 as "not implemented", which is what an unknown method is.
            Self::UnknownEndpoint { .. } => StatusCode::NOT_FOUND,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead { .. } | Self::MalformedJson { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The reply: `{"Err": "<message>"}` with the status, as `content_type`.
    pub(crate) fn into_reply(self, content_type: &HeaderValue) -> Reply {
        error_reply(content_type, self.status(), &self.to_string())
    }
}

pub(super) static FALLBACK_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static(protocol::MEDIA_TYPE_V1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rejection_has_its_status_and_message() {
        let cases: Vec<(Rejection, u16, &str)> = vec![
            (
                Rejection::NotAcceptable {
                    accept: "text/html".into(),
                },
                406,
                "cannot answer in any of the accepted formats (text/html): this plugin speaks application/vnd.docker.plugins.v1.2+json",
            ),
            (
                Rejection::MethodNotAllowed {
                    method: Method::GET,
                    path: "/Test.Echo".into(),
                },
                405,
                "method GET is not allowed on /Test.Echo: plugin endpoints take POST",
            ),
            (
                Rejection::UnknownEndpoint {
                    path: "/Test.Nope".into(),
                },
                404,
                "unknown endpoint /Test.Nope: this plugin does not implement it",
            ),
            (
                Rejection::TooLarge {
                    method: "Test.Echo",
                    limit: 64,
                },
                413,
                "Test.Echo request body is larger than the 64-byte limit",
            ),
            (
                Rejection::BodyRead {
                    method: "Test.Echo",
                    error: "connection reset".into(),
                },
                400,
                "could not read the Test.Echo request body: connection reset",
            ),
            (
                Rejection::MalformedJson {
                    method: "Test.Echo",
                    error: serde_json::from_str::<serde_json::Value>("{").unwrap_err(),
                },
                400,
                "malformed JSON in Test.Echo request: EOF while parsing an object at line 1 column 1",
            ),
        ];
        for (rejection, status, message) in cases {
            assert_eq!(rejection.status().as_u16(), status, "{rejection}");
            assert_eq!(rejection.to_string(), message);
        }
    }
}
