//! What the stages before `finish` decide to answer with: the upstream's response, a plugin's
//! local response, a stored one, or the gateway's own refusal.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::{Response, StatusCode};

use sluice_backends::http_cache::FillGuard;
use sluice_bindings::{InferenceUsage, LocalResponse, ResponseHead};
use sluice_core::body::ProxyBody;
use sluice_core::errors::{json_error, json_error_with};

/// The response a request ends with, before the response chain and `finish`.
pub enum Answer {
    /// From the route's upstream or a GPU backend, hop-by-hop fields removed.
    Upstream {
        /// The response.
        response: Response<ProxyBody>,
        /// When the exchange happened, for storing it in the HTTP cache (the route's
        /// upstream only).
        timing: Option<Timing>,
        /// The HTTP-cache fill this request leads.
        fill: Option<FillGuard>,
        /// Where an inference request's usage lands (GPU routing only).
        usage: Option<UsageSlot>,
    },
    /// A plugin answered itself (`respond`).
    Local(LocalResponse),
    /// A stored response served through the response hooks.
    Stored {
        /// Its head.
        head: ResponseHead,
        /// Its body.
        body: Bytes,
    },
    /// A stored response sent as it is kept: no response hook had to see it.
    Direct(Response<ProxyBody>),
    /// The gateway's own answer (a bad request, an upstream failure).
    Refused(Refusal),
}

/// An answer the gateway gives itself, with why (for `on-log`'s `error`).
pub struct Refusal {
    /// The response (boxed: refusals are rare, and the answers that carry one stay small).
    pub response: Box<Response<ProxyBody>>,
    /// Why, in a sentence.
    pub why: String,
}

impl Refusal {
    /// A JSON error answer (`{"error": code, "message": ..., "request_id": ...}`).
    pub fn json(status: StatusCode, code: &str, message: &str, request_id: &str) -> Self {
        Refusal {
            response: Box::new(json_error(status, code, message, request_id)),
            why: message.to_string(),
        }
    }

    /// A JSON error answer with extra fields.
    pub fn json_with(
        status: StatusCode,
        code: &str,
        message: &str,
        request_id: &str,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        Refusal {
            response: Box::new(json_error_with(status, code, message, request_id, extra)),
            why: message.to_string(),
        }
    }

    /// `response`, refused for `why`.
    pub fn with(response: Response<ProxyBody>, why: impl Into<String>) -> Self {
        Refusal {
            response: Box::new(response),
            why: why.into(),
        }
    }
}

/// When the upstream exchange happened (ms since the epoch), and the cache's generation when
/// the request went upstream.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// When the request went upstream.
    pub sent_ms: u64,
    /// When the response head came back.
    pub received_ms: u64,
    /// [`HttpCache::generation`](sluice_backends::http_cache::HttpCache::generation) when the
    /// request went upstream.
    pub generation: u64,
}

/// Where the inference usage of a request lands for its `on-log` entry.
pub type UsageSlot = Arc<Mutex<Option<InferenceUsage>>>;
