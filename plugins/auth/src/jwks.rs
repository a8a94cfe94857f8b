//! The keys JWTs are checked with: those in the config, and those fetched from JWKS URLs
//! through the host's `http-client`. A fetched set is shared with the gateway's other
//! instances through `kv` (`jwks:<urls hash>:doc`), so one fetch serves them all. Ticks refetch
//! it in the background once it is four fifths of `jwks_refresh_s` old, so requests find it
//! fresh; a request fetches itself only when the set is older than `jwks_refresh_s` (ticks
//! failing) or a token names an unknown `kid` (at most once per `jwks_refetch_min_s`). One
//! fetch at a time (`…:lock`); a failed fetch keeps the last good set.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use sluice_plugin_sdk::http_client::{self, Request};
use sluice_plugin_sdk::{kv, log};

use crate::jwt_keys::{Alg, VerifyKey};
use crate::settings::JwtSettings;

/// A fetched key set as shared in kv.
#[derive(Serialize, Deserialize)]
struct Doc {
    fetched_at_ms: u64,
    keys: Vec<Value>,
}

/// The keys of one route.
pub struct KeyRing {
    /// The kv key prefix of this URL list's shared state.
    tag: String,
    configured: Vec<VerifyKey>,
    fetched_at_ms: u64,
    /// The configured keys, then the fetched ones.
    all: Vec<VerifyKey>,
    /// Whether the last fetch this instance made or saw failed.
    pub last_fetch_failed: bool,
    /// When this instance last fetched while it had no set (cold fetches skip the shared
    /// rate limit, so they have one of their own: one a second).
    cold_attempt_ms: u64,
}

fn warn(message: &str) {
    log::write(log::Level::Warn, message);
}

impl KeyRing {
    /// The configured keys of `settings`, or why one is unusable.
    pub fn new(settings: &JwtSettings) -> Result<Self, String> {
        let mut configured = Vec::new();
        for key in &settings.hmac_keys {
            let alg = Alg::from_name(&key.alg).ok_or_else(|| format!("jwt.hmac_keys: unknown alg '{}'", key.alg))?;
            let secret = key.secret_bytes().map_err(|e| format!("jwt.hmac_keys: {e}"))?;
            configured.push(VerifyKey::hmac(key.kid.clone(), alg, &secret).map_err(|e| format!("jwt.hmac_keys: {e}"))?);
        }
        for jwk in &settings.keys {
            configured.push(VerifyKey::from_configured_jwk(jwk).map_err(|e| format!("jwt.keys: {e}"))?);
        }
        if configured.is_empty() && settings.jwks_urls.is_empty() {
            return Err("jwt needs hmac_keys, keys or jwks_urls".into());
        }
        let digest = sha2::Sha256::digest(settings.jwks_urls.join("\n").as_bytes());
        Ok(KeyRing {
            tag: format!("jwks:{}", sluice_auth_keys::hex(&digest[..8])),
            all: configured.clone(),
            configured,
            fetched_at_ms: 0,
            last_fetch_failed: false,
            cold_attempt_ms: 0,
        })
    }

    /// Every key, configured first.
    pub fn keys(&self) -> &[VerifyKey] {
        &self.all
    }

    fn adopt(&mut self, doc: &Doc) {
        self.all = self.configured.clone();
        self.all
            .extend(doc.keys.iter().filter_map(|jwk| VerifyKey::from_jwk(jwk, None).ok()));
        self.fetched_at_ms = doc.fetched_at_ms;
    }

