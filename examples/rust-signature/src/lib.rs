//! `request-signature`: an example third-party Sluice plugin on the Rust SDK. It verifies
//! HMAC-SHA256 request signatures (the scheme in [`signature`]) before a request reaches the
//! upstream: unsigned, malformed, expired, unknown-key or mismatching requests get 401 with a
//! JSON error; a verified one goes on without the signature header and with
//! `x-signature-key: <key id>` for the upstream.
//!
//! Config (JSON, from the route): `{"keys": {"partner-a": "secret"}, "header": "x-signature",
//! "max_skew_s": 300, "max_body_bytes": 1048576}`; only `keys` is required.

pub mod signature;

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, RequestExt, RequestHead, RequestVerdict, Response, clock};

use signature::Rejection;

/// The route's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Key id → shared secret.
    pub keys: BTreeMap<String, String>,
    /// The header carrying the signature.
    #[serde(default = "default_header")]
    pub header: String,
    /// How far the signature's timestamp may be from the gateway's clock, in seconds.
    #[serde(default = "default_skew")]
    pub max_skew_s: u64,
    /// The largest body verified; a larger one is refused with 413 by the host.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u32,
}

fn default_header() -> String {
    "x-signature".into()
}
fn default_skew() -> u64 {
    300
}
fn default_max_body() -> u32 {
    1 << 20
}

/// The plugin: the route's settings.
pub struct RequestSignature {
    settings: Settings,
}

fn reject(r: &Rejection) -> RequestVerdict {
    let body = serde_json::json!({ "error": r.code(), "message": r.message() });
    Response::json(401, body.to_string())
        .header("www-authenticate", "Signature")
        .into()
}

impl Plugin for RequestSignature {
    const NAME: &'static str = "request-signature";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders, Hook::RequestBody];
    const MAX_BODY_BYTES: Option<u32> = Some(16 << 20);

    fn new(config: Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.keys.is_empty() || settings.keys.values().any(String::is_empty) {
            return Err("`keys` must name at least one key, each with a non-empty secret".into());
        }
        if settings.max_body_bytes > 16 << 20 {
            return Err("`max_body_bytes` is at most 16 MiB".into());
        }
        Ok(RequestSignature { settings })
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        // Refuse what cannot verify before reading any body.
        match req.header(&self.settings.header).map(signature::parse) {
            None => reject(&Rejection::Missing),
            Some(Err(r)) => reject(&r),
            Some(Ok(sig)) if !self.settings.keys.contains_key(&sig.key_id) => reject(&Rejection::UnknownKey),
            Some(Ok(_)) => RequestVerdict::NeedBody(self.settings.max_body_bytes),
        }
    }

    fn on_request_body(&mut self, req: &RequestHead, body: &[u8]) -> RequestVerdict {
        let Some(Ok(sig)) = req.header(&self.settings.header).map(signature::parse) else {
            return reject(&Rejection::Missing);
        };
        let Some(secret) = self.settings.keys.get(&sig.key_id) else {
            return reject(&Rejection::UnknownKey);
        };
        let now_s = clock::now_ms() / 1000;
        match signature::verify(
            &sig,
            secret.as_bytes(),
            now_s,
            self.settings.max_skew_s,
            &req.method,
            &req.path,
            body,
        ) {
            Ok(()) => Edits::new()
                .remove(&self.settings.header)
                .set("x-signature-key", &sig.key_id)
                .into(),
            Err(r) => reject(&r),
        }
    }
}

sluice_plugin_sdk::export_plugin!(RequestSignature);
