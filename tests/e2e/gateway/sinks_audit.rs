//! Audit durability: audit rows outlive a Postgres that stops answering even when they come
//! faster than the queue holds, reach it in order once it is back, and when they cannot be
//! kept at all, audited routes are refused (`audit_when_full = "closed"`) or served with the
//! rows counted as dropped (`"open"`).

use std::time::Duration;

use sluice_artifacts as wasm;
use sluice_e2e::postgres::TestDatabase;
use sluice_e2e::relay::Relay;
use sluice_e2e::{Upstream, get, start_gateway};

use super::sinks::{audit, count, metric, metrics, migrated, sinks};

/// The `occurred_at` values of the audit rows in the order Postgres stored them.
async fn audit_times(url: &str) -> Vec<i64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT (extract(epoch FROM occurred_at) * 1000000)::bigint FROM audit_log ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_rows_outrun_the_queue_while_postgres_hangs_and_arrive_in_order() {
    let db = TestDatabase::create("sinkhang").await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db.url.replace("127.0.0.1:5432", &relay.addr.to_string());
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {url:?}\nacquire_timeout_ms = 5000\nmin_connections = 0\n\
         [sinks]\nqueue_rows = 20\nbatch_rows = 10\nflush_ms = 100\nwrite_timeout_ms = 300\n"
    ))
    .await;
    migrated(&gw).await;
    let sinks = sinks(&gw);
    for n in 0..50 {
        assert!(sinks.emit(audit(n)));
    }
    sinks.flush().await;
    // Postgres stops answering (connections stay open): 2,000 rows, 100 times the queue.
    relay.stall().await;
    let started = std::time::Instant::now();
    for n in 50..2050 {
        assert!(sinks.emit(audit(n)), "audit row {n} was refused");
    }
    sinks.flush().await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the writer stopped waiting on the hung Postgres: {:?}",
        started.elapsed()
    );
    assert!(sinks.spilled_bytes() > 0, "the rows went to the spill");
    assert!(!sinks.audit_refused());
    relay.restore();
    for _ in 0..100 {
        sinks.flush().await;
        if count(&db.url, "audit_log").await == 2050 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&db.url, "audit_log").await, 2050, "every audit row arrived, once");
    let times = audit_times(&db.url).await;
    assert!(times.windows(2).all(|w| w[0] < w[1]), "in the order they were emitted");
    let text = metrics(&gw).await;
    assert_eq!(
        metric(&text, "sluice_sink_rows_total{outcome=\"dropped\",table=\"audit_log\"}"),
        0
    );
}

fn audited_config(url: &str, upstream: &Upstream, when_full: &str) -> String {
    format!(
        "[postgres]\nurl = {url:?}\nacquire_timeout_ms = 300\nmin_connections = 0\nmigrate_on_start = false\n\
         [sinks]\nbatch_rows = 10\nflush_ms = 100\nspill_max_bytes = 2000\naudit_when_full = {when_full:?}\n\
         [upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\ngrants = {{ audit = true }}\n\
         [[routes]]\nname = \"audited\"\nmatch = {{ path_prefix = \"/audited\" }}\nupstream = \"app\"\nplugins = [{{ plugin = \"good\" }}]\n\
         [[routes]]\nname = \"plain\"\nupstream = \"app\"\n",
        upstream.addr,
        wasm::GOOD
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spill_closes_audited_routes_until_there_is_room() {
    let db = TestDatabase::create("sinkclosed").await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db.url.replace("127.0.0.1:5432", &relay.addr.to_string());
    let upstream = Upstream::start().await;
    let gw = start_gateway(&audited_config(&url, &upstream, "closed")).await;
    assert_eq!(get(&gw.url("/audited/x")).await.status, 200);
    relay.cut().await;
    let sinks = sinks(&gw);
    for n in 0..40 {
        sinks.emit(audit(n));
    }
    sinks.flush().await;
    assert!(sinks.audit_refused(), "the spill is full");
    let refused = get(&gw.url("/audited/x")).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"], "audit_unavailable");
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(
        get(&gw.url("/plain")).await.status,
        200,
        "routes that do not audit are served"
    );
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(
        ready["dependencies"]["sinks"]["state"], "refusing-audited-routes",
        "{ready}"
    );
    assert_eq!(ready["status"], "degraded");

    // Postgres comes back: the spill is replayed and the route opens again.
    relay.restore();
    migrated(&gw).await;
    for _ in 0..100 {
        sinks.flush().await;
        if !sinks.audit_refused() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!sinks.audit_refused());
    assert_eq!(get(&gw.url("/audited/x")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_audit_when_full_open_audited_routes_are_served_and_the_rows_counted() {
    let db = TestDatabase::create("sinkopen").await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db.url.replace("127.0.0.1:5432", &relay.addr.to_string());
    let upstream = Upstream::start().await;
    let gw = start_gateway(&audited_config(&url, &upstream, "open")).await;
    relay.cut().await;
    let sinks = sinks(&gw);
    for n in 0..40 {
        sinks.emit(audit(n));
    }
    sinks.flush().await;
    assert!(!sinks.audit_refused());
    assert_eq!(get(&gw.url("/audited/x")).await.status, 200);
    let text = metrics(&gw).await;
    assert!(metric(&text, "sluice_sink_rows_total{outcome=\"dropped\",table=\"audit_log\"}") > 0);
}
