//! The auth plugin (`plugins/auth`) with API keys in the real Postgres and revocations through
//! the real Redis: keys made by `sluice_backends::keys` (what `sluice keys` runs), requests through a
//! gateway on real sockets, decisions in `audit_log`.

use std::time::Duration;

use serde_json::Value;
use sluice_artifacts as wasm;
use sluice_backends::keys::{KeyAdmin, KeySpec, NewKey, RedisAnnouncer};
use sluice_e2e::postgres::TestDatabase;
use sluice_e2e::redis::{REDIS, prefix};
use sluice_e2e::relay::Relay;
use sluice_e2e::{Answer, Gateway, Upstream, full, send, start_gateway};

const SECRET: &str = "e2e-auth-secret-0123456789";

/// Postgres at `pg_url`, Redis at `redis_addr` with `prefix`; `/read` needs scope `read`,
/// `/admin-api` needs `admin`.
fn config(pg_url: &str, redis_addr: &str, prefix: &str, upstream: &Upstream) -> String {
    let route = |name: &str, path: &str, scope: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"{path}\" }}\nupstream = \"app\"\n\
             plugins = [{{ plugin = \"auth\", config = {{ secret = \"{SECRET}\", required_scopes = [\"{scope}\"] }} }}]\n"
        )
    };
    format!(
        "[postgres]\nurl = {pg_url:?}\nacquire_timeout_ms = 2000\nmin_connections = 0\n\
         [postgres.statements]\n\
         auth_lookup_key = \"SELECT id, owner, array_to_string(scopes, ' ') AS scopes, tier, expires_at, revoked_at, grace_until, key_hash FROM api_keys WHERE key_hash = $1\"\n\
         auth_touch_key = \"UPDATE api_keys SET last_used_at = now() WHERE id = $1\"\n\
         [redis]\nurl = \"redis://{redis_addr}\"\nprefix = \"{prefix}\"\ncall_timeout_ms = 200\n\
         [sinks]\nflush_ms = 100\n[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.auth]\nmodule = {:?}\n\
         grants = {{ kv = true, audit = true, postgres = {{ statements = [\"auth_lookup_key\", \"auth_touch_key\"] }}, redis = {{ subscribe = [\"auth-revocations\"] }} }}\n\
         {}{}",
        upstream.addr,
        wasm::AUTH,
        route("read", "/read", "read"),
        route("admin", "/admin-api", "admin"),
    )
}

struct Setup {
    db: TestDatabase,
    pool: sqlx::PgPool,
    prefix: String,
    upstream: Upstream,
}

impl Setup {
    async fn new(tag: &str) -> Self {
        let db = TestDatabase::create(tag).await;
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sluice_backends::postgres::MIGRATOR.run(&pool).await.unwrap();
        Setup {
            db,
            pool,
            prefix: prefix(),
            upstream: Upstream::start().await,
        }
    }

    async fn gateway(&self) -> Gateway {
        start_gateway(&config(&self.db.url, REDIS, &self.prefix, &self.upstream)).await
    }

    fn admin(&self, gw: &Gateway) -> KeyAdmin<'_, RedisAnnouncer> {
        let announcer = RedisAnnouncer {
            redis: gw.running.state.runtime().backends().redis.clone().unwrap(),
            channel: "auth-revocations".into(),
        };
        KeyAdmin::new(&self.pool, SECRET.as_bytes(), Some(announcer)).unwrap()
    }
}

fn spec(owner: &str, scopes: &[&str]) -> KeySpec {
    KeySpec {
        env: "live".into(),
        owner: owner.into(),
        name: "e2e".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        tier: "pro".into(),
        expires_in_days: None,
    }
}

async fn call(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = hyper::Request::get(gw.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request.body(full("")).unwrap()).await
}

async fn with_key(gw: &Gateway, path: &str, key: &NewKey) -> Answer {
    call(gw, path, &[("x-api-key", &key.key)]).await
}

