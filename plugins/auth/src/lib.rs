//! Sluice's authentication plugin. On every request of the routes it is on: takes the
//! credential from the configured headers, verifies it (API keys: format and check characters,
//! then the keyed hash against the decision cache and Postgres; JWTs: a signature by a key
//! bound to the token's algorithm, then the claims), checks the route's required
//! scopes, and either passes the identity on (upstream headers, and chain context for later
//! plugins such as rate limiting) or answers 401, 403 or 503. Every decision is audited.
//! Revocations arrive as Redis messages and take effect in every gateway instance at once.
//!
//! The config reference is `plugins/auth/README.md`.

mod answer;
mod credentials;
mod decision;
pub mod fuzzing;
mod jwks;
mod jwt;
mod jwt_keys;
mod keys;
mod settings;

use sha2::Digest;
use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, Reads, RequestHead, RequestVerdict, audit, clock, head, kv};

use credentials::Credential;
use decision::{Denial, KeyIdentity};
use settings::Settings;

struct Auth {
    settings: Settings,
    /// The JWT keys (configured and fetched), when the route accepts JWTs.
    ring: Option<jwks::KeyRing>,
    /// The keyed hashes of the API keys this instance saw last.
    digests: keys::Digests,
}

/// Records the decision in the audit log. An audit log that cannot take it (queue full) is
/// counted and logged by the host; the decision stands. `actor` is `key:ID` or `sub:SUBJECT`.
/// Runs on every request, so the event is written without formatting machinery: the action
/// and the details' members are the plugin's own codes.
fn record(outcome: &'static str, reason: &'static str, actor: Option<String>, method: &'static str) {
    let action = match outcome {
        "allow" => "auth.allow",
        "deny" => "auth.deny",
        _ => "auth.error",
    };
    let mut details = String::with_capacity(32 + reason.len() + method.len());
    details.push_str("{\"reason\":");
    push_json_string(&mut details, reason);
    details.push_str(",\"method\":");
    push_json_string(&mut details, method);
    details.push('}');
    let event = audit::Event {
        action: action.into(),
        outcome: outcome.into(),
        actor,
        subject: None,
        details,
    };
    let _ = audit::emit(&event);
}

