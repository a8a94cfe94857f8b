//! Route matching: the first route whose conditions all hold.

use std::sync::Arc;

use hyper::{HeaderMap, Method};

use sluice_config::{RouteMatch, UpgradeSettings};
use sluice_core::telemetry::metrics::{Counter, Histogram, Registry};
use sluice_core::upstream::Upstream;
use sluice_runtime::Chain;

/// A route's request metrics, looked up once so the request path only touches atomics.
#[derive(Debug)]
pub struct RouteMetrics {
    by_class: [Arc<Counter>; 5],
    duration: Arc<Histogram>,
}

impl RouteMetrics {
    /// The series of route `name` (`-` for requests no route matched).
    pub fn new(registry: &Registry, name: &str) -> Self {
        let by_class = ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .map(|class| registry.counter("sluice_requests_total", &[("route", name), ("status", class)]));
        let duration = registry.histogram("sluice_request_duration_seconds", &[("route", name)]);
        RouteMetrics { by_class, duration }
    }

    /// Counts one request with `status` that took `seconds`.
    pub fn record(&self, status: u16, seconds: f64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].add(1);
        self.duration.record(seconds);
    }
}

/// A route ready to serve: its conditions, chain and upstream.
#[derive(Debug)]
pub struct Route {
    /// The route's name.
    pub name: String,
    matcher: RouteMatch,
    /// The plugin chain.
    pub chain: Arc<Chain>,
    /// Where requests go, when the chain does not answer.
    pub upstream: Option<Arc<Upstream>>,
    /// The route's request metrics.
    pub metrics: RouteMetrics,
    /// The protocol upgrades it tunnels.
    pub upgrades: UpgradeSettings,
}

impl Route {
    /// A route from its config match, chain and upstream, counting into `registry`.
    pub fn new(
        name: &str,
        matcher: RouteMatch,
        chain: Arc<Chain>,
        upstream: Option<Arc<Upstream>>,
        registry: &Registry,
    ) -> Self {
        let metrics = RouteMetrics::new(registry, name);
        Route {
            name: name.to_string(),
            matcher,
            chain,
            upstream,
            metrics,
            upgrades: UpgradeSettings::default(),
        }
    }

    /// The route with `upgrades` as its tunnelled protocols (the default: WebSocket).
    pub fn with_upgrades(mut self, upgrades: UpgradeSettings) -> Self {
        self.upgrades = upgrades;
        self
    }

    fn matches(&self, method: &Method, host: Option<&str>, path: &str, headers: &HeaderMap) -> bool {
        let m = &self.matcher;
        if let Some(want) = &m.host
            && !host.is_some_and(|h| h.eq_ignore_ascii_case(want))
        {
            return false;
        }
        if m.path.as_ref().is_some_and(|exact| path != exact) {
            return false;
        }
        if let Some(prefix) = &m.path_prefix {
            let rest = match path.strip_prefix(prefix.trim_end_matches('/')) {
                Some(rest) => rest,
                None => return false,
            };
            if !(rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')) {
                return false;
            }
        }
        if !m.methods.is_empty() && !m.methods.iter().any(|x| x.eq_ignore_ascii_case(method.as_str())) {
            return false;
        }
        m.headers.iter().all(|(name, value)| {
            headers
                .get_all(name.as_str())
                .iter()
                .any(|v| v.as_bytes() == value.as_bytes())
        })
    }
}

/// Routes in config order.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Route>,
    /// Metrics of requests no route matched.
    pub unmatched: RouteMetrics,
}

/// The host of a request without the port.
pub fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_once(']').map_or(authority, |(h, _)| &h[1..]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

impl Router {
    /// A router over `routes`, tried in order.
    pub fn new(routes: Vec<Route>, registry: &Registry) -> Self {
        Router {
            routes,
            unmatched: RouteMetrics::new(registry, "-"),
        }
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route matching the request.
    pub fn find(&self, method: &Method, authority: Option<&str>, path: &str, headers: &HeaderMap) -> Option<&Route> {
        let host = authority.map(host_of);
        self.routes.iter().find(|r| r.matches(method, host, path, headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(m: RouteMatch) -> Route {
        let registry = Arc::new(Registry::new());
        let chain = Arc::new(Chain::new("r", vec![], registry.clone()));
        Route::new("r", m, chain, None, &registry)
    }

    fn hit(m: RouteMatch, method: &str, host: Option<&str>, path: &str) -> bool {
        let r = Router::new(vec![route(m)], &Registry::new());
        r.find(&method.parse().unwrap(), host, path, &HeaderMap::new())
            .is_some()
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let m = RouteMatch {
            path_prefix: Some("/api".into()),
            ..Default::default()
        };
        assert!(hit(m.clone(), "GET", None, "/api"));
        assert!(hit(m.clone(), "GET", None, "/api/v1"));
        assert!(!hit(m.clone(), "GET", None, "/apix"));
        let root = RouteMatch {
            path_prefix: Some("/".into()),
            ..Default::default()
        };
        assert!(hit(root, "GET", None, "/anything"));
    }

    #[test]
    fn hosts_methods_exact_paths_and_headers_all_must_hold() {
        let m = RouteMatch {
            host: Some("api.example".into()),
            path: Some("/health".into()),
            methods: vec!["GET".into()],
            ..Default::default()
        };
        assert!(hit(m.clone(), "GET", Some("API.example:8080"), "/health"));
        assert!(!hit(m.clone(), "POST", Some("api.example"), "/health"));
        assert!(!hit(m.clone(), "GET", Some("other.example"), "/health"));
        assert!(!hit(m, "GET", Some("api.example"), "/health/x"));

        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", "a".parse().unwrap());
        let m = RouteMatch {
            headers: [("x-tenant".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        let r = Router::new(vec![route(m)], &Registry::new());
        assert!(r.find(&Method::GET, None, "/", &headers).is_some());
        assert!(r.find(&Method::GET, None, "/", &HeaderMap::new()).is_none());
    }

    #[test]
    fn ipv6_hosts_lose_their_port() {
        assert_eq!(host_of("[::1]:8080"), "::1");
        assert_eq!(host_of("example.com:80"), "example.com");
        assert_eq!(host_of("example.com"), "example.com");
    }
}