    /// Brings the fetched keys up to date at `now_ms` when they are older than the refresh
    /// interval (four fifths of it when `early`: the background refresh), or when
    /// `unknown_kid` (a token named a key this ring lacks).
    pub fn refresh(&mut self, settings: &JwtSettings, now_ms: u64, unknown_kid: bool, early: bool) {
        if settings.jwks_urls.is_empty() {
            return;
        }
        let full_ms = settings.jwks_refresh_s * 1000;
        let refresh_ms = if early { full_ms * 4 / 5 } else { full_ms };
        let fresh = |at: u64| now_ms.saturating_sub(at) < refresh_ms;
        if fresh(self.fetched_at_ms) && !unknown_kid {
            return;
        }
        let (doc_key, lock_key, recent_key) = (
            format!("{}:doc", self.tag),
            format!("{}:lock", self.tag),
            format!("{}:recent", self.tag),
        );
        // Another instance may have fetched already.
        if let Ok(Some(bytes)) = kv::get(&doc_key)
            && let Ok(doc) = serde_json::from_slice::<Doc>(&bytes)
            && doc.fetched_at_ms > self.fetched_at_ms
        {
            self.adopt(&doc);
            self.last_fetch_failed = false;
            if fresh(doc.fetched_at_ms) {
                return;
            }
        }
        // A request on an instance that never had a set cannot wait for someone else's
        // fetch: it fetches itself (only until the first set arrives).
        let cold = self.fetched_at_ms == 0 && !early;
        if cold && now_ms.saturating_sub(self.cold_attempt_ms) < 1000 {
            return;
        }
        // Rate limit: one fetch per interval, whatever asked for it.
        if !cold && matches!(kv::get(&recent_key), Ok(Some(_))) {
            return;
        }
        // Single flight: whoever takes the lock fetches; the others keep what they have.
        let timeout = u64::from(settings.jwks_timeout_ms) * u64::from(settings.jwks_urls.len() as u32) + 1000;
        let took_lock = !matches!(kv::increment(&lock_key, 1, Some(timeout)), Ok(n) if n > 1);
        if !took_lock && !cold {
            return;
        }
        if cold {
            self.cold_attempt_ms = now_ms;
        }
        let _ = kv::set(&recent_key, b"1", Some(settings.jwks_refetch_min_s.max(1) * 1000));
        match fetch(settings) {
            Ok(keys) => {
                let doc = Doc {
                    fetched_at_ms: now_ms,
                    keys,
                };
                if let Ok(bytes) = serde_json::to_vec(&doc) {
                    let _ = kv::set(&doc_key, &bytes, None);
                }
                self.adopt(&doc);
                self.last_fetch_failed = false;
            }
            Err(e) => {
                warn(&format!("JWKS fetch failed; keeping the last good key set: {e}"));
                self.last_fetch_failed = true;
            }
        }
        if took_lock {
            let _ = kv::delete(&lock_key);
        }
    }
}

/// Fetches every JWKS URL; the usable JWKs of all of them, or an error when none answered
/// with a key set.
fn fetch(settings: &JwtSettings) -> Result<Vec<Value>, String> {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    for url in &settings.jwks_urls {
        let request = Request {
            method: "GET".into(),
            url: url.clone(),
            headers: vec![("accept".into(), b"application/json".to_vec())],
            body: Vec::new(),
            timeout_ms: Some(settings.jwks_timeout_ms),
        };
        let response = match http_client::send(&request) {
            Ok(r) if r.status == 200 => r,
            Ok(r) => {
                errors.push(format!("{url}: status {}", r.status));
                continue;
            }
            Err(e) => {
                errors.push(format!("{url}: {e:?}"));
                continue;
            }
        };
        let Some(set) = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|doc| doc.get("keys").and_then(Value::as_array).cloned())
        else {
            errors.push(format!("{url}: not a JWKS document"));
            continue;
        };
        for jwk in set {
            match VerifyKey::from_jwk(&jwk, None) {
                Ok(_) => keys.push(jwk),
                Err(e) => warn(&format!("{url}: a key was skipped: {e}")),
            }
        }
    }
    // A partial answer (one URL failing) or an empty one would drop keys that still sign
    // tokens: keep the last good set instead.
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    if keys.is_empty() {
        return Err("the key sets hold no usable key".into());
    }
    Ok(keys)
}
