//! Tunnels: a request that switches protocols (an HTTP/1.1 `Upgrade: websocket`, or an HTTP/2
//! extended CONNECT of RFC 8441) runs the route's request chain like any other; when the
//! upstream answers 101, the client's connection and the upstream's are joined byte for byte
//! until either side closes, the tunnel idles past its timeout, reaches its longest life, or
//! the gateway's drain deadline passes. Plugins never see the bytes of a tunnel.
//!
//! [`requested`] tells whether a request asks for a tunnel the route allows; the forward stage
//! ([`crate::forward::upgrade`]) sends it and calls [`Tunnels::open`] on a 101. Every tunnel is
//! counted in metrics (`sluice_tunnels_opened_total`, `sluice_tunnel_bytes_total`,
//! `sluice_tunnels_closed_total` by reason, `sluice_tunnels_open`) and logged when it closes,
//! with its request id.

mod pump;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper::http::request::Parts;
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Version};
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, watch};

use sluice_config::UpgradeSettings;
use sluice_core::telemetry::metrics::Registry;

pub use pump::Lifetime;
use pump::{Meter, Outcome};

/// How long both sides have to hand over their connections after the 101 was sent.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// The switch a request asks for, when its route tunnels that protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Upgrade {
    /// HTTP/1.1 `Connection: upgrade`, asking for this protocol (the `Upgrade` field's first
    /// entry, the only one sent upstream).
    Http1(HeaderValue),
    /// HTTP/2 extended CONNECT with this `:protocol`; the upstream gets an HTTP/1.1 upgrade.
    ExtendedConnect(String),
}

/// Whether `parts` ask for a protocol switch `settings` allow: HTTP/1.1 with `upgrade` among
/// the `Connection` options and an `Upgrade` field whose first protocol is listed, or an
/// HTTP/2 CONNECT with a listed `:protocol`. `None` for everything else (an `Upgrade` field
/// then goes no further than any hop-by-hop field).
pub fn requested(parts: &Parts, settings: &UpgradeSettings) -> Option<Upgrade> {
    if parts.version == Version::HTTP_2 && parts.method == Method::CONNECT {
        let protocol = parts.extensions.get::<hyper::ext::Protocol>()?.as_str();
        return settings
            .allows(protocol)
            .then(|| Upgrade::ExtendedConnect(protocol.to_string()));
    }
    if parts.version != Version::HTTP_11 {
        return None;
    }
    let asks = parts
        .headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case("upgrade"));
    let first = parts.headers.get(UPGRADE)?.to_str().ok()?.split(',').next()?.trim();
    let value = HeaderValue::from_str(first).ok()?;
    (asks && settings.allows(first)).then_some(Upgrade::Http1(value))
}

impl Upgrade {
    /// The protocol's name, without a version (`websocket`).
    pub fn protocol(&self) -> &str {
        let named = match self {
            Upgrade::Http1(value) => value.to_str().unwrap_or_default(),
            Upgrade::ExtendedConnect(protocol) => protocol,
        };
        named.split('/').next().unwrap_or_default().trim()
    }
}

/// The open tunnels of a gateway, across reloads: how many, and the drain that ends them.
#[derive(Debug)]
pub struct Tunnels {
    open: AtomicUsize,
    closed: Notify,
    drain: watch::Sender<bool>,
    registry: Arc<Registry>,
}

/// What a tunnel needs besides its two connections.
#[derive(Debug)]
pub struct Opened {
    /// The route's name.
    pub route: String,
    /// The request that opened it.
    pub request_id: String,
    /// How long it may idle and live.
    pub lifetime: Lifetime,
}

/// One open tunnel in the count of its gateway's tunnels.
struct OpenTunnel(Arc<Tunnels>);

impl Drop for OpenTunnel {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.closed.notify_waiters();
    }
}

impl Tunnels {
    /// No tunnel open yet; metrics go to `registry`.
    pub fn new(registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(Tunnels {
            open: AtomicUsize::new(0),
            closed: Notify::new(),
            drain: watch::Sender::new(false),
            registry,
        })
    }

