//! The request half every endpoint shares, unary or streaming: the head checked before
//! anything is allocated for the call (`Accept`, `POST`, a declared length over the
//! limit), then the body read within the limit and decoded as the method's request
//! type, inside the call's `tracing` span.

use bytes::Bytes;
use http::HeaderValue;
use http::request::Parts;
use tracing::Span;

use super::body::{Reply, RequestBody};
use super::rejection::{Rejection, check_head};
use crate::protocol::{self, WireRequest};

/// A request whose head passed the checks, its body not read yet.
pub(crate) struct Accepted {
    /// The reply's `Content-Type`, negotiated from `Accept`.
    pub(crate) content_type: &'static HeaderValue,
    /// The method's name, e.g. `VolumeDriver.Mount`.
    pub(crate) method: &'static str,
    declared: Option<u64>,
    body: RequestBody,
    limit: usize,
}

impl Accepted {
    /// Checks the head of a call to `method`; the finished rejection when it fails.
    // The `Err` is the finished reply, built only for a bad request (see `check_head`).
    #[allow(clippy::result_large_err)]
    pub(crate) fn new(
        method: &'static str,
        parts: &Parts,
        body: RequestBody,
        limit: usize,
    ) -> Result<Self, Reply> {
        let content_type = check_head(parts)?;
        let declared = body.declared_length(&parts.headers);
        Ok(Self {
            content_type,
            method,
            declared,
            body,
            limit,
        })
    }

    /// Reads and decodes the body as `Req`: the request and the call's span, or the
    /// rejection's reply.
    pub(crate) async fn decode<Req: WireRequest>(self) -> Result<(Req, Span), Reply> {
        let Accepted {
            content_type,
            method,
            declared,
            body,
            limit,
        } = self;
        let bytes: Bytes = body
            .read(declared, limit, method)
            .await
            .map_err(|rejection| rejection.into_reply(content_type))?;
        let span = tracing::info_span!("plugin_call", method, name = tracing::field::Empty);
        let request: Req = match protocol::decode_body(&bytes) {
            Ok(request) => request,
            Err(error) => {
                let rejection = Rejection::MalformedJson { method, error };
                span.in_scope(|| tracing::warn!("{rejection}"));
                return Err(rejection.into_reply(content_type));
            }
        };
        drop(bytes);
        if let Some(subject) = request.subject() {
            span.record("name", subject);
        }
        Ok((request, span))
    }
}