/// Appends `text` as a JSON string.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                out.push_str("\\u00");
                out.push(char::from(b"0123456789abcdef"[(u32::from(c) >> 4) as usize]));
                out.push(char::from(b"0123456789abcdef"[(u32::from(c) & 15) as usize]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Auth {
    /// Verifies the JWT `token` (the route accepts JWTs).
    fn verify_jwt(&mut self, token: &str) -> Result<KeyIdentity, Denial> {
        let (Some(settings), Some(ring)) = (self.settings.jwt.as_ref(), self.ring.as_mut()) else {
            return Err(Denial::Unsupported);
        };
        let parsed = jwt::parse(token, settings.max_token_bytes)?;
        let now_ms = clock::now_ms();
        let cache_key = format!(
            "jwt:{}:{}",
            self.settings.cache_ns,
            sluice_auth_keys::hex(&sha2::Sha256::digest(token.as_bytes()))
        );
        if let Ok(Some(bytes)) = kv::get(&cache_key)
            && let Ok(identity) = serde_json::from_slice::<KeyIdentity>(&bytes)
        {
            identity.usable_at(now_ms)?;
            return Ok(identity);
        }
        ring.refresh(settings, now_ms, false, false);
        if parsed.candidates(ring.keys()).is_empty() {
            ring.refresh(settings, now_ms, true, false);
        }
        let candidates = parsed.candidates(ring.keys());
        if candidates.is_empty() {
            // No key set at all (never fetched, the endpoint down): the token cannot be judged.
            let unverifiable = ring.last_fetch_failed && ring.keys().is_empty();
            return Err(if unverifiable {
                Denial::Unavailable
            } else {
                Denial::UnknownKey
            });
        }
        if !parsed.signed_by(&candidates) {
            return Err(Denial::BadSignature);
        }
        let mut identity = parsed.claims(settings, now_ms / 1000)?;
        let ttl = identity.cache_ttl_ms(now_ms, settings.cache_ttl_s * 1000);
        if ttl > 0
            && let Ok(bytes) = serde_json::to_vec(&identity)
        {
            let _ = kv::set(&cache_key, &bytes, Some(ttl));
        }
        identity.reuse_ms = ttl;
        Ok(identity)
    }

    fn allow(&self, identity: &KeyIdentity, credential_header: &str, method: &str) -> RequestVerdict {
        let h = &self.settings.identity_headers;
        let scopes = identity.scopes.join(" ");
        let key_id = identity.key_id.to_string();
        let mut edits = Edits::new();
        // A `set` replaces every value the client sent under that name, so of the identity
        // headers only the one this verdict does not set (the key id, for a JWT) is removed.
        if method != "api_key" {
            edits = edits.remove(&h.key_id);
        }
        if !self.settings.forward_credential {
            edits = edits.remove(credential_header);
        }
        edits = edits
            .set(&h.subject, &identity.owner)
            .set(&h.scopes, &scopes)
            .set(&h.tier, &identity.tier)
            .context("subject", &identity.owner)
            .context("scopes", &scopes)
            .context("tier", &identity.tier)
            .context("auth_method", method);
        if method == "api_key" {
            edits = edits.set(&h.key_id, &key_id).context("key_id", &key_id);
        }
        edits.into()
    }
}

impl Plugin for Auth {
    const NAME: &'static str = "auth";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders, Hook::Message, Hook::Tick];

    fn new(config: Config) -> Result<Self, String> {
        let mut settings = config.parse::<Settings>()?.validate()?;
        settings.cache_ns = sluice_auth_keys::hex(&sha2::Sha256::digest(config.as_str().as_bytes())[..8]);
        let ring = settings.jwt.as_ref().map(jwks::KeyRing::new).transpose()?;
        Ok(Auth {
            settings,
            ring,
            digests: keys::Digests::default(),
        })
    }

    /// Only the headers a credential may come in: nothing else of the head is read.
    fn reads(&self) -> Option<Reads> {
        Some(Reads::new(
            self.settings.key_headers.iter().cloned(),
            Vec::<String>::new(),
        ))
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let realm = self.settings.realm.clone();
        let (token, header) = match credentials::extract(req, &self.settings.key_headers) {
            Credential::None => {
                record("deny", Denial::Missing.code(), None, "none");
                return answer::deny(Denial::Missing, req, &realm, &[]);
            }
            Credential::Garbage => {
                record("deny", Denial::Malformed.code(), None, "unknown");
                return answer::deny(Denial::Malformed, req, &realm, &[]);
            }
            Credential::Token(token, header) => (token, header.to_string()),
        };
        let (method, checked) = if token.starts_with("sk_") {
            let checked = keys::verify(&self.settings, &mut self.digests, token);
            (
                "api_key",
                checked.map_err(|(d, id)| (d, id.map(|id| format!("key:{id}")))),
            )
        } else {
            ("jwt", self.verify_jwt(token).map_err(|d| (d, None)))
        };
        let actor = |identity: &KeyIdentity| {
            if method == "api_key" {
                ["key:", itoa::Buffer::new().format(identity.key_id)].concat()
            } else {
                ["sub:", identity.owner.as_str()].concat()
            }
        };
        match checked {
            Ok(identity) => {
                let missing = identity.missing_scopes(&self.settings.required_scopes);
                if !missing.is_empty() {
                    record("deny", Denial::InsufficientScope.code(), Some(actor(&identity)), method);
                    return answer::deny(Denial::InsufficientScope, req, &realm, &missing);
                }
                record("allow", "ok", Some(actor(&identity)), method);
                let reuse_ms = identity.reuse_ms.min(self.settings.reuse_ms);
                if reuse_ms > 0 {
                    // The decision depends on the credential headers alone (declared in
                    // `reads`): the host may give it, and this audit event, to the next
                    // requests with the same credential without calling this hook.
                    let _ = head::memo(u32::try_from(reuse_ms).unwrap_or(u32::MAX), head::MemoKey::empty());
                }
                self.allow(&identity, &header, method)
            }
            Err((denial, who)) => {
                let outcome = if denial == Denial::Unavailable { "error" } else { "deny" };
                record(outcome, denial.code(), who, method);
                answer::deny(denial, req, &realm, &[])
            }
        }
    }

    fn on_tick(&mut self) {
        if let (Some(settings), Some(ring)) = (self.settings.jwt.as_ref(), self.ring.as_mut()) {
            ring.refresh(settings, clock::now_ms(), false, true);
        }
    }

    fn on_message(&mut self, channel: &str, message: &[u8]) {
        if channel == self.settings.revocation_channel {
            keys::on_message(&self.settings, message);
        }
    }
}

sluice_plugin_sdk::export_plugin!(Auth);

#[cfg(test)]
mod tests {
    use super::push_json_string;

    #[test]
    fn json_strings_are_escaped_as_serde_json_does() {
        for text in ["ok", "api_key", "a\"b\\c", "tab\there\u{1}", "caf\u{e9}"] {
            let mut out = String::new();
            push_json_string(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap().replace("\\t", "\\u0009"));
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), text);
        }
    }
}
