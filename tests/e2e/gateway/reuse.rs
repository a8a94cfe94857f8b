//! Reused verdicts through a real gateway. `head.memo`: the auth plugin vouches for an allowed
//! static key, and the host answers that key's repeat requests without calling the plugin,
//! with the same identity upstream and an audit row of their own in the real Postgres; a
//! revocation published on the real Redis ends the reuse at once, and denials are never
//! reused. `rate-limit.memo`: the host charges the ratelimit plugin's limits itself, exactly,
//! writing the `RateLimit` field from each decision, and hands denials back to the plugin.

use std::time::Duration;

use fred::interfaces::PubsubInterface;
use sluice_artifacts as wasm;
use sluice_e2e::postgres::TestDatabase;
use sluice_e2e::redis::{REDIS, direct, prefix};
use sluice_e2e::{DEMO_AUTH, DEMO_KEY, Gateway, Upstream, full, get, send, start_gateway};

/// The hash of [`DEMO_KEY`] under the demo secret (its static key entry in [`DEMO_AUTH`]).
const DEMO_HASH: &str = "45ee5a983ba02465b215b5002f978dec3b8bfba1421974f6caf4f39733a46752";

async fn call(gw: &Gateway, key: Option<&str>, request_id: &str) -> sluice_e2e::Answer {
    let mut request = hyper::Request::get(gw.url("/data")).header("x-request-id", request_id);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    send(request.body(full("")).unwrap()).await
}

/// The value of the metric line starting with `series` (0 when absent).
async fn metric(gw: &Gateway, series: &str) -> u64 {
    let text = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_key_is_answered_by_the_host_with_its_own_audit_rows_until_revoked() {
    let db = TestDatabase::create("authreuse").await;
    let upstream = Upstream::start().await;
    let prefix = prefix();
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\n[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\n\
         [sinks]\nflush_ms = 100\n[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.auth]\nmodule = {:?}\n\
         grants = {{ kv = true, audit = true, redis = {{ subscribe = [\"auth-revocations\"] }} }}\n\
         [[routes]]\nname = \"data\"\nupstream = \"app\"\nplugins = [{}]\n",
        db.url,
        upstream.addr,
        wasm::AUTH,
        // A minute rather than the default second, so a slow machine still reuses every time.
        DEMO_AUTH.replace("required_scopes", "reuse_ms = 60000, required_scopes"),
    ))
    .await;
    let backends = gw.running.state.runtime().backends().clone();
    let pg = backends.postgres.clone().unwrap();
    pg.migrate().await.unwrap();
    let reused = "sluice_plugin_verdicts_reused_total{plugin=\"auth\"}";

    // Twenty requests with the key: the first is decided by the plugin, the rest reuse it,
    // each with the same identity upstream and without the key.
    for i in 0..20 {
        let answer = call(&gw, Some(DEMO_KEY), &format!("reuse-{i}")).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        let seen = answer.json()["headers"].clone();
        assert_eq!(seen["x-auth-subject"], "demo", "{seen}");
        assert_eq!(seen["x-auth-key-id"], "-1", "{seen}");
        assert!(
            seen.get("x-api-key").is_none(),
            "the credential is removed every time: {seen}"
        );
    }
    assert_eq!(metric(&gw, reused).await, 19);

    // Denials are decided every time: none is reused.
    for i in 0..3 {
        assert_eq!(call(&gw, None, &format!("nokey-{i}")).await.status, 401);
    }
    assert_eq!(metric(&gw, reused).await, 19);

    // One audit row per request, each with its own request id.
    backends.sinks.clone().unwrap().flush().await;
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT action, outcome, actor, correlation_id FROM audit_log ORDER BY occurred_at, correlation_id",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    let allowed: Vec<_> = rows.iter().filter(|r| r.0 == "auth.allow").collect();
    assert_eq!(allowed.len(), 20, "{rows:?}");
    assert!(
        allowed
            .iter()
            .all(|r| r.1 == "allow" && r.2.as_deref() == Some("key:-1"))
    );
    let mut ids: Vec<_> = allowed.iter().map(|r| r.3.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each reuse is audited under its own request id");
    assert_eq!(rows.iter().filter(|r| r.0 == "auth.deny").count(), 3);

    // A revocation published on the channel ends the reuse at once.
    let client = direct().await;
    let channel = format!("{prefix}:chan:auth-revocations");
    for _ in 0..100 {
        let counts: Vec<(String, i64)> = client.pubsub_numsub(channel.as_str()).await.unwrap();
        if counts.first().map(|c| c.1) == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _: i64 = client
        .publish(channel.as_str(), format!("revoke {DEMO_HASH}"))
        .await
        .unwrap();
    let mut status = 200;
    for i in 0..40 {
        status = call(&gw, Some(DEMO_KEY), &format!("revoked-{i}")).await.status;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 401, "the revoked key is refused");
    assert_eq!(call(&gw, Some(DEMO_KEY), "revoked-again").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_charges_a_reused_rate_limit_exactly_and_the_plugin_answers_denials() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.ratelimit]\nmodule = \"builtin:ratelimit\"\ngrants = {{ rate_limit = true }}\n\
         [[routes]]\nname = \"data\"\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"ratelimit\", config = {{ limits = [{{ name = \"per-ip\", key = \"ip\", limit = 5, period = \"1m\" }}] }} }}]\n",
        upstream.addr
    ))
    .await;
    let reused = "sluice_plugin_verdicts_reused_total{plugin=\"ratelimit\"}";
    for left in (0..5).rev() {
        let answer = call(&gw, None, &format!("limited-{left}")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("ratelimit-policy"), Some("\"per-ip\";q=5;w=60"));
        let state = answer.header("ratelimit").unwrap();
        assert!(state.starts_with(&format!("\"per-ip\";r={left};t=")), "{state}");
    }
    // The first request was the plugin's; the next four the host's.
    assert_eq!(metric(&gw, reused).await, 4);
    for i in 0..3 {
        let denied = call(&gw, None, &format!("denied-{i}")).await;
        assert_eq!(denied.status, 429, "{:?}", denied.body);
        assert!(denied.header("retry-after").is_some());
        assert!(denied.header("ratelimit").unwrap().starts_with("\"per-ip\";r=0;t="));
    }
    assert_eq!(metric(&gw, reused).await, 4, "denials are the plugin's");
    assert_eq!(upstream.hits(), 5, "exactly the limit reached the upstream");
}
