//! A request that asks to switch protocols, sent on: to the route's upstream as an HTTP/1.1
//! upgrade (an HTTP/2 extended CONNECT becomes one, with the `Sec-WebSocket-Key` an HTTP/1.1
//! WebSocket handshake needs), never coalesced, never answered from or stored in the HTTP
//! cache, its body never decoded. On the upstream's 101 the client gets 101 (HTTP/1.1) or
//! 200 (HTTP/2) and the two connections are joined ([`crate::tunnel`]); any other answer is an
//! ordinary response.

use std::time::Duration;

use base64::Engine as _;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::http::request::Parts;
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode};

use sluice_core::body::{ProxyBody, empty};
use sluice_core::headers;
use sluice_runtime::Forward;

use crate::answer::{Answer, Refusal};
use crate::exchange::Exchange;
use crate::forward::{apply_chain_edits, no_upstream, prepare_upstream_head, upstream_error};
use crate::tunnel::{Lifetime, Opened, Tunnels, Upgrade};

/// Sends the upgrade request of `parts`, with the request hooks' edits, to the route's
/// upstream and answers with the switch (the tunnel then runs on its own) or with whatever
/// else the upstream said. What else the chain `decided` (coalescing, a cache fill, a GPU
/// backend, body decoding) does not apply to a switch and is dropped.
pub async fn forward(
    ex: &Exchange<'_>,
    mut parts: Parts,
    decided: &Forward,
    upgrade: Upgrade,
    authority: Option<&str>,
    tunnels: &std::sync::Arc<Tunnels>,
) -> Answer {
    let Some(upstream) = &ex.route.upstream else {
        return no_upstream(ex);
    };
    let Some(client) = parts.extensions.remove::<OnUpgrade>() else {
        let message = "the connection cannot be switched to another protocol";
        return Answer::Refused(Refusal::json(
            StatusCode::BAD_REQUEST,
            "no_upgrade",
            message,
            ex.request_id,
        ));
    };
    apply_chain_edits(ex, &mut parts, decided);
    prepare_upstream_head(ex, &mut parts, authority);
    ask_upstream_to_switch(&mut parts, &upgrade);
    let sent = upstream.send(Request::from_parts(parts, empty()), false).await;
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => return Answer::Refused(upstream_error(ex, &error)),
    };
    if let Some(refusal) = bad_switch(ex, &response, &upgrade) {
        return Answer::Refused(refusal);
    }
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        headers::strip_hop_by_hop(response.headers_mut());
        return Answer::Upstream {
            response,
            timing: None,
            fill: None,
            usage: None,
        };
    }
    let switched = hyper::upgrade::on(&mut response);
    let answer = switched_answer(response, &upgrade);
    let settings = &ex.route.upgrades;
    let opened = Opened {
        route: ex.route.name.clone(),
        request_id: ex.request_id.to_string(),
        lifetime: Lifetime {
            idle: Duration::from_millis(settings.idle_timeout_ms),
            max_duration: Duration::from_millis(settings.max_duration_ms),
        },
    };
    tunnels.open(client, switched, opened);
    Answer::Direct(answer)
}

/// 502 when the upstream's answer would mislead the client: a 101 to another protocol than
/// the one asked for, or a 2xx without switching to an HTTP/2 extended CONNECT (whose client
/// would take any 2xx for an open tunnel).
fn bad_switch(ex: &Exchange<'_>, response: &Response<ProxyBody>, upgrade: &Upgrade) -> Option<Refusal> {
    let message = if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let named = response
            .headers()
            .get(UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let protocol = named.split('/').next().unwrap_or_default().trim();
        if protocol.eq_ignore_ascii_case(upgrade.protocol()) {
            return None;
        }
        format!(
            "the upstream switched to {named:?}, not to {:?} as asked",
            upgrade.protocol()
        )
    } else if matches!(upgrade, Upgrade::ExtendedConnect(_)) && response.status().is_success() {
        format!(
            "the upstream answered {} instead of switching to {:?}",
            response.status().as_u16(),
            upgrade.protocol()
        )
    } else {
        return None;
    };
    tracing::warn!(request_id = %ex.request_id, %message, "protocol switch refused");
    Some(Refusal::json(
        StatusCode::BAD_GATEWAY,
        "upstream_bad_switch",
        &message,
        ex.request_id,
    ))
}

