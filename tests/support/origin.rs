//! An origin for the HTTP cache tests: each path answers with the caching headers its name
//! asks for and a body naming how many requests that path has received, so a test tells a
//! stored answer from a fresh one. It counts requests per path and records the conditional
//! headers it got.
//!
//! - `/fresh/…`: `Cache-Control: max-age=60`, `ETag: "v1"`; `/slow/…` the same after 300 ms;
//! - `/validate/…`: `Cache-Control: max-age=0, must-revalidate`, `ETag: "v1"`; a request with
//!   `If-None-Match: "v1"` gets 304;
//! - `/vary/…`: `max-age=60`, `Vary: Accept-Language`, the body names the language;
//! - `/nostore`, `/private`, `/cookie`, `/varystar`, `/nofresh`: `no-store`; `private,
//!   max-age=60`; `max-age=60` with `Set-Cookie`; `max-age=60` with `Vary: *`; no caching
//!   headers at all;
//! - `/big`: `max-age=60` and a body of `BIG` bytes;
//! - `/swr`: `max-age=1, stale-while-revalidate=30`;
//! - `/sie`: `max-age=1, stale-if-error=60`, or 503 while failing;
//! - `/public`: `public, max-age=60` (storable even for requests with `Authorization`);
//! - `/contradict`: `public, no-store, max-age=60`; `/dupage`: `max-age=60, max-age=0`;
//! - `/cdn/…`: `Cache-Control: no-store` with `CDN-Cache-Control: max-age=60`; `/own/…`: the
//!   same with `Sluice-Cache-Control: max-age=60` instead; `/baddate`: only an `Expires` with
//!   doubled spaces (invalid, so already expired);
//! - `/ranged/…`: `max-age=60`, `ETag: "r1"`; a request with `Range: bytes=A-B` gets 206;
//! - `/headfresh/…`: `max-age=1`, `ETag: "h1"`, `X-Hits: n`, never 304 (HEAD answered too);
//! - any other method: 204 (or 201 with `Location: /fresh/created` for POST).
//!
//! [`Origin::set_failure`] makes `/sie` answer 503, hang for 2 s, or drop the connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::net::TcpListener;

/// The size of `/big`.
pub const BIG: usize = 2 << 20;

/// How `/sie` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Failure {
    /// It answers.
    #[default]
    None,
    /// 503.
    Status,
    /// It answers after 2 s.
    Hang,
    /// The connection is dropped without an answer.
    Close,
}

#[derive(Default)]
struct State {
    hits: Mutex<HashMap<String, u64>>,
    conditionals: Mutex<Vec<String>>,
    failure: Mutex<Failure>,
}

/// The origin.
pub struct Origin {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: tokio::task::AbortHandle,
}

fn answer(req: &Request<Incoming>, n: u64, state: &State) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let mut builder = Response::builder().header("content-type", "text/plain");
    let mut body = format!("{path} answer {n}");
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        let status = if req.method() == hyper::Method::POST { 201 } else { 204 };
        return builder
            .status(status)
            .header("location", "/fresh/created")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    if let Some(answer) = targeted_or_ranged(req, path, n, &body) {
        return answer;
    }
    let if_none_match = req.headers().get("if-none-match").and_then(|v| v.to_str().ok());
    if let Some(v) = if_none_match {
        state.conditionals.lock().push(format!("{path} {v}"));
    }
    if path.starts_with("/fresh/") || path.starts_with("/slow/") {
        builder = builder.header("cache-control", "max-age=60").header("etag", "\"v1\"");
    } else if path.starts_with("/validate/") {
        if if_none_match == Some("\"v1\"") {
            return builder
                .status(304)
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=0, must-revalidate")
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
        builder = builder
            .header("cache-control", "max-age=0, must-revalidate")
            .header("etag", "\"v1\"");
    } else if path.starts_with("/vary/") {
        let lang = req
            .headers()
            .get("accept-language")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        body = format!("{body} in {lang}");
        builder = builder
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language");
    } else {
        let cc = match path {
            "/nostore" => Some("no-store"),
            "/private" => Some("private, max-age=60"),
            "/cookie" | "/varystar" | "/big" => Some("max-age=60"),
            "/swr" => Some("max-age=1, stale-while-revalidate=30"),
            "/sie" => Some("max-age=1, stale-if-error=60"),
            "/public" => Some("public, max-age=60"),
            "/contradict" => Some("public, no-store, max-age=60"),
            "/dupage" => Some("max-age=60, max-age=0"),
            _ => None,
        };
        if let Some(cc) = cc {
            builder = builder.header("cache-control", cc);
        }
        match path {
            "/cookie" => builder = builder.header("set-cookie", "session=abc"),
            "/varystar" => builder = builder.header("vary", "*"),
            "/big" => body = "x".repeat(BIG),
            "/sie" if *state.failure.lock() == Failure::Status => {
                return builder.status(503).body(Full::new(Bytes::from("down"))).unwrap();
            }
            _ => {}
        }
    }
    builder.body(Full::new(Bytes::from(body))).unwrap()
}

