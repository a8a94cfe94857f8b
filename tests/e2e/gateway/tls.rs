//! TLS on the public listener: certificates from files, ALPN choosing HTTP/2 or HTTP/1.1,
//! and `X-Forwarded-Proto: https` upstream.

use std::sync::Arc;

use http_body_util::BodyExt;
use rustls_pki_types::{CertificateDer, ServerName};
use sluice_e2e::{Upstream, full, start_gateway};
use tokio_rustls::TlsConnector;

/// A self-signed certificate for `localhost` written to `dir`; returns its DER.
pub fn certificate(dir: &std::path::Path) -> CertificateDer<'static> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    cert.cert.der().clone()
}

pub fn connector(cert: CertificateDer<'static>, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_alpn_serves_http2_and_http1() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let der = certificate(dir.path());
    let gw = start_gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntls = {{ cert = {:?}, key = {:?} }}\n\
         [upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"r\"\nupstream = \"app\"\n",
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        upstream.addr
    ))
    .await;

    for (alpn, want) in [
        (b"h2".as_slice(), hyper::Version::HTTP_2),
        (b"http/1.1".as_slice(), hyper::Version::HTTP_11),
    ] {
        let tcp = tokio::net::TcpStream::connect(gw.running.addr).await.unwrap();
        let tls = connector(der.clone(), &[alpn])
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        let io = hyper_util::rt::TokioIo::new(tls);
        let req = hyper::Request::get("https://localhost/echo").body(full("")).unwrap();
        let resp = if want == hyper::Version::HTTP_2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            send.send_request(req).await.unwrap()
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let mut req = req;
            req.headers_mut().insert("host", "localhost".parse().unwrap());
            send.send_request(req).await.unwrap()
        };
        assert_eq!(resp.version(), want);
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_certificate_fails_the_start_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = sluice_e2e::config_text(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntls = {{ cert = {:?}, key = {:?} }}\n",
        dir.path().join("missing.pem"),
        dir.path().join("key.pem")
    ));
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    let error = sluice_gateway::app::RunningGateway::start(sluice_gateway::state::ConfigSource::File(path))
        .await
        .unwrap_err();
    assert!(error.contains("missing.pem"), "{error}");
}
