//! API key administration behind `sluice keys`: create, list, revoke and rotate keys in the
//! `api_keys` table. Only the keyed hash (HMAC-SHA256 with the server secret) and a display
//! prefix are stored; a new key is returned once, to be shown once. Revocations and rotations
//! are announced on the auth plugin's Redis channel, so every gateway instance drops its cached
//! decision at once (`revoke HASH` / `refresh HASH`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::redis::RedisBackend;

use sluice_auth_keys as format;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyAdminError {
    /// Postgres refused or could not be reached.
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The arguments are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No such key, or it cannot be changed in that way.
    #[error("{0}")]
    NotFound(String),
    /// The operation was done, but the announcement to the gateways failed.
    #[error("done in Postgres, but the gateways were not told ({0}): cached decisions end within their TTL")]
    Announce(String),
}

/// A key just made. `key` exists nowhere else: show it once.
#[derive(Debug)]
pub struct NewKey {
    /// `api_keys.id`.
    pub id: i64,
    /// The key.
    pub key: String,
}

/// What a new key is for.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// The environment in the key's prefix (`live`, `test`).
    pub env: String,
    /// The owner (the subject the gateway passes on).
    pub owner: String,
    /// A name people know the key by.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The tier (rate limits key on it).
    pub tier: String,
    /// Days until it expires; none: never.
    pub expires_in_days: Option<u32>,
}

/// One key as listed: no secret, no hash.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyInfo {
    /// `api_keys.id`.
    pub id: i64,
    /// The key's first characters.
    pub prefix: String,
    /// The owner.
    pub owner: String,
    /// The name.
    pub name: String,
    /// Scopes, space-separated.
    pub scopes: String,
    /// The tier.
    pub tier: String,
    /// `active`, `revoked`, `expired`, `rotating` (grace running) or `rotated`.
    pub state: String,
    /// Created, expires, last used and grace end, as UTC text (empty: none).
    pub created_at: String,
    /// See `created_at`.
    pub expires_at: String,
    /// See `created_at`.
    pub last_used_at: String,
    /// See `created_at`.
    pub grace_until: String,
}

/// A new key for environment `env` from the system's randomness.
pub fn generate_key(env: &str) -> Result<String, KeyAdminError> {
    if !format::valid_env(env) {
        return Err(KeyAdminError::Invalid(format!(
            "env '{env}' must be 1 to {} lower-case letters or digits",
            format::MAX_ENV_LEN
        )));
    }
    let mut pool = [0u8; 256];
    let mut used = pool.len();
    let mut failed = None;
    let key = format::generate(env, || {
        if used == pool.len() {
            if let Err(e) = getrandom::fill(&mut pool) {
                failed = Some(e);
            }
            used = 0;
        }
        used += 1;
        pool[used - 1]
    });
    match failed {
        Some(e) => Err(KeyAdminError::Invalid(format!("no system randomness: {e}"))),
        None => Ok(key),
    }
}

/// The keyed hash of `key` under `secret`, in hex: what a static key in the auth plugin's
/// config holds.
pub fn key_hash_hex(secret: &[u8], key: &str) -> String {
    format::hex(&format::hash(secret, key))
}

/// Something that can tell every gateway instance about a key change.
pub trait Announcer {
    /// Publishes `message` on the auth plugin's revocation channel.
    fn announce(&self, message: String) -> impl Future<Output = Result<(), String>> + Send;
}

/// Administers `api_keys` in `pool` with the HMAC `secret`.
pub struct KeyAdmin<'a, A> {
    pool: &'a PgPool,
    secret: &'a [u8],
    announcer: Option<A>,
}

const TEXT_TIME: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

impl<'a, A: Announcer> KeyAdmin<'a, A> {
    /// Keys in `pool`, hashed with `secret` (at least 16 bytes), changes announced through
    /// `announcer` (none: no Redis; caches then expire on their own).
    pub fn new(pool: &'a PgPool, secret: &'a [u8], announcer: Option<A>) -> Result<Self, KeyAdminError> {
        if secret.len() < 16 {
            return Err(KeyAdminError::Invalid(
                "the auth secret must be at least 16 bytes (the same secret the auth plugin is configured with)".into(),
            ));
        }
        Ok(KeyAdmin {
            pool,
            secret,
            announcer,
        })
    }