/// The answers of `/cdn/`, `/own/`, `/baddate`, `/ranged/` and `/headfresh/` paths; `None` for
/// other paths.
fn targeted_or_ranged(req: &Request<Incoming>, path: &str, n: u64, body: &str) -> Option<Response<Full<Bytes>>> {
    let builder = Response::builder().header("content-type", "text/plain");
    let builder = if path.starts_with("/cdn/") {
        builder
            .header("cache-control", "no-store")
            .header("cdn-cache-control", "max-age=60")
    } else if path.starts_with("/own/") {
        builder
            .header("cache-control", "no-store")
            .header("sluice-cache-control", "max-age=60")
    } else if path == "/baddate" {
        builder.header("expires", "Thu, 18  Aug  2050 02:01:18 GMT")
    } else if path.starts_with("/headfresh/") {
        builder
            .header("cache-control", "max-age=1")
            .header("etag", "\"h1\"")
            .header("x-hits", n.to_string())
            .header("content-length", body.len().to_string())
    } else if path.starts_with("/ranged/") {
        let builder = builder.header("cache-control", "max-age=60").header("etag", "\"r1\"");
        let range = req.headers().get("range").and_then(|v| v.to_str().ok());
        let part = range.and_then(|r| r.strip_prefix("bytes=")).and_then(|r| {
            let (a, b) = r.split_once('-')?;
            let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b && b < body.len()).then_some((a, b))
        });
        return Some(match part {
            Some((a, b)) => builder
                .status(206)
                .header("content-range", format!("bytes {a}-{b}/{}", body.len()))
                .body(Full::new(Bytes::from(body[a..=b].to_string())))
                .unwrap(),
            None => builder.body(Full::new(Bytes::from(body.to_string()))).unwrap(),
        });
    } else {
        return None;
    };
    Some(builder.body(Full::new(Bytes::from(body.to_string()))).unwrap())
}

impl Origin {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            if req.uri().path().starts_with("/slow/") {
                                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                            }
                            if req.uri().path() == "/sie" {
                                let failure = *state.failure.lock();
                                if failure == Failure::Hang {
                                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                                } else if failure == Failure::Close {
                                    return Err("dropped on purpose");
                                }
                            }
                            let n = {
                                let mut hits = state.hits.lock();
                                let n = hits.entry(req.uri().path().to_string()).or_default();
                                *n += 1;
                                *n
                            };
                            Ok::<_, &'static str>(answer(&req, n, &state))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Origin {
            addr,
            state,
            accept: accept.abort_handle(),
        }
    }

    /// Stops listening (new connections are refused) and drops the connections it has at
    /// their next request.
    pub fn stop(&self) {
        self.accept.abort();
        self.set_failure(Failure::Close);
    }

    /// Requests `path` has received.
    pub fn hits(&self, path: &str) -> u64 {
        self.state.hits.lock().get(path).copied().unwrap_or(0)
    }

    /// The `If-None-Match` values received, as `"PATH VALUE"`.
    pub fn conditionals(&self) -> Vec<String> {
        self.state.conditionals.lock().clone()
    }

    /// Makes `/sie` answer 503 (or 200 again).
    pub fn set_failing(&self, failing: bool) {
        self.set_failure(if failing { Failure::Status } else { Failure::None });
    }

    /// Makes `/sie` fail as `failure` says.
    pub fn set_failure(&self, failure: Failure) {
        *self.state.failure.lock() = failure;
    }
}
