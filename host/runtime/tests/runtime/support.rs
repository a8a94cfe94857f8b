//! Helpers: build a route table from a config snippet, make requests, read headers.

use std::path::Path;

use sluice_backends::Backends;
use sluice_bindings::{RequestHead, ResponseHead};
use sluice_config::GatewayConfig;
use sluice_runtime::{BodyError, BodySource, LoadError, RouteTable, Runtime};

/// A runtime and a config directory that lives as long as the test needs it.
pub(crate) struct Harness {
    pub(crate) runtime: Runtime,
    pub(crate) config: GatewayConfig,
    pub(crate) _dir: tempfile::TempDir,
}

/// `[plugins.NAME]` for a test plugin's wasm `path` with extra TOML lines. Unless `extra`
/// sets limits, the CPU budget is a generous 1 s: these tests run an unoptimised host on
/// busy machines, and only the deadline tests are about time.
pub(crate) fn plugin(name: &str, path: &str, extra: &str) -> String {
    let limits = if extra.contains("limits") {
        ""
    } else {
        "limits = { cpu_ms = 1000 }\n"
    };
    format!("[plugins.{name}]\nmodule = {path:?}\n{limits}{extra}\n")
}

/// A route `name` whose chain is `plugins` (each `plugin = "..."` plus extra inline fields).
pub(crate) fn route(name: &str, entries: &[&str]) -> String {
    let mut out = format!("[[routes]]\nname = {name:?}\n");
    for entry in entries {
        out.push_str(&format!("[[routes.plugins]]\n{entry}\n"));
    }
    out
}

/// Parses `toml` (with its cache in a fresh temporary directory) and starts a runtime.
pub(crate) fn harness(toml: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[runtime]\ncache_dir = {:?}\n{toml}", dir.path().join("cache"));
    let config = GatewayConfig::parse(&text, Path::new("test.toml"), dir.path().to_path_buf()).unwrap();
    let runtime = Runtime::for_config(&config, Backends::in_memory()).unwrap();
    Harness {
        runtime,
        config,
        _dir: dir,
    }
}

impl Harness {
    /// Builds the route table.
    pub(crate) async fn build(&self) -> Result<RouteTable, LoadError> {
        self.runtime.build_routes(&self.config).await
    }
}

/// Builds the route table from `toml`, panicking on errors.
pub(crate) async fn table(toml: &str) -> (Harness, RouteTable) {
    let h = harness(toml);
    let table = h.build().await.unwrap_or_else(|e| panic!("{e}"));
    (h, table)
}

/// A GET request for `path` on `route` with eight ordinary headers.
pub(crate) fn request(route: &str, path: &str) -> RequestHead {
    let headers = [
        ("host", "api.example"),
        ("user-agent", "sluice-test/1.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, br"),
        ("accept-language", "en"),
        ("x-api-key", "sk_test_123"),
        ("x-forwarded-for", "10.0.0.1"),
        ("cookie", "a=b"),
    ];
    RequestHead {
        method: "GET".into(),
        scheme: "http".into(),
        authority: "api.example".into(),
        path: path.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        client_ip: "127.0.0.1".into(),
        request_id: format!("req-{path}"),
        route: route.into(),
        context: vec![],
    }
}

/// An upstream 200 response head.
pub(crate) fn response() -> ResponseHead {
    ResponseHead {
        status: 200,
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
    }
}

/// The values of header `name`, joined with `,`.
pub(crate) fn header(headers: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// A request body held in memory.
pub(crate) struct Body(pub(crate) Vec<u8>);

impl BodySource for Body {
    async fn buffer(&mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
        if self.0.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        Ok(self.0.clone())
    }
}

/// A body source that returns the first `limit` bytes (a plugin reading a prefix).
pub(crate) struct Prefix(pub(crate) Vec<u8>);

impl BodySource for Prefix {
    async fn buffer(&mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
        Ok(self.0[..limit.min(self.0.len())].to_vec())
    }
}
