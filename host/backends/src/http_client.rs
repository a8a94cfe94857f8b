//! The gateway's outbound HTTP client for plugins (`http-client`): one pooled hyper client
//! (HTTP/1.1, and HTTP/2 where a server offers it over TLS) with rustls trusting the system's
//! roots plus an optional CA file, a time budget per call, a cap on the response body, and no
//! redirects followed (a plugin sees the 3xx and decides).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use sluice_config::HttpClientSettings;
use sluice_core::telemetry::metrics::{Counter, Histogram, Registry};

/// Why an outbound call failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The client could not be built (a CA file that cannot be read).
    #[error("http_client config: {0}")]
    Config(String),
    /// The method, URL or a header is not valid HTTP.
    #[error("{0}")]
    Invalid(String),
    /// The server could not be reached, or the exchange broke off.
    #[error("{0}")]
    Unavailable(String),
    /// No whole response within the budget.
    #[error("no response within {0} ms")]
    Timeout(u64),
    /// The response body is larger than `max_response_bytes`.
    #[error("the response body is larger than {0} bytes")]
    TooLarge(usize),
}

/// A response as plugins get it.
#[derive(Debug)]
pub struct OutboundResponse {
    /// The status code.
    pub status: u16,
    /// The header fields, names lower case.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// The pooled outbound client.
pub struct OutboundHttp {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    settings: HttpClientSettings,
    ok: Arc<Counter>,
    failed: Arc<Counter>,
    seconds: Arc<Histogram>,
}

impl std::fmt::Debug for OutboundHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundHttp")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The system's roots plus those in `ca_file`.
fn roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, OutboundError> {
    let mut store = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system certificate rustls cannot parse is skipped, as browsers do.
        let _ = store.add(cert);
    }
    if let Some(path) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| OutboundError::Config(format!("ca_file {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| OutboundError::Config(format!("ca_file {}: {e}", path.display())))?;
            store
                .add(cert)
                .map_err(|e| OutboundError::Config(format!("ca_file {}: {e}", path.display())))?;
        }
    }
    Ok(store)
}

impl OutboundHttp {
    /// A client with `settings`; `ca_file` is the resolved path of `settings.ca_file`.
    pub fn new(
        settings: &HttpClientSettings,
        ca_file: Option<&Path>,
        registry: &Registry,
    ) -> Result<Arc<Self>, OutboundError> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| OutboundError::Config(e.to_string()))?
            .with_root_certificates(roots(ca_file)?)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Arc::new(OutboundHttp {
            client,
            settings: settings.clone(),
            ok: registry.counter("sluice_http_client_calls_total", &[("outcome", "ok")]),
            failed: registry.counter("sluice_http_client_calls_total", &[("outcome", "failed")]),
            seconds: registry.histogram("sluice_http_client_call_seconds", &[]),
        }))
    }

    /// The settings the client was made with.
    pub fn settings(&self) -> &HttpClientSettings {
        &self.settings
    }

    /// Sends a request and reads the whole response within `timeout` (capped at the
    /// configured budget; none: the budget).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<OutboundResponse, OutboundError> {
        let budget = Duration::from_millis(self.settings.timeout_ms);
        let budget = timeout.map_or(budget, |t| t.min(budget));
        let request = build_request(method, url, headers, body)?;
        let started = Instant::now();
        let limit = self.settings.max_response_bytes;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| OutboundError::Unavailable(describe(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, limit).collect().await.map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    OutboundError::TooLarge(limit)
                } else {
                    OutboundError::Unavailable(format!("the response body broke off: {e}"))
                }
            })?;
            Ok(OutboundResponse {
                status: parts.status.as_u16(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect(),
                body: body.to_bytes().to_vec(),
            })
        };
        let result = match tokio::time::timeout(budget, exchange).await {
            Ok(result) => result,
            Err(_) => Err(OutboundError::Timeout(budget.as_millis() as u64)),
        };
        self.seconds.record(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => self.ok.add(1),
            Err(_) => self.failed.add(1),
        }
        result
    }
}

/// The request, or why it is not valid HTTP. Hop-by-hop headers and `host` are the client's
/// business and are dropped.
fn build_request(
    method: &str,
    url: &str,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
) -> Result<hyper::Request<Full<Bytes>>, OutboundError> {
    let method = hyper::Method::from_bytes(method.as_bytes())
        .map_err(|_| OutboundError::Invalid(format!("'{method}' is not an HTTP method")))?;
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| OutboundError::Invalid(format!("'{url}' is not a valid URL: {e}")))?;
    let mut request = hyper::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "host"
                | "connection"
                | "keep-alive"
                | "transfer-encoding"
                | "te"
                | "upgrade"
                | "proxy-connection"
                | "content-length"
        ) {
            continue;
        }
        let name = hyper::header::HeaderName::from_bytes(lower.as_bytes())
            .map_err(|_| OutboundError::Invalid(format!("'{name}' is not a valid header name")))?;
        let value = hyper::header::HeaderValue::from_bytes(&value)
            .map_err(|_| OutboundError::Invalid(format!("the value of '{name}' is not a valid header value")))?;
        request = request.header(name, value);
    }
    request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| OutboundError::Invalid(e.to_string()))
}

/// A client error with its causes, for the plugin and the log.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_and_hop_by_hop_headers_dropped() {
        let request = build_request(
            "POST",
            "http://a.example/x",
            vec![
                ("Connection".into(), b"close".to_vec()),
                ("x-ok".into(), b"1".to_vec()),
                ("Host".into(), b"evil".to_vec()),
            ],
            b"body".to_vec(),
        )
        .unwrap();
        assert_eq!(request.headers().len(), 1);
        assert_eq!(request.headers()["x-ok"], "1");
        assert!(matches!(
            build_request("GE T", "http://a/", vec![], vec![]),
            Err(OutboundError::Invalid(_))
        ));
        assert!(matches!(
            build_request("GET", "http://a/", vec![("bad name".into(), vec![])], vec![]),
            Err(OutboundError::Invalid(_))
        ));
        assert!(matches!(
            build_request("GET", "http://a/", vec![("x".into(), b"a\nb".to_vec())], vec![]),
            Err(OutboundError::Invalid(_))
        ));
    }
}
