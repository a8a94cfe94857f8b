//! The upstream and gateway the compression tests share: an upstream whose paths exercise the
//! skip rules and echo request bodies, and a gateway with the compress plugin in front of it.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_artifacts as wasm;
use sluice_e2e::start_gateway;
use tokio::net::TcpListener;

/// A JSON document of about 20 KB.
pub(crate) fn payload() -> Vec<u8> {
    let items: Vec<_> = (0..300)
        .map(|i| serde_json::json!({ "id": i, "name": format!("item {i}"), "tags": ["alpha", "beta"], "price": i * 3 }))
        .collect();
    serde_json::to_vec(&items).unwrap()
}

/// `data` gzip-compressed at the default level.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An upstream for these tests: `/payload` (JSON with ETag, Vary and Accept-Ranges),
/// `/encoded` (already gzip), `/no-transform`, `/partial` (206), `/status/N`, `/small`,
/// `/png`, and `/receive` (answers with the request body it got and its Content-Encoding).
pub(crate) async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(answer);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let json = "application/json";
    let (status, content_type, body, extra): (u16, &str, Vec<u8>, Vec<(&str, &str)>) = match path.as_str() {
        "/payload" => (
            200,
            json,
            payload(),
            vec![("etag", "\"v1\""), ("vary", "Origin"), ("accept-ranges", "bytes")],
        ),
        "/encoded" => (200, json, gzip(&payload()), vec![("content-encoding", "gzip")]),
        "/no-transform" => (200, json, payload(), vec![("cache-control", "public, no-transform")]),
        "/partial" => (206, json, payload(), vec![("content-range", "bytes 0-99/100000")]),
        "/status/204" => (204, json, Vec::new(), vec![]),
        "/status/304" => (304, json, Vec::new(), vec![("etag", "\"v1\"")]),
        "/small" => (200, json, b"{\"ok\":true}".to_vec(), vec![]),
        "/png" => (200, "image/png", payload(), vec![]),
        _ => {
            let encoding = req
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_string());
            let length = req
                .headers()
                .get("content-length")
                .map(|v| v.to_str().unwrap().to_string());
            let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec());
            let mut resp = Response::new(Full::new(Bytes::from(body.unwrap_or_default())));
            resp.headers_mut()
                .insert("content-type", "application/octet-stream".parse().unwrap());
            resp.headers_mut().insert(
                "x-received-encoding",
                encoding.as_deref().unwrap_or("none").parse().unwrap(),
            );
            resp.headers_mut().insert(
                "x-received-length",
                length.as_deref().unwrap_or("none").parse().unwrap(),
            );
            return Ok(resp);
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    resp.headers_mut().insert("content-type", content_type.parse().unwrap());
    for (name, value) in extra {
        resp.headers_mut().append(name, value.parse().unwrap());
    }
    Ok(resp)
}

/// A gateway with the compress plugin (`config`) on `/` to `addr`, on `/sse` to `sse`, and
/// in front of the `good` test plugin (which answers `/respond` itself).
pub(crate) async fn gateway(addr: SocketAddr, sse: SocketAddr, config: &str) -> sluice_e2e::Gateway {
    start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{addr}\"]\n\
         [upstreams.events]\ntargets = [\"{sse}\"]\n\
         [plugins.compress]\nmodule = \"builtin:compress\"\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"local\"\nmatch = {{ path_prefix = \"/respond\" }}\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"compress\", config = {config} }}, {{ plugin = \"good\" }}]\n\
         [[routes]]\nname = \"events\"\nmatch = {{ path_prefix = \"/gated\" }}\nupstream = \"events\"\n\
         plugins = [{{ plugin = \"compress\", config = {config} }}]\n\
         [[routes]]\nname = \"app\"\nmatch = {{ path_prefix = \"/\" }}\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"compress\", config = {config} }}]\n",
        wasm::GOOD
    ))
    .await
}
