//! The shared level of `cache`: with `[redis] shared_cache` (the default with `[redis]`),
//! responses live in Redis under `PREFIX:cache:KEY` as msgpack (zstd-compressed above a size),
//! with a set per tag, so every instance serves what any instance stored; the in-memory cache
//! in front serves repeats. Invalidations delete in Redis and are published on
//! `PREFIX:cache-invalidations`; every instance drops the same entries from memory when the
//! message arrives, and drops all of memory when its subscription reconnects (a message may
//! have been lost meanwhile).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fred::types::Value as RedisValue;
use serde::{Deserialize, Serialize};

use super::cache::ResponseCache;
use crate::redis::{RedisBackend, RedisError, frame, glob_escape, unframe};
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::cache::CachedResponse;
use sluice_core::time::unix_ms;

/// The invalidation channel (under the Redis prefix).
const CHANNEL: &str = "cache-invalidations";

/// A response as stored in Redis (msgpack).
#[derive(Serialize, Deserialize)]
struct Stored {
    status: u16,
    headers: Vec<(String, serde_bytes::ByteBuf)>,
    body: serde_bytes::ByteBuf,
    stored_at_ms: u64,
    expires_at_ms: u64,
    tags: Vec<String>,
}

/// The bytes stored for `r`: a marker, then msgpack, zstd-compressed above `compress_above`.
pub fn encode(r: &CachedResponse, compress_above: usize) -> Result<Vec<u8>, String> {
    let stored = Stored {
        status: r.status,
        headers: r
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), serde_bytes::ByteBuf::from(v.clone())))
            .collect(),
        body: serde_bytes::ByteBuf::from(r.body.clone()),
        stored_at_ms: r.stored_at_ms,
        expires_at_ms: r.expires_at_ms,
        tags: r.tags.clone(),
    };
    frame(&stored, compress_above)
}

/// The response stored as `bytes`.
pub fn decode(bytes: &[u8]) -> Result<CachedResponse, String> {
    let s: Stored = unframe(bytes, super::cache::MAX_ENTRY + 4096)?;
    Ok(CachedResponse {
        status: s.status,
        headers: s.headers.into_iter().map(|(n, v)| (n, v.into_vec())).collect(),
        body: s.body.into_vec(),
        stored_at_ms: s.stored_at_ms,
        expires_at_ms: s.expires_at_ms,
        tags: s.tags,
    })
}

/// `cache` over Redis with the in-memory cache in front.
#[derive(Debug)]
pub struct SharedCache {
    redis: Arc<RedisBackend>,
    memory: Arc<ResponseCache>,
    /// Bumped by every invalidation, local or announced: a lookup whose Redis read overlapped
    /// one does not put what it read into memory (it may be the entry just invalidated).
    generation: Arc<AtomicU64>,
}