/// Polls `path` with `key` until it answers `status` (2 s at most); the last answer.
async fn until_status(gw: &Gateway, path: &str, key: &NewKey, status: u16) -> Answer {
    let mut answer = with_key(gw, path, key).await;
    for _ in 0..40 {
        if answer.status == status {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = with_key(gw, path, key).await;
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_allow_deny_and_pass_the_identity_on() {
    let setup = Setup::new("authkeys").await;
    let gw = setup.gateway().await;
    let admin = setup.admin(&gw);
    let key = admin.create(&spec("team-a", &["read"])).await.unwrap();
    assert!(key.key.starts_with("sk_live_"));

    // Allowed, by either header; spoofed identity headers never reach the upstream.
    let spoofed = [
        ("x-auth-subject", "evil"),
        ("x-auth-key-id", "1"),
        ("x-auth-tier", "enterprise"),
    ];
    let answer = call(
        &gw,
        "/read/x",
        &[&[("x-api-key", key.key.as_str())][..], &spoofed].concat(),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let seen = &answer.json()["headers"];
    assert_eq!(seen["x-auth-subject"], "team-a");
    assert_eq!(seen["x-auth-scopes"], "read");
    assert_eq!(seen["x-auth-tier"], "pro");
    assert_eq!(seen["x-auth-key-id"], key.id.to_string());
    assert!(seen.get("x-api-key").is_none(), "the secret stays at the gateway");
    let bearer = call(&gw, "/read/x", &[("authorization", &format!("Bearer {}", key.key))]).await;
    assert_eq!(bearer.status, 200);

    // Missing, mistyped, unknown, wrong scheme, oversized: 401 without saying which.
    let missing = call(&gw, "/read/x", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer realm=\"sluice\""));
    assert_eq!(missing.json()["code"], "missing_credentials");
    let mut typo = key.key.clone().into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    let unknown = admin.create(&spec("team-z", &["read"])).await.unwrap();
    sqlx::query("DELETE FROM api_keys WHERE id = $1")
        .bind(unknown.id)
        .execute(&setup.pool)
        .await
        .unwrap();
    let huge = "sk_live_".to_string() + &"a".repeat(9000);
    for bad in [
        String::from_utf8(typo).unwrap(),
        unknown.key.clone(),
        huge,
        "nonsense".into(),
    ] {
        let answer = call(&gw, "/read/x", &[("x-api-key", &bad)]).await;
        assert_eq!(answer.status, 401, "{bad:.20}: {:?}", answer.body);
        assert_eq!(answer.json()["code"], "invalid_credentials");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Bearer realm=\"sluice\", error=\"invalid_token\"")
        );
    }
    let basic = call(&gw, "/read/x", &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!(basic.status, 401);

    // Valid, but not for this route.
    let forbidden = with_key(&gw, "/admin-api/x", &key).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.json()["code"], "insufficient_scope");
    assert!(
        forbidden
            .header("www-authenticate")
            .unwrap()
            .contains("scope=\"admin\"")
    );

    // Every decision is audited, with reasons and without secrets; the key's use is recorded.
    gw.running
        .state
        .runtime()
        .backends()
        .sinks
        .clone()
        .unwrap()
        .flush()
        .await;
    let rows: Vec<(String, Option<String>, Value)> =
        sqlx::query_as("SELECT outcome, actor, details FROM audit_log ORDER BY id")
            .fetch_all(&setup.pool)
            .await
            .unwrap();
    let reasons: Vec<&str> = rows.iter().map(|r| r.2["reason"].as_str().unwrap()).collect();
    for reason in [
        "ok",
        "missing_credentials",
        "bad_checksum",
        "unknown_key",
        "malformed_key",
        "insufficient_scope",
    ] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
    assert_eq!(rows.iter().filter(|r| r.0 == "allow").count(), 2);
    let text = format!("{rows:?}");
    assert!(!text.contains(&key.key[8..]), "no key material in the audit log");
    let used: Option<i64> = sqlx::query_scalar("SELECT id FROM api_keys WHERE id = $1 AND last_used_at IS NOT NULL")
        .bind(key.id)
        .fetch_optional(&setup.pool)
        .await
        .unwrap();
    assert_eq!(used, Some(key.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_instance_and_its_cached_decisions_within_a_second() {
    let setup = Setup::new("authrevoke").await;
    let (a, b) = (setup.gateway().await, setup.gateway().await);
    let admin = setup.admin(&a);
    let key = admin.create(&spec("team-r", &["read"])).await.unwrap();
    for gw in [&a, &b] {
        // Twice: the second answer comes from the decision cache.
        assert_eq!(with_key(gw, "/read/x", &key).await.status, 200);
        assert_eq!(with_key(gw, "/read/x", &key).await.status, 200);
    }
    // Both instances listen on the channel before the revocation is sent.
    let redis = a.running.state.runtime().backends().redis.clone().unwrap();
    for _ in 0..100 {
        let n: Vec<(String, i64)> =
            fred::interfaces::PubsubInterface::pubsub_numsub(redis.pool().next(), redis.channel("auth-revocations"))
                .await
                .unwrap();
        if n[0].1 == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin.revoke(key.id).await.unwrap();
    let started = std::time::Instant::now();
    for gw in [&a, &b] {
        assert_eq!(until_status(gw, "/read/x", &key, 401).await.status, 401);
    }
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert!(admin.revoke(key.id).await.is_err(), "revoking twice is an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_old_key_for_its_grace_and_expiry_is_honoured() {
    let setup = Setup::new("authrotate").await;
    let gw = setup.gateway().await;
    let admin = setup.admin(&gw);

    let kept = admin.create(&spec("team-k", &["read"])).await.unwrap();
    assert_eq!(with_key(&gw, "/read/x", &kept).await.status, 200);
    let successor = admin.rotate(kept.id, "live", 1).await.unwrap();
    assert_eq!(with_key(&gw, "/read/x", &successor).await.status, 200);
    assert_eq!(with_key(&gw, "/read/x", &kept).await.status, 200, "within its grace");

    let ended = admin.create(&spec("team-e", &["read"])).await.unwrap();
    assert_eq!(with_key(&gw, "/read/x", &ended).await.status, 200);
    let next = admin.rotate(ended.id, "live", 0).await.unwrap();
    assert_eq!(
        until_status(&gw, "/read/x", &ended, 401).await.status,
        401,
        "no grace: the cached decision is refreshed and refused"
    );
    assert_eq!(with_key(&gw, "/read/x", &next).await.status, 200);

    let mut expiring = spec("team-x", &["read"]);
    expiring.expires_in_days = Some(0);
    let expired = admin.create(&expiring).await.unwrap();
    assert_eq!(with_key(&gw, "/read/x", &expired).await.status, 401);
    let listed = admin.list(None).await.unwrap();
    let state = |id: i64| listed.iter().find(|k| k.id == id).unwrap().state.clone();
    assert_eq!(
        (state(kept.id), state(ended.id), state(expired.id), state(next.id)),
        ("rotating".into(), "rotated".into(), "expired".into(), "active".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_backends_degrade_without_locking_callers_out() {
    let setup = Setup::new("authfaults").await;
    let pg_relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let redis_relay = Relay::start(REDIS.parse().unwrap()).await;
    let pg_url = setup.db.url.replace("127.0.0.1:5432", &pg_relay.addr.to_string());
    let gw = start_gateway(&config(
        &pg_url,
        &redis_relay.addr.to_string(),
        &setup.prefix,
        &setup.upstream,
    ))
    .await;
    let admin = KeyAdmin::<RedisAnnouncer>::new(&setup.pool, SECRET.as_bytes(), None).unwrap();
    let (cached, uncached) = (
        admin.create(&spec("team-c", &["read"])).await.unwrap(),
        admin.create(&spec("team-u", &["read"])).await.unwrap(),
    );
    assert_eq!(with_key(&gw, "/read/x", &cached).await.status, 200);

    // Postgres gone: the cached decision keeps working; an uncached key is 503, not 401.
    pg_relay.cut().await;
    assert_eq!(with_key(&gw, "/read/x", &cached).await.status, 200);
    let answer = with_key(&gw, "/read/x", &uncached).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.json()["code"], "auth_unavailable");
    pg_relay.restore();
    assert_eq!(until_status(&gw, "/read/x", &uncached, 200).await.status, 200);

    // Redis gone: decisions are made from Postgres and the local cache.
    redis_relay.cut().await;
    let fresh = admin.create(&spec("team-f", &["read"])).await.unwrap();
    for key in [&cached, &uncached, &fresh] {
        assert_eq!(with_key(&gw, "/read/x", key).await.status, 200);
    }
}