    /// How many tunnels are open now.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Joins `client` and `upstream` once both hand their connections over, in a task of its
    /// own that ends when the tunnel closes.
    pub fn open(self: &Arc<Self>, client: OnUpgrade, upstream: OnUpgrade, opened: Opened) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.registry
            .counter("sluice_tunnels_opened_total", &[("route", &opened.route)])
            .add(1);
        let tunnels = self.clone();
        tokio::spawn(async move {
            // Counted open until this task ends, however it ends.
            let _open = OpenTunnel(tunnels.clone());
            let started = Instant::now();
            let (reason, meter) = tunnels.carry(client, upstream, &opened).await;
            tunnels.closed_with(&opened, reason, &meter, started);
        });
    }

    /// Carries bytes both ways until the tunnel ends; why it ended and what it carried.
    async fn carry(&self, client: OnUpgrade, upstream: OnUpgrade, opened: &Opened) -> (&'static str, Meter) {
        let meter = Meter::new(&self.registry, &opened.route);
        let handed = tokio::time::timeout(HANDOVER_TIMEOUT, async { tokio::try_join!(client, upstream) }).await;
        let (client, upstream) = match handed {
            Ok(Ok(pair)) => pair,
            Ok(Err(error)) => {
                tracing::warn!(request_id = %opened.request_id, %error, "tunnel: a side failed to hand over its connection");
                return ("handover_failed", meter);
            }
            Err(_) => return ("handover_failed", meter),
        };
        let mut drain = self.drain.subscribe();
        let draining = async move {
            let _ = drain.wait_for(|d| *d).await;
        };
        let outcome = pump::join(
            TokioIo::new(client),
            TokioIo::new(upstream),
            &meter,
            opened.lifetime,
            draining,
        )
        .await;
        let reason = match outcome {
            Outcome::ClientClosed => "client_closed",
            Outcome::UpstreamClosed => "upstream_closed",
            Outcome::Error => "error",
            Outcome::Idle => "idle",
            Outcome::MaxDuration => "max_duration",
            Outcome::Drain => "drain",
        };
        (reason, meter)
    }

    /// Counts and logs a tunnel that ended.
    fn closed_with(&self, opened: &Opened, reason: &str, meter: &Meter, started: Instant) {
        self.registry
            .counter(
                "sluice_tunnels_closed_total",
                &[("route", &opened.route), ("reason", reason)],
            )
            .add(1);
        let (upstream_bytes, downstream_bytes) = meter.carried();
        tracing::info!(
            request_id = %opened.request_id,
            route = %opened.route,
            reason,
            upstream_bytes,
            downstream_bytes,
            duration_ms = started.elapsed().as_millis() as u64,
            "tunnel closed"
        );
    }

    /// Waits for the open tunnels to end by themselves until `deadline`, then closes the
    /// rest (their close reason is `drain`) and waits for them to be gone.
    pub async fn drain(&self, deadline: tokio::time::Instant) {
        let all_closed = async {
            loop {
                let notified = self.closed.notified();
                if self.open_count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout_at(deadline, all_closed).await.is_err() {
            tracing::warn!(
                open = self.open_count(),
                "drain deadline passed: closing the open tunnels"
            );
            self.drain.send_replace(true);
            let gone = async {
                while self.open_count() > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), gone).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: Version, headers: &[(&str, &str)]) -> Parts {
        let mut req = hyper::Request::get("/ws").version(version);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn an_http1_upgrade_needs_the_connection_option_and_an_allowed_protocol() {
        let settings = UpgradeSettings::default();
        let asked = parts(
            Version::HTTP_11,
            &[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket, h2c")],
        );
        assert_eq!(
            requested(&asked, &settings),
            Some(Upgrade::Http1(HeaderValue::from_static("websocket")))
        );
        let no_option = parts(Version::HTTP_11, &[("upgrade", "websocket")]);
        assert_eq!(requested(&no_option, &settings), None);
        let other = parts(Version::HTTP_11, &[("connection", "upgrade"), ("upgrade", "h2c")]);
        assert_eq!(requested(&other, &settings), None);
        let old = parts(Version::HTTP_10, &[("connection", "upgrade"), ("upgrade", "websocket")]);
        assert_eq!(requested(&old, &settings), None, "HTTP/1.0 has no upgrades");
    }

    #[test]
    fn an_extended_connect_names_its_protocol() {
        let settings = UpgradeSettings::default();
        let mut req = parts(Version::HTTP_2, &[]);
        req.method = Method::CONNECT;
        assert_eq!(requested(&req, &settings), None, "a plain CONNECT is not an upgrade");
        req.extensions.insert(hyper::ext::Protocol::from_static("websocket"));
        assert_eq!(
            requested(&req, &settings),
            Some(Upgrade::ExtendedConnect("websocket".into()))
        );
    }
}
