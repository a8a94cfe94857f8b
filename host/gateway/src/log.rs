//! Log: after the response. `on-log` runs for the chain's plugins once the body was sent (or
//! the client went away), off the client's latency; every request, routed or not, gets the
//! `x-request-id` and `x-response-time` headers, its route's metrics, a request row when
//! `[sinks] request_telemetry` is on, and an access (or slow-request) log line.

use std::sync::atomic::Ordering;
use std::time::Instant;

use http_body_util::BodyExt;
use hyper::Response;
use hyper::header::{HeaderName, HeaderValue};

use sluice_backends::sink::SinkRow;
use sluice_bindings::{LogEntry, RequestHead};
use sluice_core::body::{ProxyBody, observed};

use crate::answer::UsageSlot;
use crate::exchange::{ConnInfo, Exchange};
use crate::router::Route;
use crate::state::{Gateway, GatewayState};

static X_RESPONSE_TIME: HeaderName = HeaderName::from_static("x-response-time");

/// Wraps `body` so the chain's `on-log` hooks run once it was sent: with the request as the
/// chain last saw it, the `status` sent, the body bytes received and sent, and `error` (the
/// gateway's refusal, else a disconnect).
pub fn when_sent(
    ex: &Exchange<'_>,
    request: RequestHead,
    status: u16,
    body: ProxyBody,
    usage: Option<UsageSlot>,
    error: Option<String>,
) -> ProxyBody {
    if !ex.logs() {
        return body;
    }
    let chain = ex.route.chain.clone();
    let upstream = ex.route.upstream.as_ref().map(|u| u.name.clone());
    let (started, stats) = (ex.started, ex.body.clone());
    observed(body, move |bytes_sent, completed| {
        let duration_us = started.elapsed().as_micros() as u64;
        // Built on the task: on a disconnect this runs before the inner body (whose end
        // fills the usage slot) is dropped.
        tokio::spawn(async move {
            let disconnected = (!completed).then(|| "the client went away before the response ended".to_string());
            let entry = LogEntry {
                request,
                status,
                duration_us,
                bytes_received: stats.received.load(Ordering::Relaxed),
                bytes_sent,
                upstream,
                error: error.or(disconnected),
                inference: usage.and_then(|slot| slot.lock().ok().and_then(|mut u| u.take())),
            };
            chain.on_log(&entry).await
        });
    })
    .boxed()
}

/// What the access step knows of a request.
pub struct Access<'a> {
    /// The gateway that served it.
    pub gateway: &'a Gateway,
    /// The route it matched, if any.
    pub route: Option<&'a Route>,
    /// Its id.
    pub request_id: &'a str,
    /// The header the client sent its id under, when not the gateway's own id header: the
    /// response carries the id under it too.
    pub echo_id_as: Option<&'a HeaderName>,
    /// Its method.
    pub method: &'a hyper::Method,
    /// Its connection.
    pub conn: ConnInfo,
    /// When its head arrived.
    pub started: Instant,
}

/// `elapsed` as `X-Response-Time` writes it: milliseconds with three decimals (`12.345ms`),
/// without the formatting machinery (this runs on every request).
fn response_time(elapsed: std::time::Duration) -> Vec<u8> {
    let micros = elapsed.as_micros();
    let mut text = Vec::with_capacity(24);
    text.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
    let fraction = (micros % 1000) as u16;
    text.extend_from_slice(&[
        b'.',
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
        b'm',
        b's',
    ]);
    text
}

/// The common response headers (with `Alt-Svc` on HTTPS when HTTP/3 is served), the route's
/// metrics, the request row and the access line.
pub fn access(state: &GatewayState, a: &Access<'_>, resp: &mut Response<ProxyBody>, span: &tracing::Span) {
    let elapsed = a.started.elapsed();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(a.request_id) {
        if let Some(name) = a.echo_id_as {
            headers.insert(name.clone(), v.clone());
        }
        headers.insert(a.gateway.request_ids.header().clone(), v);
    }
    if let Ok(v) = HeaderValue::from_bytes(&response_time(elapsed)) {
        headers.insert(X_RESPONSE_TIME.clone(), v);
    }
    if a.conn.scheme == "https"
        && let Some(alt_svc) = state.alt_svc()
    {
        headers.insert(hyper::header::ALT_SVC, alt_svc.clone());
    }
    let status = resp.status().as_u16();
    let route_label = a.route.map_or("-", |r| r.name.as_str());
    a.route
        .map_or(&a.gateway.router.unmatched, |r| &r.metrics)
        .record(status, elapsed.as_secs_f64());
    if a.gateway.config.sinks.request_telemetry
        && let Some(sinks) = &state.runtime().backends().sinks
    {
        sinks.emit(SinkRow::request(
            route_label,
            status,
            a.method.as_str(),
            a.request_id,
            elapsed,
        ));
    }
    span.record("route", route_label);
    span.record("status", status);
    let _entered = span.enter();
    let ms = elapsed.as_secs_f64() * 1000.0;
    let client = a.conn.peer.ip();
    if elapsed.as_millis() as u64 >= a.gateway.config.server.slow_request_ms {
        tracing::warn!(status, route = route_label, ms, client = %client, "slow request");
    } else if a.gateway.config.server.access_log {
        tracing::info!(status, route = route_label, ms, client = %client, "access");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn response_time_reads_as_milliseconds_with_three_decimals() {
        for (micros, want) in [
            (0, "0.000ms"),
            (7, "0.007ms"),
            (12_345, "12.345ms"),
            (1_000_050, "1000.050ms"),
        ] {
            let text = super::response_time(Duration::from_micros(micros));
            assert_eq!(String::from_utf8(text).unwrap(), want);
            assert_eq!(want, format!("{}.{:03}ms", micros / 1000, micros % 1000));
        }
    }
}
