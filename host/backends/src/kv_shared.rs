//! The shared level of `kv`: with `[redis]` (and `shared_kv`, the default), values live in
//! Redis under `PREFIX:kv:{plugin}:key`, so every gateway instance sees the same keys, and the
//! in-memory store in front keeps each value for `kv_memory_ms` (the most another instance's
//! write can go unseen). Increments always run in Redis, atomically. Values above a size are
//! stored zstd-compressed; small values are stored as they are, so counters stay integers
//! Redis can INCRBY.

use std::sync::Arc;
use std::time::Duration;

use fred::types::Value as RedisValue;

use super::kv::KvStore;
use crate::redis::{RedisBackend, RedisError};
use sluice_bindings::HostError;

/// Marks a stored value as zstd-compressed.
const COMPRESSED: u8 = 0x01;
/// Marks a stored value whose own first byte is a marker.
const ESCAPED: u8 = 0x00;

/// Adds `delta`, setting the expiry (ARGV[2] ms, or none when empty) only on creation.
const INCREMENT: &str = "local created = redis.call('EXISTS', KEYS[1]) == 0 \
     local v = redis.call('INCRBY', KEYS[1], ARGV[1]) \
     if created and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
     return v";

/// The bytes stored in Redis for `value`.
pub fn encode(value: &[u8], compress_above: usize) -> Vec<u8> {
    if value.len() > compress_above
        && let Ok(packed) = zstd::bulk::compress(value, 3)
    {
        let mut out = Vec::with_capacity(packed.len() + 1);
        out.push(COMPRESSED);
        out.extend_from_slice(&packed);
        return out;
    }
    if matches!(value.first(), Some(&COMPRESSED | &ESCAPED)) {
        let mut out = Vec::with_capacity(value.len() + 1);
        out.push(ESCAPED);
        out.extend_from_slice(value);
        return out;
    }
    value.to_vec()
}

/// The value stored as `stored`.
pub fn decode(stored: &[u8], max: usize) -> Result<Vec<u8>, String> {
    match stored.first() {
        Some(&COMPRESSED) => {
            zstd::bulk::decompress(&stored[1..], max).map_err(|e| format!("a corrupt compressed value: {e}"))
        }
        Some(&ESCAPED) => Ok(stored[1..].to_vec()),
        _ => Ok(stored.to_vec()),
    }
}

/// `kv` over Redis with memory in front.
#[derive(Debug)]
pub struct SharedKv {
    redis: Arc<RedisBackend>,
    memory_for: Duration,
    compress_above: usize,
}

impl SharedKv {
    /// The shared level on `redis`.
    pub fn new(redis: Arc<RedisBackend>) -> Self {
        let settings = redis.settings();
        SharedKv {
            memory_for: Duration::from_millis(settings.kv_memory_ms),
            compress_above: settings.compress_above_bytes,
            redis,
        }
    }

    fn key(&self, plugin: &str, key: &str) -> String {
        format!("{}:kv:{{{plugin}}}:{key}", self.redis.settings().prefix)
    }

    fn error(&self, plugin: &str, e: RedisError) -> HostError {
        let text = format!("kv: {e} (plugin '{plugin}')");
        match e {
            RedisError::Timeout(_) => HostError::Timeout(text),
            RedisError::Unavailable(_) => HostError::Unavailable(text),
            _ => HostError::Other(text),
        }
    }

    /// How long memory may serve a value whose own expiry is `ttl_ms`.
    fn memory_ttl(&self, ttl_ms: Option<u64>) -> Option<u64> {
        let cap = self.memory_for.as_millis() as u64;
        Some(ttl_ms.map_or(cap, |t| t.min(cap)))
    }

    /// The value of `key`: from memory when it was seen lately, else from Redis.
    pub async fn get(&self, memory: &KvStore, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        if let Some(value) = memory.get(plugin, key)? {
            return Ok(Some(value));
        }
        let reply = self
            .redis
            .raw("GET", vec![self.key(plugin, key).into()])
            .await
            .map_err(|e| self.error(plugin, e))?;
        let stored = match reply {
            RedisValue::Null => return Ok(None),
            RedisValue::Bytes(b) => b.to_vec(),
            RedisValue::String(s) => s.as_bytes().to_vec(),
            other => {
                return Err(HostError::Other(format!(
                    "kv: unexpected reply {other:?} (plugin '{plugin}')"
                )));
            }
        };
        let value = decode(&stored, super::kv::MAX_VALUE)
            .map_err(|e| HostError::Other(format!("kv: {e} (plugin '{plugin}')")))?;
        memory.set(plugin, key, value.clone(), self.memory_ttl(None))?;
        Ok(Some(value))
    }

    /// Stores `value` in Redis (with its expiry), then in memory.
    pub async fn set(
        &self,
        memory: &KvStore,
        plugin: &str,
        key: &str,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), HostError> {
        // Memory checks the key and the value's size first.
        memory.set(plugin, key, value.clone(), self.memory_ttl(ttl_ms))?;
        let mut args: Vec<RedisValue> = vec![
            self.key(plugin, key).into(),
            RedisValue::Bytes(encode(&value, self.compress_above).into()),
        ];
        if let Some(ms) = ttl_ms {
            args.push("PX".into());
            args.push((ms.max(1) as i64).into());
        }
        let stored = self.redis.raw("SET", args).await;
        if let Err(e) = stored {
            let _ = memory.delete(plugin, key);
            return Err(self.error(plugin, e));
        }
        Ok(())
    }

    /// Removes `key` from Redis and memory; whether Redis had it.
    pub async fn delete(&self, memory: &KvStore, plugin: &str, key: &str) -> Result<bool, HostError> {
        memory.delete(plugin, key)?;
        let reply = self
            .redis
            .raw("DEL", vec![self.key(plugin, key).into()])
            .await
            .map_err(|e| self.error(plugin, e))?;
        Ok(matches!(reply, RedisValue::Integer(n) if n > 0))
    }

    /// Adds `delta` in Redis, atomically across instances; the new value.
    pub async fn increment(
        &self,
        memory: &KvStore,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> Result<i64, HostError> {
        memory.delete(plugin, key)?;
        let ttl = ttl_ms.map(|t| t.max(1).to_string()).unwrap_or_default();
        let reply = self
            .redis
            .eval_cached(
                "sluice-kv-increment",
                INCREMENT,
                vec![self.key(plugin, key)],
                vec![delta.into(), ttl.into()],
            )
            .await;
        match reply {
            Ok(RedisValue::Integer(n)) => Ok(n),
            Ok(other) => Err(HostError::Other(format!(
                "kv: unexpected reply {other:?} (plugin '{plugin}')"
            ))),
            Err(RedisError::Server(e)) => Err(HostError::Invalid(format!(
                "kv: cannot increment '{key}': {e} (plugin '{plugin}')"
            ))),
            Err(e) => Err(self.error(plugin, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_round_trip_and_counters_stay_plain() {
        assert_eq!(encode(b"42", 1024), b"42", "small values are stored as they are");
        let big = vec![b'a'; 10_000];
        let packed = encode(&big, 1024);
        assert_eq!(packed[0], COMPRESSED);
        assert!(packed.len() < 200, "compressed: {}", packed.len());
        assert_eq!(decode(&packed, 1 << 20).unwrap(), big);
        for tricky in [&[0x00, 1, 2][..], &[0x01][..], &[][..]] {
            assert_eq!(decode(&encode(tricky, 1024), 1 << 20).unwrap(), tricky);
        }
    }
}
