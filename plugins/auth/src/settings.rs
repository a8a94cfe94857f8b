//! The plugin's config (the route's `config` table, as JSON). Every key is described in
//! `plugins/auth/README.md`.

use serde::Deserialize;

/// The shortest HMAC secret accepted, in bytes.
const MIN_SECRET: usize = 16;

/// Where the authenticated identity goes upstream. Incoming copies are always removed first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeaders {
    /// The subject (a key's owner).
    pub subject: String,
    /// The granted scopes, space-separated.
    pub scopes: String,
    /// The caller's tier.
    pub tier: String,
    /// The API key's id.
    pub key_id: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            subject: "x-auth-subject".into(),
            scopes: "x-auth-scopes".into(),
            tier: "x-auth-tier".into(),
            key_id: "x-auth-key-id".into(),
        }
    }
}

impl IdentityHeaders {
    /// Every configured header name.
    pub fn all(&self) -> [&str; 4] {
        [&self.subject, &self.scopes, &self.tier, &self.key_id]
    }
}

/// A key defined in the config instead of Postgres (for gateways without Postgres, and for
/// bootstrap keys): its keyed hash, never the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticKey {
    /// HMAC-SHA256(secret, key) in hex, as `sluice keys new-static` prints it.
    pub hash: String,
    /// An id for the audit log and the key-id header (use negative numbers to keep clear of
    /// `api_keys` ids).
    pub id: i64,
    /// The owner (the subject passed on).
    pub owner: String,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The tier.
    #[serde(default = "default_tier")]
    pub tier: String,
}

fn default_tier() -> String {
    "free".into()
}

/// An HMAC secret for JWTs, bound to one algorithm.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacKey {
    /// The `kid` tokens name it by; a token without a kid is tried against every key of its
    /// algorithm.
    #[serde(default)]
    pub kid: Option<String>,
    /// `HS256`, `HS384` or `HS512`.
    pub alg: String,
    /// The secret as text (at least 32 bytes); use `${env:NAME}`. Exactly one of `secret` and
    /// `secret_b64`.
    #[serde(default)]
    pub secret: Option<String>,
    /// The secret as base64url (RFC 4648 §5, padding optional): binary secrets, as key
    /// generators make them.
    #[serde(default)]
    pub secret_b64: Option<String>,
}

impl HmacKey {
    /// The secret's bytes, or why the key names none, both, or bad base64url.
    pub fn secret_bytes(&self) -> Result<Vec<u8>, String> {
        use base64::Engine;
        match (&self.secret, &self.secret_b64) {
            (Some(text), None) => Ok(text.as_bytes().to_vec()),
            (None, Some(b64)) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64.trim_end_matches('='))
                .map_err(|e| format!("secret_b64 is not base64url: {e}")),
            (Some(_), Some(_)) => Err("give the secret once: secret or secret_b64, not both".into()),
            (None, None) => Err("the key has no secret (secret or secret_b64)".into()),
        }
    }
}

/// How JWTs are verified on a route. Absent: JWTs are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// HMAC secrets.
    #[serde(default)]
    pub hmac_keys: Vec<HmacKey>,
    /// Public keys as JWK objects.
    #[serde(default)]
    pub keys: Vec<serde_json::Value>,
    /// JWKS documents to fetch public keys from (their hosts must be in `grants.http`).
    #[serde(default)]
    pub jwks_urls: Vec<String>,
    /// How old a fetched key set may get before it is fetched again, in s. Default 300.
    #[serde(default = "default_jwks_refresh_s")]
    pub jwks_refresh_s: u64,
    /// The least time between fetches caused by unknown `kid`s, in s. Default 30.
    #[serde(default = "default_jwks_refetch_min_s")]
    pub jwks_refetch_min_s: u64,
    /// A JWKS fetch's budget, in ms. Default 2000.
    #[serde(default = "default_jwks_timeout_ms")]
    pub jwks_timeout_ms: u32,
    /// Accepted issuers (`iss`); empty: any.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted audiences (`aud` must name one); empty: any.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in s. Default 60.
    #[serde(default = "default_skew_s")]
    pub skew_s: u64,
    /// Claims a token must carry. Default `["exp"]`.
    #[serde(default = "default_required_claims")]
    pub required_claims: Vec<String>,
    /// The claim holding the subject. Default `sub`.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The claim holding the tier. Default `tier`.
    #[serde(default = "default_tier_claim")]
    pub tier_claim: String,
    /// How long a verified token's decision is cached, in s (never past its `exp`). Default
    /// 1800.
    #[serde(default = "default_jwt_cache_ttl_s")]
    pub cache_ttl_s: u64,
    /// The longest token accepted, in bytes. Default 8192.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
}

