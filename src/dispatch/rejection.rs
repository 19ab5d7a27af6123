//! Every way a request can be refused before a driver sees it, as one typed rejection
//! that knows its HTTP status and its message (in the spirit of axum's
//! `extract::rejection`): a format the client cannot accept (406), a method other
//! than POST (405), an unknown path (404, which dockerd reads as "not implemented"), a
//! body over the limit (413), too slow to arrive (408) or unreadable (400), an empty
//! body where the method takes arguments (400) and malformed JSON (400).
//!
//! Each becomes Docker's `{"Err": "..."}` body, so dockerd shows the message to the
//! user. Each is logged at debug, with the HTTP method and path: a refused request is
//! the client's problem, not the plugin's (and a port scanner must not fill the log).

use std::time::Duration;

use http::header::ALLOW;
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
    /// The body did not arrive within the read deadline.
    #[error(
        "the {method} request body did not arrive within {} ms",
        timeout.as_millis()
    )]
    BodyTimeout {
        method: &'static str,
        timeout: Duration,
    },
    /// The body could not be read (the connection broke mid-body).
    #[error("could not read the {method} request body: {error}")]
    BodyRead { method: &'static str, error: String },
    /// The body is empty (or `null`) but the method takes arguments. dockerd sends an
    /// empty body when it retries a call on a connection the plugin closed (moby
    /// v20.10.24 `pkg/plugins/client.go`: the retry re-sends a drained buffer).
    #[error("empty body in {method} request: this call needs a JSON body with {needs}")]
    EmptyBody { method: &'static str, needs: String },
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
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::BodyRead { .. } | Self::EmptyBody { .. } | Self::MalformedJson { .. } => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    /// Logs the rejection of a `http_method` request to `path`, at debug.
    pub(crate) fn log(&self, http_method: &Method, path: &str) {
        tracing::debug!(%http_method, path, status = self.status().as_u16(), "refused: {self}");
    }

    /// The reply: `{"Err": "<message>"}` with the status, as `content_type`; a 405
    /// names the method allowed (`Allow: POST`).
    pub(crate) fn into_reply(self, content_type: &HeaderValue) -> Reply {
        let mut reply = error_reply(content_type, self.status(), &self.to_string());
        if let Self::MethodNotAllowed { .. } = self {
            reply
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
        }
        reply
    }

    /// What an empty body lacks, from the error decoding `{}` gave: serde's
    /// "missing field `Name`" without its position in a body nobody sent.
    pub(crate) fn empty_body(method: &'static str, error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        let message = message.strip_suffix(&position).unwrap_or(&message);
        let needs = match message.strip_prefix("missing field ") {
            Some(field) => field.to_owned(),
            None => format!("its arguments ({message})"),
        };
        Self::EmptyBody { method, needs }
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
                Rejection::BodyTimeout {
                    method: "Test.Echo",
                    timeout: Duration::from_millis(250),
                },
                408,
                "the Test.Echo request body did not arrive within 250 ms",
            ),
            (
                Rejection::empty_body(
                    "Test.Echo",
                    &serde_json::from_str::<Named>("{}").unwrap_err(),
                ),
                400,
                "empty body in Test.Echo request: this call needs a JSON body with `Name`",
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

    #[allow(dead_code)] // decoded from `{}` only, to see what is missing
    #[derive(Debug, serde::Deserialize)]
    struct Named {
        #[serde(rename = "Name")]
        name: String,
    }

    #[test]
    fn a_405_names_the_method_allowed() {
        let reply = Rejection::MethodNotAllowed {
            method: Method::GET,
            path: "/Test.Echo".into(),
        }
        .into_reply(&FALLBACK_CONTENT_TYPE);
        assert_eq!(reply.headers()[ALLOW], "POST");
    }
}
