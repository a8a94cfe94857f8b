//! gRPC over the proxy: recognising a gRPC call, its `grpc-timeout`, the gateway's own
//! answers as gRPC statuses (a Trailers-Only response: HTTP 200 with `grpc-status` and
//! `grpc-message` in its head, which gRPC clients read as the call's status), and a response
//! body cut off with `DEADLINE_EXCEEDED` when the call's deadline passes mid-stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::time::Sleep;

use crate::body::{BoxError, ProxyBody};

/// `grpc-status`.
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-timeout`.
pub static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// gRPC status codes the gateway answers with.
pub mod code {
    /// The call failed for a reason with no better code.
    pub const UNKNOWN: u8 = 2;
    /// The request was malformed.
    pub const INVALID_ARGUMENT: u8 = 3;
    /// The deadline passed before the call completed.
    pub const DEADLINE_EXCEEDED: u8 = 4;
    /// Not found.
    pub const NOT_FOUND: u8 = 5;
    /// The caller may not do this.
    pub const PERMISSION_DENIED: u8 = 7;
    /// A quota or size limit was reached (rate limits, body limits).
    pub const RESOURCE_EXHAUSTED: u8 = 8;
    /// The method is not served here.
    pub const UNIMPLEMENTED: u8 = 12;
    /// An internal error.
    pub const INTERNAL: u8 = 13;
    /// The service is unavailable; the call may be retried.
    pub const UNAVAILABLE: u8 = 14;
    /// The caller is not authenticated.
    pub const UNAUTHENTICATED: u8 = 16;
}

/// Whether `headers` belong to a gRPC call: a `Content-Type` of `application/grpc` or
/// `application/grpc+FORMAT` (gRPC-Web's `application/grpc-web` is not).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|t| t == "application/grpc" || t.starts_with("application/grpc+"))
}

/// The call's timeout from `grpc-timeout` (`1` to `8` digits and a unit: `H`, `M`, `S`, `m`,
/// `u`, `n`); `None` when absent or malformed (a malformed one is ignored, as gRPC servers do).
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(&GRPC_TIMEOUT)?.as_bytes();
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n * 3600),
        b"M" => Duration::from_secs(n * 60),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The gRPC status for an HTTP status the gateway (or a plugin) answered with: gRPC's own
/// HTTP mapping (401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 502 and 503
/// UNAVAILABLE, 400 INTERNAL), except where the gateway knows more: 429, 413 and 431 are
/// limits (RESOURCE_EXHAUSTED), 504 and 408 a deadline (DEADLINE_EXCEEDED).
pub fn status_for(http: StatusCode) -> u8 {
    match http.as_u16() {
        400 => code::INTERNAL,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 => code::UNIMPLEMENTED,
        408 | 504 => code::DEADLINE_EXCEEDED,
        413 | 429 | 431 => code::RESOURCE_EXHAUSTED,
        502 | 503 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// `message` as a `grpc-message` value: percent-encoded outside printable ASCII and `%`.
pub fn encode_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The gateway's answer `resp` (an error it or a plugin made) as a gRPC Trailers-Only
/// response: HTTP 200, `application/grpc`, `grpc-status` from the HTTP status, `grpc-message`
/// from `message`, no body. Its other header fields (`x-request-id`, `retry-after`,
/// `www-authenticate`, …) stay. A 2xx answer is left as it is.
pub fn trailers_only(resp: Response<ProxyBody>, message: &str) -> Response<ProxyBody> {
    if resp.status().is_success() || resp.status().is_informational() {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    let status = status_for(parts.status);
    parts.status = StatusCode::OK;
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(hyper::header::CONTENT_ENCODING);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    parts
        .headers
        .insert(GRPC_STATUS.clone(), HeaderValue::from(u16::from(status)));
    if let Ok(value) = HeaderValue::from_str(&encode_message(message)) {
        parts.headers.insert(GRPC_MESSAGE.clone(), value);
    }
    Response::from_parts(parts, crate::body::empty())
}

/// A response body that ends with `DEADLINE_EXCEEDED` trailers when its deadline passes
/// before its end (the upstream's own trailers are then never sent).
pub struct Deadline {
    inner: ProxyBody,
    sleep: Pin<Box<Sleep>>,
    ended: bool,
}

impl Deadline {
    /// `inner`, cut off `after` from now.
    pub fn new(inner: ProxyBody, after: Duration) -> Self {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(after)),
            ended: false,
        }
    }
}

impl Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            self.ended = frame.is_none();
            return Poll::Ready(frame);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.ended = true;
        let mut trailers = HeaderMap::new();
        trailers.insert(
            GRPC_STATUS.clone(),
            HeaderValue::from(u16::from(code::DEADLINE_EXCEEDED)),
        );
        trailers.insert(
            GRPC_MESSAGE.clone(),
            HeaderValue::from_static("the call's grpc-timeout passed at the gateway"),
        );
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        // The inner body's own end shows through, so that a Trailers-Only answer (an empty
        // body) still ends the stream with its HEADERS frame, as gRPC clients expect.
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn grpc_content_types_are_recognised() {
        assert!(is_grpc(&headers(&[("content-type", "application/grpc")])));
        assert!(is_grpc(&headers(&[(
            "content-type",
            "application/grpc+proto; charset=x"
        )])));
        assert!(!is_grpc(&headers(&[("content-type", "application/grpc-web")])));
        assert!(!is_grpc(&headers(&[("content-type", "application/json")])));
        assert!(!is_grpc(&headers(&[])));
    }

    #[test]
    fn timeouts_parse_every_unit_and_refuse_malformed_values() {
        let t = |v: &str| timeout(&headers(&[("grpc-timeout", v)]));
        assert_eq!(t("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(t("3M"), Some(Duration::from_secs(180)));
        assert_eq!(t("1S"), Some(Duration::from_secs(1)));
        assert_eq!(t("250m"), Some(Duration::from_millis(250)));
        assert_eq!(t("7u"), Some(Duration::from_micros(7)));
        assert_eq!(t("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "m", "123456789m", "1s", "1.5S", "-1S", "10"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_statuses_map_to_grpc_codes() {
        let map = |s: u16| status_for(StatusCode::from_u16(s).unwrap());
        assert_eq!(map(401), code::UNAUTHENTICATED);
        assert_eq!(map(429), code::RESOURCE_EXHAUSTED);
        assert_eq!(map(502), code::UNAVAILABLE);
        assert_eq!(map(503), code::UNAVAILABLE);
        assert_eq!(map(504), code::DEADLINE_EXCEEDED);
        assert_eq!(map(418), code::UNKNOWN);
        assert_eq!(encode_message("50% off\né"), "50%25 off%0A%C3%A9");
    }

    #[tokio::test]
    async fn an_error_becomes_trailers_only_and_a_slow_stream_is_cut_off() {
        let refused = crate::errors::json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down", "r1");
        let answer = trailers_only(refused, "slow down");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["grpc-status"], "8");
        assert_eq!(answer.headers()["grpc-message"], "slow down");
        assert_eq!(answer.headers()["content-type"], "application/grpc");
        assert!(answer.into_body().collect().await.unwrap().to_bytes().is_empty());

        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let stream = http_body_util::StreamBody::new(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        tx.send(Ok(Frame::data(Bytes::from_static(b"first")))).await.unwrap();
        let mut cut = Deadline::new(stream.boxed(), Duration::from_millis(50));
        let first = cut.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        let last = cut.frame().await.unwrap().unwrap();
        let trailers = last.into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "4");
        assert!(cut.frame().await.is_none());
        drop(tx);
        // An answer that is over before it starts says so at once.
        let empty = Deadline::new(crate::body::empty(), Duration::from_secs(1));
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }
}
