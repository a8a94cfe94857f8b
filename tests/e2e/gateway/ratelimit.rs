//! The rate-limit plugin through the gateway: headers and 429s, tiers from the auth plugin,
//! weighted costs, several limits charged all or nothing, odd identifiers, configs that make no
//! sense, three instances sharing one limit through the real Redis, and Redis going away under
//! load (local limiting with a share, readiness and metrics say so, global again after).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Request;
use sluice_e2e::redis::{REDIS, prefix};
use sluice_e2e::relay::Relay;
use sluice_e2e::{Answer, Gateway, Upstream, config_text, full, get, send, start_gateway};
use sluice_gateway::app::RunningGateway;
use sluice_gateway::state::ConfigSource;

/// A config with upstream `app` at `upstream` and one route `/` with the ratelimit plugin
/// (`config`: a TOML inline table), after `extra` (a `[redis]` section, say).
fn config(upstream: &Upstream, extra: &str, plugin_config: &str) -> String {
    format!(
        "{extra}\n[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.ratelimit]\nmodule = \"builtin:ratelimit\"\ngrants = {{ ratelimit = true }}\n\
         [[routes]]\nname = \"api\"\nmatch = {{ path_prefix = \"/\" }}\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"ratelimit\", config = {plugin_config} }}]\n",
        upstream.addr
    )
}

/// A `[redis]` section on the real server with a fresh prefix and a budget generous enough
/// that a loaded test machine does not push decisions into the local fallback.
fn redis_section() -> String {
    format!(
        "[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{}\"\ncall_timeout_ms = 2000\n",
        prefix()
    )
}

