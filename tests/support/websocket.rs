//! A WebSocket origin on a real socket (hyper with upgrades, tungstenite framing) and a
//! client through the gateway. The origin echoes every text and binary message; a plain GET
//! gets a cacheable 200 (so tests can prove the cache never answers a handshake); a handshake
//! for `/refuse` gets 403, one for `/ignore` a 200 as if it were a plain GET, one for `/other`
//! a 101 to another protocol (`Upgrade: chat-v2`). It records the head of every handshake it
//! accepted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{ClientRequestBuilder, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The echo origin.
pub struct WsOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    handshakes: Arc<Mutex<Vec<HeaderMap>>>,
    plain: Arc<AtomicU64>,
}

type OriginBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

impl WsOrigin {
    /// Starts the origin on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
        let plain = Arc::new(AtomicU64::new(0));
        let (seen, counted) = (handshakes.clone(), plain.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, counted) = (seen.clone(), counted.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, seen.clone(), counted.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        WsOrigin {
            addr,
            handshakes,
            plain,
        }
    }

    /// The heads of the handshakes it accepted, in order.
    pub fn handshakes(&self) -> Vec<HeaderMap> {
        self.handshakes.lock().clone()
    }

    /// Plain (non-upgrade) requests it answered.
    pub fn plain_requests(&self) -> u64 {
        self.plain.load(Ordering::SeqCst)
    }
}

async fn answer(
    mut req: Request<Incoming>,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    plain: Arc<AtomicU64>,
) -> Result<Response<OriginBody>, Infallible> {
    let text = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header("cache-control", "max-age=60")
            .body(Full::new(Bytes::from(body)).boxed())
            .unwrap()
    };
    let asks = req.headers().contains_key("upgrade");
    let Some(key) = req.headers().get("sec-websocket-key").filter(|_| asks).cloned() else {
        plain.fetch_add(1, Ordering::SeqCst);
        let upgrade = req
            .headers()
            .get("upgrade")
            .map(|v| v.to_str().unwrap_or("?").to_string());
        return Ok(text(200, format!("plain {} upgrade={upgrade:?}", req.uri().path())));
    };
    match req.uri().path() {
        "/refuse" => return Ok(text(403, "no tunnel here".into())),
        "/ignore" => return Ok(text(200, "upgrade ignored".into())),
        "/other" => {
            let switched = Response::builder()
                .status(101)
                .header("upgrade", "chat-v2")
                .header("connection", "upgrade")
                .body(Full::new(Bytes::new()).boxed())
                .unwrap();
            return Ok(switched);
        }
        _ => {}
    }
    seen.lock().push(req.headers().clone());
    let protocol = req.headers().get("sec-websocket-protocol").cloned();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            let echoed = match message {
                Message::Text(_) | Message::Binary(_) => message,
                Message::Close(_) => break,
                _ => continue,
            };
            if ws.send(echoed).await.is_err() {
                break;
            }
        }
    });
    let mut resp = Response::builder()
        .status(101)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .header("x-origin", "ws");
    if let Some(protocol) = protocol {
        resp = resp.header("sec-websocket-protocol", protocol);
    }
    Ok(resp.body(Full::new(Bytes::new()).boxed()).unwrap())
}

/// A WebSocket client connection.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `url` (`ws://…`) with `headers`; the handshake's failure as text
/// (for a refused one: the status the gateway answered).
pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, String> {
    let mut request = ClientRequestBuilder::new(url.parse().map_err(|e| format!("{e}"))?);
    for (name, value) in headers {
        request = request.with_header(*name, *value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(format!("status {}", resp.status().as_u16())),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends `message` and waits (up to 5 s) for the next data message back.
pub async fn echo<S>(ws: &mut WebSocketStream<S>, message: Message) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(message).await.expect("the message is sent");
    next_data(ws).await.expect("an answer comes back")
}

/// The next text or binary message, or `None` when the connection closed (or 5 s passed).
pub async fn next_data<S>(ws: &mut WebSocketStream<S>) -> Option<Message>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let wait = async {
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() || message.is_binary() {
                return Some(message);
            }
            if message.is_close() {
                return None;
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(5), wait).await.ok().flatten()
}

/// Ends `ws` the way RFC 6455 §7.1.1 has a client do it: sends a close frame, reads until the
/// server's close reply, then waits (up to 5 s) until the server's side of the connection has
/// ended before letting go of its own. A test that then waits for the gateway to count the
/// tunnel closed does not depend on the gateway's linger after the upstream's close.
pub async fn close<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let _ = ws.close(None).await;
    let ended = async {
        while let Some(Ok(_)) = ws.next().await {}
        let mut rest = [0u8; 256];
        while matches!(ws.get_mut().read(&mut rest).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), ended).await;
}
