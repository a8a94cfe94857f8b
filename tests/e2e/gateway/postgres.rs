//! The Postgres capability on the machine's real server, one database per test: migrations,
//! granted statements with typed values, refusals, limits, pool exhaustion, a dead server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_artifacts as wasm;
use sluice_e2e::postgres::TestDatabase;
use sluice_e2e::{Answer, Gateway, full, get, send, start_gateway};

/// A route `/NAME` running the pg-query plugin with `config` (JSON) and `grants` (TOML).
fn route(name: &str, config: &str, grants: &str) -> String {
    format!(
        "[plugins.{name}]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\ngrants = {{ postgres = {grants} }}\n\
         [[routes]]\nname = \"{name}\"\nmatch = {{ path = \"/{name}\" }}\nplugins = [{{ plugin = \"{name}\", config = {config} }}]\n",
        wasm::PG_QUERY
    )
}

async fn call(gw: &Gateway, path: &str, params: Value) -> Answer {
    send(
        hyper::Request::get(gw.url(path))
            .header("x-params", params.to_string())
            .body(full(""))
            .unwrap(),
    )
    .await
}

/// Applies the migrations now (the gateway also does at start, in the background).
async fn migrated(gw: &Gateway) {
    let pg = gw.running.state.runtime().backends().postgres.clone().unwrap();
    pg.migrate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_and_granted_statements_round_trip_typed_values() {
    let db = TestDatabase::create("roundtrip").await;
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\n[postgres.statements]\n\
         insert_log = \"INSERT INTO inference_logs (domain, model_name, latency_ms, created_at, workflow_id, user_id) VALUES ($1, $2, $3, $4, $5, $6)\"\n\
         by_domain = \"SELECT id, domain, model_name, latency_ms, created_at, workflow_id, user_id FROM inference_logs WHERE domain = $1 ORDER BY id\"\n\
         {}{}",
        db.url,
        route("insert", r#"{ statement = "insert_log", execute = true }"#, r#"{ statements = ["insert_log"] }"#),
        route("select", r#"{ statement = "by_domain" }"#, r#"{ statements = ["by_domain"] }"#),
    ))
    .await;
    migrated(&gw).await;
    let ts = 1_700_000_000_123_456_i64;
    let inserted = call(
        &gw,
        "/insert",
        json!(["chat", "llama-3", 12.5, { "ts": ts }, "wf-1", null]),
    )
    .await;
    assert_eq!((inserted.status, inserted.json()), (200, json!({ "affected": 1 })));
    let rows = call(&gw, "/select", json!(["chat"])).await;
    assert_eq!(rows.status, 200, "{:?}", rows.body);
    let rows = rows.json();
    assert_eq!(
        rows["columns"],
        json!([
            "id",
            "domain",
            "model_name",
            "latency_ms",
            "created_at",
            "workflow_id",
            "user_id"
        ])
    );
    assert_eq!(
        rows["rows"][0],
        json!([1, "chat", "llama-3", 12.5, { "ts": ts }, "wf-1", null])
    );
    assert_eq!(call(&gw, "/select", json!(["other"])).await.json()["rows"], json!([]));

    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["dependencies"]["postgres"]["state"], "up", "{ready}");
    let stats = get(&gw.admin_url("/admin/stats")).await.json();
    assert!(stats["postgres"]["acquires"].as_u64().unwrap() >= 3, "{stats}");
    assert_eq!(stats["postgres"]["max"], 20);
    let metrics = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(metrics.contains("sluice_postgres_pool_size "), "{metrics}");
    assert!(metrics.contains("sluice_postgres_acquire_seconds_count "), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_statements_unsupported_types_row_caps_and_timeouts_are_clear_errors() {
    let db = TestDatabase::create("refusals").await;
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\nrow_cap = 3\nstatement_timeout_ms = 300\n\
         [postgres.statements]\nnumbers = \"SELECT generate_series(1, $1::int) AS n\"\nother = \"SELECT 1\"\n{}{}{}",
        db.url,
        route(
            "sneaky",
            r#"{ statement = "other" }"#,
            r#"{ statements = ["numbers"] }"#
        ),
        route(
            "numbers",
            r#"{ statement = "numbers" }"#,
            r#"{ statements = ["numbers"] }"#
        ),
        route("raw", r#"{ statement = "SELECT pg_sleep(2)" }"#, r#"{ any = true }"#),
    ))
    .await;
    // A statement the grant does not list.
    let denied = call(&gw, "/sneaky", json!([])).await;
    assert_eq!(denied.status, 500);
    assert_eq!(denied.json()["error"], "denied");
    assert!(
        denied.json()["message"]
            .as_str()
            .unwrap()
            .contains("'other' is not granted to plugin 'sneaky'")
    );
    // Within the row cap, then past it.
    assert_eq!(
        call(&gw, "/numbers", json!([3])).await.json()["rows"],
        json!([[1], [2], [3]])
    );
    let capped = call(&gw, "/numbers", json!([4])).await.json();
    assert_eq!(capped["error"], "limit", "{capped}");
    assert!(
        capped["message"].as_str().unwrap().contains("more than 3 rows"),
        "{capped}"
    );
    // The server-side statement timeout.
    let started = Instant::now();
    let slow = call(&gw, "/raw", json!([])).await;
    assert_eq!(
        (slow.status, slow.json()["error"].as_str()),
        (503, Some("timeout")),
        "{:?}",
        slow.body
    );
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_column_type_names_the_column_and_the_fix() {
    let db = TestDatabase::create("types").await;
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\n{}",
        db.url,
        route(
            "raw",
            r#"{ statement = "SELECT current_date AS today, 1 AS one" }"#,
            r#"{ any = true }"#
        ),
    ))
    .await;
    let answer = call(&gw, "/raw", json!([])).await.json();
    assert_eq!(answer["error"], "invalid", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("column 'today' has type DATE") && message.contains("cast it"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_unavailable_after_the_acquire_timeout() {
    let db = TestDatabase::create("exhausted").await;
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\nmax_connections = 1\nmin_connections = 0\nacquire_timeout_ms = 300\n{}{}",
        db.url,
        route(
            "hold",
            r#"{ statement = "SELECT 1 AS one FROM pg_sleep(1.5)" }"#,
            r#"{ any = true }"#
        ),
        route("quick", r#"{ statement = "SELECT 1 AS one" }"#, r#"{ any = true }"#),
    ))
    .await;
    let holder = {
        let url = gw.url("/hold");
        tokio::spawn(async move { get(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let waited = call(&gw, "/quick", json!([])).await;
    assert_eq!(waited.status, 503, "{:?}", waited.body);
    assert_eq!(waited.json()["error"], "unavailable");
    assert!(
        waited.json()["message"]
            .as_str()
            .unwrap()
            .contains("no connection free within 300 ms")
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no hang: {:?}",
        started.elapsed()
    );
    assert_eq!(holder.await.unwrap().status, 200);
    // The connection is back: the next call is served.
    assert_eq!(call(&gw, "/quick", json!([])).await.json()["rows"], json!([[1]]));
    let stats = get(&gw.admin_url("/admin/stats")).await.json();
    assert_eq!(stats["postgres"]["exhausted"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_postgres_degrades_readiness_and_fails_calls_fast() {
    // A port nothing listens on.
    let port = sluice_e2e::closed_port();
    let gw = start_gateway(&format!(
        "[postgres]\nurl = \"postgres://root@127.0.0.1:{port}/none\"\nacquire_timeout_ms = 500\n{}",
        route("quick", r#"{ statement = "SELECT 1 AS one" }"#, r#"{ any = true }"#),
    ))
    .await;
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["dependencies"]["postgres"]["state"], "down");
    let started = Instant::now();
    let answer = call(&gw, "/quick", json!([])).await;
    assert_eq!(
        (answer.status, answer.json()["error"].as_str()),
        (503, Some("unavailable"))
    );
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // The gateway itself keeps serving.
    assert_eq!(get(&gw.admin_url("/admin/health")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_changed_in_postgres_reaches_every_running_instance() {
    use sqlx::Connection;
    let db = TestDatabase::create("storedconfig").await;
    let upstream = sluice_e2e::Upstream::start().await;
    let stored = |prefix: &str| {
        sluice_e2e::config_text(&format!(
            "[upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"stored\"\nmatch = {{ path_prefix = \"{prefix}\" }}\nupstream = \"app\"\n",
            upstream.addr
        ))
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sluice_backends::postgres::MIGRATOR.run(&mut conn).await.unwrap();
    sqlx::query("INSERT INTO gateway_config (name, config) VALUES ('main', $1)")
        .bind(stored("/a"))
        .execute(&mut conn)
        .await
        .unwrap();
    let file = format!(
        "[postgres]\nurl = {:?}\nconfig_name = \"main\"\n[upstreams.app]\ntargets = [\"{}\"]\n\
         [[routes]]\nname = \"file\"\nmatch = {{ path_prefix = \"/file\" }}\nupstream = \"app\"\n",
        db.url, upstream.addr
    );
    let (a, b) = (start_gateway(&file).await, start_gateway(&file).await);
    for gw in [&a, &b] {
        assert_eq!(get(&gw.url("/a")).await.status, 200, "the stored config is in force");
        assert_eq!(get(&gw.url("/file")).await.status, 404);
    }
    // Both instances listen; making the LISTEN connection did not reload a config that did
    // not change.
    let mut listening = 0;
    for _ in 0..100 {
        listening = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if listening == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listening, 2, "both instances listen");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for gw in [&a, &b] {
        assert_eq!(gw.running.state.last_reload().trigger, "startup");
    }
    sqlx::query("UPDATE gateway_config SET config = $1 WHERE name = 'main'")
        .bind(stored("/b"))
        .execute(&mut conn)
        .await
        .unwrap();
    for gw in [&a, &b] {
        let mut served = false;
        for _ in 0..50 {
            if get(&gw.url("/b")).await.status == 200 {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served, "the change reached the instance");
        assert_eq!(get(&gw.url("/a")).await.status, 404);
        assert_eq!(gw.running.state.last_reload().trigger, "postgres");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_postgres_the_file_config_runs() {
    let upstream = sluice_e2e::Upstream::start().await;
    let port = sluice_e2e::closed_port();
    let gw = start_gateway(&format!(
        "[postgres]\nurl = \"postgres://root@127.0.0.1:{port}/none\"\nconfig_name = \"main\"\nacquire_timeout_ms = 300\n\
         [upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"file\"\nupstream = \"app\"\n",
        upstream.addr
    ))
    .await;
    assert_eq!(get(&gw.url("/anything")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_settings_a_plugin_changes_do_not_outlive_its_call() {
    let db = TestDatabase::create("cleanconn").await;
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\nmax_connections = 1\nmin_connections = 0\n\
         [postgres.statements]\ncount_logs = \"SELECT count(*) AS n FROM inference_logs\"\n{}{}{}",
        db.url,
        route(
            "setter",
            r#"{ statement = "SET search_path = nowhere", execute = true }"#,
            r#"{ any = true }"#
        ),
        route(
            "opener",
            r#"{ statement = "BEGIN", execute = true }"#,
            r#"{ any = true }"#
        ),
        route(
            "counter",
            r#"{ statement = "count_logs" }"#,
            r#"{ statements = ["count_logs"] }"#
        ),
    ))
    .await;
    migrated(&gw).await;
    // One pooled connection: the plugin's SET and BEGIN land on the connection the next call gets.
    assert_eq!(call(&gw, "/setter", json!([])).await.status, 200);
    assert_eq!(call(&gw, "/opener", json!([])).await.status, 200);
    let counted = call(&gw, "/counter", json!([])).await;
    assert_eq!(
        (counted.status, counted.json()["rows"].clone()),
        (200, json!([[0]])),
        "{:?}",
        counted.body
    );
}
