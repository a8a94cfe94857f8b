//! API-key verification: the format and check characters first (no lookup for a typo), then
//! the keyed hash against the revocation marks and the decision cache (`kv`: memory, shared
//! through Redis when the gateway has it), and only then Postgres. Revocation messages drop
//! the cached decision and leave a mark, so a lookup racing the revocation cannot bring the
//! old decision back.

use std::rc::Rc;

use sluice_auth_keys::{KeyError, constant_time_eq, hash, hex, parse};
use sluice_plugin_sdk::postgres::{self, PgValue, Rows};
use sluice_plugin_sdk::{clock, kv};

use crate::decision::{Denial, KeyIdentity};
use crate::settings::Settings;

/// The outcome of checking one key.
pub type Checked = Result<KeyIdentity, (Denial, Option<i64>)>;

fn cache_key(settings: &Settings, hash_hex: &str) -> String {
    format!("key:{}:{hash_hex}", settings.cache_ns)
}

/// Set by a `refresh` message for a short while: lookups then are not cached, so one that
/// raced the rotation cannot cache the key without its grace end.
fn refreshing_key(hash_hex: &str) -> String {
    format!("refreshing:{hash_hex}")
}

/// How long revocation and refresh marks outlive the cache lifetime (a lookup in flight when
/// the message arrived, at most the statement's budget).
const MARK_SLACK_MS: u64 = 30_000;

fn revoked_key(hash_hex: &str) -> String {
    format!("revoked:{hash_hex}")
}

/// A key's keyed hash, raw and as hex (the form the revocation marks and the cache use).
pub struct KeyDigest {
    /// HMAC-SHA256 of the key under the route's secret.
    pub bytes: [u8; 32],
    /// `bytes` as lower-case hex.
    pub hex: String,
}

/// The keyed hashes of the keys this instance saw last, so a caller's key is hashed once per
/// instance instead of on every request (the HMAC was most of the plugin's own work on the
/// static and cached paths). A pure function of the key and the route's secret, which an
/// instance never changes, so nothing here can go stale; bounded, emptied when full.
#[derive(Default)]
pub struct Digests(std::collections::HashMap<String, Rc<KeyDigest>>);

/// The most keys [`Digests`] holds.
const MAX_DIGESTS: usize = 1024;

impl Digests {
    /// The keyed hash of `key` under `secret`, computed when this instance has not seen it.
    pub fn of(&mut self, secret: &[u8], key: &str) -> Rc<KeyDigest> {
        // One lookup on a hit (the common case): the key is hashed and compared once.
        if let Some(digest) = self.0.get(key) {
            return digest.clone();
        }
        if self.0.len() >= MAX_DIGESTS {
            self.0.clear();
        }
        let bytes = hash(secret, key);
        let digest = Rc::new(KeyDigest {
            bytes,
            hex: hex(&bytes),
        });
        self.0.insert(key.to_string(), digest.clone());
        digest
    }
}

/// Verifies the API key `key`; on denial, also the key id when one was found.
pub fn verify(settings: &Settings, digests: &mut Digests, key: &str) -> Checked {
    parse(key).map_err(|e| {
        let denial = if e == KeyError::Checksum {
            Denial::BadChecksum
        } else {
            Denial::Malformed
        };
        (denial, None)
    })?;
    let key_digest = digests.of(settings.secret.as_bytes(), key);
    let (digest, digest_hex) = (&key_digest.bytes, &key_digest.hex);
    if matches!(kv::get(&revoked_key(digest_hex)), Ok(Some(_))) {
        return Err((Denial::Revoked, None));
    }
    // Every static key is compared (in constant time), whichever matches.
    let mut found = None;
    for candidate in &settings.static_keys {
        if constant_time_eq(candidate.hash.as_bytes(), digest_hex.as_bytes()) {
            found = Some(candidate);
        }
    }
    if let Some(k) = found {
        return Ok(KeyIdentity {
            key_id: k.id,
            owner: k.owner.clone(),
            scopes: k.scopes.clone(),
            tier: k.tier.clone(),
            expires_at_ms: None,
            grace_until_ms: None,
            // Configured: the decision holds until the config changes or a revocation arrives.
            reuse_ms: settings.key_cache_ttl_s * 1000,
        });
    }
    // Read only past the static keys: a static key's decision needs no clock.
    let now = clock::now_ms();
    if let Ok(Some(bytes)) = kv::get(&cache_key(settings, digest_hex))
        && let Ok(identity) = serde_json::from_slice::<KeyIdentity>(&bytes)
    {
        return identity
            .usable_at(now)
            .map(|()| identity.clone())
            .map_err(|d| (d, Some(identity.key_id)));
    }
    let mut identity = lookup(settings, digest, now)?;
    let ttl = identity.cache_ttl_ms(now, settings.key_cache_ttl_s * 1000);
    let refreshing = matches!(kv::get(&refreshing_key(digest_hex)), Ok(Some(_)));
    if ttl > 0
        && !refreshing
        && let Ok(bytes) = serde_json::to_vec(&identity)
    {
        // A cache that cannot be written costs a lookup next time, nothing more.
        let _ = kv::set(&cache_key(settings, digest_hex), &bytes, Some(ttl));
        identity.reuse_ms = ttl;
    }
    if !settings.touch_statement.is_empty() {
        let _ = postgres::execute(&settings.touch_statement, &[PgValue::Int(identity.key_id)]);
    }
    Ok(identity)
}

