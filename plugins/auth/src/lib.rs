//! Sluice's authentication plugin. On every request of the routes it is on: takes the
//! credential from the configured headers, verifies it (API keys: format and check characters,
//! then the keyed hash against the decision cache and Postgres), checks the route's required
//! scopes, and either passes the identity on (upstream headers, and chain context for later
//! plugins such as rate limiting) or answers 401, 403 or 503. Every decision is audited.
//! Revocations arrive as Redis messages and take effect in every gateway instance at once.
//!
//! The config reference is `plugins/auth/README.md`.

mod answer;
mod credentials;
mod decision;
mod keys;
mod settings;

use serde_json::json;
use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, RequestHead, RequestVerdict, audit};

use credentials::Credential;
use decision::{Denial, KeyIdentity};
use settings::Settings;

struct Auth(Settings);

/// Records the decision in the audit log. An audit log that cannot take it (queue full) is
/// counted and logged by the host; the decision stands.
fn record(outcome: &str, reason: &str, key_id: Option<i64>, method: &str) {
    let event = audit::Event {
        action: format!("auth.{outcome}"),
        outcome: outcome.into(),
        actor: key_id.map(|id| format!("key:{id}")),
        subject: None,
        details: json!({ "reason": reason, "method": method }).to_string(),
    };
    let _ = audit::emit(&event);
}

impl Auth {
    fn allow(&self, identity: &KeyIdentity, credential_header: &str) -> RequestVerdict {
        let h = &self.0.identity_headers;
        let scopes = identity.scopes.join(" ");
        let key_id = identity.key_id.to_string();
        let mut edits = Edits::new();
        for name in h.all() {
            edits = edits.remove(name);
        }
        if !self.0.forward_credential {
            edits = edits.remove(credential_header);
        }
        edits
            .set(&h.subject, &identity.owner)
            .set(&h.scopes, &scopes)
            .set(&h.tier, &identity.tier)
            .set(&h.key_id, &key_id)
            .context("subject", &identity.owner)
            .context("scopes", &scopes)
            .context("tier", &identity.tier)
            .context("key_id", &key_id)
            .context("auth_method", "api_key")
            .into()
    }
}

impl Plugin for Auth {
    const NAME: &'static str = "auth";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders, Hook::Message];

    fn new(config: Config) -> Result<Self, String> {
        config.parse::<Settings>()?.validate().map(Auth)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let settings = &self.0;
        let (token, header) = match credentials::extract(req, &settings.key_headers) {
            Credential::None => {
                record("deny", Denial::Missing.code(), None, "none");
                return answer::deny(Denial::Missing, req, &settings.realm, &[]);
            }
            Credential::Garbage => {
                record("deny", Denial::Malformed.code(), None, "unknown");
                return answer::deny(Denial::Malformed, req, &settings.realm, &[]);
            }
            Credential::Token(token, header) => (token, header),
        };
        if !token.starts_with("sk_") {
            record("deny", Denial::Unsupported.code(), None, "unknown");
            return answer::deny(Denial::Unsupported, req, &settings.realm, &[]);
        }
        match keys::verify(settings, token) {
            Ok(identity) => {
                let missing = identity.missing_scopes(&settings.required_scopes);
                if !missing.is_empty() {
                    record(
                        "deny",
                        Denial::InsufficientScope.code(),
                        Some(identity.key_id),
                        "api_key",
                    );
                    return answer::deny(Denial::InsufficientScope, req, &settings.realm, &missing);
                }
                record("allow", "ok", Some(identity.key_id), "api_key");
                self.allow(&identity, header)
            }
            Err((denial, key_id)) => {
                let outcome = if denial == Denial::Unavailable { "error" } else { "deny" };
                record(outcome, denial.code(), key_id, "api_key");
                answer::deny(denial, req, &settings.realm, &[])
            }
        }
    }

    fn on_message(&mut self, channel: &str, message: &[u8]) {
        if channel == self.0.revocation_channel {
            keys::on_message(&self.0, message);
        }
    }
}

sluice_plugin_sdk::export_plugin!(Auth);