fn default_jwks_refresh_s() -> u64 {
    300
}
fn default_jwks_refetch_min_s() -> u64 {
    30
}
fn default_jwks_timeout_ms() -> u32 {
    2000
}
fn default_skew_s() -> u64 {
    60
}
fn default_required_claims() -> Vec<String> {
    vec!["exp".into()]
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn default_tier_claim() -> String {
    "tier".into()
}
fn default_jwt_cache_ttl_s() -> u64 {
    1800
}
fn default_max_token_bytes() -> usize {
    8192
}

/// The auth plugin's settings for one route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The HMAC secret API keys are hashed with (at least 16 bytes); use `${env:NAME}`.
    pub secret: String,
    /// Request headers a credential is taken from, in order: `x-api-key` (the key itself) and
    /// `authorization` (`Bearer <key>`).
    #[serde(default = "default_key_headers")]
    pub key_headers: Vec<String>,
    /// The `[postgres.statements]` name that looks a key up by its hash; `""`: keys are only
    /// the `static_keys` (no Postgres).
    #[serde(default = "default_lookup")]
    pub lookup_statement: String,
    /// The statement that records a key's use; `""`: not recorded.
    #[serde(default = "default_touch")]
    pub touch_statement: String,
    /// How long an API-key decision is cached, in seconds (never past the key's expiry or
    /// grace end). Default 1200 (20 min).
    #[serde(default = "default_key_cache_ttl_s")]
    pub key_cache_ttl_s: u64,
    /// How long the host may reuse an allowed decision just made for the same credential
    /// (`head.memo`), in ms, at most as long as it is cached; 0: never. Default 1000: short,
    /// so that an instance that missed a revocation message still sees the revocation mark
    /// another instance left in the shared cache within a second, as without reuse.
    #[serde(default = "default_reuse_ms")]
    pub reuse_ms: u64,
    /// Scopes a caller must hold for this route (all of them).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Where the identity goes upstream.
    #[serde(default)]
    pub identity_headers: IdentityHeaders,
    /// The Redis channel revocations arrive on (the grant must subscribe to it).
    #[serde(default = "default_revocation_channel")]
    pub revocation_channel: String,
    /// The realm in `WWW-Authenticate`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Whether the header the credential came in goes on to the upstream. Default false: the
    /// upstream gets the identity headers, not the secret.
    #[serde(default)]
    pub forward_credential: bool,
    /// How JWTs are verified; absent: only API keys are accepted.
    #[serde(default)]
    pub jwt: Option<JwtSettings>,
    /// Keys defined here rather than in Postgres; checked after the revocation marks, before
    /// the cache and Postgres.
    #[serde(default)]
    pub static_keys: Vec<StaticKey>,
    /// A digest of this route's whole auth config: cached decisions are kept apart per config,
    /// so a decision made under one route's keys, issuers or audiences never serves another.
    #[serde(skip)]
    pub cache_ns: String,
}

/// The longest cache lifetime accepted, in seconds (a day).
const MAX_TTL_S: u64 = 86_400;
/// The longest reuse of a decision by the host, in ms (an hour, the host's own cap).
const MAX_REUSE_MS: u64 = 3_600_000;

