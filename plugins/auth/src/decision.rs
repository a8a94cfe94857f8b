//! What a key lookup decided, as cached between requests, and the checks every use repeats
//! (a cached decision is re-checked against the clock, so an expiry or the end of a rotation
//! grace is honoured even while cached).

use serde::{Deserialize, Serialize};

/// A valid API key's identity and lifetime, as stored in the decision cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyIdentity {
    /// `api_keys.id`.
    pub key_id: i64,
    /// The key's owner: the subject passed on.
    pub owner: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The caller's tier (rate limits key on it).
    pub tier: String,
    /// When the key expires, in ms since the epoch.
    pub expires_at_ms: Option<u64>,
    /// When a rotated-out key stops working, in ms since the epoch.
    pub grace_until_ms: Option<u64>,
    /// How long (ms) the decision this request got may be reused by the host for the same
    /// credential (`head.memo`, further capped by `reuse_ms`): as long as it may be cached
    /// when it was just made (a static key, a fresh lookup or verification), 0 when it came
    /// from the cache (its age is not known). Never cached itself.
    #[serde(skip)]
    pub reuse_ms: u64,
}

/// Why a request is not let through. The code goes to the audit log; callers only ever learn
/// the class (401, 403 or 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No credential in any configured header.
    Missing,
    /// Not a well-formed key (prefix, length, characters).
    Malformed,
    /// The check characters do not match.
    BadChecksum,
    /// No key with this hash.
    Unknown,
    /// The key was revoked.
    Revoked,
    /// The key expired.
    Expired,
    /// The key was rotated and its grace period is over.
    RotatedOut,
    /// A credential of a kind this route does not accept (a JWT where none is configured).
    Unsupported,
    /// A JWT header naming no supported algorithm, or carrying key material or extensions.
    BadHeader,
    /// A JWT whose `kid` names no known key, or no key for its algorithm.
    UnknownKey,
    /// A JWT whose signature does not verify.
    BadSignature,
    /// A JWT that is not valid yet (`nbf` or `iat` in the future beyond the skew).
    NotYetValid,
    /// A JWT whose claims fail the route's checks (`iss`, `aud`, required claims, bad types).
    BadClaims,
    /// The key is valid but lacks a required scope.
    InsufficientScope,
    /// The key store could not be asked (Postgres down): 503, never 401.
    Unavailable,
}

impl Denial {
    /// The reason code in the audit log.
    pub fn code(self) -> &'static str {
        match self {
            Denial::Missing => "missing_credentials",
            Denial::Malformed => "malformed_key",
            Denial::BadChecksum => "bad_checksum",
            Denial::Unknown => "unknown_key",
            Denial::Revoked => "revoked",
            Denial::Expired => "expired",
            Denial::RotatedOut => "rotated_out",
            Denial::Unsupported => "unsupported_credential",
            Denial::BadHeader => "bad_token_header",
            Denial::UnknownKey => "unknown_signing_key",
            Denial::BadSignature => "bad_signature",
            Denial::NotYetValid => "not_yet_valid",
            Denial::BadClaims => "bad_claims",
            Denial::InsufficientScope => "insufficient_scope",
            Denial::Unavailable => "key_store_unavailable",
        }
    }
}

impl KeyIdentity {
    /// Whether the key may be used at `now_ms`.
    pub fn usable_at(&self, now_ms: u64) -> Result<(), Denial> {
        if self.expires_at_ms.is_some_and(|t| t <= now_ms) {
            return Err(Denial::Expired);
        }
        if self.grace_until_ms.is_some_and(|t| t <= now_ms) {
            return Err(Denial::RotatedOut);
        }
        Ok(())
    }

    /// How long (ms) the decision may be cached at `now_ms`: `max_ms`, but never past the
    /// expiry or grace end.
    pub fn cache_ttl_ms(&self, now_ms: u64, max_ms: u64) -> u64 {
        [self.expires_at_ms, self.grace_until_ms]
            .into_iter()
            .flatten()
            .map(|t| t.saturating_sub(now_ms))
            .fold(max_ms, u64::min)
    }

    /// The required scopes the key lacks, space-separated (empty: none lacking).
    pub fn missing_scopes(&self, required: &[String]) -> Vec<String> {
        required.iter().filter(|s| !self.scopes.contains(s)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyIdentity {
        KeyIdentity {
            key_id: 7,
            owner: "team-a".into(),
            scopes: vec!["read".into(), "write".into()],
            tier: "pro".into(),
            expires_at_ms: Some(10_000),
            grace_until_ms: None,
            reuse_ms: 0,
        }
    }

    #[test]
    fn lifetimes_and_scopes_are_checked_on_every_use() {
        let mut k = key();
        assert_eq!(k.usable_at(9_999), Ok(()));
        assert_eq!(k.usable_at(10_000), Err(Denial::Expired));
        k.grace_until_ms = Some(5_000);
        assert_eq!(k.usable_at(5_000), Err(Denial::RotatedOut));
        assert_eq!(k.cache_ttl_ms(4_000, 1_200_000), 1_000);
        k.grace_until_ms = None;
        k.expires_at_ms = None;
        assert_eq!(k.cache_ttl_ms(4_000, 1_200_000), 1_200_000);
        assert!(k.missing_scopes(&["read".into()]).is_empty());
        assert_eq!(k.missing_scopes(&["admin".into(), "read".into()]), ["admin"]);
    }
}
