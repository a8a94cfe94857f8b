//! A demo upstream the binary serves itself (`[demo]` in the config), so the embedded default
//! config shows the gateway working with nothing else installed.
//!
//! - `GET /hello`: a JSON greeting;
//! - `/echo` (any method): the request as the upstream received it, as JSON;
//! - `GET /events`: three server-sent events, 500 ms apart;
//! - `GET /status/CODE`: an empty answer with that status;
//! - `GET /slow?ms=N`: a JSON answer after N ms (at most 10 s; default 200), to see the dedup
//!   plugin share one fetch among identical requests.
//!
//! Paths under `/private` (the embedded config's authenticated route) answer as those without
//! it: `/private/echo` shows the identity headers the auth plugin added.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};

use sluice_core::body::ProxyBody;
use sluice_core::body::{BoxError, empty, full};

struct Events {
    sent: u32,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.sent == 3 {
            return Poll::Ready(None);
        }
        if self.sent > 0 {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(500))));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        self.sent += 1;
        let event = format!("id: {0}\ndata: {{\"event\": {0}}}\n\n", self.sent);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    resp
}

/// Answers one demo request.
pub async fn handle(req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    let full_path = req.uri().path();
    let path = full_path
        .strip_prefix("/private")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(full_path)
        .to_string();
    let resp = match path.as_str() {
        "/hello" => json(
            StatusCode::OK,
            serde_json::json!({ "message": "hello from the Sluice demo upstream" }),
        ),
        "/events" => {
            let mut resp = Response::new(Events { sent: 0, sleep: None }.boxed());
            resp.headers_mut()
                .insert("content-type", "text/event-stream".parse().expect("static"));
            resp
        }
        p if p.starts_with("/status/") => {
            let code = p["/status/".len()..]
                .parse()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok());
            let mut resp = Response::new(empty());
            *resp.status_mut() = code.unwrap_or(StatusCode::BAD_REQUEST);
            resp
        }
        "/cached" => {
            // Cacheable for a minute, with a validator: the body says when it was made, so a
            // response served from the cache shows its age.
            let made_ms = sluice_core::time::unix_ms();
            let mut resp = json(
                StatusCode::OK,
                serde_json::json!({ "message": "cache me for a minute", "made_at_ms": made_ms }),
            );
            let headers = resp.headers_mut();
            headers.insert("cache-control", "public, max-age=60".parse().expect("static"));
            if let Ok(etag) = format!("\"{made_ms}\"").parse() {
                headers.insert("etag", etag);
            }
            resp
        }
        "/slow" => {
            let ms = slow_ms(req.uri().query());
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json(
                StatusCode::OK,
                serde_json::json!({ "message": "sorry for the wait", "waited_ms": ms }),
            )
        }
        "/echo" => {
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            json(
                StatusCode::OK,
                serde_json::json!({ "method": method, "uri": uri, "headers": headers, "body": String::from_utf8_lossy(&body) }),
            )
        }
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": "not_found", "try": ["/hello", "/echo", "/cached", "/events", "/status/418", "/slow?ms=200"] }),
        ),
    };
    Ok(resp)
}

/// The delay `/slow` asks for: `ms=N` in the query, at most 10 s, 200 ms when absent.
fn slow_ms(query: Option<&str>) -> u64 {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(200)
        .min(10_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn slow_takes_its_delay_from_the_query_within_bounds() {
        assert_eq!(super::slow_ms(None), 200);
        assert_eq!(super::slow_ms(Some("a=1&ms=50")), 50);
        assert_eq!(super::slow_ms(Some("ms=99999999")), 10_000);
        assert_eq!(super::slow_ms(Some("ms=x")), 200);
    }
}
