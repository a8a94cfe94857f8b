//! `[server]` (the public listener) and `[admin]` (the admin listener).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The public listener: address, protocol limits and timeouts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// TLS certificate and key files; plain HTTP (with h2c by prior knowledge) when absent.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// A UDP address to serve HTTP/3 on (QUIC, with `tls`'s certificate), advertised to
    /// HTTPS clients in `Alt-Svc`; none (the default) serves no HTTP/3.
    #[serde(default)]
    pub http3_listen: Option<SocketAddr>,
    /// The largest request header section in bytes (431 beyond it). Default 16 KiB.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// The most request header fields (431 beyond it). Default 100.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// The largest request body in bytes (413 beyond it). Default 10 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Time a client has to send a complete request head. Default 10 s.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// A connection that moves no byte and has no request in flight for this long is closed
    /// (HTTP/2 with a GOAWAY). An idle HTTP/1.1 keep-alive connection is also closed once it
    /// has not sent the next request head within `header_read_timeout_ms`. Default 60 s.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Request worker threads, each serving its connections start to end; 0 (the default)
    /// means one per CPU.
    #[serde(default)]
    pub workers: usize,
    /// How long shutdown waits for in-flight requests to finish. Default 30 s.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// Requests slower than this are logged at warn. Default 1 s.
    #[serde(default = "default_slow_request_ms")]
    pub slow_request_ms: u64,
    /// Whether to write one access-log line per request. Default true.
    #[serde(default = "default_true")]
    pub access_log: bool,
    /// The header the request id travels under to the upstream and back in every response.
    /// Default `x-request-id`.
    #[serde(default = "default_request_id_header")]
    pub request_id_header: String,
    /// The request headers a client's own id is read from, the first with a usable value
    /// (1 to 128 characters of `[A-Za-z0-9._:-]`) winning; with none, the gateway makes one.
    /// An id read from a header other than `request_id_header` also goes back to the client
    /// under the name it came in. Default `["x-correlation-id", "x-request-id"]`.
    #[serde(default = "default_request_id_sources")]
    pub request_id_sources: Vec<String>,
}

/// Certificate and key files (PEM).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// The admin listener.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Address of the admin API, never the public one. Default `127.0.0.1:9901`.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// A bearer token every admin request must carry, when set.
    #[serde(default)]
    pub token: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}
fn default_max_header_bytes() -> usize {
    16 << 10
}
fn default_max_headers() -> usize {
    100
}
fn default_max_body_bytes() -> u64 {
    10 << 20
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_shutdown_grace_ms() -> u64 {
    30_000
}
fn default_slow_request_ms() -> u64 {
    1_000
}
fn default_true() -> bool {
    true
}
fn default_request_id_header() -> String {
    "x-request-id".into()
}
fn default_request_id_sources() -> Vec<String> {
    vec!["x-correlation-id".into(), "x-request-id".into()]
}

/// Whether `name` is an HTTP field name (RFC 9110 §5.1: one or more token characters).
fn field_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: default_listen(),
            tls: None,
            http3_listen: None,
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
            max_body_bytes: default_max_body_bytes(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            workers: 0,
            shutdown_grace_ms: default_shutdown_grace_ms(),
            slow_request_ms: default_slow_request_ms(),
            access_log: true,
            request_id_header: default_request_id_header(),
            request_id_sources: default_request_id_sources(),
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: default_admin_listen(),
            token: None,
        }
    }
}

impl AdminSettings {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err("admin.token is empty: remove it for no token, or set a secret".into());
        }
        Ok(())
    }
}

impl ServerSettings {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(1024..=1 << 20).contains(&self.max_header_bytes) {
            return Err("server.max_header_bytes must be 1024..=1048576".into());
        }
        if !(1..=1000).contains(&self.max_headers) {
            return Err("server.max_headers must be 1..=1000".into());
        }
        if self.header_read_timeout_ms == 0 {
            return Err("server.header_read_timeout_ms must be at least 1".into());
        }
        if self.workers > 1024 {
            return Err(format!(
                "server.workers must be 0 (one per CPU) to 1024, got {}",
                self.workers
            ));
        }
        if self.idle_timeout_ms < 10 {
            return Err("server.idle_timeout_ms must be at least 10".into());
        }
        if self.http3_listen.is_some() && self.tls.is_none() {
            return Err(
                "server.http3_listen needs server.tls: HTTP/3 runs over QUIC, which is always encrypted".into(),
            );
        }
        let names = std::iter::once(&self.request_id_header).chain(&self.request_id_sources);
        if let Some(bad) = names.into_iter().find(|n| !field_name(n)) {
            return Err(format!(
                "server.request_id_header and request_id_sources must be header names, got {bad:?}"
            ));
        }
        Ok(())
    }
}