    /// Creates a key for `spec`; returns it (once).
    pub async fn create(&self, spec: &KeySpec) -> Result<NewKey, KeyAdminError> {
        if spec.expires_in_days.is_some_and(|d| d > 36_500) {
            return Err(KeyAdminError::Invalid("expires_in_days may be at most 36500".into()));
        }
        let key = generate_key(&spec.env)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (key_hash, prefix, owner, name, scopes, tier, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7)) RETURNING id",
        )
        .bind(format::hash(self.secret, &key).to_vec())
        .bind(format::display_prefix(&key))
        .bind(&spec.owner)
        .bind(&spec.name)
        .bind(&spec.scopes)
        .bind(&spec.tier)
        .bind(spec.expires_in_days.map(|d| d as i32))
        .fetch_one(self.pool)
        .await?;
        Ok(NewKey { id, key })
    }

    /// Every key (of `owner`, when given), newest first.
    pub async fn list(&self, owner: Option<&str>) -> Result<Vec<KeyInfo>, KeyAdminError> {
        let t = |column: &str| format!("coalesce(to_char({column} AT TIME ZONE 'UTC', {TEXT_TIME}), '') AS {column}");
        let sql = format!(
            "SELECT id, prefix, owner, name, array_to_string(scopes, ' ') AS scopes, tier, \
             CASE WHEN revoked_at IS NOT NULL THEN 'revoked' \
                  WHEN expires_at <= now() THEN 'expired' \
                  WHEN grace_until <= now() THEN 'rotated' \
                  WHEN grace_until IS NOT NULL THEN 'rotating' ELSE 'active' END AS state, \
             {}, {}, {}, {} FROM api_keys WHERE $1::text IS NULL OR owner = $1 ORDER BY id DESC",
            t("created_at"),
            t("expires_at"),
            t("last_used_at"),
            t("grace_until")
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .fetch_all(self.pool)
            .await?)
    }

    /// Revokes key `id` now and tells the gateways.
    pub async fn revoke(&self, id: i64) -> Result<(), KeyAdminError> {
        let hash: Option<Vec<u8>> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING key_hash",
        )
        .bind(id)
        .fetch_optional(self.pool)
        .await?;
        let hash = hash.ok_or_else(|| KeyAdminError::NotFound(format!("no active key with id {id}")))?;
        self.announce(format!("revoke {}", format::hex(&hash))).await
    }

    /// Replaces key `id` with a new key of the same owner, name, scopes, tier and expiry; the
    /// old key keeps working for `grace_hours`, then stops. Returns the new key (once).
    pub async fn rotate(&self, id: i64, env: &str, grace_hours: u32) -> Result<NewKey, KeyAdminError> {
        if grace_hours > 87_600 {
            return Err(KeyAdminError::Invalid(
                "grace_hours may be at most 87600 (ten years)".into(),
            ));
        }
        let key = generate_key(env)?;
        let mut tx = self.pool.begin().await?;
        let old: Option<Vec<u8>> = sqlx::query_scalar(
            "UPDATE api_keys SET grace_until = now() + make_interval(hours => $2) \
             WHERE id = $1 AND revoked_at IS NULL AND grace_until IS NULL \
             AND (expires_at IS NULL OR expires_at > now()) RETURNING key_hash",
        )
        .bind(id)
        .bind(grace_hours as i32)
        .fetch_optional(&mut *tx)
        .await?;
        let old = old.ok_or_else(|| KeyAdminError::NotFound(format!("no active, unrotated key with id {id}")))?;
        let new_id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (key_hash, prefix, owner, name, scopes, tier, expires_at, rotated_from) \
             SELECT $1, $2, owner, name, scopes, tier, expires_at, id FROM api_keys WHERE id = $3 RETURNING id",
        )
        .bind(format::hash(self.secret, &key).to_vec())
        .bind(format::display_prefix(&key))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.announce(format!("refresh {}", format::hex(&old))).await?;
        Ok(NewKey { id: new_id, key })
    }

    async fn announce(&self, message: String) -> Result<(), KeyAdminError> {
        match &self.announcer {
            Some(a) => a.announce(message).await.map_err(KeyAdminError::Announce),
            None => Ok(()),
        }
    }
}

/// Announces key changes on a plugin channel of the gateway's Redis.
pub struct RedisAnnouncer {
    /// The Redis the gateways use (`[redis]` of their config).
    pub redis: Arc<RedisBackend>,
    /// The auth plugin's revocation channel (its `revocation_channel`).
    pub channel: String,
}

impl Announcer for RedisAnnouncer {
    async fn announce(&self, message: String) -> Result<(), String> {
        if !self.redis.wait_connected(Duration::from_secs(3)).await {
            return Err(format!("cannot reach Redis at {}", self.redis.settings().url));
        }
        let receivers = self
            .redis
            .publish(self.redis.channel(&self.channel), message.into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(receivers, channel = %self.channel, "key change announced");
        Ok(())
    }
}