/// Looks the key up by its hash in Postgres.
fn lookup(settings: &Settings, digest: &[u8; 32], now_ms: u64) -> Checked {
    if settings.lookup_statement.is_empty() {
        return Err((Denial::Unknown, None));
    }
    let rows = match postgres::query(&settings.lookup_statement, &[PgValue::Bytes(digest.to_vec())]) {
        Ok(rows) => rows,
        Err(e) if e.is_transient() => return Err((Denial::Unavailable, None)),
        Err(other) => {
            sluice_plugin_sdk::log::write(
                sluice_plugin_sdk::log::Level::Error,
                &format!("the key lookup statement failed: {other:?}"),
            );
            return Err((Denial::Unavailable, None));
        }
    };
    let Some(row) = Row::first(&rows) else {
        return Err((Denial::Unknown, None));
    };
    let key_id = row.int("id").ok_or((Denial::Unavailable, None))?;
    // The index found the row by this hash; compare anyway, in constant time.
    if !row
        .bytes("key_hash")
        .is_some_and(|stored| constant_time_eq(stored, digest))
    {
        return Err((Denial::Unknown, None));
    }
    // The lifetime columns must be there (NULL or a time): a statement that lost one must
    // not read as "never revoked, never expires".
    for column in ["revoked_at", "expires_at", "grace_until", "owner", "scopes", "tier"] {
        if !row.has(column) {
            return Err((Denial::Unavailable, Some(key_id)));
        }
    }
    if !row.is_null("revoked_at") {
        return Err((Denial::Revoked, Some(key_id)));
    }
    let identity = KeyIdentity {
        key_id,
        owner: row.text("owner").unwrap_or_default().to_string(),
        scopes: row
            .text("scopes")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        tier: row.text("tier").unwrap_or("free").to_string(),
        expires_at_ms: row.time_ms("expires_at"),
        grace_until_ms: row.time_ms("grace_until"),
        reuse_ms: 0,
    };
    identity.usable_at(now_ms).map_err(|d| (d, Some(key_id)))?;
    Ok(identity)
}

/// Handles a message on the revocation channel: `revoke <hash hex>` (the key was revoked:
/// drop the cached decision and mark it, so a racing lookup cannot cache it again) or
/// `refresh <hash hex>` (the key changed, say rotated with a grace end: drop the cached
/// decision so the next use reads it again). Anything else is ignored.
pub fn on_message(settings: &Settings, message: &[u8]) {
    let Ok(text) = std::str::from_utf8(message) else {
        return;
    };
    let Some((verb, digest_hex)) = text.trim().split_once(' ') else {
        return;
    };
    if digest_hex.len() != 64 || !digest_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return;
    }
    let digest_hex = digest_hex.to_ascii_lowercase();
    match verb {
        "revoke" => {
            let ttl = settings.key_cache_ttl_s * 1000 + MARK_SLACK_MS;
            let _ = kv::set(&revoked_key(&digest_hex), b"1", Some(ttl));
            let _ = kv::delete(&cache_key(settings, &digest_hex));
        }
        "refresh" => {
            let _ = kv::set(&refreshing_key(&digest_hex), b"1", Some(MARK_SLACK_MS));
            let _ = kv::delete(&cache_key(settings, &digest_hex));
        }
        _ => {}
    }
}

/// One row of a lookup, read by column name.
struct Row<'a> {
    columns: &'a [String],
    values: &'a [PgValue],
}

impl<'a> Row<'a> {
    fn first(rows: &'a Rows) -> Option<Self> {
        rows.rows.first().map(|values| Row {
            columns: &rows.columns,
            values,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }

    fn is_null(&self, name: &str) -> bool {
        matches!(self.get(name), None | Some(PgValue::Null))
    }

    fn get(&self, name: &str) -> Option<&'a PgValue> {
        let i = self.columns.iter().position(|c| c == name)?;
        self.values.get(i)
    }

    fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            PgValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    fn text(&self, name: &str) -> Option<&'a str> {
        match self.get(name)? {
            PgValue::Text(s) => Some(s),
            _ => None,
        }
    }

    fn bytes(&self, name: &str) -> Option<&'a [u8]> {
        match self.get(name)? {
            PgValue::Bytes(b) => Some(b),
            _ => None,
        }
    }

    fn time_ms(&self, name: &str) -> Option<u64> {
        match self.get(name)? {
            PgValue::TimestampUs(us) => Some((*us).max(0) as u64 / 1000),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_digest_is_the_keyed_hash_and_the_memory_stays_bounded() {
        let mut digests = Digests::default();
        let key = "sk_test_8I9J0eqU4SxFzleP5BTG3F90vy8gUJRZ0Fjj3G";
        let first = digests.of(b"secret", key);
        assert_eq!(first.bytes, hash(b"secret", key));
        assert_eq!(first.hex, hex(&hash(b"secret", key)));
        assert_eq!(
            digests.of(b"secret", key).bytes,
            hash(b"secret", key),
            "the same from memory"
        );
        for i in 0..MAX_DIGESTS + 10 {
            digests.of(b"secret", &format!("key-{i}"));
            assert!(digests.0.len() <= MAX_DIGESTS);
        }
        assert_eq!(digests.of(b"secret", "key-3").bytes, hash(b"secret", "key-3"));
    }
}