/// The upgrade fields the upstream needs, after the hop-by-hop ones were removed: the
/// client's own for HTTP/1.1; for an extended CONNECT a GET with the protocol as `Upgrade`
/// and, for WebSocket, a fresh `Sec-WebSocket-Key` (RFC 8441 §5: HTTP/2 has none).
fn ask_upstream_to_switch(parts: &mut Parts, upgrade: &Upgrade) {
    parts.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    match upgrade {
        Upgrade::Http1(value) => {
            parts.headers.insert(UPGRADE, value.clone());
        }
        Upgrade::ExtendedConnect(protocol) => {
            parts.method = Method::GET;
            let value = HeaderValue::from_str(protocol).unwrap_or(HeaderValue::from_static("websocket"));
            if protocol.eq_ignore_ascii_case("websocket") {
                let key = base64::engine::general_purpose::STANDARD.encode(fastrand::u128(..).to_le_bytes());
                if let Ok(key) = HeaderValue::from_str(&key) {
                    parts.headers.insert(SEC_WEBSOCKET_KEY, key);
                }
            }
            parts.headers.insert(UPGRADE, value);
        }
    }
}

/// The client's answer to the upstream's 101: the upstream's fields without the hop-by-hop
/// ones; for HTTP/1.1 a 101 with the upstream's `Upgrade`, for HTTP/2 a 200 without the
/// handshake's `Sec-WebSocket-Accept` (which answered the gateway's key, not the client's).
fn switched_answer(response: Response<ProxyBody>, upgrade: &Upgrade) -> Response<ProxyBody> {
    let (mut parts, _) = response.into_parts();
    let protocol = parts.headers.get(UPGRADE).cloned();
    headers::strip_hop_by_hop(&mut parts.headers);
    parts.extensions = Default::default();
    match upgrade {
        Upgrade::Http1(asked) => {
            parts.headers.insert(UPGRADE, protocol.unwrap_or_else(|| asked.clone()));
            parts.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        Upgrade::ExtendedConnect(_) => {
            parts.status = StatusCode::OK;
            parts.headers.remove(SEC_WEBSOCKET_ACCEPT);
        }
    }
    Response::from_parts(parts, empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extended_connect_becomes_a_websocket_handshake() {
        let mut parts = Request::connect("/chat").body(()).unwrap().into_parts().0;
        ask_upstream_to_switch(&mut parts, &Upgrade::ExtendedConnect("websocket".into()));
        assert_eq!(parts.method, Method::GET);
        assert_eq!(parts.headers[UPGRADE], "websocket");
        assert_eq!(parts.headers[CONNECTION], "upgrade");
        let key = parts.headers[SEC_WEBSOCKET_KEY].to_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(key).unwrap();
        assert_eq!(decoded.len(), 16, "RFC 6455 §4.1: a random 16-byte nonce");
    }

    #[test]
    fn the_switch_answers_101_over_http1_and_200_over_http2() {
        let upstream = || {
            Response::builder()
                .status(101)
                .header("upgrade", "websocket")
                .header("connection", "upgrade")
                .header("sec-websocket-accept", "abc")
                .header("sec-websocket-protocol", "chat")
                .body(empty())
                .unwrap()
        };
        let h1 = switched_answer(upstream(), &Upgrade::Http1(HeaderValue::from_static("websocket")));
        assert_eq!(h1.status(), 101);
        assert_eq!(h1.headers()[UPGRADE], "websocket");
        assert_eq!(h1.headers()[CONNECTION], "upgrade");
        assert_eq!(h1.headers()[SEC_WEBSOCKET_ACCEPT], "abc");
        let h2 = switched_answer(upstream(), &Upgrade::ExtendedConnect("websocket".into()));
        assert_eq!(h2.status(), 200);
        assert!(!h2.headers().contains_key(UPGRADE));
        assert!(!h2.headers().contains_key(SEC_WEBSOCKET_ACCEPT));
        assert_eq!(h2.headers()["sec-websocket-protocol"], "chat");
    }
}
