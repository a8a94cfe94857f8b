//! The shared level of the HTTP cache: with `[redis]` (and `shared_cache`, its default), every
//! stored response also lives in Redis, so every instance serves what any instance stored; an
//! entry read from Redis fills the memory level.
//!
//! Layout under the Redis prefix: `http:{key}` the entry (msgpack, zstd above
//! `compress_above_bytes`), `http-vary:{base}` the `Vary` names of a base key,
//! `http-target:{target}` the set of keys answering a request target, `http-taggen:{tag}` a
//! tag's generation. Invalidating a tag bumps its generation: an entry whose tags' generations
//! moved since it was stored is dropped when read (so a lost invalidation message cannot keep
//! it alive in Redis). Every invalidation is also published on `http-invalidations`; each
//! instance drops the same entries from memory, and all of memory when its subscription came
//! back after a disconnect (a message may have been lost meanwhile).

use std::sync::Arc;

use bytes::Bytes;
use fred::types::Value;
use serde::{Deserialize, Serialize};

use super::entry::StoredEntry;
use crate::redis::{RedisBackend, RedisError, frame, glob_escape, unframe};
use sluice_core::time::unix_ms;

/// The longest an entry is kept in Redis: a year, in ms.
const MAX_KEEP_MS: u64 = 365 * 24 * 3600 * 1000;

/// The invalidation channel (under the Redis prefix).
pub const CHANNEL: &str = "http-invalidations";

/// An entry as stored in Redis.
#[derive(Serialize, Deserialize)]
struct Packed {
    status: u16,
    headers: Vec<(String, serde_bytes::ByteBuf)>,
    body: serde_bytes::ByteBuf,
    request_time_ms: u64,
    response_time_ms: u64,
    keep_until_ms: u64,
    tags: Vec<String>,
    /// The generation of each tag when it was stored.
    tag_generations: Vec<u64>,
    target: String,
}

/// The bytes stored for `e` (with its tags' generations): a marker, then msgpack,
/// zstd-compressed above `compress_above` bytes.
pub fn encode(e: &StoredEntry, tag_generations: Vec<u64>, compress_above: usize) -> Result<Vec<u8>, String> {
    let packed = Packed {
        status: e.status,
        headers: e
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), serde_bytes::ByteBuf::from(v.clone())))
            .collect(),
        body: serde_bytes::ByteBuf::from(e.body.to_vec()),
        request_time_ms: e.request_time_ms,
        response_time_ms: e.response_time_ms,
        keep_until_ms: e.keep_until_ms,
        tags: e.tags.clone(),
        tag_generations,
        target: e.target.clone(),
    };
    frame(&packed, compress_above)
}

/// The entry stored as `bytes` and its tags' generations; `max` bounds the unpacked size.
pub fn decode(bytes: &[u8], max: usize) -> Result<(StoredEntry, Vec<u64>), String> {
    let p: Packed = unframe(bytes, max)?;
    let entry = StoredEntry {
        status: p.status,
        headers: p.headers.into_iter().map(|(n, v)| (n, v.into_vec())).collect(),
        body: Bytes::from(p.body.into_vec()),
        request_time_ms: p.request_time_ms,
        response_time_ms: p.response_time_ms,
        keep_until_ms: p.keep_until_ms,
        tags: p.tags,
        target: p.target,
        direct: None,
        built: Default::default(),
    };
    Ok((entry, p.tag_generations))
}

/// The Redis side of the HTTP cache.
#[derive(Debug)]
pub struct Shared {
    redis: Arc<RedisBackend>,
}

impl Shared {
    /// The shared level on `redis`.
    pub fn new(redis: Arc<RedisBackend>) -> Self {
        Shared { redis }
    }

    /// The Redis connection.
    pub fn redis(&self) -> &Arc<RedisBackend> {
        &self.redis
    }

    fn name(&self, kind: &str, rest: &str) -> String {
        format!("{}:{kind}:{rest}", self.redis.settings().prefix)
    }