fn default_key_headers() -> Vec<String> {
    vec!["x-api-key".into(), "authorization".into()]
}
fn default_lookup() -> String {
    "auth_lookup_key".into()
}
fn default_touch() -> String {
    "auth_touch_key".into()
}
fn default_key_cache_ttl_s() -> u64 {
    1200
}
fn default_reuse_ms() -> u64 {
    1000
}
fn default_revocation_channel() -> String {
    "auth-revocations".into()
}
fn default_realm() -> String {
    "sluice".into()
}

impl Settings {
    /// Checks what serde cannot: the secret's length, names that must be header names.
    pub fn validate(mut self) -> Result<Self, String> {
        if self.secret.len() < MIN_SECRET {
            return Err(format!(
                "secret must be at least {MIN_SECRET} bytes (it is {}); set it from the environment with \"${{env:NAME}}\"",
                self.secret.len()
            ));
        }
        if self.key_headers.is_empty() {
            return Err("key_headers must name at least one header".into());
        }
        let identity = self.identity_headers.all();
        for name in self.key_headers.iter().map(String::as_str).chain(identity) {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!("'{name}' is not a lower-case header name"));
            }
        }
        if self.key_cache_ttl_s > MAX_TTL_S {
            return Err(format!("key_cache_ttl_s may be at most {MAX_TTL_S}"));
        }
        if self.reuse_ms > MAX_REUSE_MS {
            return Err(format!("reuse_ms may be at most {MAX_REUSE_MS} (an hour)"));
        }
        if let Some(jwt) = &self.jwt
            && [jwt.cache_ttl_s, jwt.jwks_refresh_s, jwt.jwks_refetch_min_s, jwt.skew_s]
                .iter()
                .any(|v| *v > MAX_TTL_S)
        {
            return Err(format!(
                "jwt.cache_ttl_s, jwks_refresh_s, jwks_refetch_min_s and skew_s may be at most {MAX_TTL_S}"
            ));
        }
        for key in &mut self.static_keys {
            if key.hash.len() != 64 || !key.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("static key {}: hash must be 64 hex digits", key.id));
            }
            // Compared with lower-case hex on every request.
            key.hash.make_ascii_lowercase();
        }
        if self.realm.contains(['"', '\\']) || self.realm.chars().any(char::is_control) {
            return Err("realm may not contain quotes, backslashes or control characters".into());
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::HmacKey;

    fn key(secret: Option<&str>, secret_b64: Option<&str>) -> HmacKey {
        HmacKey {
            kid: None,
            alg: "HS256".into(),
            secret: secret.map(str::to_string),
            secret_b64: secret_b64.map(str::to_string),
        }
    }

    #[test]
    fn a_secret_is_text_or_base64url_and_given_once() {
        assert_eq!(key(Some("text"), None).secret_bytes().unwrap(), b"text");
        assert_eq!(key(None, Some("AP8_-g")).secret_bytes().unwrap(), [0, 255, 63, 250]);
        assert_eq!(key(None, Some("AP8_-g==")).secret_bytes().unwrap(), [0, 255, 63, 250]);
        assert!(
            key(None, Some("AP8/+g")).secret_bytes().is_err(),
            "standard base64 is not base64url"
        );
        assert!(key(Some("a"), Some("YQ")).secret_bytes().is_err());
        assert!(key(None, None).secret_bytes().is_err());
    }

    #[test]
    fn decisions_are_reused_for_a_second_unless_configured_and_an_hour_at_most() {
        let parse = |extra: &str| {
            serde_json::from_str::<super::Settings>(&format!(r#"{{"secret":"0123456789abcdef"{extra}}}"#))
                .unwrap()
                .validate()
        };
        assert_eq!(parse("").unwrap().reuse_ms, 1000);
        assert_eq!(parse(r#","reuse_ms":0"#).unwrap().reuse_ms, 0);
        assert!(parse(r#","reuse_ms":3600001"#).unwrap_err().contains("reuse_ms"));
    }
}
