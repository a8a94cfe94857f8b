//! `http-client`: the grant names the hosts a plugin may call (`host` or `host:port`); the
//! call then goes through the gateway's pooled outbound client (`backend/http_out.rs`) with
//! the plugin's budget capped by `[http_client] timeout_ms`.

use std::time::Duration;

use crate::capability::Capability;
use crate::state::HostState;
use sluice_backends::http_client::OutboundError;
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::http_client::{Host, Request, Response};

/// The `host` or `host:port` part of an absolute http(s) URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty() && !authority.contains('@')).then_some(authority)
}

impl Host for HostState {
    async fn send(&mut self, request: Request) -> Result<Response, HostError> {
        let p = &self.plugin;
        let grant = p.grants.http_client.as_ref();
        p.require(Capability::HttpClient)?;
        let Some(authority) = authority(&request.url) else {
            return Err(p.invalid(
                Capability::HttpClient,
                format_args!("'{}' is not an absolute http(s) URL", request.url),
            ));
        };
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        let granted = grant.is_some_and(|g| g.hosts.iter().any(|h| h == authority || h == host));
        if !granted {
            return Err(HostError::Denied(format!(
                "http-client: host '{authority}' is not granted to plugin '{}'",
                p.name
            )));
        }
        let Some(client) = p.backends.http_client.clone() else {
            return Err(p.not_configured(Capability::HttpClient));
        };
        let timeout = request.timeout_ms.map(|ms| Duration::from_millis(ms.into()));
        let outcome = self
            .cpu
            .waiting_on(client.send(&request.method, &request.url, request.headers, request.body, timeout))
            .await;
        match outcome {
            Ok(response) => Ok(Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(e) => {
                tracing::debug!(plugin = %p.name, url = %request.url, error = %e, "outbound call failed");
                Err(match e {
                    OutboundError::Invalid(m) => p.invalid(Capability::HttpClient, m),
                    OutboundError::Timeout(_) => HostError::Timeout(format!("http-client: {e}")),
                    OutboundError::TooLarge(_) => HostError::Limit(format!("http-client: {e}")),
                    OutboundError::Unavailable(_) | OutboundError::Config(_) => {
                        HostError::Unavailable(format!("http-client: {authority}: {e}"))
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn authority_is_taken_from_absolute_urls_only() {
        assert_eq!(authority("http://a.example:8080/x?y"), Some("a.example:8080"));
        assert_eq!(authority("https://b.example"), Some("b.example"));
        assert_eq!(authority("http://user@evil.example/"), None);
        assert_eq!(authority("/relative"), None);
    }
}