    /// The `Vary` names stored for `base` (empty when none or unknown).
    pub async fn vary(&self, base: &str) -> Result<Option<Vec<String>>, RedisError> {
        let reply = self.redis.raw("GET", vec![self.name("http-vary", base).into()]).await?;
        Ok(reply
            .as_string()
            .map(|s| s.split('\n').filter(|n| !n.is_empty()).map(str::to_string).collect()))
    }

    /// The entry under `key`, unless it is past its time or a tag of it was invalidated
    /// since it was stored (then it is deleted). The generations of `expected_tags` (the tags
    /// an earlier read found) are read in the same round trip as the entry.
    pub async fn get(
        &self,
        key: &str,
        max: usize,
        expected_tags: &[String],
    ) -> Result<Option<StoredEntry>, RedisError> {
        let name = self.name("http", key);
        let mut commands = vec![("GET", vec![name.clone().into()])];
        commands.extend(
            expected_tags
                .iter()
                .map(|t| ("GET", vec![self.name("http-taggen", t).into()])),
        );
        let mut replies = self.redis.raw_pipeline_values(commands).await?.into_iter();
        let Some(Value::Bytes(bytes)) = replies.next() else {
            return Ok(None);
        };
        let read: Vec<u64> = replies.map(|v| v.as_u64().unwrap_or(0)).collect();
        let (entry, generations) = match decode(&bytes, max) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::warn!(key, "http cache: a corrupt entry in Redis was dropped: {e}");
                self.redis.raw("DEL", vec![name.into()]).await?;
                return Ok(None);
            }
        };
        if entry.keep_until_ms <= unix_ms() {
            return Ok(None);
        }
        let current = if entry.tags.as_slice() == expected_tags {
            read
        } else {
            self.tag_generations(&entry.tags).await?
        };
        if !entry.tags.is_empty() && current != generations {
            self.redis.raw("DEL", vec![name.into()]).await?;
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// The current generation of each of `tags`.
    pub async fn tag_generations(&self, tags: &[String]) -> Result<Vec<u64>, RedisError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let commands = tags
            .iter()
            .map(|t| ("GET", vec![self.name("http-taggen", t).into()]))
            .collect();
        let replies = self.redis.raw_pipeline_values(commands).await?;
        Ok(replies.iter().map(|v| v.as_u64().unwrap_or(0)).collect())
    }

    /// Stores `entry` under `key` (a variant of `base` selected by `vary`) until it expires,
    /// and records it under its request target.
    pub async fn put(&self, base: &str, vary: &[String], key: &str, entry: &StoredEntry) -> Result<(), RedisError> {
        // Redis refuses an expiry past its own clock's range: a year is plenty.
        let keep_ms = entry.keep_until_ms.saturating_sub(unix_ms()).clamp(1, MAX_KEEP_MS) as i64;
        let generations = self.tag_generations(&entry.tags).await?;
        let bytes =
            encode(entry, generations, self.redis.settings().compress_above_bytes).map_err(RedisError::Invalid)?;
        let target = self.name("http-target", &entry.target);
        let mut commands = vec![
            ("SADD", vec![target.clone().into(), key.into()]),
            ("PEXPIRE", vec![target.clone().into(), keep_ms.into(), "NX".into()]),
            ("PEXPIRE", vec![target.into(), keep_ms.into(), "GT".into()]),
            (
                "SET",
                vec![
                    self.name("http-vary", base).into(),
                    vary.join("\n").into(),
                    "PX".into(),
                    keep_ms.into(),
                ],
            ),
        ];
        commands.push((
            "SET",
            vec![
                self.name("http", key).into(),
                Value::Bytes(bytes.into()),
                "PX".into(),
                keep_ms.into(),
            ],
        ));
        self.redis.raw_pipeline(commands).await
    }

    /// Deletes the entry under `key`.
    pub async fn delete(&self, key: &str) -> Result<(), RedisError> {
        self.redis
            .raw("DEL", vec![self.name("http", key).into()])
            .await
            .map(drop)
    }

    /// Deletes the entries stored for the request target `target`; how many there were.
    pub async fn drop_target(&self, target: &str) -> Result<u64, RedisError> {
        self.drop_target_set(self.name("http-target", target)).await
    }

    /// Deletes the entries whose request target starts with `prefix` (a SCAN of the target
    /// sets: fine for an operator's invalidation, not for every request).
    pub async fn drop_prefix(&self, prefix: &str) -> Result<u64, RedisError> {
        let pattern = format!("{}*", glob_escape(&self.name("http-target", prefix)));
        let mut dropped = 0;
        for set in self.redis.scan_keys(&pattern).await? {
            dropped += self.drop_target_set(set).await?;
        }
        Ok(dropped)
    }

    async fn drop_target_set(&self, set: String) -> Result<u64, RedisError> {
        let keys = match self.redis.raw("SMEMBERS", vec![set.clone().into()]).await? {
            Value::Array(items) => items.into_iter().filter_map(|k| k.as_string()).collect(),
            _ => Vec::new(),
        };
        let mut dropped = 0;
        // One DEL each: in a Cluster the keys may live on different nodes.
        for key in keys {
            let reply = self.redis.raw("DEL", vec![self.name("http", &key).into()]).await?;
            dropped += reply.as_u64().unwrap_or(0);
        }
        self.redis.raw("DEL", vec![set.into()]).await?;
        Ok(dropped)
    }

    /// Moves `tag` to a new generation: entries stored with the old one are dropped when read.
    pub async fn bump_tag(&self, tag: &str) -> Result<(), RedisError> {
        self.redis
            .raw("INCR", vec![self.name("http-taggen", tag).into()])
            .await
            .map(drop)
    }

    /// Tells every instance (this one too) to drop `what` (`target\n…`, `prefix\n…`,
    /// `tag\n…`) from memory.
    pub async fn announce(&self, what: String) -> Result<(), RedisError> {
        self.redis
            .publish(self.redis.host_channel(CHANNEL), what.into_bytes())
            .await
            .map(drop)
    }

    /// Claims the fill of `key` for `ms` across instances: None when this caller got it,
    /// else the mark in place (`1` held, `0` the last fill stored nothing, `s` it stored).
    pub async fn claim_fill(&self, key: &str, ms: u64) -> Result<Option<String>, RedisError> {
        // SET NX GET (Redis 7): one round trip sets the claim or reads the one in place.
        let reply = self
            .redis
            .raw(
                "SET",
                vec![
                    self.name("http-fill", key).into(),
                    "1".into(),
                    "NX".into(),
                    "PX".into(),
                    (ms.max(1) as i64).into(),
                    "GET".into(),
                ],
            )
            .await?;
        Ok(match reply {
            Value::Null => None,
            other => Some(other.as_string().unwrap_or_default()),
        })
    }

    /// Takes the claim on `key` for `ms` whatever mark is in place.
    pub async fn force_claim(&self, key: &str, ms: u64) -> Result<(), RedisError> {
        let args = vec![
            self.name("http-fill", key).into(),
            "1".into(),
            "PX".into(),
            (ms.max(1) as i64).into(),
        ];
        self.redis.raw("SET", args).await.map(drop)
    }

    /// Ends the fill claim on `key` with the mark `mark` (`s` stored, `0` not stored) for
    /// `ms`.
    pub async fn release_fill(&self, key: &str, ms: u64, mark: &str) -> Result<(), RedisError> {
        let args = vec![
            self.name("http-fill", key).into(),
            mark.into(),
            "PX".into(),
            (ms.max(1) as i64).into(),
        ];
        self.redis.raw("SET", args).await.map(drop)
    }

    /// A handle on the same level, for background work.
    pub fn clone_handle(&self) -> Shared {
        Shared {
            redis: self.redis.clone(),
        }
    }
}