impl SharedCache {
    /// The shared level on `redis` in front of `memory`; subscribes to invalidations (and
    /// keeps the subscription across reconnects). Must be called on a tokio runtime.
    pub fn start(redis: Arc<RedisBackend>, memory: Arc<ResponseCache>) -> Arc<Self> {
        let channel = redis.host_channel(CHANNEL);
        let generation = Arc::new(AtomicU64::new(0));
        let (on_message, on_reconnect) = (memory.clone(), memory.clone());
        let (bump_message, bump_reconnect) = (generation.clone(), generation.clone());
        redis.subscribe(
            &channel,
            move |message| {
                bump_message.fetch_add(1, Ordering::SeqCst);
                apply(&on_message, &message);
            },
            move || {
                bump_reconnect.fetch_add(1, Ordering::SeqCst);
                on_reconnect.invalidate_where(|_, _| true);
            },
        );
        Arc::new(SharedCache {
            redis,
            memory,
            generation,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:cache:{key}", self.redis.settings().prefix)
    }

    fn tag_key(&self, tag: &str) -> String {
        format!("{}:cache-tag:{tag}", self.redis.settings().prefix)
    }

    fn error(e: RedisError) -> HostError {
        let text = format!("cache: {e}");
        match e {
            RedisError::Timeout(_) => HostError::Timeout(text),
            RedisError::Unavailable(_) => HostError::Unavailable(text),
            _ => HostError::Other(text),
        }
    }

    /// The fresh response under `key`: from memory, else from Redis (then kept in memory).
    pub async fn lookup(&self, key: &str) -> Result<Option<CachedResponse>, HostError> {
        if let Some(hit) = self.memory.lookup(key) {
            return Ok(Some((*hit).clone()));
        }
        let before = self.generation.load(Ordering::SeqCst);
        let reply = self
            .redis
            .raw("GET", vec![self.key(key).into()])
            .await
            .map_err(Self::error)?;
        let RedisValue::Bytes(bytes) = reply else {
            return Ok(None);
        };
        let response =
            decode(&bytes).map_err(|e| HostError::Other(format!("cache: a corrupt entry under '{key}': {e}")))?;
        if response.expires_at_ms <= unix_ms() {
            return Ok(None);
        }
        if self.generation.load(Ordering::SeqCst) == before {
            let _ = self.memory.insert(key.to_string(), response.clone());
        }
        Ok(Some(response))
    }

    /// Stores `response` in memory and in Redis until it expires, and under each of its tags.
    pub async fn insert(&self, key: String, response: CachedResponse) -> Result<(), HostError> {
        let ttl_ms = response.expires_at_ms.saturating_sub(unix_ms()).max(1) as i64;
        let bytes = encode(&response, self.redis.settings().compress_above_bytes).map_err(HostError::Other)?;
        let tags = response.tags.clone();
        self.memory.insert(key.clone(), response).map_err(HostError::Invalid)?;
        // One round trip. The tag sets first: should the pipeline fail part way, a tag names
        // an entry that was never stored (harmless), never the reverse. A tag set lives as
        // long as its longest-lived member: an expiry is set when it has none (NX) and
        // lengthened when this member outlives it (GT).
        let mut commands = Vec::with_capacity(3 * tags.len() + 1);
        for tag in tags {
            let tag_key = self.tag_key(&tag);
            commands.push(("SADD", vec![tag_key.clone().into(), key.clone().into()]));
            for condition in ["NX", "GT"] {
                commands.push(("PEXPIRE", vec![tag_key.clone().into(), ttl_ms.into(), condition.into()]));
            }
        }
        commands.push((
            "SET",
            vec![
                self.key(&key).into(),
                RedisValue::Bytes(bytes.into()),
                "PX".into(),
                ttl_ms.into(),
            ],
        ));
        self.redis.raw_pipeline(commands).await.map_err(Self::error)
    }

    async fn announce(&self, message: String) -> Result<(), HostError> {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.redis
            .publish(self.redis.host_channel(CHANNEL), message.into_bytes())
            .await
            .map_err(Self::error)?;
        Ok(())
    }

    /// Removes `key` everywhere; whether any level had it.
    pub async fn invalidate(&self, key: &str) -> Result<bool, HostError> {
        let local = self.memory.invalidate(key);
        let reply = self
            .redis
            .raw("DEL", vec![self.key(key).into()])
            .await
            .map_err(Self::error)?;
        self.announce(format!("k:{key}")).await?;
        Ok(local || matches!(reply, RedisValue::Integer(n) if n > 0))
    }

    /// Removes every response whose key starts with `prefix`; how many Redis held (or memory
    /// held, when more).
    pub async fn invalidate_prefix(&self, prefix: &str) -> Result<u64, HostError> {
        let local = self.memory.invalidate_where(|k, _| k.starts_with(prefix));
        let pattern = format!("{}*", glob_escape(&self.key(prefix)));
        let keys = self.redis.scan_keys(&pattern).await.map_err(Self::error)?;
        let removed = self
            .delete_each(keys.into_iter().map(RedisValue::from).collect())
            .await?;
        self.announce(format!("p:{prefix}")).await?;
        Ok(removed.max(local))
    }

    /// Deletes `keys` one DEL each (in a Cluster they may live on different nodes, and one
    /// multi-key DEL would fail with CROSSSLOT); how many existed.
    async fn delete_each(&self, keys: Vec<RedisValue>) -> Result<u64, HostError> {
        let mut removed = 0;
        for key in keys {
            let reply = self.redis.raw("DEL", vec![key]).await.map_err(Self::error)?;
            removed += reply.as_u64().unwrap_or(0);
        }
        Ok(removed)
    }

    /// Removes every response carrying `tag`; how many Redis held (or memory held, when more).
    pub async fn invalidate_tag(&self, tag: &str) -> Result<u64, HostError> {
        let local = self.memory.invalidate_where(|_, r| r.tags.iter().any(|t| t == tag));
        let tag_key = self.tag_key(tag);
        let members = self
            .redis
            .raw("SMEMBERS", vec![tag_key.clone().into()])
            .await
            .map_err(Self::error)?;
        let mut keys: Vec<RedisValue> = match members {
            RedisValue::Array(items) => items
                .into_iter()
                .filter_map(|k| k.as_string())
                .map(|k| self.key(&k).into())
                .collect(),
            _ => Vec::new(),
        };
        keys.push(tag_key.clone().into());
        let removed = self.delete_each(keys).await?.saturating_sub(1);
        self.announce(format!("t:{tag}")).await?;
        Ok(removed.max(local))
    }
}

/// Applies an invalidation message (`k:KEY`, `p:PREFIX` or `t:TAG`) to memory.
fn apply(memory: &ResponseCache, message: &str) {
    match message.split_once(':') {
        Some(("k", key)) => {
            memory.invalidate(key);
        }
        Some(("p", prefix)) => {
            memory.invalidate_where(|k, _| k.starts_with(prefix));
        }
        Some(("t", tag)) => {
            memory.invalidate_where(|_, r| r.tags.iter().any(|t| t == tag));
        }
        _ => tracing::warn!(message, "an invalidation message of unknown form was ignored"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_msgpack_and_zstd() {
        let r = CachedResponse {
            status: 200,
            headers: vec![("content-type".into(), b"text/html".to_vec())],
            body: vec![b'x'; 50_000],
            stored_at_ms: 1,
            expires_at_ms: 2,
            tags: vec!["t".into()],
        };
        let packed = encode(&r, 1024).unwrap();
        assert_eq!(packed[0], 0x01, "compressed");
        assert!(packed.len() < 1000, "{}", packed.len());
        let back = decode(&packed).unwrap();
        assert_eq!(
            (back.status, back.body.len(), back.tags),
            (200, 50_000, vec!["t".to_string()])
        );
        let small = encode(
            &CachedResponse {
                body: b"hi".to_vec(),
                ..r
            },
            1024,
        )
        .unwrap();
        assert_eq!(small[0], 0x00, "plain");
        assert_eq!(decode(&small).unwrap().body, b"hi");
        assert_eq!(glob_escape("a*b?[c]"), "a\\*b\\?\\[c\\]");
    }
}
