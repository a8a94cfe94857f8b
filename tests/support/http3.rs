//! An HTTP/3 client for the tests (quinn + h3, trusting one certificate).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use rustls_pki_types::CertificateDer;

/// A whole HTTP/3 answer.
pub struct H3Answer {
    /// Its status.
    pub status: u16,
    /// Its header fields.
    pub headers: hyper::HeaderMap,
    /// Its body.
    pub body: Bytes,
    /// Its trailers, if any.
    pub trailers: Option<hyper::HeaderMap>,
}

/// An HTTP/3 connection to `addr` (UDP) for `localhost`, trusting `cert`.
pub struct H3Client {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    _endpoint: quinn::Endpoint,
}

impl H3Client {
    /// Connects (QUIC handshake with ALPN `h3`, then HTTP/3's own).
    pub async fn connect(addr: SocketAddr, cert: CertificateDer<'static>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let connection = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(connection)).await.unwrap();
        tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        H3Client {
            send,
            _endpoint: endpoint,
        }
    }

    /// Sends `req` with `body` and reads the whole answer.
    pub async fn send(&mut self, req: hyper::Request<()>, body: &'static [u8]) -> H3Answer {
        let mut stream = self.send.send_request(req).await.unwrap();
        if !body.is_empty() {
            stream.send_data(Bytes::from_static(body)).await.unwrap();
        }
        stream.finish().await.unwrap();
        let resp = stream.recv_response().await.unwrap();
        let mut received = Vec::new();
        while let Some(mut chunk) = stream.recv_data().await.unwrap() {
            received.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        let trailers = stream.recv_trailers().await.unwrap();
        H3Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: Bytes::from(received),
            trailers,
        }
    }
}
