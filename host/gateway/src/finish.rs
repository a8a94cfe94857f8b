//! Finish: the one place every routed response ends, whatever made it (the upstream, a GPU
//! backend, a plugin, the HTTP cache, or the gateway's own refusal). The response hooks of
//! the plugins whose request hooks ran see it, then `on-log` is set to run once its body was
//! sent. A route without plugins sends what it got. For a gRPC call, an error the gateway or
//! a plugin answered with goes out as a gRPC status (`sluice_core::grpc::trailers_only`).

use bytes::Bytes;
use hyper::Response;

use sluice_bindings::ResponseHead;
use sluice_core::body::{ProxyBody, full};
use sluice_core::grpc;

use crate::answer::Answer;
use crate::exchange::Exchange;
use crate::{log, response_chain};

/// Ends `answer`: the response to send.
pub async fn finish(mut ex: Exchange<'_>, answer: Answer) -> Response<ProxyBody> {
    let Some(req) = ex.head.take() else {
        return unchained(answer, ex.grpc);
    };
    let mut usage = None;
    let mut error = None;
    // Why the gateway or a plugin refused, for a gRPC caller's `grpc-message`.
    let mut grpc_message = None;
    let (response, status) = match answer {
        Answer::Direct(response) => {
            let status = response.status().as_u16();
            (response, status)
        }
        Answer::Local(local) => {
            grpc_message = ex.grpc.then(|| message_of(&local.body, local.status));
            let mut head = ResponseHead {
                status: local.status,
                headers: local.headers,
            };
            // Response hooks see the local body's length, as they would an upstream's.
            let length = local.body.len().to_string().into_bytes();
            head.headers.push(("content-length".to_string(), length));
            response_chain::run(&ex, &req, head, full(Bytes::from(local.body)), None).await
        }
        Answer::Stored { head, body } => response_chain::run(&ex, &req, head, full(body), None).await,
        Answer::Upstream {
            mut response,
            timing,
            fill,
            usage: slot,
        } => {
            usage = slot;
            if !ex.route.chain.has_response_hooks(ex.ran) {
                // No hook to show the head to: only `response.edit` edits, on the map itself.
                ex.replies.apply_to_map(ex.ran, response.headers_mut());
                let status = response.status().as_u16();
                return response.map(|body| log::when_sent(&ex, req, status, body, usage, None));
            }
            let (parts, body) = response.into_parts();
            let store = timing.map(|t| (t, fill));
            response_chain::run(&ex, &req, response_chain::head_of(&parts), body, store).await
        }
        Answer::Refused(refusal) => {
            grpc_message = ex.grpc.then(|| refusal.why.clone());
            error = Some(refusal.why);
            let (parts, body) = (*refusal.response).into_parts();
            response_chain::run(&ex, &req, response_chain::head_of(&parts), body, None).await
        }
    };
    let response = match grpc_message {
        Some(message) => grpc::trailers_only(response, &message),
        None => response,
    };
    response.map(|body| log::when_sent(&ex, req, status, body, usage, error))
}

/// What a plugin's local error answer says: its JSON `message` (or `error`) field, else the
/// status's reason phrase.
fn message_of(body: &[u8], status: u16) -> String {
    let said = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| {
        ["message", "error"]
            .iter()
            .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
    });
    said.unwrap_or_else(|| {
        hyper::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("refused")
            .to_string()
    })
}

/// The response of a request no plugin saw: sent as it is (a refusal of a gRPC call as its
/// gRPC status).
fn unchained(answer: Answer, grpc: bool) -> Response<ProxyBody> {
    match answer {
        Answer::Upstream { response, .. } | Answer::Direct(response) => response,
        Answer::Refused(refusal) if grpc => grpc::trailers_only(*refusal.response, &refusal.why),
        Answer::Refused(refusal) => *refusal.response,
        // Only a plugin answers locally or from the cache; kept whole should one ever get here.
        Answer::Local(local) => {
            let head = ResponseHead {
                status: local.status,
                headers: local.headers,
            };
            response_chain::response_from(head, full(Bytes::from(local.body)))
        }
        Answer::Stored { head, body } => response_chain::response_from(head, full(body)),
    }
}
