//! JWT checks: the compact form, a JOSE header with a supported algorithm and no embedded key
//! material (`jwk`, `jku`, `x5u`, `x5c`) or critical extensions, a signature by a configured
//! key bound to that algorithm, then the claims: `exp`, `nbf` and `iat` against the clock with
//! a skew, `iss` and `aud` against the route's lists, and the route's required claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::decision::{Denial, KeyIdentity};
use crate::jwt_keys::{Alg, VerifyKey};
use crate::settings::JwtSettings;

/// A token whose header parsed: what to verify it with.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The header's `alg`.
    pub alg: Alg,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// `header.payload`, the signed bytes.
    signed: &'a str,
    payload: &'a str,
    signature: Vec<u8>,
}

fn decode(part: &str) -> Result<Vec<u8>, Denial> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Denial::Malformed)
}

/// Splits and checks the header of `token`.
pub fn parse(token: &str, max_bytes: usize) -> Result<Parsed<'_>, Denial> {
    if token.len() > max_bytes {
        return Err(Denial::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_part), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Denial::Malformed);
    };
    let header: Map<String, Value> = serde_json::from_slice(&decode(header_part)?).map_err(|_| Denial::Malformed)?;
    for embedded in ["jwk", "jku", "x5u", "x5c", "crit"] {
        if header.contains_key(embedded) {
            return Err(Denial::BadHeader);
        }
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::from_name)
        .ok_or(Denial::BadHeader)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if kid.len() <= 256 => Some(kid.clone()),
        Some(_) => return Err(Denial::BadHeader),
    };
    let signature = decode(signature)?;
    let signed = &token[..header_part.len() + 1 + payload.len()];
    Ok(Parsed {
        alg,
        kid,
        signed,
        payload,
        signature,
    })
}

impl Parsed<'_> {
    /// The keys that may verify this token: its `kid`'s (or every key, without a kid) whose
    /// algorithm is the token's.
    pub fn candidates<'k>(&self, keys: &'k [VerifyKey]) -> Vec<&'k VerifyKey> {
        keys.iter()
            .filter(|k| k.alg == self.alg && (self.kid.is_none() || k.kid == self.kid))
            .collect()
    }

    /// Whether one of `candidates` signed the token.
    pub fn signed_by(&self, candidates: &[&VerifyKey]) -> bool {
        candidates
            .iter()
            .any(|k| k.verify(self.signed.as_bytes(), &self.signature))
    }

    /// The claims, checked at `now_s` against `settings`; the identity they carry.
    pub fn claims(&self, settings: &JwtSettings, now_s: u64) -> Result<KeyIdentity, Denial> {
        let claims: Map<String, Value> =
            serde_json::from_slice(&decode(self.payload)?).map_err(|_| Denial::Malformed)?;
        check_claims(&claims, settings, now_s)?;
        // The identity goes into headers: a subject must be there, and nothing may carry
        // control characters.
        let subject = claims
            .get(&settings.subject_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && clean(s))
            .ok_or(Denial::BadClaims)?;
        let scopes: Vec<String> = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        };
        if !scopes.iter().all(|s: &String| clean(s)) {
            return Err(Denial::BadClaims);
        }
        let tier = claims
            .get(&settings.tier_claim)
            .and_then(Value::as_str)
            .unwrap_or("free");
        if !clean(tier) {
            return Err(Denial::BadClaims);
        }
        Ok(KeyIdentity {
            key_id: 0,
            owner: subject.to_string(),
            scopes,
            tier: tier.to_string(),
            expires_at_ms: number(&claims, "exp")?.map(|exp| exp.saturating_mul(1000)),
            grace_until_ms: None,
            reuse_ms: 0,
        })
    }
}

/// Whether `s` is short and free of control characters (it goes into a header).
fn clean(s: &str) -> bool {
    s.len() <= 1024 && !s.chars().any(char::is_control)
}

/// A numeric date claim: absent, or a non-negative number of seconds (anything else is
/// invalid).
fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Denial> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(|n| Some(n as u64))
            .ok_or(Denial::BadClaims),
    }
}

fn check_claims(claims: &Map<String, Value>, settings: &JwtSettings, now: u64) -> Result<(), Denial> {
    for name in &settings.required_claims {
        if !claims.contains_key(name) {
            return Err(Denial::BadClaims);
        }
    }
    let skew = settings.skew_s;
    if number(claims, "exp")?.is_some_and(|exp| exp.saturating_add(skew) <= now) {
        return Err(Denial::Expired);
    }
    if number(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(Denial::NotYetValid);
    }
    if number(claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(Denial::NotYetValid);
    }
    if !settings.issuers.is_empty() {
        let iss = claims.get("iss").and_then(Value::as_str);
        if !iss.is_some_and(|i| settings.issuers.iter().any(|want| want == i)) {
            return Err(Denial::BadClaims);
        }
    }
    if !settings.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => settings.audiences.contains(a),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .any(|a| settings.audiences.iter().any(|w| w == a)),
            _ => false,
        };
        if !ok {
            return Err(Denial::BadClaims);
        }
    }
    Ok(())
}
