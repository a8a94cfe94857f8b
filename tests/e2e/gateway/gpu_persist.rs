//! GPU routing's Postgres records on the real server: an `inference_logs` row per inference
//! with the usage captured from the stream (the client did not ask for it), the model
//! performance upserted, and `model_cache_state` written on a load and read back by a
//! restarted gateway before it has read any backend.

use std::time::Duration;

use serde_json::json;
use sluice_e2e::get;
use sluice_e2e::postgres::TestDatabase;

use super::gpu_route::{chat, fleet_gateway, post, sim, sim_config};

async fn query_i64(url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

async fn eventually(url: &str, sql: &str, want: i64) -> i64 {
    let mut got = 0;
    for _ in 0..100 {
        got = query_i64(url, sql).await;
        if got >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inferences_are_logged_with_their_usage_and_loaded_models_survive_a_restart() {
    let db = TestDatabase::create("gpu").await;
    let mut a = sim("a", sim_config(&[("m", true), ("late", false)], 4, 1), 4).await;
    let pg = format!("[postgres]\nurl = {:?}\n[sinks]\nflush_ms = 100\n", db.url);
    let gw = fleet_gateway(&[&a], "", &pg).await;
    gw.running
        .state
        .runtime()
        .backends()
        .postgres
        .clone()
        .unwrap()
        .migrate()
        .await
        .unwrap();

    let mut stream = chat("m", "count to five", 6);
    stream["stream"] = json!(true);
    let answer = post(
        &gw,
        "/v1/chat/completions",
        &stream,
        &[("x-tenant", "acme"), ("x-workflow-id", "wf-1")],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(
        !String::from_utf8_lossy(&answer.body).contains("\"usage\""),
        "not asked for"
    );
    let rows = eventually(&db.url, "SELECT count(*) FROM inference_logs", 1).await;
    assert_eq!(rows, 1);
    let tokens = query_i64(
        &db.url,
        "SELECT tokens_generated::bigint FROM inference_logs WHERE domain = 'acme' AND workflow_id = 'wf-1' AND backend = 'a' AND status = 200",
    )
    .await;
    assert!(tokens > 0, "the usage the gateway asked the backend for was captured");

    // A model loaded by the gateway is recorded...
    let loaded = post(&gw, "/v1/chat/completions", &chat("late", "hello", 2), &[]).await;
    assert_eq!(loaded.status, 200, "{:?}", loaded.body);
    let state_sql =
        "SELECT count(*) FROM model_cache_state WHERE domain = 'a/late' AND (cache_data->>'resident')::boolean";
    assert_eq!(eventually(&db.url, state_sql, 1).await, 1);
    let perf_sql = "SELECT coalesce(sum(access_count), 0)::bigint FROM model_performance_metrics WHERE domain = 'a'";
    assert!(eventually(&db.url, perf_sql, 2).await >= 2, "performance upserted");
    gw.running.shutdown().await;

    // ...and a new gateway knows it is loaded without reading the backend (gone now).
    a.stop();
    let again = fleet_gateway(&[&a], "", &pg).await;
    let mut restored = false;
    for _ in 0..50 {
        let snapshot = get(&again.admin_url("/admin/gpu")).await.json();
        // The config does not say `late` is loaded and the backend cannot: only the row can.
        if snapshot["backends"][0]["resident"]
            .as_array()
            .unwrap()
            .contains(&json!("late"))
        {
            restored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(restored, "model_cache_state restored");
}
