//! Accept: where a request enters the request path. It gets its id (the client's
//! `x-request-id` when usable) and a trace span (continuing the client's W3C trace), then
//! goes through the stages in order: [`route`] → [`request_chain`] →
//! [`forward`](mod@crate::forward) → [`response_chain`](crate::response_chain) via
//! [`finish`](mod@crate::finish) → [`log`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use hyper::{Request, Response};
use tracing::Instrument;

use sluice_core::body::ProxyBody;
use sluice_core::grpc;
use sluice_core::request_id::RequestId;
use sluice_core::telemetry::otlp;

use crate::answer::Answer;
use crate::client_body::ClientBody;
use crate::exchange::{ConnInfo, Exchange};
use crate::finish::finish;
use crate::forward::{self, forward};
use crate::log::{self, Access};
use crate::request_chain::{self, Decision, RequestBody};
use crate::route;
use crate::router::Route;
use crate::state::{Gateway, GatewayState};
use crate::tunnel;

/// Serves one request with the gateway current when it arrived.
pub async fn handle(
    state: Arc<GatewayState>,
    req: Request<ClientBody>,
    conn: ConnInfo,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let _in_flight = state.request_started();
    let gateway = state.current();
    let RequestId { id: request_id, echo } = gateway.request_ids.read(req.headers());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %req.uri().path(),
        otel.kind = "server",
        route = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    otlp::continue_trace(&span, req.headers());
    // Boxed: the stages' future is several kilobytes, and unboxed it was copied whole each
    // time it moved (into the span's wrapper, and with this future by hyper's dispatcher).
    let stages = Box::pin(serve(&gateway, &state, req, conn, &request_id, started));
    let (mut resp, route) = stages.instrument(span.clone()).await;
    let access = Access {
        gateway: &gateway,
        route,
        request_id: &request_id,
        echo_id_as: echo.as_ref(),
        method: &method,
        conn,
        started,
    };
    log::access(&state, &access, &mut resp, &span);
    Ok(resp)
}

/// The stages from routing to the finished response; also the route that matched.
async fn serve<'g>(
    gw: &'g Gateway,
    state: &'g GatewayState,
    req: Request<ClientBody>,
    conn: ConnInfo,
    request_id: &'g str,
    started: Instant,
) -> (Response<ProxyBody>, Option<&'g Route>) {
    let grpc = grpc::is_grpc(req.headers());
    let matched = match route::route(gw, &req, request_id) {
        Ok(matched) => matched,
        Err(refusal) if grpc => return (grpc::trailers_only(*refusal.response, &refusal.why), None),
        Err(refusal) => return (*refusal.response, None),
    };
    let route = matched.route;
    let mut ex = Exchange {
        gateway: gw,
        backends: state.runtime().backends(),
        route,
        conn,
        request_id,
        started,
        head: None,
        ran: 0,
        replies: Default::default(),
        body: Arc::default(),
        grpc,
    };
    let (parts, incoming) = req.into_parts();
    let authority = matched.authority.as_deref();
    let admitted = route::admit(&parts, &gw.config.server, request_id)
        .and_then(|()| route::audit_ready(route, ex.backends.sinks.as_deref(), request_id));
    if let Err(refusal) = admitted {
        if ex.logs() {
            ex.head = Some(request_chain::request_head(&ex, &parts, authority));
        }
        return (finish(ex, Answer::Refused(refusal)).await, Some(route));
    }
    let upgrade = tunnel::requested(&parts, &route.upgrades);
    let mut body = RequestBody::new(incoming, gw.config.server.max_body_bytes, ex.body.clone());
    let answer = match (request_chain::run(&mut ex, &parts, authority, &mut body).await, upgrade) {
        (Decision::Answer(answer), _) => answer,
        (Decision::Forward(decided), Some(upgrade)) => {
            Box::pin(forward::upgrade::forward(
                &ex,
                parts,
                &decided,
                upgrade,
                authority,
                state.tunnels(),
            ))
            .await
        }
        (Decision::Forward(decided), None) => forward(&ex, parts, body, decided, authority, state.coalescer()).await,
    };
    (finish(ex, answer).await, Some(route))
}