async fn get_with(gw: &Gateway, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::get(gw.url("/items"));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    send(req.body(full(Bytes::new())).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_requests_carry_the_fields_and_the_rest_get_429() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(
        &upstream,
        "",
        r#"{ limits = [{ name = "per-ip", key = "ip", limit = 3, period = "1m" }] }"#,
    ))
    .await;
    for left in [2, 1, 0] {
        let ok = get(&gw.url("/items")).await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.header("ratelimit-policy"), Some("\"per-ip\";q=3;w=60"));
        let state = ok.header("ratelimit").unwrap();
        assert!(state.starts_with(&format!("\"per-ip\";r={left};t=")), "{state}");
    }
    let denied = get(&gw.url("/items")).await;
    assert_eq!(denied.status, 429);
    assert_eq!(denied.header("content-type"), Some("application/json"));
    let retry: u64 = denied.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "one unit comes back every 20 s: {retry}");
    let body = denied.json();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["policy"], "per-ip");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(denied.header("ratelimit").unwrap().starts_with("\"per-ip\";r=0;t="));
    assert_eq!(upstream.hits(), 3, "denied requests never reach the upstream");
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_from_the_auth_plugin_choose_the_quota() {
    let upstream = Upstream::start().await;
    let secret = "rate-limit-test-secret";
    let mut n = 0u8;
    let mut key = |env: &str| {
        sluice_auth_keys::generate(env, || {
            n = n.wrapping_add(37);
            n
        })
    };
    let (free, pro) = (key("test"), key("test"));
    let hash = |k: &str| sluice_auth_keys::hex(&sluice_auth_keys::hash(secret.as_bytes(), k));
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.auth]\nmodule = \"builtin:auth\"\ngrants = {{ kv = true, audit = true }}\n\
         [plugins.ratelimit]\nmodule = \"builtin:ratelimit\"\ngrants = {{ ratelimit = true }}\n\
         [[routes]]\nname = \"api\"\nmatch = {{ path_prefix = \"/\" }}\nupstream = \"app\"\n\
         plugins = [\n\
         {{ plugin = \"auth\", config = {{ secret = \"{secret}\", lookup_statement = \"\", touch_statement = \"\", static_keys = [\n\
           {{ id = 1, hash = \"{}\", owner = \"ann\", scopes = [], tier = \"free\" }},\n\
           {{ id = 2, hash = \"{}\", owner = \"bob\", scopes = [], tier = \"pro\" }}] }} }},\n\
         {{ plugin = \"ratelimit\", config = {{ limits = [{{ name = \"per-key\", key = \"api_key\", limit = 2, period = \"1h\", \
            tiers = {{ pro = {{ limit = 5 }} }} }}] }} }}]\n",
        upstream.addr,
        hash(&free),
        hash(&pro),
    ))
    .await;
    let mut admitted = std::collections::HashMap::new();
    for k in [&free, &pro] {
        for _ in 0..8 {
            let answer = get_with(&gw, &[("x-api-key", k)]).await;
            assert!(answer.status == 200 || answer.status == 429, "{}", answer.status);
            *admitted.entry(k.clone()).or_insert(0) += u32::from(answer.status == 200);
        }
    }
    assert_eq!(admitted[&free], 2, "free tier: the base quota");
    assert_eq!(admitted[&pro], 5, "pro tier: its own quota, its own bucket");
    let pro_denied = get_with(&gw, &[("x-api-key", &pro)]).await;
    assert_eq!(pro_denied.header("ratelimit-policy"), Some("\"per-key\";q=5;w=3600"));
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_costs_spend_several_units_and_one_too_big_never_passes() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(
        &upstream,
        "",
        r#"{ limits = [{ name = "tokens", key = "route", limit = 10, period = "1h" }], cost = { header = "x-cost", max = 50 } }"#,
    ))
    .await;
    assert_eq!(get_with(&gw, &[("x-cost", "7")]).await.status, 200);
    let over = get_with(&gw, &[("x-cost", "4")]).await;
    assert_eq!(over.status, 429, "7 + 4 > 10");
    assert!(over.header("retry-after").is_some());
    let fits = get_with(&gw, &[("x-cost", "3")]).await;
    assert_eq!(fits.status, 200, "the denied request charged nothing");
    assert!(fits.header("ratelimit").unwrap().starts_with("\"tokens\";r=0;"));
    let never = get_with(&gw, &[("x-cost", "20")]).await;
    assert_eq!(never.status, 429);
    assert_eq!(never.header("retry-after"), None, "waiting would not help");
    assert!(never.json()["message"].as_str().unwrap().contains("costs more"));
    for junk in ["-1", "abc", "1e9", "", "99999999999999999999999"] {
        let answer = get_with(&gw, &[("x-cost", junk)]).await;
        assert!(
            answer.status == 429 || answer.status == 200,
            "{junk}: {}",
            answer.status
        );
    }
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_odd_identifiers_each_get_a_bucket_and_no_error() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(
        &upstream,
        &redis_section(),
        r#"{ limits = [{ name = "tenant", key = "header:x-tenant", limit = 1, period = "1h" }] }"#,
    ))
    .await;
    let huge = "t".repeat(6000);
    let odd = ["a\tb", "ünïcödé", "{rl}:*", "\"quoted\";r=9", &huge, "x y z"];
    for who in odd {
        let first = get_with(&gw, &[("x-tenant", who)]).await;
        assert_eq!(first.status, 200, "{who:.20}: {:?}", first.body);
        assert_eq!(get_with(&gw, &[("x-tenant", who)]).await.status, 429, "{who:.20}");
    }
    let no_tenant = get_with(&gw, &[]).await;
    assert_eq!(no_tenant.status, 200, "no identity: the limit does not apply");
    assert_eq!(no_tenant.header("ratelimit"), None);
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_denying_limit_charges_none_of_the_others_in_redis() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(
        &upstream,
        &redis_section(),
        r#"{ limits = [{ name = "ip", key = "ip", limit = 100, period = "1h" }, { name = "tenant", key = "header:x-tenant", limit = 2, period = "1h" }] }"#,
    ))
    .await;
    for _ in 0..2 {
        assert_eq!(get_with(&gw, &[("x-tenant", "acme")]).await.status, 200);
    }
    for _ in 0..5 {
        let denied = get_with(&gw, &[("x-tenant", "acme")]).await;
        assert_eq!(denied.status, 429);
        assert_eq!(denied.json()["policy"], "tenant");
        let state = denied.header("ratelimit").unwrap();
        assert!(
            state.starts_with("\"ip\";r=98;"),
            "the ip limit was not charged: {state}"
        );
    }
    let other = get_with(&gw, &[("x-tenant", "globex")]).await;
    assert_eq!(other.status, 200);
    assert!(other.header("ratelimit").unwrap().starts_with("\"ip\";r=97;"));
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_that_make_no_sense_are_refused_before_serving() {
    let upstream = Upstream::start().await;
    for (plugin_config, expected) in [
        (
            r#"{ limits = [{ name = "a", key = "ip", limit = 0, period = "1m" }] }"#,
            "limit must be",
        ),
        (
            r#"{ limits = [{ name = "a", key = "ip", limit = 5, period = "soon" }] }"#,
            "period",
        ),
        (
            r#"{ limits = [{ name = "a", key = "cookie", limit = 5, period = "1m" }] }"#,
            "key must be",
        ),
        (
            r#"{ limits = [{ name = "a", key = "ip", limit = 5, period = "1m" }], cost = 9 }"#,
            "could ever pass",
        ),
        (
            r#"{ limits = [{ name = "a", key = "ip", limit = 5, period = "1m" }], local_share = 2 }"#,
            "local_share",
        ),
        (r#"{ limits = [] }"#, "1 to 16"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, config_text(&config(&upstream, "", plugin_config))).unwrap();
        let error = match RunningGateway::start(ConfigSource::File(path)).await {
            Ok(_) => panic!("{plugin_config} was accepted"),
            Err(e) => e,
        };
        assert!(error.contains(expected), "{plugin_config}: {error}");
        assert!(error.contains("ratelimit"), "the error names the plugin: {error}");
    }
}

/// Sends `n` requests spread over `gateways` from `tasks` tasks at once; returns how many were
/// admitted, how many got another status than 200 or 429, and how long it took.
async fn burst(gateways: &[Arc<Gateway>], n: usize, tasks: usize) -> (usize, usize, Duration) {
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let gateways = gateways.to_vec();
        handles.push(tokio::spawn(async move {
            let (mut ok, mut other) = (0, 0);
            for i in (t..n).step_by(tasks) {
                let gw = &gateways[i % gateways.len()];
                let answer = get(&gw.url("/items")).await;
                match answer.status {
                    200 => ok += 1,
                    429 => {}
                    status => {
                        eprintln!("unexpected {status}: {:?}", answer.body);
                        other += 1;
                    }
                }
            }
            (ok, other)
        }));
    }
    let (mut ok, mut other) = (0, 0);
    for h in handles {
        let (o, x) = h.await.unwrap();
        ok += o;
        other += x;
    }
    (ok, other, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_sharing_redis_never_admit_more_than_the_limit_together() {
    let upstream = Upstream::start().await;
    let text = config(
        &upstream,
        &redis_section(),
        r#"{ limits = [{ name = "route", key = "route", limit = 30, period = "1m" }], local_share = 0.34 }"#,
    );
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(Arc::new(start_gateway(&text).await));
    }
    let (ok, other, elapsed) = burst(&gateways, 150, 12).await;
    // GCRA: over a span of s seconds at most burst + quota * s / period pass.
    let bound = 30 + (30.0 * elapsed.as_secs_f64() / 60.0).floor() as usize;
    assert_eq!(other, 0);
    assert!(ok <= bound, "{ok} admitted by three instances; at most {bound} allowed");
    assert!(ok >= 30, "the whole burst is usable: {ok}");
    assert_eq!(upstream.hits() as usize, ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_falls_back_to_a_local_share_and_comes_back() {
    let upstream = Upstream::start().await;
    let relay = Relay::start(REDIS.parse().unwrap()).await;
    let gw = Arc::new(
        start_gateway(&config(
            &upstream,
            &format!(
                "[redis]\nurl = \"redis://{}\"\nprefix = \"{}\"\ncall_timeout_ms = 50\nbreaker_failures = 2\n\
                 breaker_open_ms = 200\nreconnect_max_ms = 100\n",
                relay.addr,
                prefix()
            ),
            r#"{ limits = [{ name = "route", key = "route", limit = 20, period = "1h" }], local_share = 0.25 }"#,
        ))
        .await,
    );
    let (ok, other, _) = burst(std::slice::from_ref(&gw), 4, 1).await;
    assert_eq!((ok, other), (4, 0), "global: 4 of 20 used");
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["dependencies"]["ratelimit"]["state"], "global");

    relay.cut().await;
    let (ok, other, _) = burst(std::slice::from_ref(&gw), 40, 4).await;
    assert_eq!(other, 0, "Redis down causes no 5xx");
    assert!(ok <= 5, "local mode enforces a quarter of the limit: {ok} admitted");
    assert!(ok >= 1, "local mode still admits: {ok}");
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["dependencies"]["ratelimit"]["state"], "local", "{ready}");
    let metrics = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(metrics.contains("sluice_ratelimit_local_mode 1"), "{metrics}");
    assert!(metrics.contains("mode=\"local\""), "decisions are counted by mode");

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get(&gw.url("/items")).await;
        let ready = get(&gw.admin_url("/admin/ready")).await.json();
        if ready["dependencies"]["ratelimit"]["state"] == "global" {
            // Back on the shared bucket: what was spent before the outage still counts.
            let state = answer.header("ratelimit").unwrap_or_default().to_string();
            let remaining: u64 = state
                .split(";r=")
                .nth(1)
                .and_then(|s| s.split(';').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX);
            assert!(remaining <= 15, "the global bucket kept the 4 spent before: {state}");
            break;
        }
        assert!(Instant::now() < deadline, "never went back to global: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
